/**
 * A toy agent turn for the demo, shaped like a real runtime's: it reads the session head, appends
 * one `user` node per consumed input and one `assistant` node, works in units with an
 * `after_work` checkpoint after each and a `before_completion` checkpoint at the end (each admits
 * active-turn input addressed to this turn), and returns a stamped commit. The dispatch worker
 * adds the fence and the release.
 */
import type {
  JsonValue,
  PendingTurnInput,
  RuntimeCommit,
  RuntimeStore,
  SessionNodeRecord,
  TurnInputClaim,
} from '../contract/types.js';
import { claimCompletion } from '../core/projections.js';
import { turnCommitHash } from '../core/turn-commit-hash.js';
import type { RunTurn, RunTurnContext } from '../dispatch/worker.js';

export interface ToyAgentOptions {
  store: RuntimeStore;
  /** Work units per turn; an after_work checkpoint follows each. */
  workUnits?: number;
  /** Milliseconds per work unit. */
  workMs?: number;
  /** Called once the turn has its id, before any work (the demo injects mid-turn input here). */
  onTurnStart?: (info: {
    sessionId: string;
    turnId: string;
    claim: TurnInputClaim;
    generation: number;
  }) => Promise<void>;
  /** Called when a checkpoint admitted active input. */
  onAdmitted?: (info: { sessionId: string; turnId: string; checkpoint: string; inputs: PendingTurnInput[] }) => void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function textOf(input: JsonValue): string {
  if (input && typeof input === 'object' && !Array.isArray(input) && typeof input.text === 'string') return input.text;
  return JSON.stringify(input);
}

export function createToyAgent(options: ToyAgentOptions): RunTurn {
  const workUnits = options.workUnits ?? 2;
  const workMs = options.workMs ?? 40;
  return async (ctx: RunTurnContext): Promise<RuntimeCommit> => {
    const { sessionId, claim, signal } = ctx;
    const turnId = `turn-g${ctx.fence.fencingToken}-${claim.claimId}`;
    const head = await options.store.session(sessionId).loadSession({ kind: 'active_path' });
    let leaf = head?.graph.leafNodeId;
    const turns = (head?.config as { turns?: number } | undefined)?.turns ?? 0;
    const nodes: SessionNodeRecord[] = [];
    const now = () => new Date().toISOString();
    const addUser = (input: PendingTurnInput, admittedAt: string) => {
      const node: SessionNodeRecord = {
        nodeId: `u-${input.inputId}`,
        timestamp: now(),
        role: 'user',
        inputId: input.inputId,
        text: textOf(input.input),
        turnId,
        admittedAt,
      };
      if (leaf) node.parentNodeId = leaf;
      nodes.push(node);
      leaf = node.nodeId;
    };
    for (const input of claim.inputs) addUser(input, 'turn_start');
    const claims: TurnInputClaim[] = [claim];

    await options.onTurnStart?.({ sessionId, turnId, claim, generation: ctx.fence.fencingToken });

    const checkpoint = async (kind: 'after_work' | 'before_completion') => {
      const active = await ctx.claimActiveTurnInputs(turnId, kind);
      if (!active) return;
      claims.push(active);
      for (const input of active.inputs) addUser(input, kind);
      options.onAdmitted?.({ sessionId, turnId, checkpoint: kind, inputs: active.inputs });
    };
    for (let unit = 0; unit < workUnits; unit++) {
      await sleep(workMs, signal);
      await checkpoint('after_work');
    }
    await checkpoint('before_completion');

    const answered = nodes.length;
    const reply: SessionNodeRecord = {
      nodeId: `a-${turnId}`,
      timestamp: now(),
      role: 'assistant',
      text: `(toy) read ${answered} message${answered === 1 ? '' : 's'}`,
      turnId,
    };
    if (leaf) reply.parentNodeId = leaf;
    nodes.push(reply);

    const commit: RuntimeCommit = {
      sessionId,
      expectedHeadRevision: head?.headRevision ?? 0,
      config: { agent: 'toy', turns: turns + 1 },
      agentFrames: [{ frameId: 'main' }],
      currentAgentFrameId: 'main',
      graph: { kind: 'append', nodes, leafNodeId: reply.nodeId },
      checkpoint: { turnState: { lastTurnId: turnId } },
      usageDeltas: [
        {
          source: 'turn',
          model: 'toy-1',
          usage: {
            inputTokens: 10 * answered,
            outputTokens: 5,
            cacheReadInputTokens: 0,
            cacheWriteInputTokens: 0,
            reasoningOutputTokens: 0,
          },
        },
      ],
      completedTurnInputClaims: claims.map(claimCompletion),
      // Active input of this turn that missed every checkpoint moves to the next turn (T10).
      interruptedTurnInputTurnId: turnId,
      committedAttachmentIds: [],
    };
    commit.turnCommit = { sessionId, turnId, turnCommitHash: turnCommitHash(commit) };
    return commit;
  };
}
