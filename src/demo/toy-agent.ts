/**
 * A toy agent turn for the demo, shaped like a real runtime's: it reads the session head, appends
 * one `user` node per consumed input and one `assistant` node, works in units with an
 * `after_work` checkpoint after each and a `before_completion` checkpoint at the end (each admits
 * active-turn input addressed to this turn), and returns a stamped commit built by
 * buildTurnCommit. The dispatch worker adds the fence and the release.
 */
import type {
  JsonValue,
  PendingTurnInput,
  RuntimeStore,
  SessionNodeRecord,
  TurnInputClaim,
} from '../contract/types.js';
import { buildTurnCommit } from '../dispatch/turn-commit.js';
import type { RunTurn, RunTurnCommit, RunTurnContext } from '../dispatch/worker.js';

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
  return async (ctx: RunTurnContext): Promise<RunTurnCommit> => {
    const { sessionId, claim, signal } = ctx;
    const turnId = `turn-g${ctx.fence.fencingToken}-${claim.claimId}`;
    const head = await options.store.session(sessionId).loadSession({ kind: 'active_path' });
    const turns = (head?.config as { turns?: number } | undefined)?.turns ?? 0;
    const nodes: SessionNodeRecord[] = [];
    const now = () => new Date().toISOString();
    // buildTurnCommit links each node to the one before it (the first to the head's leaf).
    const addUser = (input: PendingTurnInput, admittedAt: string) => {
      nodes.push({
        nodeId: `u-${input.inputId}`,
        timestamp: now(),
        role: 'user',
        inputId: input.inputId,
        text: textOf(input.input),
        turnId,
        admittedAt,
      });
    };
    for (const input of claim.inputs) addUser(input, 'turn_start');

    await options.onTurnStart?.({ sessionId, turnId, claim, generation: ctx.fence.fencingToken });

    const checkpoint = async (kind: 'after_work' | 'before_completion') => {
      const active = await ctx.claimActiveTurnInputs(turnId, kind);
      if (!active) return;
      for (const input of active.inputs) addUser(input, kind);
      options.onAdmitted?.({ sessionId, turnId, checkpoint: kind, inputs: active.inputs });
    };
    for (let unit = 0; unit < workUnits; unit++) {
      await sleep(workMs, signal);
      await checkpoint('after_work');
    }
    await checkpoint('before_completion');

    const answered = nodes.length;
    nodes.push({
      nodeId: `a-${turnId}`,
      timestamp: now(),
      role: 'assistant',
      text: `(toy) read ${answered} message${answered === 1 ? '' : 's'}`,
      turnId,
    });

    // Completes every claim of the run (ctx.claims); the turnId stamps the commit, and active
    // input of this turn that missed every checkpoint moves to the next turn (T10).
    return buildTurnCommit(ctx, {
      head,
      nodes,
      config: { agent: 'toy', turns: turns + 1 },
      agentFrames: [{ frameId: 'main' }],
      checkpoint: { turnState: { lastTurnId: turnId } },
      turnId,
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
    });
  };
}
