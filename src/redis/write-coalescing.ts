/**
 * Write coalescing for a client the store owns: every command ioredis writes during one tick of
 * the event loop goes to the socket in one writev instead of one write syscall each.
 *
 * Why: with many sessions in flight, a batch of replies resumes many callers in the same tick, and
 * each of them sends its next script call. ioredis writes every command to the socket at once, and
 * on this kind of machine that syscall was the largest single item of the store's client CPU
 * (bench/RESULTS.md). Corking the socket on the first write of a tick and uncorking it in
 * process.nextTick (which runs once the current run of callbacks and promise jobs is over) sends
 * the same bytes in the same order, one round trip per operation as before, without the extra
 * objects of ioredis auto-pipelining (which was measured slower).
 */
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';

const COALESCING = Symbol.for('redis-turn-store.write-coalescing');

type PatchedSocket = Socket & { [COALESCING]?: true };

function patch(socket: PatchedSocket | undefined): void {
  if (!socket || socket[COALESCING] || typeof socket.cork !== 'function') return;
  socket[COALESCING] = true;
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function coalescedWrite(this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(flush);
    }
    return write.apply(this, args);
  } as Socket['write'];
}

/** Patches the client's socket now and after every (re)connect, which opens a new socket. */
export function coalesceWrites(client: Redis): void {
  const current = () => patch((client as unknown as { stream?: PatchedSocket }).stream);
  client.on('connect', current);
  current();
}
