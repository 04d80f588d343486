/**
 * Model-based differential testing (issue 7): random sequences of every store operation over three
 * sessions (one hostile: `a}:x`), run against the Redis store and the in-memory reference store,
 * whose normalised results must be identical step by step.
 *
 * An operation is plain data (an `Op`), so fast-check can generate and shrink sequences of them and
 * a failure prints readably (`renderOp`). Everything an op refers to that a store generated (input
 * ids, leases, claims) is referenced abstractly (the i-th id this run generated, the current lease
 * of a session, the i-th claim seen, ...) and resolved per backend, so the same op means the same
 * thing on both stores.
 *
 * Long histories (issue 16): one run in ten (by default) is instead a long sequence focused on one
 * session, with bursts of fresh inputs (`enqueueMany`), batch claims of up to the whole backlog,
 * completions of the latest claims, cancels and suffix cancels anchored anywhere in the history
 * (`gen#-3`: the third id from the latest), and vacuums of the tombstones that pile up; in most such
 * runs the session receives more than LONG_SESSION_INPUTS inputs (the runner's Stats count them).
 *
 * Normalisation (per run and per backend): generated input ids (`ti_…`) and lease/claim tokens are
 * replaced by placeholders in order of first appearance (objects are walked in sorted key order, so
 * key order never matters); store-clock times become `T`, and a deadline becomes its distance from
 * `claimedAtEpochMs` in whole minutes (`T+60m`), the only time relationship both stores reproduce
 * exactly. Ops use only lease/claim TTLs of 0 (already over) and one or two hours (never over within
 * a run), and vacuum ages of 0 or one hour, so no result depends on how the two clocks relate.
 * Errors compare by code and normalised details (InvalidInput issues included).
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { readProcessStart } from '../../src/core/liveness.js';
import {
  canonical,
  claimCompletion,
  type GraphCommitDelta,
  type HydratedSessionCheckpoint,
  isStoreError,
  type JsonValue,
  type LeaseOwnerIdentity,
  leaseFence,
  type PendingTurnInputCancelTarget,
  type PendingTurnInputDraft,
  type RuntimeCommit,
  type RuntimeStore,
  type SessionExecutionLease,
  type SessionExecutionLeaseFence,
  type SessionMeta,
  type SessionNodeRecord,
  type SessionReadScope,
  sha256hex,
  type TokenLedgerEntry,
  type TurnInputClaim,
  type TurnInputCompletion,
  turnCommitHash,
} from '../../src/index.js';

// ---------------------------------------------------------------- pools

export const SESSIONS = ['s1', 'a}:x', 'a'] as const;
export const EXPLICIT_IDS = ['i1', 'i2', 'i}:x'] as const;
export const SOURCE_KEYS = ['k1', 'k2', 'k}:x', 'k-missing'] as const;
export const TURNS = ['t1', 't2'] as const;
export const NODE_IDS = ['n1', 'n2', 'n:3', 'n}4'] as const;
export const ATTACHMENTS = ['att1', 'att}:2'] as const;
/** Drafts' payloads: #1 and #2 are the same value with another key order (canonically equal). */
export const INPUTS: JsonValue[] = [
  { text: 'a' },
  { text: 'b', n: 1 },
  { n: 1, text: 'b' },
  [],
  {},
  { text: 'a', deep: [1.5, null, {}, [], -0.1, 1e21, 'ü\n}'] },
  // Numbers at the edges of exact round-trips, control and separator characters, odd keys.
  {
    n: [-0, 2 ** 53 - 1, -(2 ** 53 - 1), 5e-324, 1.7976931348623157e308, 0.1, 1e-7, 123456789.12345679],
    s: '\u0000\u2028😀\\"',
    '': '',
    '10': 1,
    '9': [true, false],
  },
];
export const LONG_TTL = 3_600_000;
export const WHEN_BUSY = ['enqueue', 'reject', 'interrupt', 'rollback'] as const;
export const INTERRUPT_POLICIES = ['interrupt', 'rollback'] as const;
export const TTLS = [0, LONG_TTL, 2 * LONG_TTL] as const;
/** Claim TTLs: a claim's TTL is a stall deadline only (SPEC 3.4), so 1 ms is as safe as an hour. */
export const CLAIM_TTLS = [0, 1, LONG_TTL] as const;

const HOST = 'model-host';
const BOOT = 'model-boot';
const selfStart = readProcessStart(process.pid) ?? '0';

export const OWNERS: LeaseOwnerIdentity[] = [
  { ownerId: 'w1', incarnationId: 'w1:1', liveness: { kind: 'opaque' } },
  { ownerId: 'w2', incarnationId: 'w2:1', liveness: { kind: 'opaque' } },
  // Same ownerId, another incarnation; liveness omitted (normalised to opaque).
  { ownerId: 'w1', incarnationId: 'w1:2' },
  // A local process that is provably dead: no pid can reach pid_max.
  {
    ownerId: 'dead',
    incarnationId: 'dead:1',
    liveness: { kind: 'local_process', hostId: HOST, bootId: BOOT, pid: 4194304, processStart: '1' },
  },
  // w1's own incarnation with another liveness: same incarnation (liveness is ignored), but not an
  // exact match for a reclaim's observed holder.
  {
    ownerId: 'w1',
    incarnationId: 'w1:1',
    liveness: { kind: 'local_process', hostId: HOST, bootId: BOOT, pid: 4194304, processStart: '1' },
  },
  // This very process: alive.
  {
    ownerId: 'alive',
    incarnationId: 'alive:1',
    liveness: { kind: 'local_process', hostId: HOST, bootId: BOOT, pid: process.pid, processStart: selfStart },
  },
  // The reclaiming claimant, on the same host and boot.
  {
    ownerId: 'claimant',
    incarnationId: 'claimant:1',
    liveness: { kind: 'local_process', hostId: HOST, bootId: BOOT, pid: process.pid, processStart: selfStart },
  },
];

const OWNER_NAMES = ['w1', 'w2', 'w1#2', 'dead', 'w1/local', 'alive', 'claimant'];

// ---------------------------------------------------------------- op descriptors

/** gen: the i-th generated id (back: the i-th from the latest), of the op's session or (anySession) of any. */
export type IdRef =
  | { k: 'explicit'; i: number }
  | { k: 'gen'; i: number; anySession?: boolean; back?: boolean }
  | { k: 'ghost' };
export type TargetChoice = { kind: 'input_id'; ref: IdRef } | { kind: 'source_key'; i: number };
export type IngressChoice =
  | { scope: 'next_turn' }
  | { scope: 'active_turn'; turn: number; boundary?: 'after_work' | 'before_completion' };
/** cur: the latest lease seen for a session; seen: the i-th lease seen; forged: the current one, altered. */
export type LeaseRef =
  | { k: 'cur'; s: number; full?: boolean }
  | { k: 'seen'; i: number }
  | { k: 'forged'; s: number; how: 'token' | 'gen' | 'incarnation' | 'session' | 'liveness' };
export type ClaimMut = 'asis' | 'token' | 'dropFirst' | 'extraId' | 'dup' | 'otherSession';
/** The i-th claim seen (back: the i-th from the latest), possibly altered. */
export type ClaimRef = { i: number; mut: ClaimMut; back?: boolean };
export type GraphChoice =
  | { kind: 'unchanged'; leaf?: number }
  | { kind: 'append'; nodes: number[]; leaf?: number; wild?: boolean }
  | { kind: 'replace_full'; nodes: number[]; leaf?: number; wild?: boolean };
export type ScopeChoice = { kind: 'full_graph' } | { kind: 'active_path'; leaf?: number };

export interface CommitOp {
  op: 'commit';
  s: number;
  /** The commit names another session than the facet (SessionBindingMismatch). */
  otherBinding?: boolean;
  fence?: LeaseRef;
  release?: LeaseRef;
  expected?: number | 'actual';
  graph: GraphChoice;
  checkpoint: number;
  usage: number;
  config: number;
  completions: ClaimRef[];
  interrupted?: number;
  stamp?: { turn: number; hash: 'computed' | 'H1' | 'H2'; otherSession?: boolean };
  attachments: number;
  queued?: boolean;
}

export type Op =
  | {
      op: 'enqueue';
      s: number;
      id?: number;
      src?: number;
      ingress: IngressChoice;
      input: number;
    }
  /** n enqueues of fresh inputs (no inputId, no sourceKey), the k-th with ingress[k % ingress.length]. */
  | { op: 'enqueueMany'; s: number; n: number; ingress: IngressChoice[]; input: number }
  | { op: 'list'; s: number }
  | { op: 'cancel'; s: number; targets: TargetChoice[] }
  | { op: 'cancelOne'; s: number; ref: IdRef }
  | { op: 'suffix'; s: number; anchor: TargetChoice }
  | { op: 'tryClaim'; s: number; owner: number; ttl: number }
  | { op: 'reclaim'; s: number; owner: number; observed: LeaseRef; ttl: number }
  | { op: 'renew'; lease: LeaseRef; ttl: number }
  | { op: 'release'; lease: LeaseRef }
  /** Issue 18: a next-turn enqueue with whenBusy (WHEN_BUSY[whenBusy]). */
  | { op: 'enqueueBusy'; s: number; whenBusy: number; src?: number; input: number }
  /** Issue 18: requestTurnInterrupt (reason 'stop' when set; policy INTERRUPT_POLICIES[policy]). */
  | { op: 'interrupt'; s: number; reason?: number; policy?: number }
  /** Issue 18: pauseSessionDispatch / resumeSessionDispatch. */
  | { op: 'pause'; s: number }
  | { op: 'resume'; s: number }
  | {
      op: 'claimActive';
      s: number;
      fence: LeaseRef;
      owner?: number;
      turn: number;
      checkpoint: 'after_work' | 'before_completion';
      max: number;
      ttl: number;
    }
  | { op: 'claimNext'; s: number; fence: LeaseRef; owner?: number; max: number; ttl: number }
  /** `failure`: abandon with a failure report (SPEC 3.8): FAILURE_ERRORS[error], maxAttempts `max`. */
  | { op: 'abandon'; claims: ClaimRef[]; plural: boolean; failure?: { error: number; max: number } }
  | { op: 'listFailed'; s: number }
  /** `listed`: also retry the ids listFailedTurnInputs returns first (the backends agree on them). */
  | { op: 'retryFailed'; s: number; refs: IdRef[]; listed: boolean }
  | CommitOp
  | { op: 'load'; s: number; scope: ScopeChoice }
  | { op: 'loadNode'; s: number; node: number }
  | { op: 'vacuum'; olderThan?: number }
  | { op: 'saveMeta'; s: number; meta: number }
  | { op: 'loadMeta'; s: number }
  | { op: 'recordIntent'; s: number; att: number; uri: number; at: number }
  | { op: 'commitRefs'; s: number; atts: number[] }
  | { op: 'listUncommitted'; olderThan: number }
  | { op: 'forgetAged'; cutoff: number }
  | { op: 'hasLiveRef'; att: number; cutoff: number }
  | { op: 'forget'; s: number; att: number }
  | { op: 'holdsRef'; s: number; att: number }
  | { op: 'listAllRefs' };

export interface Sequence {
  strandedTurnInputs: 'requeue' | 'keep';
  /**
   * The stores' activeInputGraceMs (issue 17): 0 (active input enqueued with no lease live is past
   * its grace at once: the next acquisition moves it) or LONG_TTL (always within it: the next
   * acquisition adopts it). Absent: LONG_TTL. Either way no result depends on the two clocks.
   */
  activeInputGraceMs?: 0 | typeof LONG_TTL;
  /** A long-history sequence (issue 16): one session receives many inputs, see longSequenceArb. */
  long?: true;
  ops: Op[];
}

// ---------------------------------------------------------------- payload pools

const INTENT_TIMES = [100, 200, 300] as const;
export const FAILURE_ERRORS = ['boom', '', `long ${'é'.repeat(1200)}`] as const;
const URIS = ['file:///a', 'blob://b}:c'] as const;
const ATT_SETS: string[][] = [[], ['att1'], ['att1', 'att}:2', 'att-missing']];

const TOOL_STATE: JsonValue = { gen: 1, list: [] };
const BYTES = [1, 2, 3, 0, 255];
const TOOL_REF = sha256hex(canonical(TOOL_STATE));
const BYTES_REF = sha256hex(Uint8Array.from(BYTES));

function checkpointFor(i: number): HydratedSessionCheckpoint {
  switch (i) {
    case 0:
      return { turnState: { step: 1 } };
    case 1:
      return { turnState: null, toolState: TOOL_STATE };
    case 2:
      // A ref without its snapshot: valid only while the head still references that blob.
      return { turnState: [], toolStateRef: TOOL_REF };
    case 3:
      return {
        turnState: 'x',
        pluginSnapshot: { p: [], q: {} },
        pluginSnapshotRevision: 3,
        executionState: Uint8Array.from(BYTES),
        toolStateRef: 'ignored-ref',
        toolState: { gen: 2 },
      };
    case 4:
      return { turnState: 1, executionStateRef: BYTES_REF, pluginSnapshotRevision: 0 };
    default:
      return { turnState: {}, toolStateRef: 'bogus' };
  }
}

const USAGES: TokenLedgerEntry[][] = [
  [],
  [
    {
      source: 'turn',
      model: 'm1',
      usage: {
        inputTokens: 11,
        outputTokens: 7,
        cacheReadInputTokens: 3,
        cacheWriteInputTokens: 0,
        reasoningOutputTokens: 5,
      },
    },
  ],
  [
    {
      source: 'turn',
      model: 'm1',
      usage: {
        inputTokens: 0,
        outputTokens: 0,
        cacheReadInputTokens: 0,
        cacheWriteInputTokens: 0,
        reasoningOutputTokens: 9,
      },
    },
    {
      source: 'tool',
      model: 'm}:2',
      usage: {
        inputTokens: 2,
        outputTokens: 0,
        cacheReadInputTokens: 0,
        cacheWriteInputTokens: 1,
        reasoningOutputTokens: 0,
      },
    },
  ],
];

function node(i: number, parent?: number): SessionNodeRecord {
  const n: SessionNodeRecord = {
    nodeId: NODE_IDS[i],
    timestamp: '2024-01-01T00:00:00.000Z',
    role: i % 2 === 0 ? 'user' : 'assistant',
    body: { text: `node ${i}`, parts: [], n: i + 0.5 },
  };
  if (parent !== undefined) n.parentNodeId = NODE_IDS[parent];
  return n;
}

function nodesFor(list: number[], wild?: boolean): SessionNodeRecord[] {
  // Each node's parent is the previous one in the list and the first is a root; or (wild) every
  // node's parent is the next id of the pool, which may be missing or close a cycle across commits.
  if (wild) return list.map((ix) => node(ix, (ix + 1) % NODE_IDS.length));
  return list.map((ix, k) => node(ix, k === 0 ? undefined : list[k - 1]));
}

function leafFor(leaf: number | undefined): string | undefined {
  if (leaf === undefined) return undefined;
  return leaf === NODE_IDS.length ? 'ghost' : NODE_IDS[leaf];
}

function graphFor(g: GraphChoice): GraphCommitDelta {
  const leafNodeId = leafFor(g.leaf);
  if (g.kind === 'unchanged')
    return leafNodeId === undefined ? { kind: 'unchanged' } : { kind: 'unchanged', leafNodeId };
  if (g.kind === 'append') {
    const d: GraphCommitDelta = { kind: 'append', nodes: nodesFor(g.nodes, g.wild) };
    if (leafNodeId !== undefined) d.leafNodeId = leafNodeId;
    return d;
  }
  const graph: { nodes: SessionNodeRecord[]; leafNodeId?: string } = { nodes: nodesFor(g.nodes, g.wild) };
  if (leafNodeId !== undefined) graph.leafNodeId = leafNodeId;
  return { kind: 'replace_full', graph };
}

function metaFor(s: number, m: number): SessionMeta {
  const sessionId = SESSIONS[s];
  if (m === 0)
    return { sessionId, sessionName: 'name', createdAt: '2024-01-01', model: 'm', relation: { kind: 'root' } };
  if (m === 1) {
    return {
      sessionId,
      sessionName: 'child }:%',
      createdAt: '2024-01-02',
      model: 'm2',
      cwd: '/tmp/x',
      relation: { kind: 'child', parentSessionId: 'a}:x', causedBy: { tool: 'spawn', args: [] } },
    };
  }
  // Names another session: SessionBindingMismatch.
  return {
    sessionId: SESSIONS[(s + 1) % SESSIONS.length],
    sessionName: 'x',
    createdAt: 'y',
    model: 'z',
    relation: { kind: 'root' },
  };
}

// ---------------------------------------------------------------- arbitraries

/** Sessions are biased towards s1 so that leases, inputs and claims of one session meet often. */
const sIx = fc.oneof(
  { weight: 5, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.constant(1) },
  { weight: 1, arbitrary: fc.constant(2) },
);
const small = (max: number) => fc.nat({ max });
const failureArb = fc.oneof(
  fc.constant(undefined),
  fc.record({ error: small(FAILURE_ERRORS.length - 1), max: fc.constantFrom(1, 1, 1, 2, 3) }),
);
const idRef: fc.Arbitrary<IdRef> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record(
      { k: fc.constant('gen' as const), i: small(7), anySession: fc.constant(true) },
      { requiredKeys: ['k', 'i'] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('explicit' as const), i: small(EXPLICIT_IDS.length - 1) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'ghost' as const }) },
);
const target: fc.Arbitrary<TargetChoice> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('input_id' as const), ref: idRef }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('source_key' as const), i: small(SOURCE_KEYS.length - 1) }) },
);
const ingress: fc.Arbitrary<IngressChoice> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ scope: 'next_turn' as const }) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        scope: fc.constant('active_turn' as const),
        turn: small(TURNS.length - 1),
        boundary: fc.constantFrom('after_work' as const, 'before_completion' as const),
      },
      { requiredKeys: ['scope', 'turn'] },
    ),
  },
);
const leaseRef: fc.Arbitrary<LeaseRef> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('cur' as const), s: sIx, full: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('seen' as const), i: small(9) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('forged' as const),
      s: sIx,
      how: fc.constantFrom(
        'token' as const,
        'gen' as const,
        'incarnation' as const,
        'session' as const,
        'liveness' as const,
      ),
    }),
  },
);
/** A fence that usually names the op's own session's current lease. */
const fenceFor = (s: number): fc.Arbitrary<LeaseRef> =>
  fc.oneof({ weight: 6, arbitrary: fc.constant({ k: 'cur' as const, s }) }, { weight: 2, arbitrary: leaseRef });
const claimMut: fc.Arbitrary<ClaimMut> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('asis' as const) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'token' as const,
      'dropFirst' as const,
      'extraId' as const,
      'dup' as const,
      'otherSession' as const,
    ),
  },
);
const claimRef: fc.Arbitrary<ClaimRef> = fc.record({ i: small(9), mut: claimMut });
const nodeList = fc.uniqueArray(small(NODE_IDS.length - 1), { maxLength: 3 });
const graphChoice: fc.Arbitrary<GraphChoice> = fc.oneof(
  fc.record({ kind: fc.constant('unchanged' as const), leaf: small(NODE_IDS.length) }, { requiredKeys: ['kind'] }),
  fc.record(
    { kind: fc.constant('append' as const), nodes: nodeList, leaf: small(NODE_IDS.length), wild: fc.constant(true) },
    { requiredKeys: ['kind', 'nodes'] },
  ),
  fc.record(
    {
      kind: fc.constant('replace_full' as const),
      nodes: nodeList,
      leaf: small(NODE_IDS.length),
      wild: fc.constant(true),
    },
    { requiredKeys: ['kind', 'nodes'] },
  ),
);

function commitArb(sessions: fc.Arbitrary<number> = sIx, completion = claimRef): fc.Arbitrary<CommitOp> {
  return sessions.chain((s) =>
    fc.record(
      {
        op: fc.constant('commit' as const),
        s: fc.constant(s),
        otherBinding: fc.oneof(
          { weight: 15, arbitrary: fc.constant(false) },
          { weight: 1, arbitrary: fc.constant(true) },
        ),
        fence: fc.option(fenceFor(s), { freq: 8, nil: undefined }),
        release: fc.option(fenceFor(s), { freq: 2, nil: undefined }),
        expected: fc.option(
          fc.oneof({ weight: 3, arbitrary: fc.constant('actual' as const) }, { weight: 1, arbitrary: small(3) }),
          {
            freq: 3,
            nil: undefined,
          },
        ),
        graph: graphChoice,
        // #2 (a ref without its snapshot) is valid only while the head holds that blob; #5 never is.
        checkpoint: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom(0, 1, 3, 4) },
          { weight: 1, arbitrary: fc.constant(2) },
          { weight: 1, arbitrary: fc.constant(5) },
        ),
        usage: small(USAGES.length - 1),
        config: small(2),
        completions: fc.array(completion, { maxLength: 2 }),
        interrupted: small(TURNS.length - 1),
        stamp: fc.record(
          {
            turn: small(TURNS.length - 1),
            hash: fc.constantFrom('computed' as const, 'H1' as const, 'H2' as const),
            otherSession: fc.oneof(
              { weight: 10, arbitrary: fc.constant(false) },
              { weight: 1, arbitrary: fc.constant(true) },
            ),
          },
          { requiredKeys: ['turn', 'hash'] },
        ),
        attachments: small(ATT_SETS.length - 1),
        queued: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      },
      {
        requiredKeys: [
          'op',
          's',
          'fence',
          'release',
          'expected',
          'graph',
          'checkpoint',
          'usage',
          'config',
          'completions',
          'attachments',
        ],
      },
    ),
  );
}

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record(
      {
        op: fc.constant('enqueue' as const),
        s: sIx,
        id: fc.option(small(EXPLICIT_IDS.length - 1), { freq: 3, nil: undefined }),
        src: fc.option(small(SOURCE_KEYS.length - 2), { freq: 2, nil: undefined }),
        ingress,
        input: small(INPUTS.length - 1),
      },
      { requiredKeys: ['op', 's', 'id', 'src', 'ingress', 'input'] },
    ),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('list' as const), s: sIx }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('cancel' as const), s: sIx, targets: fc.array(target, { maxLength: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancelOne' as const), s: sIx, ref: idRef }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('suffix' as const), s: sIx, anchor: target }) },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('tryClaim' as const),
      s: sIx,
      owner: small(OWNERS.length - 1),
      ttl: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 2) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('reclaim' as const),
      s: sIx,
      owner: fc.oneof({ weight: 3, arbitrary: fc.constant(6) }, { weight: 1, arbitrary: small(OWNERS.length - 1) }),
      observed: leaseRef,
      ttl: small(TTLS.length - 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('renew' as const), lease: leaseRef, ttl: small(TTLS.length - 1) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('release' as const), lease: leaseRef }) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        op: fc.constant('enqueueBusy' as const),
        s: sIx,
        whenBusy: small(WHEN_BUSY.length - 1),
        src: fc.option(small(SOURCE_KEYS.length - 2), { freq: 2, nil: undefined }),
        input: small(INPUTS.length - 1),
      },
      { requiredKeys: ['op', 's', 'whenBusy', 'src', 'input'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pause' as const), s: sIx }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('resume' as const), s: sIx }) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        op: fc.constant('interrupt' as const),
        s: sIx,
        reason: fc.option(fc.constant(0), { nil: undefined }),
        policy: fc.option(small(INTERRUPT_POLICIES.length - 1), { nil: undefined }),
      },
      { requiredKeys: ['op', 's', 'reason', 'policy'] },
    ),
  },
  {
    weight: 5,
    arbitrary: sIx.chain((s) =>
      fc.record(
        {
          op: fc.constant('claimActive' as const),
          s: fc.constant(s),
          fence: fenceFor(s),
          owner: small(OWNERS.length - 1),
          turn: small(TURNS.length - 1),
          checkpoint: fc.constantFrom('after_work' as const, 'before_completion' as const),
          max: fc.oneof(
            { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) },
            { weight: 1, arbitrary: fc.constant(0) },
          ),
          ttl: small(CLAIM_TTLS.length - 1),
        },
        { requiredKeys: ['op', 's', 'fence', 'turn', 'checkpoint', 'max', 'ttl'] },
      ),
    ),
  },
  {
    weight: 5,
    arbitrary: sIx.chain((s) =>
      fc.record(
        {
          op: fc.constant('claimNext' as const),
          s: fc.constant(s),
          fence: fenceFor(s),
          owner: small(OWNERS.length - 1),
          max: fc.oneof(
            { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) },
            { weight: 1, arbitrary: fc.constant(0) },
          ),
          ttl: small(CLAIM_TTLS.length - 1),
        },
        { requiredKeys: ['op', 's', 'fence', 'max', 'ttl'] },
      ),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('abandon' as const),
      claims: fc.array(
        fc.record({ i: small(9), mut: fc.constantFrom('asis' as const, 'asis' as const, 'token' as const) }),
        { maxLength: 3 },
      ),
      plural: fc.boolean(),
      failure: failureArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('listFailed' as const), s: sIx }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('retryFailed' as const),
      s: sIx,
      refs: fc.array(idRef, { maxLength: 3 }),
      listed: fc.boolean(),
    }),
  },
  { weight: 7, arbitrary: commitArb() },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('load' as const),
      s: sIx,
      scope: fc.oneof(
        fc.constant({ kind: 'full_graph' as const }),
        fc.record(
          { kind: fc.constant('active_path' as const), leaf: small(NODE_IDS.length) },
          { requiredKeys: ['kind'] },
        ),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('loadNode' as const), s: sIx, node: small(NODE_IDS.length - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { op: fc.constant('vacuum' as const), olderThan: fc.constantFrom(0, LONG_TTL) },
      { requiredKeys: ['op'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('saveMeta' as const), s: sIx, meta: small(2) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('loadMeta' as const), s: sIx }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('recordIntent' as const),
      s: sIx,
      att: small(ATTACHMENTS.length - 1),
      uri: small(1),
      at: small(INTENT_TIMES.length - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('commitRefs' as const),
      s: sIx,
      atts: fc.array(small(ATTACHMENTS.length), { maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('listUncommitted' as const), olderThan: small(INTENT_TIMES.length - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('forgetAged' as const), cutoff: small(INTENT_TIMES.length - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('hasLiveRef' as const),
      att: small(ATTACHMENTS.length - 1),
      cutoff: small(INTENT_TIMES.length - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('forget' as const), s: sIx, att: small(ATTACHMENTS.length - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('holdsRef' as const), s: sIx, att: small(ATTACHMENTS.length - 1) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'listAllRefs' as const }) },
);

/** Warm-up ops (leases and inputs first) so more of the random body meets live leases and rows. */
const warmupArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('tryClaim' as const), s: sIx, owner: small(OWNERS.length - 1), ttl: fc.constant(1) }),
  fc.record(
    {
      op: fc.constant('enqueue' as const),
      s: sIx,
      src: fc.option(small(SOURCE_KEYS.length - 2), { freq: 2, nil: undefined }),
      ingress,
      input: small(INPUTS.length - 1),
    },
    { requiredKeys: ['op', 's', 'src', 'ingress', 'input'] },
  ),
);

/** The short sequences of issue 7: up to maxOps ops over the three sessions. */
export function shortSequenceArb(maxOps: number): fc.Arbitrary<Sequence> {
  return fc
    .record({
      strandedTurnInputs: fc.oneof(
        { weight: 4, arbitrary: fc.constant('requeue' as const) },
        { weight: 1, arbitrary: fc.constant('keep' as const) },
      ),
      activeInputGraceMs: fc.constantFrom(0 as const, LONG_TTL as typeof LONG_TTL),
      warmup: fc.array(warmupArb, { maxLength: Math.min(6, maxOps) }),
      body: fc.array(opArb, { minLength: 1, maxLength: maxOps, size: 'max' }),
    })
    .map(({ strandedTurnInputs, activeInputGraceMs, warmup, body }) => ({
      strandedTurnInputs,
      activeInputGraceMs,
      ops: [...warmup, ...body].slice(0, Math.max(1, maxOps)),
    }));
}

// ---------------------------------------------------------------- long histories (issue 16)

/** More inputs than this in one session make a history long (the stats and tests count them). */
export const LONG_SESSION_INPUTS = 64;

/** Generated ids anywhere in a long history of the op's own session, counted from either end. */
const deepIdRef: fc.Arbitrary<IdRef> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ k: fc.constant('gen' as const), i: small(127), back: fc.boolean() }),
  },
  { weight: 1, arbitrary: idRef },
);
const deepTarget: fc.Arbitrary<TargetChoice> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('input_id' as const), ref: deepIdRef }) },
  { weight: 1, arbitrary: target },
);
/** One of the latest claims: in a long run the first ten are long settled. */
const recentClaimRef: fc.Arbitrary<ClaimRef> = fc.record({ i: small(4), mut: claimMut, back: fc.constant(true) });
/** Batch sizes up to the whole backlog (and the 1000 maximum). */
const batchMax = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) },
  { weight: 4, arbitrary: fc.integer({ min: 4, max: 100 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1000) },
);
const enqueueManyArb = (f: number): fc.Arbitrary<Op> =>
  fc.record({
    op: fc.constant('enqueueMany' as const),
    s: fc.constant(f),
    n: fc.integer({ min: 2, max: 40 }),
    ingress: fc.array(ingress, { minLength: 1, maxLength: 3 }),
    input: small(INPUTS.length - 1),
  });
const focusLeaseArb = (f: number): fc.Arbitrary<Op> =>
  fc.record({
    op: fc.constant('tryClaim' as const),
    s: fc.constant(f),
    owner: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: small(OWNERS.length - 1) }),
    ttl: fc.constant(1),
  });

/**
 * The ops of a long history focused on session f: the whole short-sequence mix, plus bursts of fresh
 * inputs into f, batch claims of up to all of them, completions and abandons of the latest claims,
 * cancels and suffix cancels anchored anywhere in f's history, and vacuums of the piled-up tombstones.
 */
function longOpArb(f: number): fc.Arbitrary<Op> {
  const s = fc.constant(f);
  return fc.oneof(
    { weight: 12, arbitrary: opArb },
    { weight: 4, arbitrary: enqueueManyArb(f) },
    { weight: 2, arbitrary: focusLeaseArb(f) },
    {
      weight: 3,
      arbitrary: fc.record(
        {
          op: fc.constant('claimNext' as const),
          s,
          fence: fenceFor(f),
          owner: small(OWNERS.length - 1),
          max: batchMax,
          ttl: small(CLAIM_TTLS.length - 1),
        },
        { requiredKeys: ['op', 's', 'fence', 'max', 'ttl'] },
      ),
    },
    {
      weight: 3,
      arbitrary: fc.record(
        {
          op: fc.constant('claimActive' as const),
          s,
          fence: fenceFor(f),
          owner: small(OWNERS.length - 1),
          turn: small(TURNS.length - 1),
          checkpoint: fc.constantFrom('after_work' as const, 'before_completion' as const),
          max: batchMax,
          ttl: small(CLAIM_TTLS.length - 1),
        },
        { requiredKeys: ['op', 's', 'fence', 'turn', 'checkpoint', 'max', 'ttl'] },
      ),
    },
    { weight: 3, arbitrary: commitArb(s, recentClaimRef) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('abandon' as const),
        claims: fc.array(recentClaimRef, { minLength: 1, maxLength: 3 }),
        plural: fc.boolean(),
        failure: failureArb,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('abandon' as const),
        claims: fc.array(recentClaimRef, { minLength: 1, maxLength: 1 }),
        plural: fc.boolean(),
        failure: fc.record({ error: small(FAILURE_ERRORS.length - 1), max: fc.constantFrom(1, 1, 1, 2, 3) }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('listFailed' as const), s }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('retryFailed' as const),
        s,
        refs: fc.array(deepIdRef, { maxLength: 3 }),
        listed: fc.boolean(),
      }),
    },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('suffix' as const), s, anchor: deepTarget }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('cancel' as const),
        s,
        targets: fc.array(deepTarget, { minLength: 1, maxLength: 6 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('cancelOne' as const), s, ref: deepIdRef }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('list' as const), s }) },
    {
      weight: 1,
      arbitrary: fc.record(
        { op: fc.constant('vacuum' as const), olderThan: fc.constantFrom(0, 0, LONG_TTL) },
        { requiredKeys: ['op'] },
      ),
    },
  );
}

/**
 * Long histories (issue 16): up to maxOps ops focused on one session (s1 mostly, the hostile `a}:x`
 * too), which in most runs receives well over LONG_SESSION_INPUTS inputs. No minimum length, so a
 * failure still shrinks to a short sequence.
 */
export function longSequenceArb(maxOps: number): fc.Arbitrary<Sequence> {
  const focused = (f: number) =>
    fc
      .record({
        strandedTurnInputs: fc.oneof(
          { weight: 4, arbitrary: fc.constant('requeue' as const) },
          { weight: 1, arbitrary: fc.constant('keep' as const) },
        ),
        activeInputGraceMs: fc.constantFrom(0 as const, LONG_TTL as typeof LONG_TTL),
        warmup: fc.array(fc.oneof(focusLeaseArb(f), enqueueManyArb(f)), { maxLength: 3 }),
        body: fc.array(longOpArb(f), { minLength: 1, maxLength: maxOps, size: 'max' }),
      })
      .map(
        ({ strandedTurnInputs, activeInputGraceMs, warmup, body }): Sequence => ({
          strandedTurnInputs,
          activeInputGraceMs,
          long: true,
          ops: [...warmup, ...body].slice(0, Math.max(1, maxOps)),
        }),
      );
  return fc.oneof({ weight: 3, arbitrary: focused(0) }, { weight: 1, arbitrary: focused(1) });
}

/**
 * One short sequence (as generated before issue 16, so a seed gives the same short sequences as it
 * did then) and, in one run of every `longEvery` (0: never), a long history in its place. Shrinking
 * stays within the kind of sequence that was generated.
 */
class MixedSequenceArbitrary extends fc.Arbitrary<Sequence> {
  constructor(
    private readonly short: fc.Arbitrary<Sequence>,
    private readonly long: fc.Arbitrary<Sequence>,
    private readonly longEvery: number,
  ) {
    super();
  }

  generate(mrng: fc.Random, biasFactor: number | undefined): fc.Value<Sequence> {
    const short = this.short.generate(mrng, biasFactor);
    if (this.longEvery <= 0 || mrng.nextInt(1, this.longEvery) !== 1) return this.wrap(false, short);
    return this.wrap(true, this.long.generate(mrng, biasFactor));
  }

  canShrinkWithoutContext(_value: unknown): _value is Sequence {
    return false;
  }

  shrink(value: Sequence, context: unknown): fc.Stream<fc.Value<Sequence>> {
    if (!context) return fc.Stream.nil();
    const c = context as { long: boolean; inner: unknown };
    return (c.long ? this.long : this.short).shrink(value, c.inner).map((v) => this.wrap(c.long, v));
  }

  private wrap(long: boolean, v: fc.Value<Sequence>): fc.Value<Sequence> {
    return new fc.Value(v.value_, { long, inner: v.context });
  }
}

/** The sequences the differential test runs: short ones, and one long history every `longEvery`. */
export function sequenceArb(maxOps: number, longOps = 150, longEvery = 10): fc.Arbitrary<Sequence> {
  return new MixedSequenceArbitrary(shortSequenceArb(maxOps), longSequenceArb(longOps), longEvery);
}

// ---------------------------------------------------------------- per-backend run state

export interface RunState {
  name: 'redis' | 'memory';
  store: RuntimeStore;
  /** Store-generated input ids in order of first appearance. */
  genIds: string[];
  /** The same, per session. */
  genIdsBySession: Map<string, string[]>;
  leases: SessionExecutionLease[];
  current: Map<string, SessionExecutionLease>;
  claims: TurnInputClaim[];
  heads: Map<string, number>;
  /** Normalisation placeholders. */
  idMap: Map<string, string>;
  tokenMap: Map<string, string>;
}

export function newRunState(name: 'redis' | 'memory', store: RuntimeStore): RunState {
  return {
    name,
    store,
    genIds: [],
    genIdsBySession: new Map(),
    leases: [],
    current: new Map(),
    claims: [],
    heads: new Map(),
    idMap: new Map(),
    tokenMap: new Map(),
  };
}

function resolveId(ref: IdRef, rs: RunState, sessionId: string): string {
  if (ref.k === 'explicit') return EXPLICIT_IDS[ref.i];
  if (ref.k === 'ghost') return 'ghost-id';
  // A generated id of the op's own session, or (anySession) of any session.
  const ids = ref.anySession ? rs.genIds : (rs.genIdsBySession.get(sessionId) ?? []);
  return ids.length === 0 ? 'ti_00000000-0000-4000-8000-000000000000' : pick(ids, ref.i, ref.back);
}

/** list[i] (back: the i-th from the end), i taken modulo the length; list is not empty. */
function pick<T>(list: T[], i: number, back?: boolean): T {
  const k = i % list.length;
  return list[back ? list.length - 1 - k : k];
}

function resolveTarget(t: TargetChoice, rs: RunState, sessionId: string): PendingTurnInputCancelTarget {
  return t.kind === 'input_id'
    ? { kind: 'input_id', value: resolveId(t.ref, rs, sessionId) }
    : { kind: 'source_key', value: SOURCE_KEYS[t.i] };
}

function placeholderFence(sessionId: string): SessionExecutionLeaseFence {
  return { sessionId, owner: OWNERS[0], leaseToken: 'no-lease-seen', fencingToken: 1 };
}

/** The fence (or full lease, which must be accepted where a fence is expected) a LeaseRef names. */
function resolveLease(ref: LeaseRef, rs: RunState): SessionExecutionLeaseFence | SessionExecutionLease {
  if (ref.k === 'cur') {
    const l = rs.current.get(SESSIONS[ref.s]);
    if (!l) return placeholderFence(SESSIONS[ref.s]);
    return ref.full ? structuredClone(l) : leaseFence(l);
  }
  if (ref.k === 'seen') {
    if (rs.leases.length === 0) return placeholderFence(SESSIONS[0]);
    return leaseFence(rs.leases[ref.i % rs.leases.length]);
  }
  const base = rs.current.get(SESSIONS[ref.s]);
  const f = base ? leaseFence(base) : placeholderFence(SESSIONS[ref.s]);
  switch (ref.how) {
    case 'token':
      return { ...f, leaseToken: `${f.leaseToken}x` };
    case 'gen':
      return { ...f, fencingToken: f.fencingToken + 1 };
    case 'incarnation':
      return { ...f, owner: { ...f.owner, incarnationId: `${f.owner.incarnationId}'` } };
    case 'liveness':
      // Liveness is not part of the fence check (same incarnation ignores it), but is part of a reclaim's match.
      return {
        ...f,
        owner: {
          ...f.owner,
          liveness: { kind: 'local_process', hostId: HOST, bootId: BOOT, pid: 4194304, processStart: '1' },
        },
      };
    default:
      return { ...f, sessionId: SESSIONS[(ref.s + 1) % SESSIONS.length] };
  }
}

function resolveCompletion(c: ClaimRef, rs: RunState): TurnInputCompletion | undefined {
  if (rs.claims.length === 0) return undefined;
  const comp = claimCompletion(pick(rs.claims, c.i, c.back));
  switch (c.mut) {
    case 'token':
      return { ...comp, leaseToken: `${comp.leaseToken}x` };
    case 'dropFirst':
      return { ...comp, inputIds: comp.inputIds.slice(1) };
    case 'extraId':
      return { ...comp, inputIds: [...comp.inputIds, 'ghost-id'] };
    case 'dup':
      return { ...comp, inputIds: [...comp.inputIds, comp.inputIds[0]] };
    case 'otherSession': {
      const s = SESSIONS.indexOf(comp.sessionId as (typeof SESSIONS)[number]);
      return { ...comp, sessionId: SESSIONS[(s + 1) % SESSIONS.length] };
    }
    default:
      return comp;
  }
}

function resolveClaim(c: ClaimRef, rs: RunState): TurnInputClaim | undefined {
  if (rs.claims.length === 0) return undefined;
  const claim = structuredClone(pick(rs.claims, c.i, c.back));
  if (c.mut === 'token') claim.leaseToken = `${claim.leaseToken}x`;
  return claim;
}

export function buildCommit(op: CommitOp, rs: RunState): RuntimeCommit {
  const s = SESSIONS[op.s];
  const sessionId = op.otherBinding ? SESSIONS[(op.s + 1) % SESSIONS.length] : s;
  const commit: RuntimeCommit = {
    sessionId,
    config: op.config === 0 ? { mode: 'a' } : op.config === 1 ? { mode: 'b', list: [] } : [],
    agentFrames: op.config === 2 ? [] : [{ frameId: `f${op.config}`, stack: [] }],
    currentAgentFrameId: `f${op.config}`,
    graph: graphFor(op.graph),
    checkpoint: checkpointFor(op.checkpoint),
    usageDeltas: structuredClone(USAGES[op.usage]),
    completedTurnInputClaims: op.completions
      .map((c) => resolveCompletion(c, rs))
      .filter((c): c is TurnInputCompletion => c !== undefined),
    committedAttachmentIds: [...ATT_SETS[op.attachments]],
  };
  if (op.expected !== undefined)
    commit.expectedHeadRevision = op.expected === 'actual' ? (rs.heads.get(s) ?? 0) : op.expected;
  if (op.fence) commit.sessionExecutionLease = resolveLease(op.fence, rs);
  if (op.release) commit.releaseSessionExecutionLease = resolveLease(op.release, rs);
  if (op.interrupted !== undefined) commit.interruptedTurnInputTurnId = TURNS[op.interrupted];
  if (op.queued) commit.completedQueueClaims = [{ sessionId, claimId: 'qc-1', leaseToken: 'qt', batchIds: ['b1'] }];
  if (op.stamp) {
    const stampSession = op.stamp.otherSession ? SESSIONS[(op.s + 1) % SESSIONS.length] : sessionId;
    commit.turnCommit = {
      sessionId: stampSession,
      turnId: TURNS[op.stamp.turn],
      turnCommitHash: op.stamp.hash === 'computed' ? turnCommitHash(commit) : op.stamp.hash,
    };
  }
  return commit;
}

function draftFor(
  op: Pick<Extract<Op, { op: 'enqueue' }>, 's' | 'ingress' | 'input' | 'id' | 'src'>,
): PendingTurnInputDraft {
  const d: PendingTurnInputDraft = {
    sessionId: SESSIONS[op.s],
    ingress:
      op.ingress.scope === 'next_turn'
        ? { scope: 'next_turn' }
        : op.ingress.boundary === undefined
          ? { scope: 'active_turn', turnId: TURNS[op.ingress.turn] }
          : { scope: 'active_turn', turnId: TURNS[op.ingress.turn], minBoundary: op.ingress.boundary },
    input: structuredClone(INPUTS[op.input]),
  };
  if (op.id !== undefined) d.inputId = EXPLICIT_IDS[op.id];
  if (op.src !== undefined) d.sourceKey = SOURCE_KEYS[op.src];
  return d;
}

function scopeFor(sc: ScopeChoice): SessionReadScope {
  if (sc.kind === 'full_graph') return { kind: 'full_graph' };
  const leaf = leafFor(sc.leaf);
  return leaf === undefined ? { kind: 'active_path' } : { kind: 'active_path', leafNodeId: leaf };
}

function noteLease(rs: RunState, lease: SessionExecutionLease): void {
  rs.leases.push(structuredClone(lease));
  rs.current.set(lease.sessionId, structuredClone(lease));
}

function noteIds(rs: RunState, value: unknown): void {
  if (Array.isArray(value)) {
    for (const v of value) noteIds(rs, v);
    return;
  }
  if (value && typeof value === 'object') {
    const id = (value as { inputId?: unknown }).inputId;
    const sessionId = String((value as { sessionId?: unknown }).sessionId);
    if (typeof id === 'string' && id.startsWith('ti_') && !rs.genIds.includes(id)) {
      rs.genIds.push(id);
      const list = rs.genIdsBySession.get(sessionId) ?? [];
      list.push(id);
      rs.genIdsBySession.set(sessionId, list);
    }
  }
}

/** Runs one op on one backend; returns the raw result (or throws what the store threw). */
export async function execute(op: Op, rs: RunState): Promise<unknown> {
  const st = rs.store;
  switch (op.op) {
    case 'enqueue': {
      const row = await st.enqueuePendingTurnInput(draftFor(op));
      noteIds(rs, row);
      return row;
    }
    case 'enqueueMany': {
      const rows: unknown[] = [];
      for (let k = 0; k < op.n; k++) {
        const row = await st.enqueuePendingTurnInput(
          draftFor({ s: op.s, ingress: op.ingress[k % op.ingress.length], input: op.input }),
        );
        noteIds(rs, row);
        rows.push(row);
      }
      return rows;
    }
    case 'list':
      return st.listPendingTurnInputs(SESSIONS[op.s]);
    case 'cancel':
      return st.cancelPendingTurnInputs(
        SESSIONS[op.s],
        op.targets.map((t) => resolveTarget(t, rs, SESSIONS[op.s])),
      );
    case 'cancelOne':
      return st.cancelPendingTurnInput(SESSIONS[op.s], resolveId(op.ref, rs, SESSIONS[op.s]));
    case 'suffix':
      return st.cancelPendingTurnInputSuffix(SESSIONS[op.s], resolveTarget(op.anchor, rs, SESSIONS[op.s]));
    case 'tryClaim': {
      const r = await st.tryClaimSessionExecutionLease(SESSIONS[op.s], OWNERS[op.owner], TTLS[op.ttl]);
      noteLease(rs, r.outcome === 'acquired' ? r.lease : r.holder);
      return r;
    }
    case 'reclaim': {
      const observed = resolveLease(op.observed, rs);
      const r = await st.reclaimSessionExecutionLease(SESSIONS[op.s], OWNERS[op.owner], observed, TTLS[op.ttl]);
      noteLease(rs, r.outcome === 'acquired' ? r.lease : r.holder);
      return r;
    }
    case 'renew': {
      const l = await st.renewSessionExecutionLease(resolveLease(op.lease, rs), TTLS[op.ttl]);
      noteLease(rs, l);
      return l;
    }
    case 'release':
      return st.releaseSessionExecutionLease(resolveLease(op.lease, rs));
    case 'enqueueBusy': {
      const d = draftFor({ s: op.s, ingress: { scope: 'next_turn' }, input: op.input, src: op.src });
      const row = await st.enqueuePendingTurnInput({ ...d, whenBusy: WHEN_BUSY[op.whenBusy] });
      noteIds(rs, row);
      return row;
    }
    case 'interrupt': {
      const options: { reason?: string; policy?: (typeof INTERRUPT_POLICIES)[number] } = {};
      if (op.reason !== undefined) options.reason = 'stop';
      if (op.policy !== undefined) options.policy = INTERRUPT_POLICIES[op.policy];
      return st.requestTurnInterrupt(SESSIONS[op.s], options);
    }
    case 'pause':
      return st.pauseSessionDispatch(SESSIONS[op.s]);
    case 'resume':
      return st.resumeSessionDispatch(SESSIONS[op.s]);
    case 'claimActive':
    case 'claimNext': {
      const fence = resolveLease(op.fence, rs);
      const owner = op.owner === undefined ? fence.owner : OWNERS[op.owner];
      const base = {
        sessionId: SESSIONS[op.s],
        fence,
        owner,
        leaseTtlMs: CLAIM_TTLS[op.ttl],
        maxInputs: op.max,
      };
      const claim =
        op.op === 'claimActive'
          ? await st.claimActiveTurnInputs({ ...base, turnId: TURNS[op.turn], checkpoint: op.checkpoint })
          : await st.claimNextTurnInputs(base);
      if (claim) rs.claims.push(structuredClone(claim));
      return claim;
    }
    case 'abandon': {
      const claims = op.claims.map((c) => resolveClaim(c, rs)).filter((c): c is TurnInputClaim => c !== undefined);
      const options = op.failure
        ? { failure: { error: FAILURE_ERRORS[op.failure.error], maxAttempts: op.failure.max } }
        : undefined;
      if (op.plural) return st.abandonTurnInputClaims(claims, options);
      if (claims.length === 0) return 'no claim';
      return st.abandonTurnInputClaim(claims[0], options);
    }
    case 'listFailed':
      return st.listFailedTurnInputs(SESSIONS[op.s]);
    case 'retryFailed': {
      const sessionId = SESSIONS[op.s];
      const listed = op.listed ? (await st.listFailedTurnInputs(sessionId)).map((f) => f.inputId) : [];
      return st.retryFailedTurnInputs(sessionId, [...listed, ...op.refs.map((r) => resolveId(r, rs, sessionId))]);
    }
    case 'commit': {
      const r = await st.session(SESSIONS[op.s]).commitRuntimeState(buildCommit(op, rs));
      rs.heads.set(SESSIONS[op.s], r.headRevision);
      return r;
    }
    case 'load': {
      const r = await st.session(SESSIONS[op.s]).loadSession(scopeFor(op.scope));
      if (r) rs.heads.set(SESSIONS[op.s], r.headRevision);
      return r;
    }
    case 'loadNode':
      return st.session(SESSIONS[op.s]).loadNode(NODE_IDS[op.node]);
    case 'vacuum':
      return st.vacuum(op.olderThan === undefined ? undefined : { olderThanMs: op.olderThan });
    case 'saveMeta':
      return st.session(SESSIONS[op.s]).saveSessionMeta(metaFor(op.s, op.meta));
    case 'loadMeta':
      return st.session(SESSIONS[op.s]).loadSessionMeta();
    case 'recordIntent':
      return st.session(SESSIONS[op.s]).recordIntent({
        attachmentId: ATTACHMENTS[op.att],
        sessionId: SESSIONS[op.s],
        canonicalUri: URIS[op.uri],
        intentAtEpochMs: INTENT_TIMES[op.at],
      });
    case 'commitRefs':
      return st.session(SESSIONS[op.s]).commitRefs(
        SESSIONS[op.s],
        op.atts.map((a) => (a === ATTACHMENTS.length ? 'att-missing' : ATTACHMENTS[a])),
      );
    case 'listUncommitted':
      return st.session(SESSIONS[0]).listUncommitted(INTENT_TIMES[op.olderThan]);
    case 'forgetAged':
      return st.session(SESSIONS[0]).forgetAgedUncommittedIntents(INTENT_TIMES[op.cutoff]);
    case 'hasLiveRef':
      return st.session(SESSIONS[1]).hasLiveRefForId(ATTACHMENTS[op.att], INTENT_TIMES[op.cutoff]);
    case 'forget':
      return st.session(SESSIONS[op.s]).forget(SESSIONS[op.s], ATTACHMENTS[op.att]);
    case 'holdsRef':
      return st.session(SESSIONS[2]).holdsRef(SESSIONS[op.s], ATTACHMENTS[op.att]);
    case 'listAllRefs':
      return st.session(SESSIONS[0]).listAllRefs();
  }
}

/**
 * The closing observation of a run, per session: pending list, full graph, meta, and a bulk cancel
 * of every id and source key the run could have used (its outcomes reveal the state, claim
 * diagnostics and ingress of every row); then the store-wide attachment lists.
 */
export async function observeAll(rs: RunState): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SESSIONS) {
    const f = rs.store.session(s);
    const targets: PendingTurnInputCancelTarget[] = [
      ...EXPLICIT_IDS.map((value) => ({ kind: 'input_id' as const, value })),
      ...rs.genIds.map((value) => ({ kind: 'input_id' as const, value })),
      ...SOURCE_KEYS.map((value) => ({ kind: 'source_key' as const, value })),
    ];
    out[s] = {
      list: await capture(() => rs.store.listPendingTurnInputs(s)),
      graph: await capture(() => f.loadSession({ kind: 'full_graph' })),
      meta: await capture(() => f.loadSessionMeta()),
      rows: await capture(() => rs.store.cancelPendingTurnInputs(s, targets)),
    };
  }
  out.uncommitted = await capture(() => rs.store.session(SESSIONS[0]).listUncommitted(1_000_000));
  out.refs = await capture(() => rs.store.session(SESSIONS[0]).listAllRefs());
  return out;
}

export type Captured = { ok: unknown } | { error: string; details: unknown } | { crash: string };

export async function capture(fn: () => Promise<unknown>): Promise<Captured> {
  try {
    const v = await fn();
    return { ok: v === undefined ? 'void' : v };
  } catch (e) {
    if (isStoreError(e)) {
      // Errors compare whole: code and details, InvalidInput issue texts included (both backends
      // share the validation, and the data-dependent commit issues are worded identically).
      return { error: e.code, details: e.details };
    }
    return { crash: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

// ---------------------------------------------------------------- normalisation

const GENERATED_ID = /^ti_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME_KEYS = new Set([
  'claimedAtEpochMs',
  'enqueuedAtMs',
  'committedAtEpochMs',
  'expiresAtEpochMs',
  'atEpochMs',
  'pausedAtEpochMs',
]);

/** Replaces generated values by placeholders (first appearance, sorted-key walk) and times by relations. */
export function normalise(value: unknown, rs: RunState, key = ''): unknown {
  // Bytes compare by content and by class: SPEC 2.2 returns a plain Uint8Array (not a Buffer).
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString('hex'), class: value.constructor.name };
  if (typeof value === 'string') {
    if (GENERATED_ID.test(value)) return placeholder(rs.idMap, value, 'id');
    if (key === 'leaseToken' || rs.tokenMap.has(value)) return placeholder(rs.tokenMap, value, 'tok');
    return value;
  }
  // Store-clock times compare as `T`, provided they are plausible epoch milliseconds (within a day
  // of this machine's clock): a time in seconds or microseconds would not be.
  if (typeof value === 'number' && TIME_KEYS.has(key)) return plausibleTime(value) ? 'T' : `implausible time ${value}`;
  if (Array.isArray(value)) return value.map((v) => normalise(v, rs));
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj).sort()) {
      if (k === 'expiresAtEpochMs' && typeof obj[k] === 'number' && typeof obj.claimedAtEpochMs === 'number') {
        const delta = (obj[k] as number) - (obj.claimedAtEpochMs as number);
        out[k] =
          Number.isSafeInteger(delta) && delta >= 0 ? `T+${Math.round(delta / 60_000)}m` : `bad deadline ${delta}`;
      } else if (obj[k] === undefined) {
        // SPEC 2.5: optional fields without a value are absent, never present as undefined.
        out[k] = PRESENT_UNDEFINED;
      } else {
        out[k] = normalise(obj[k], rs, k);
      }
    }
    return out;
  }
  return value;
}

export const PRESENT_UNDEFINED = '!! present with the value undefined (SPEC 2.5: must be absent)';

function plausibleTime(t: number): boolean {
  return Number.isSafeInteger(t) && Math.abs(t - Date.now()) < 86_400_000;
}

function placeholder(map: Map<string, string>, value: string, kind: string): string {
  let p = map.get(value);
  if (!p) {
    p = `<${kind}#${map.size + 1}>`;
    map.set(value, p);
  }
  return p;
}

export function same(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b);
}

// ---------------------------------------------------------------- rendering

function renderIdRef(r: IdRef): string {
  if (r.k === 'explicit') return JSON.stringify(EXPLICIT_IDS[r.i]);
  if (r.k === 'ghost') return '"ghost-id"';
  return `${r.anySession ? 'anyGen' : 'gen'}#${r.back ? `-${r.i + 1}` : r.i}`;
}

function renderTarget(t: TargetChoice): string {
  return t.kind === 'input_id' ? `id ${renderIdRef(t.ref)}` : `src ${JSON.stringify(SOURCE_KEYS[t.i])}`;
}

function renderLease(r: LeaseRef): string {
  if (r.k === 'cur') return `current(${JSON.stringify(SESSIONS[r.s])})${r.full ? '[full lease]' : ''}`;
  if (r.k === 'seen') return `seenLease#${r.i}`;
  return `forged(${JSON.stringify(SESSIONS[r.s])}, wrong ${r.how})`;
}

function renderClaimRef(c: ClaimRef): string {
  return `claim#${c.back ? `-${c.i + 1}` : c.i}${c.mut === 'asis' ? '' : `[${c.mut}]`}`;
}

function renderIngress(i: IngressChoice): string {
  return i.scope === 'next_turn' ? 'next' : `active ${TURNS[i.turn]}${i.boundary ? `/${i.boundary}` : ''}`;
}

export function renderOp(op: Op): string {
  const S = (i: number) => JSON.stringify(SESSIONS[i]);
  switch (op.op) {
    case 'enqueue':
      return `enqueue(${S(op.s)}, ${renderIngress(op.ingress)}, input#${op.input}${op.id !== undefined ? `, id ${JSON.stringify(EXPLICIT_IDS[op.id])}` : ''}${op.src !== undefined ? `, src ${JSON.stringify(SOURCE_KEYS[op.src])}` : ''})`;
    case 'enqueueMany':
      return `enqueueMany(${S(op.s)}, ${op.n} x [${op.ingress.map(renderIngress).join(', ')}], input#${op.input})`;
    case 'list':
      return `list(${S(op.s)})`;
    case 'cancel':
      return `cancel(${S(op.s)}, [${op.targets.map(renderTarget).join(', ')}])`;
    case 'cancelOne':
      return `cancelOne(${S(op.s)}, ${renderIdRef(op.ref)})`;
    case 'suffix':
      return `suffix(${S(op.s)}, ${renderTarget(op.anchor)})`;
    case 'tryClaim':
      return `tryClaim(${S(op.s)}, ${OWNER_NAMES[op.owner]}, ttl ${TTLS[op.ttl]})`;
    case 'reclaim':
      return `reclaim(${S(op.s)}, ${OWNER_NAMES[op.owner]}, observed ${renderLease(op.observed)}, ttl ${TTLS[op.ttl]})`;
    case 'renew':
      return `renew(${renderLease(op.lease)}, ttl ${TTLS[op.ttl]})`;
    case 'release':
      return `release(${renderLease(op.lease)})`;
    case 'enqueueBusy':
      return `enqueue(${S(op.s)}, next_turn, input#${op.input}${op.src !== undefined ? `, src ${JSON.stringify(SOURCE_KEYS[op.src])}` : ''}, whenBusy ${WHEN_BUSY[op.whenBusy]})`;
    case 'pause':
      return `pauseSessionDispatch(${S(op.s)})`;
    case 'resume':
      return `resumeSessionDispatch(${S(op.s)})`;
    case 'interrupt':
      return `requestTurnInterrupt(${S(op.s)}${op.reason !== undefined ? ", reason 'stop'" : ''}${op.policy !== undefined ? `, policy ${INTERRUPT_POLICIES[op.policy]}` : ''})`;
    case 'claimActive':
      return `claimActive(${S(op.s)}, fence ${renderLease(op.fence)}, owner ${op.owner === undefined ? 'fence owner' : OWNER_NAMES[op.owner]}, ${TURNS[op.turn]}@${op.checkpoint}, max ${op.max}, ttl ${CLAIM_TTLS[op.ttl]})`;
    case 'claimNext':
      return `claimNext(${S(op.s)}, fence ${renderLease(op.fence)}, owner ${op.owner === undefined ? 'fence owner' : OWNER_NAMES[op.owner]}, max ${op.max}, ttl ${CLAIM_TTLS[op.ttl]})`;
    case 'abandon':
      return `${op.plural ? 'abandonMany' : 'abandonOne'}([${op.claims.map(renderClaimRef).join(', ')}]${op.failure ? `, failure error#${op.failure.error} maxAttempts ${op.failure.max}` : ''})`;
    case 'listFailed':
      return `listFailed(${S(op.s)})`;
    case 'retryFailed':
      return `retryFailed(${S(op.s)}, [${op.listed ? 'every listed failed id, ' : ''}${op.refs.map(renderIdRef).join(', ')}])`;
    case 'commit': {
      const parts = [
        op.otherBinding ? 'sessionId OTHER' : '',
        op.fence ? `fence ${renderLease(op.fence)}` : 'no fence',
        op.release ? `release ${renderLease(op.release)}` : '',
        op.expected !== undefined ? `expected ${op.expected}` : '',
        `graph ${op.graph.kind}${'nodes' in op.graph ? `[${op.graph.nodes.map((n) => NODE_IDS[n]).join(',')}]${op.graph.wild ? '(wild parents)' : ''}` : ''}${op.graph.leaf !== undefined ? ` leaf ${leafFor(op.graph.leaf)}` : ''}`,
        `checkpoint#${op.checkpoint}`,
        `usage#${op.usage}`,
        op.completions.length ? `complete [${op.completions.map(renderClaimRef).join(', ')}]` : '',
        op.interrupted !== undefined ? `interrupt ${TURNS[op.interrupted]}` : '',
        op.stamp
          ? `stamp ${TURNS[op.stamp.turn]}/${op.stamp.hash}${op.stamp.otherSession ? ' (other session)' : ''}`
          : '',
        op.attachments ? `attachments#${op.attachments}` : '',
        op.queued ? 'queued claim' : '',
      ].filter(Boolean);
      return `commit(${S(op.s)}: ${parts.join(', ')})`;
    }
    case 'load':
      return `load(${S(op.s)}, ${op.scope.kind}${op.scope.kind === 'active_path' && op.scope.leaf !== undefined ? ` leaf ${leafFor(op.scope.leaf)}` : ''})`;
    case 'loadNode':
      return `loadNode(${S(op.s)}, ${JSON.stringify(NODE_IDS[op.node])})`;
    case 'vacuum':
      return `vacuum(${op.olderThan === undefined ? 'default' : `olderThanMs ${op.olderThan}`})`;
    case 'saveMeta':
      return `saveMeta(${S(op.s)}, meta#${op.meta})`;
    case 'loadMeta':
      return `loadMeta(${S(op.s)})`;
    case 'recordIntent':
      return `recordIntent(${S(op.s)}, ${JSON.stringify(ATTACHMENTS[op.att])}, ${URIS[op.uri]}, at ${INTENT_TIMES[op.at]})`;
    case 'commitRefs':
      return `commitRefs(${S(op.s)}, [${op.atts.map((a) => JSON.stringify(ATTACHMENTS[a] ?? 'att-missing')).join(', ')}])`;
    case 'listUncommitted':
      return `listUncommitted(${INTENT_TIMES[op.olderThan]})`;
    case 'forgetAged':
      return `forgetAgedUncommittedIntents(${INTENT_TIMES[op.cutoff]})`;
    case 'hasLiveRef':
      return `hasLiveRefForId(${JSON.stringify(ATTACHMENTS[op.att])}, ${INTENT_TIMES[op.cutoff]})`;
    case 'forget':
      return `forget(${S(op.s)}, ${JSON.stringify(ATTACHMENTS[op.att])})`;
    case 'holdsRef':
      return `holdsRef(${S(op.s)}, ${JSON.stringify(ATTACHMENTS[op.att])})`;
    case 'listAllRefs':
      return 'listAllRefs()';
  }
}
