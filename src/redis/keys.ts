/**
 * The key layout, built in one place (documented in docs/KEYS.md). Every key of a session carries
 * the hash tag `{<encoded session id>}`; store-wide indexes live in shard keys in the same slot
 * as the session (one shard `{0}` on a standalone server, one per slot on Cluster).
 * A script's header names the keys it takes (src/redis/scripts/script-header.ts); these are the
 * names it may use.
 */
import { keySlot, tagForSlot } from './cluster-slot.js';
import { encodeId } from './key-encoding.js';

export const SESSION_KEY_NAMES = [
  'lease',
  'inputs',
  'states',
  'src',
  'next',
  'active',
  'accepted',
  'genactive',
  'nogen',
  'tomb',
  'head',
  'nodes',
  'order',
  'blobs',
  'usage',
  'usageorder',
  'stamps',
  'meta',
  'claims',
  'failures',
  'expiry',
  'expired',
] as const;

export const SHARD_KEY_NAMES = [
  'dispatch',
  'tombs',
  'att',
  'att-uncommitted',
  'att-byid',
  'att-bysession',
  'activity',
] as const;

export type SessionKeyName = (typeof SESSION_KEY_NAMES)[number];
export type ShardKeyName = (typeof SHARD_KEY_NAMES)[number];

export interface SessionKeys {
  /** The encoded session id (the hash-tag content, also the member in shard indexes). */
  encodedSessionId: string;
  /** The shard tag of the session's slot. */
  shardTag: string;
  byName: Record<SessionKeyName | ShardKeyName, string>;
}

export type ShardMode = 'standalone' | 'cluster';

export class KeyLayout {
  readonly prefix: string;
  readonly mode: ShardMode;
  private readonly cache = new Map<string, SessionKeys>();

  constructor(prefix: string, mode: ShardMode = 'standalone') {
    this.prefix = prefix;
    this.mode = mode;
  }

  /** `<p>:layout` holds the layout version. */
  layoutKey(): string {
    return `${this.prefix}:layout`;
  }

  /** The shard tag for a session: `0` standalone, else a tag that hashes to the session's slot. */
  shardTagFor(encodedSessionId: string): string {
    if (this.mode === 'standalone') return '0';
    return tagForSlot(keySlot(`{${encodedSessionId}}`));
  }

  shardKey(tag: string, name: ShardKeyName): string {
    return `${this.prefix}:shard:{${tag}}:${name}`;
  }

  /** Every shard tag in use: one on standalone; on Cluster, the caller supplies the slots it serves. */
  shardTags(slots?: Iterable<number>): string[] {
    if (this.mode === 'standalone') return ['0'];
    return [...(slots ?? [])].map((s) => tagForSlot(s));
  }

  session(sessionId: string): SessionKeys {
    const hit = this.cache.get(sessionId);
    if (hit) return hit;
    const enc = encodeId(sessionId);
    const base = `${this.prefix}:{${enc}}:`;
    const tag = this.shardTagFor(enc);
    const byName = {} as Record<SessionKeyName | ShardKeyName, string>;
    for (const name of SESSION_KEY_NAMES) byName[name] = base + name;
    for (const name of SHARD_KEY_NAMES) byName[name] = this.shardKey(tag, name);
    const keys: SessionKeys = { encodedSessionId: enc, shardTag: tag, byName };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(sessionId, keys);
    return keys;
  }

  /**
   * The pub/sub channel of a session's interrupt notices (SPEC 3.9), `<p>:{<S>}:interrupt`: a
   * channel, never a key (lua/include/interrupt.lua derives it from the lease key). On Redis
   * Cluster a shard channel of the session's slot.
   */
  interruptChannel(sessionId: string): string {
    return `${this.prefix}:{${encodeId(sessionId)}}:interrupt`;
  }

  /** The BullMQ queue of idle-dispatch wake-ups and its hash-tagged prefix (SPEC 11). */
  dispatchQueue(): { name: string; prefix: string } {
    return { name: `${this.prefix}-idle-dispatch`, prefix: `{${this.prefix}}` };
  }
}
