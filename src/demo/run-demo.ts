/**
 * The demo (`npm start`): real idle-dispatch workers against a real Redis.
 *
 * Several chat sessions receive messages at random moments. Each message is enqueued as
 * next-turn input; the store sends a wake-up; a dispatch worker (createIdleDispatchWorker)
 * acquires the session's lease, claims the input, runs a toy agent turn that appends graph nodes,
 * and commits with the claim's completion and the lease release, all in one atomic step. Along
 * the way it shows:
 *   * a mid-turn active input admitted at an `after_work` checkpoint (claimActiveTurnInputs);
 *   * a cancellation of input no turn has taken yet;
 *   * a worker that crashes mid-turn holding a next-turn claim and an accepted active claim, with
 *     neither abandon nor release: its lease expires, the sweeper re-signals the session, and a
 *     fresh lease generation requeues the accepted input (T9) and processes everything.
 * Then it reads every session graph back and checks that each input was consumed exactly once.
 */

import { Redis } from 'ioredis';
import { untilSignal } from '../cli/entry-point.js';
import type { LeaseOwnerIdentity, PendingTurnInputDraft, RuntimeStore, TurnInputIngress } from '../contract/types.js';
import { leaseFence } from '../core/projections.js';
import { createIdleDispatchWorker, type IdleDispatchEvent, type IdleDispatchWorker } from '../dispatch/index.js';
import { inspectSession } from '../inspect/inspect-session.js';
import { dropPrefix } from '../redis/drop-prefix.js';
import { createRedisRuntimeStore } from '../redis/redis-store.js';
import { formatMs, percentile } from './stats.js';
import { createToyAgent } from './toy-agent.js';

export interface DemoOptions {
  redisUrl: string;
  /** Key prefix of this run; default `demo-<timestamp>`. */
  keyPrefix?: string;
  /** Chatting sessions (the crashed session comes on top); default 5. */
  sessions?: number;
  /** Messages each chatting session receives; default 4. */
  messagesPerSession?: number;
  /** Dispatch workers; default 3. */
  workers?: number;
  /** Keep the workers running after the summary (trickling in a message every 2 s) until stopped. */
  keepRunning?: boolean;
  /** Resolves when a --keep-running demo should stop; default SIGINT/SIGTERM. */
  untilStopped?: () => Promise<void>;
  /** Delete the run's keys (store and queue) at the end. */
  cleanup?: boolean;
  /** How the Redis was found, for the banner. */
  redisHow?: string;
  /** True when the Redis goes away with the demo (the commands it prints are then useful only while it runs). */
  redisIsTemporary?: boolean;
  /** One line of output. Default: console.log. */
  log?: (line: string) => void;
  /** Give up waiting for the inputs after this long; default 25 s. */
  timeoutMs?: number;
}

export interface DemoSummary {
  keyPrefix: string;
  ok: boolean;
  problems: string[];
  sessions: string[];
  inputsEnqueued: number;
  inputsCancelled: number;
  /** Inputs found in the session graphs, each exactly once. */
  inputsProcessed: number;
  /** Every expected input appears exactly once in its session graph, and nothing else does. */
  exactlyOnce: boolean;
  turnsCommitted: number;
  turnsByWorker: Record<string, number>;
  activeAdmitted: number;
  crashRecovered: boolean;
  latencyMs: { p50: number; p99: number; max: number };
  durationMs: number;
}

const CRASH_SESSION = 'chat-crash';
const WORKER_NAMES = ['worker-a', 'worker-b', 'worker-c', 'worker-d', 'worker-e', 'worker-f'];

const MESSAGES = [
  'hi there',
  'what is a lease generation?',
  'and a fencing token?',
  'thanks!',
  'can you summarise?',
  'one more question',
  'how do wake-ups work?',
  'ok, next topic',
];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function dropKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 2 });
  try {
    await dropPrefix(client, prefix);
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const out = options.log ?? ((line: string) => console.log(line));
  const keyPrefix = options.keyPrefix ?? `demo-${Date.now()}`;
  const sessionCount = options.sessions ?? 5;
  const perSession = options.messagesPerSession ?? 4;
  const workerCount = Math.min(WORKER_NAMES.length, Math.max(1, options.workers ?? 3));
  const timeoutMs = options.timeoutMs ?? 25_000;
  const t0 = Date.now();
  const log = (who: string, what: string) => {
    const t = ((Date.now() - t0) / 1000).toFixed(2).padStart(6);
    out(`[+${t}s] ${who.padEnd(9)} ${what}`);
  };

  const chatSessions = Array.from({ length: sessionCount }, (_, i) => `chat-${i + 1}`);
  const allSessions = [...chatSessions, CRASH_SESSION];
  const activeSession = chatSessions[Math.min(1, chatSessions.length - 1)];

  // Bookkeeping: what was enqueued when, what committed when, by whom.
  const enqueuedAt = new Map<string, { sessionId: string; at: number }>();
  const committedAt = new Map<string, number>();
  const completions = new Map<string, number>();
  const cancelled = new Set<string>();
  const turnsByWorker: Record<string, number> = {};
  const problems: string[] = [];
  let activeAdmitted = 0;
  let crashRecovered = false;
  let doomedActiveInput: string | undefined;
  let doneMidTurn = false;

  out(`redis-turn-store demo: ${sessionCount + 1} sessions, ${workerCount} dispatch workers`);
  out(`  Redis      ${options.redisUrl}${options.redisHow ? ` (${options.redisHow})` : ''}`);
  out(`  keyPrefix  ${keyPrefix}   (dispatch queue ${keyPrefix}-idle-dispatch)`);
  const env = `REDIS_URL=${options.redisUrl}`;
  const when = options.redisIsTemporary && !options.keepRunning ? ' (while it runs: add --keep-running)' : '';
  out(`  dashboard  ${env} npm run dashboard -- --prefix ${keyPrefix}   then open http://127.0.0.1:3000/${when}`);
  out(`  inspect    ${env} node dist/cli/main.js inspect ${activeSession} --prefix ${keyPrefix}${when}`);
  out('');

  const store: RuntimeStore = await createRedisRuntimeStore({ redis: options.redisUrl, keyPrefix });
  const connections: Redis[] = [];
  const workers: IdleDispatchWorker[] = [];

  const enqueue = async (sessionId: string, text: string, ingress: TurnInputIngress = { scope: 'next_turn' }) => {
    const at = Date.now();
    const draft: PendingTurnInputDraft = { sessionId, ingress, input: { text } };
    const row = await store.enqueuePendingTurnInput(draft);
    enqueuedAt.set(row.inputId, { sessionId, at });
    return row;
  };

  const agent = createToyAgent({
    store,
    workUnits: 2,
    workMs: 40,
    onTurnStart: async ({ sessionId, turnId }) => {
      if (sessionId !== activeSession || doneMidTurn) return;
      doneMidTurn = true;
      const a = await enqueue(sessionId, 'and also: make it rhyme', {
        scope: 'active_turn',
        turnId,
        minBoundary: 'after_work',
      });
      log('ingress', `${sessionId} active-turn input ${a.inputId} for the running ${turnId} (${a.state})`);
      const x = await enqueue(sessionId, 'typo, ignore this one');
      const r = await store.cancelPendingTurnInput(sessionId, x.inputId);
      if (r.outcome === 'cancelled') cancelled.add(x.inputId);
      else problems.push(`cancelling ${x.inputId} gave ${r.outcome}`);
      log('ingress', `${sessionId} enqueued ${x.inputId}, then cancelled it before any turn took it: ${r.outcome}`);
    },
    onAdmitted: ({ sessionId, turnId, checkpoint, inputs }) => {
      activeAdmitted += inputs.length;
      log(
        'agent',
        `${sessionId} ${turnId}: ${checkpoint} checkpoint admitted ${inputs.map((i) => i.inputId).join(', ')}`,
      );
    },
  });

  const onEvent = (worker: string) => (e: IdleDispatchEvent) => {
    switch (e.type) {
      case 'claimed': {
        let note = '';
        if (e.sessionId === CRASH_SESSION && doomedActiveInput && e.inputIds.includes(doomedActiveInput)) {
          crashRecovered = true;
          note = ` (T9: ${doomedActiveInput} was accepted by dead generation ${e.generation - 1}; this fresh generation requeued it)`;
        }
        log(
          worker,
          `${e.sessionId} generation ${e.generation}: claimed ${e.inputIds.length} next-turn input(s) ${e.claimId}${note}`,
        );
        break;
      }
      case 'committed': {
        const now = Date.now();
        for (const id of e.inputIds) {
          completions.set(id, (completions.get(id) ?? 0) + 1);
          if (!committedAt.has(id)) committedAt.set(id, now);
        }
        turnsByWorker[worker] = (turnsByWorker[worker] ?? 0) + 1;
        log(
          worker,
          `${e.sessionId} committed revision ${e.result.headRevision}: ${e.inputIds.length} input(s) completed, lease released (${e.durationMs} ms)`,
        );
        break;
      }
      case 'busy':
        log(worker, `${e.sessionId} busy: ${e.holder.owner.ownerId} holds generation ${e.holder.fencingToken}`);
        break;
      case 'idle':
        log(worker, `${e.sessionId} generation ${e.generation}: nothing to claim, released`);
        break;
      case 'failed':
        log(
          worker,
          `${e.sessionId} run failed (claims abandoned, lease released; BullMQ retries): ${String((e.error as Error)?.message ?? e.error)}`,
        );
        break;
      case 'renewal_failed':
        log(worker, `${e.sessionId} lease renewal failed: the turn is aborted and will not commit`);
        break;
      case 'swept':
        if (e.report.woken.length > 0) log(worker, `sweeper re-signalled ${e.report.woken.join(', ')}`);
        break;
      case 'error':
        log(worker, `${e.during} error: ${String((e.error as Error)?.message ?? e.error)}`);
        break;
      default:
        break;
    }
  };

  try {
    for (let i = 0; i < workerCount; i++) {
      const name = WORKER_NAMES[i];
      const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
      connections.push(connection);
      const owner: LeaseOwnerIdentity = { ownerId: name, incarnationId: `${name}:${process.pid}:${t0}` };
      workers.push(
        createIdleDispatchWorker({
          store,
          connection,
          owner,
          leaseTtlMs: 3000,
          concurrency: 2,
          sweepIntervalMs: 500,
          runTurn: agent,
          onEvent: onEvent(name),
        }),
      );
    }
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    log('demo', `${workerCount} dispatch workers ready (lease ttl 3000 ms, sweep every 500 ms)`);

    // ---- the crash: a worker takes chat-crash, claims next and active input, and vanishes.
    const doomed: LeaseOwnerIdentity = { ownerId: 'worker-x', incarnationId: `worker-x:${process.pid}:${t0}` };
    const doomedTtl = 10_000;
    const acquired = await store.tryClaimSessionExecutionLease(CRASH_SESSION, doomed, doomedTtl);
    if (acquired.outcome !== 'acquired') throw new Error(`${CRASH_SESSION}: expected a fresh session`);
    const fence = leaseFence(acquired.lease);
    log('worker-x', `${CRASH_SESSION} generation ${fence.fencingToken}: acquired by hand (lease ttl ${doomedTtl} ms)`);
    const c1 = await enqueue(CRASH_SESSION, 'hello? anyone?');
    log('ingress', `${CRASH_SESSION} next-turn input ${c1.inputId}`);
    const k1 = await store.claimNextTurnInputs({
      sessionId: CRASH_SESSION,
      fence,
      owner: doomed,
      leaseTtlMs: doomedTtl,
      maxInputs: 64,
    });
    const doomedTurn = 'turn-doomed';
    const c2 = await enqueue(CRASH_SESSION, 'still there?', { scope: 'active_turn', turnId: doomedTurn });
    log('ingress', `${CRASH_SESSION} active-turn input ${c2.inputId} for ${doomedTurn}`);
    const k2 = await store.claimActiveTurnInputs({
      sessionId: CRASH_SESSION,
      fence,
      owner: doomed,
      turnId: doomedTurn,
      checkpoint: 'after_work',
      leaseTtlMs: doomedTtl,
      maxInputs: 64,
    });
    if (!k1 || !k2) throw new Error(`${CRASH_SESSION}: the doomed worker could not claim its input`);
    doomedActiveInput = c2.inputId;
    // Its last renewal happens to be short, so the demo does not wait 10 s for the expiry.
    const lastRenewalTtl = 600;
    await store.renewSessionExecutionLease(fence, lastRenewalTtl);
    log(
      'worker-x',
      `${CRASH_SESSION} holds ${k1.claimId} (next) and ${k2.claimId} (active, accepted), lease renewed for ${lastRenewalTtl} ms ... CRASH: gone without abandon or release`,
    );

    // ---- the chat: messages at random moments.
    await Promise.all(
      chatSessions.map(async (sessionId, s) => {
        for (let m = 0; m < perSession; m++) {
          await sleep(30 + Math.floor(Math.random() * 250));
          const row = await enqueue(sessionId, MESSAGES[(s + m) % MESSAGES.length]);
          log('ingress', `${sessionId} next-turn input ${row.inputId} (seq ${row.enqueueSeq})`);
        }
      }),
    );

    // ---- wait until everything not cancelled was committed.
    const deadline = Date.now() + timeoutMs;
    const outstanding = () => [...enqueuedAt.keys()].filter((id) => !cancelled.has(id) && !committedAt.has(id));
    while (outstanding().length > 0 && Date.now() < deadline) await sleep(50);
    const left = outstanding();
    if (left.length > 0)
      problems.push(`timed out after ${timeoutMs} ms with ${left.length} input(s) unprocessed: ${left.join(', ')}`);
    log('demo', left.length === 0 ? 'every input committed; reading the session graphs back' : 'giving up waiting');

    // ---- read back: every expected input exactly once in its session's graph, nothing else.
    const seen = new Map<string, number>();
    for (const sessionId of allSessions) {
      const read = await store.session(sessionId).loadSession({ kind: 'full_graph' });
      for (const node of read?.graph.nodes ?? []) {
        if (typeof node.inputId === 'string') seen.set(node.inputId, (seen.get(node.inputId) ?? 0) + 1);
      }
      const pending = await store.listPendingTurnInputs(sessionId);
      if (pending.length > 0) problems.push(`${sessionId} still lists ${pending.length} pending input(s)`);
      const view = await inspectSession(store, sessionId);
      if (view.counts.nonTerminal > 0)
        problems.push(`${sessionId} still has ${view.counts.nonTerminal} non-terminal row(s)`);
    }
    const expected = [...enqueuedAt.keys()].filter((id) => !cancelled.has(id));
    let processed = 0;
    for (const id of expected) {
      const n = seen.get(id) ?? 0;
      if (n === 1) processed += 1;
      else problems.push(`input ${id} appears ${n} times in its session graph`);
      if ((completions.get(id) ?? 0) !== 1)
        problems.push(`input ${id} was completed ${completions.get(id) ?? 0} times`);
    }
    for (const id of cancelled) if (seen.has(id)) problems.push(`cancelled input ${id} reached a turn`);
    for (const id of seen.keys()) if (!enqueuedAt.has(id)) problems.push(`unknown input ${id} in a graph`);
    if (!crashRecovered) problems.push(`${CRASH_SESSION} was not recovered through T9`);
    if (activeAdmitted < 1) problems.push('no active input was admitted at a checkpoint');

    const latencies = expected
      .filter((id) => committedAt.has(id))
      .map((id) => (committedAt.get(id) ?? 0) - (enqueuedAt.get(id)?.at ?? 0));
    const exactlyOnce =
      problems.filter((p) => /appears|completed|cancelled input|unknown input/.test(p)).length === 0 &&
      processed === expected.length;
    const summary: DemoSummary = {
      keyPrefix,
      ok: problems.length === 0,
      problems,
      sessions: allSessions,
      inputsEnqueued: enqueuedAt.size,
      inputsCancelled: cancelled.size,
      inputsProcessed: processed,
      exactlyOnce,
      turnsCommitted: Object.values(turnsByWorker).reduce((a, b) => a + b, 0),
      turnsByWorker,
      activeAdmitted,
      crashRecovered,
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(0, ...latencies) },
      durationMs: Date.now() - t0,
    };
    printSummary(out, summary);

    if (options.keepRunning) {
      out('');
      out('Keeping the workers running (a message every 2 s); Ctrl-C to stop.');
      const stop = (options.untilStopped ?? untilSignal)();
      let stopped = false;
      void stop.then(() => {
        stopped = true;
      });
      let n = 0;
      while (!stopped) {
        await Promise.race([sleep(2000), stop]);
        if (stopped) break;
        const sessionId = chatSessions[n++ % chatSessions.length];
        const row = await enqueue(sessionId, `keep-running message ${n}`);
        log('ingress', `${sessionId} next-turn input ${row.inputId}`);
      }
    }
    return summary;
  } finally {
    await Promise.allSettled(workers.map((w) => w.close()));
    await store.close().catch(() => undefined);
    await Promise.allSettled(connections.map((c) => c.quit()));
    if (options.cleanup) await dropKeys(options.redisUrl, keyPrefix).catch(() => undefined);
  }
}

function printSummary(out: (line: string) => void, s: DemoSummary): void {
  const workers = Object.entries(s.turnsByWorker)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([w, n]) => `${w} ${n}`)
    .join(', ');
  out('');
  out(`Summary (keyPrefix ${s.keyPrefix}, ${formatMs(s.durationMs)})`);
  out(
    `  sessions          ${s.sessions.length} (${s.sessions.length - 1} chatting, ${CRASH_SESSION} crashed mid-turn)`,
  );
  out(`  inputs enqueued   ${s.inputsEnqueued} (${s.inputsCancelled} cancelled before any turn took it)`);
  out(
    `  inputs processed  ${s.inputsProcessed}, ${s.exactlyOnce ? 'each exactly once' : 'NOT exactly once'} (read back from the session graphs; cancelled input absent)`,
  );
  out(`  turns committed   ${s.turnsCommitted} (${workers})`);
  out(`  mid-turn input    ${s.activeAdmitted} admitted at a checkpoint of a running turn`);
  out(
    `  crash recovery    ${s.crashRecovered ? `${CRASH_SESSION}: generation 1 died holding its claims; the sweeper re-signalled it after the lease expired and generation 2 requeued (T9) and processed them` : 'NOT recovered'}`,
  );
  out(
    `  latency           enqueue -> commit p50 ${formatMs(s.latencyMs.p50)}, p99 ${formatMs(s.latencyMs.p99)}, max ${formatMs(s.latencyMs.max)} (the crashed session waits for its lease to expire)`,
  );
  if (s.problems.length > 0) {
    out('  PROBLEMS');
    for (const p of s.problems) out(`    - ${p}`);
  }
  out(`  result            ${s.ok ? 'OK' : 'FAILED'}`);
}
