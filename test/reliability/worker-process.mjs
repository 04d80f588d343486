/**
 * A dispatch worker in its own process, for the reliability tests: its own Redis connections, a
 * store made by createRedisRuntimeStore and createIdleDispatchWorker from the compiled library
 * (RTS_BUILD names the directory holding index.js; see build.ts).
 *
 * Environment: RTS_BUILD, RTS_REDIS_URL, RTS_PREFIX, RTS_WORKER (name), RTS_MODE ('toy' or
 * 'hang-after-active'), RTS_CONCURRENCY, RTS_LEASE_TTL_MS, RTS_MAX_INPUTS, RTS_SWEEP_MS, RTS_WORK_MS.
 *
 * The toy turn appends one `user` node per consumed input (node id unique per turn, field
 * `inputId`, so an input consumed twice would show up twice in the graph) and one `assistant`
 * node, keeps the leaf in `config` (a cheap head read), and returns a stamped commit with a CAS on
 * the head revision. The worker adds the fence, the release and the claim completions.
 *
 * An input whose payload has `poison: true` makes runTurn throw (RTS_MAX_ATTEMPTS: the helper's
 * maxAttempts, default 3); each such run is reported as `poison-run`, each input that ends
 * failed as `input-failed`.
 *
 * 'hang-after-active' (worker-crash test): at the first turn it reports the turn id to the parent,
 * waits for `{ type: 'go' }` (the parent enqueues active input for that turn meanwhile), claims at
 * an after_work checkpoint, reports `active-claimed`, and then hangs until it is SIGKILLed.
 *
 * Messages to the parent (IPC): ready, turn-start, active-claimed, committed, failed, poison-run,
 * input-failed, closed.
 */
import { Redis } from 'ioredis';

const env = process.env;
const build = env.RTS_BUILD;
const { createRedisRuntimeStore, turnCommitHash } = await import(`${build}/index.js`);
const { createIdleDispatchWorker } = await import(`${build}/dispatch/index.js`);

const name = env.RTS_WORKER ?? `w-${process.pid}`;
const mode = env.RTS_MODE ?? 'toy';
const workMs = Number(env.RTS_WORK_MS ?? 2);
const send = (msg) => {
  if (process.connected) process.send(msg);
};

const store = await createRedisRuntimeStore({ redis: env.RTS_REDIS_URL, keyPrefix: env.RTS_PREFIX });
const connection = new Redis(env.RTS_REDIS_URL, { maxRetriesPerRequest: null });
const owner = { ownerId: name, incarnationId: `${name}:${process.pid}`, liveness: { kind: 'opaque' } };

let hungOnce = false;
let goResolve;
const go = new Promise((r) => {
  goResolve = r;
});

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

async function runTurn(ctx) {
  const { sessionId, claim, fence, signal } = ctx;
  const turnId = `turn-g${fence.fencingToken}-${claim.claimId}`;
  // Only the head fields matter: an active path to a leaf that does not exist reads no nodes.
  const head = await store.session(sessionId).loadSession({ kind: 'active_path', leafNodeId: '(none)' });
  const config = head?.config ?? {};
  let leaf = config.leaf;
  const nodes = [];
  const addUser = (input, how) => {
    const node = {
      nodeId: `u-${turnId}-${input.inputId}`,
      timestamp: new Date().toISOString(),
      role: 'user',
      inputId: input.inputId,
      input: input.input,
      worker: name,
      how,
    };
    if (leaf) node.parentNodeId = leaf;
    nodes.push(node);
    leaf = node.nodeId;
  };
  for (const input of claim.inputs) addUser(input, 'next_turn');
  const poison = claim.inputs.filter((i) => i.input?.poison === true).map((i) => i.inputId);
  if (poison.length > 0) {
    send({ type: 'poison-run', sessionId, inputIds: poison, batch: claim.inputs.length });
    throw new Error(`poison input ${poison.join(', ')}`);
  }

  if (mode === 'hang-after-active' && !hungOnce) {
    hungOnce = true;
    send({
      type: 'turn-start',
      sessionId,
      turnId,
      generation: fence.fencingToken,
      inputIds: claim.inputs.map((i) => i.inputId),
    });
    await go;
    const active = await ctx.claimActiveTurnInputs(turnId, 'after_work');
    send({ type: 'active-claimed', sessionId, turnId, inputIds: active ? active.inputs.map((i) => i.inputId) : [] });
    // Mid-turn, holding a next-turn claim and an accepted active claim: wait for SIGKILL.
    await new Promise(() => {});
  }

  await sleep(workMs, signal);
  const active = await ctx.claimActiveTurnInputs(turnId, 'before_completion');
  if (active) for (const input of active.inputs) addUser(input, 'active_turn');
  const reply = {
    nodeId: `a-${turnId}`,
    timestamp: new Date().toISOString(),
    role: 'assistant',
    text: `read ${nodes.length}`,
    worker: name,
  };
  if (leaf) reply.parentNodeId = leaf;
  nodes.push(reply);
  const commit = {
    sessionId,
    expectedHeadRevision: head?.headRevision ?? 0,
    config: { leaf: reply.nodeId, turns: (config.turns ?? 0) + 1 },
    agentFrames: [],
    currentAgentFrameId: 'main',
    graph: { kind: 'append', nodes, leafNodeId: reply.nodeId },
    checkpoint: { turnState: { turnId } },
    usageDeltas: [],
    completedTurnInputClaims: [],
    interruptedTurnInputTurnId: turnId,
    committedAttachmentIds: [],
  };
  commit.turnCommit = { sessionId, turnId, turnCommitHash: turnCommitHash(commit) };
  return commit;
}

const worker = createIdleDispatchWorker({
  store,
  connection,
  owner,
  leaseTtlMs: Number(env.RTS_LEASE_TTL_MS ?? 3000),
  maxInputs: Number(env.RTS_MAX_INPUTS ?? 16),
  concurrency: Number(env.RTS_CONCURRENCY ?? 2),
  sweepIntervalMs: Number(env.RTS_SWEEP_MS ?? 1000),
  maxAttempts: Number(env.RTS_MAX_ATTEMPTS ?? 3),
  runTurn,
  onEvent: (e) => {
    if (e.type === 'committed') {
      send({ type: 'committed', sessionId: e.sessionId, generation: e.generation, inputIds: e.inputIds, worker: name });
    } else if (e.type === 'input_failed') {
      send({ type: 'input-failed', sessionId: e.sessionId, inputId: e.inputId, attempts: e.attempts });
    } else if (e.type === 'failed') {
      send({ type: 'failed', sessionId: e.sessionId, error: String(e.error?.code ?? e.error?.message ?? e.error) });
    }
  },
});

process.on('message', async (msg) => {
  if (msg?.type === 'go') goResolve();
  if (msg?.type === 'close') {
    await worker.close();
    await store.close();
    await connection.quit().catch(() => connection.disconnect());
    send({ type: 'closed' });
    process.disconnect?.();
    setTimeout(() => process.exit(0), 50).unref();
  }
});
process.on('disconnect', () => {
  // The parent went away: do not linger.
  setTimeout(() => process.exit(0), 2000).unref();
});

await worker.waitUntilReady();
send({ type: 'ready', worker: name, pid: process.pid });
