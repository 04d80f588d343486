/** One progress line on stderr: rewritten in place on a terminal, one line per update otherwise. */

const tty = process.stderr.isTTY === true;
let last = '';
let lastPrinted = 0;
const started = Date.now();

function stamp(): string {
  return `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
}

export function progress(message: string, force = false): void {
  const line = `[bench ${stamp()}] ${message}`;
  if (tty) {
    process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
    last = line;
    return;
  }
  // Not a terminal: print phase changes, and counters at most every 2 s.
  const now = Date.now();
  if (force || now - lastPrinted > 2000) {
    process.stderr.write(`${line}\n`);
    lastPrinted = now;
  }
  last = line;
}

export function progressDone(): void {
  if (tty && last) process.stderr.write('\r\x1b[2K');
  last = '';
}
