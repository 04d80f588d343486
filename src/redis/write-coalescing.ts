/**
 * Write coalescing for a client the store owns: every command ioredis writes during one tick of
 * the event loop goes to the socket in one write instead of one write syscall each.
 *
 * Why: with many sessions in flight, a batch of replies resumes many callers in the same tick, and
 * each of them sends its next script call. ioredis writes every command to the socket at once, and
 * on this kind of machine that syscall was the largest single item of the store's client CPU
 * (bench/RESULTS.md). The commands of a tick are joined into one string and written in
 * process.nextTick (which runs once the current run of callbacks and promise jobs is over), or as
 * soon as what is pending reaches WRITE_CHUNK: the same bytes in the same order, one round trip
 * per operation as before, without the extra objects of ioredis auto-pipelining (which was
 * measured slower). One joined string costs less than corking the socket and handing Node one
 * chunk per command (a writev that encodes each of them apart): about 1 µs of client CPU per
 * command here.
 */
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';

const COALESCING = Symbol.for('redis-turn-store.write-coalescing');

type PatchedSocket = Socket & { [COALESCING]?: true };

/**
 * Pending text is written once it reaches this many characters, without waiting for the end of
 * the tick. Why: resuming 50 callers takes the client a while, and Redis idles until it has
 * commands to run; a tick's commands sent in ~2 KB pieces let it start on the first while the
 * rest are being made (Redis also answers each read of a client's buffer before the next).
 * Measured at 50 in flight (bench/RESULTS.md): enqueue/s +50 %, cycles/s +10-20 % against one
 * write per tick; 1 KB and 4-8 KB were slower than 2 KB, and one write per command slower still.
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
