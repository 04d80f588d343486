/**
 * Write coalescing for a connection the store opens (option `writeBatching: 'coalesce'`, the
 * default): the commands ioredis writes during one tick of the event loop go to the socket in a
 * few joined writes instead of one write each.
 *
 * Why: with many sessions in flight, a batch of replies resumes many callers in the same tick, and
 * each of them sends its next script call; ioredis writes every command to the socket at once, one
 * syscall each. The commands of a tick are joined into one string and written in process.nextTick
 * (which runs once the current run of callbacks and promise jobs is over), or as soon as what is
 * pending reaches WRITE_CHUNK: the same bytes in the same order, one round trip per operation as
 * before. Measured against ioredis autopipelining and against no batching in docs/DECISIONS.md,
 * which also says when to remove this.
 *
 * Limits: it relies on ioredis writing a command as one `stream.write(string)` (anything else is
 * written through, after what is pending), and the wrapped `write` returns true while text is held,
 * so the socket's backpressure signal is not seen for those commands.
 */
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';

const COALESCING = Symbol.for('redis-turn-store.write-coalescing');

type PatchedSocket = Socket & { [COALESCING]?: true };

/**
 * Pending text is written once it reaches this many characters, without waiting for the end of
 * the tick. Why: resuming 50 callers takes the client a while, and Redis idles until it has
 * commands to run; a tick's commands sent in pieces let it start on the first while the rest are
 * being made (Redis also answers each read of a client's buffer before the next). 2 KB was the
 * best of the sizes tried (bench/RESULTS.md, change 12).
 */
export const WRITE_CHUNK = 2048;

function patch(socket: PatchedSocket | undefined): void {
  if (!socket || socket[COALESCING] || typeof socket.write !== 'function') return;
  socket[COALESCING] = true;
  const write = socket.write;
  let pending = '';
  let scheduled = false;
  const writePending = (): boolean => {
    const text = pending;
    pending = '';
    return write.call(socket, text);
  };
  const flush = () => {
    scheduled = false;
    if (pending !== '') writePending();
  };
  // Named parameters, not a rest one: this runs for every command, and a rest array is an
  // allocation per call.
  socket.write = function coalescedWrite(this: Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    // ioredis writes a command as one string, or as a Buffer when an argument is a Buffer; only
    // plain strings are joined, and anything else goes out after what is pending, in order.
    if (typeof chunk !== 'string' || encoding !== undefined || cb !== undefined) {
      flush();
      return (write as (c: unknown, e?: unknown, f?: unknown) => boolean).call(this, chunk, encoding, cb);
    }
    pending += chunk;
    if (pending.length >= WRITE_CHUNK) return writePending();
    if (!scheduled) {
      scheduled = true;
      process.nextTick(flush);
    }
    return true;
  } as Socket['write'];
}

/** Patches the client's socket now and after every (re)connect, which opens a new socket. */
export function coalesceWrites(client: Redis): void {
  const current = () => patch((client as unknown as { stream?: PatchedSocket }).stream);
  client.on('connect', current);
  current();
}
