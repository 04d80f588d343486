/**
 * The "definitely dead" verdict of SPEC 4.2, decided in the claimant's process before the atomic
 * step (the server cannot see local processes). Anything uncertain counts as alive.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { LeaseOwnerIdentity } from '../contract/types.js';

/** The kernel `starttime` of a process (field 22 of /proc/<pid>/stat), or null if it has no stat file. */
export function readProcessStart(pid: number, procRoot = '/proc'): string | null {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  // comm may contain spaces and parentheses: count fields after the last ')'.
  const rest = text
    .slice(text.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/);
  const start = rest[19];
  if (start === undefined) throw new Error(`unreadable ${procRoot}/${pid}/stat`);
  return start;
}

export function isDefinitelyDead(
  holder: LeaseOwnerIdentity,
  claimant: LeaseOwnerIdentity,
  procRoot = '/proc',
): boolean {
  const h = holder.liveness;
  const c = claimant.liveness;
  if (h?.kind !== 'local_process' || c?.kind !== 'local_process') return false;
  if (h.hostId !== c.hostId || h.bootId !== c.bootId) return false;
  try {
    if (!existsSync(`${procRoot}/self/stat`)) return false;
    const start = readProcessStart(h.pid, procRoot);
    return start === null || start !== h.processStart;
  } catch {
    return false;
  }
}

/** This process's own local_process liveness, for hosts that want reclaimable leases. */
export function currentProcessLiveness(
  hostId: string,
  procRoot = '/proc',
): { kind: 'local_process'; hostId: string; bootId: string; pid: number; processStart: string } | { kind: 'opaque' } {
  try {
    const bootId = readFileSync(`${procRoot}/sys/kernel/random/boot_id`, 'utf8').trim();
    const processStart = readProcessStart(process.pid, procRoot);
    if (!processStart) return { kind: 'opaque' };
    return { kind: 'local_process', hostId, bootId, pid: process.pid, processStart };
  } catch {
    return { kind: 'opaque' };
  }
}
