/** Process plumbing shared by the CLI and the demo. */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** True when this module's file is the script node was started with (not imported). */
export function invokedDirectly(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return moduleUrl === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

/** Resolves on the first SIGINT or SIGTERM (for commands that run until stopped). */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
