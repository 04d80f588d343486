/**
 * The Redis SessionCommitStore (SPEC 6, 7): a facet bound to one session. Every method validates
 * its arguments first, then makes one script call (store-wide attachment queries: one per shard).
 * commitRuntimeState is lua/commit-runtime-state.lua; the pure ARGV/reply handling is in
 * ./commit-args.ts and ./load-session-reply.ts.
 */
import { args } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type {
  AttachmentIntent,
  AttachmentManifestEntry,
  DurabilityTier,
  PersistedSessionRead,
  RuntimeCommit,
  RuntimeCommitResult,
  SessionCommitStore,
  SessionMeta,
  SessionNodeRecord,
  SessionReadScope,
} from '../contract/types.js';
import { foldUsageDeltas, planCheckpoint } from '../core/commit-plan.js';
import * as attachments from './attachment-ops.js';
import { buildCommitArgs } from './commit-args.js';
import type { RedisContext } from './context.js';
import { loadSessionArgv, parseLoadSessionReply } from './load-session-reply.js';
import { nodeJsonOf } from './node-value.js';

function asText(v: unknown): string {
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

export class RedisSessionCommitStore implements SessionCommitStore {
  constructor(
    private readonly ctx: RedisContext,
    readonly sessionId: string,
    private readonly tier: DurabilityTier,
  ) {}

  durabilityTier(): DurabilityTier {
    return this.tier;
  }

  // ---------------------------------------------------------------- commit

  async commitRuntimeState(commit: RuntimeCommit): Promise<RuntimeCommitResult> {
    const c = args.commit(commit);
    // SPEC 6.2 step 1, and the first half of step 2: both need no stored data.
    if (c.sessionId !== this.sessionId) {
      throw new StoreError('SessionBindingMismatch', {
        boundSessionId: this.sessionId,
        attemptedSessionId: c.sessionId,
      });
    }
    if (c.turnCommit && c.turnCommit.sessionId !== c.sessionId) {
      throw new StoreError('RuntimeTurnCommitConflict', { sessionId: c.sessionId, turnId: c.turnCommit.turnId });
    }
    const plan = planCheckpoint(c.checkpoint);
    const usage = foldUsageDeltas(c.usageDeltas);
    const argv = buildCommitArgs(c, plan, usage, this.ctx.requeue, this.ctx.settings.idleDispatch);
    const [wake, result] = await this.ctx.track(() => this.ctx.run('rts_commit_runtime_state', this.sessionId, argv));
    if (wake === 1) this.ctx.wake(this.sessionId);
    // Without a turn stamp the script answers the new headRevision; the rest of the result is
    // what this client sent (lua/commit-runtime-state.lua, step 8).
    if (typeof result === 'number') {
      return {
        headRevision: result,
        checkpointRef: plan.checkpointRef,
        manifest: JSON.parse(plan.manifestJson) as RuntimeCommitResult['manifest'],
      };
    }
    try {
      return JSON.parse(asText(result)) as RuntimeCommitResult;
    } catch (e) {
      throw new StoreError('Backend', { cause: `unreadable commit result: ${(e as Error).message}` });
    }
  }

  // ---------------------------------------------------------------- reads

  async loadSession(scope: SessionReadScope): Promise<PersistedSessionRead | null> {
    const s = args.readScope(scope);
    const reply = await this.ctx.track(() =>
      this.ctx.runBuffer('rts_load_session', this.sessionId, loadSessionArgv(s)),
    );
    return parseLoadSessionReply(reply, this.sessionId, s);
  }

  async loadNode(nodeId: string): Promise<SessionNodeRecord | null> {
    const id = args.nodeId(nodeId);
    const [raw] = await this.ctx.track(() => this.ctx.run('rts_load_node', this.sessionId, [id]));
    if (raw === null || raw === undefined) return null;
    return JSON.parse(nodeJsonOf(asText(raw))) as SessionNodeRecord;
  }

  // ---------------------------------------------------------------- meta

  async saveSessionMeta(meta: SessionMeta): Promise<void> {
    const m = args.meta(meta);
    if (m.sessionId !== this.sessionId) {
      throw new StoreError('SessionBindingMismatch', {
        boundSessionId: this.sessionId,
        attemptedSessionId: m.sessionId,
      });
    }
    await this.ctx.track(() => this.ctx.run('rts_save_session_meta', this.sessionId, [JSON.stringify(m)]));
  }

  async loadSessionMeta(): Promise<SessionMeta | null> {
    const [raw] = await this.ctx.track(() => this.ctx.run('rts_load_session_meta', this.sessionId, []));
    if (raw === null || raw === undefined) return null;
    return JSON.parse(asText(raw)) as SessionMeta;
  }

  // ---------------------------------------------------------------- attachment manifest (store-wide)

  recordIntent(intent: AttachmentIntent): Promise<void> {
    return attachments.recordIntent(this.ctx, intent);
  }

  commitRefs(sessionId: string, attachmentIds: string[]): Promise<void> {
    return attachments.commitRefs(this.ctx, sessionId, attachmentIds);
  }

  listUncommitted(olderThanEpochMs: number): Promise<AttachmentManifestEntry[]> {
    return attachments.listUncommitted(this.ctx, olderThanEpochMs);
  }

  forgetAgedUncommittedIntents(cutoffEpochMs: number): Promise<number> {
    return attachments.forgetAgedUncommittedIntents(this.ctx, cutoffEpochMs);
  }

  hasLiveRefForId(attachmentId: string, cutoffEpochMs: number): Promise<boolean> {
    return attachments.hasLiveRefForId(this.ctx, attachmentId, cutoffEpochMs);
  }

  forget(sessionId: string, attachmentId: string): Promise<void> {
    return attachments.forget(this.ctx, sessionId, attachmentId);
  }

  holdsRef(sessionId: string, attachmentId: string): Promise<boolean> {
    return attachments.holdsRef(this.ctx, sessionId, attachmentId);
  }

  listAllRefs(): Promise<string[]> {
    return attachments.listAllRefs(this.ctx);
  }
}
