/**
 * The stored form of a graph node (docs/KEYS.md, `nodes`): `<pct(parentNodeId)>|<node JSON>`,
 * the parent's id encoded (src/redis/key-encoding.ts, so it never contains `|`) and empty for a
 * node without one. The parent in front lets lua/load-session.lua walk an active path with one
 * anchored match per node instead of a separate `parents` hash; the JSON after the first `|` is
 * the node as the commit gave it.
 */
import { StoreError } from '../contract/errors.js';
import type { SessionNodeRecord } from '../contract/types.js';
import { encodeId } from './key-encoding.js';

export function encodeNodeValue(node: SessionNodeRecord): string {
  return `${encodeId(node.parentNodeId ?? '')}|${JSON.stringify(node)}`;
}

/** The node JSON of a stored value (text, or the bytes of a Buffer reply, decoded once). */
export function nodeJsonOf(stored: string | Buffer): string {
  const bar = typeof stored === 'string' ? stored.indexOf('|') : stored.indexOf(0x7c);
  if (bar < 0) throw new StoreError('Backend', { cause: 'unreadable graph node: no parent prefix' });
  return typeof stored === 'string' ? stored.slice(bar + 1) : stored.toString('utf8', bar + 1);
}
