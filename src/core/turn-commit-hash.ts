/** turnCommitHash (SPEC 6.4): a fingerprint that ignores CAS, leases and regenerated ids/timestamps. */
import type { RuntimeCommit } from '../contract/types.js';
import { canonical, sha256hex } from './canonical.js';

const ALWAYS_DROPPED = new Set(['nodeId', 'parentNodeId', 'leafNodeId', 'timestamp']);

function isMessage(o: Record<string, unknown>): boolean {
  return 'role' in o && 'parts' in o;
}
function isMessagePart(o: Record<string, unknown>): boolean {
  return 'kind' in o && 'content' in o && 'pruneState' in o;
}

function strip(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(strip);
  const obj = value as Record<string, unknown>;
  const dropId = isMessage(obj) || isMessagePart(obj);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || ALWAYS_DROPPED.has(k) || (dropId && k === 'id')) continue;
    out[k] = strip(v);
  }
  return out;
}

export function turnCommitHash(commit: RuntimeCommit): string {
  const {
    expectedHeadRevision: _cas,
    sessionExecutionLease: _fence,
    releaseSessionExecutionLease: _release,
    turnCommit: _stamp,
    completedQueueClaims,
    ...rest
  } = commit;
  const body: Record<string, unknown> = { ...rest };
  if (completedQueueClaims && completedQueueClaims.length > 0) body.completedQueueClaims = completedQueueClaims;
  if (commit.checkpoint?.executionState !== undefined) {
    body.checkpoint = {
      ...commit.checkpoint,
      executionState: Buffer.from(commit.checkpoint.executionState).toString('hex'),
    };
  }
  return sha256hex(canonical(strip(body)));
}
