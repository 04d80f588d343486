/**
 * The operator view of one session (SPEC 11): decoding the reply of lua/inspect-session.lua into
 * a plain object, and formatting that object as text. Pure: no I/O, no clock (every time is the
 * store clock the script read), so it is unit-tested without a server.
 *
 * Liveness follows SPEC 3.2/3.4: the lease is live when it has a token and expiresAt > now; a claim
 * is live when its row carries it and its generation is the live lease's. A live claim whose stall
 * deadline has passed is flagged `stalled` (reported only; it changes nothing).
 *
 * A row that no future event of the store or the dispatch machinery would move is flagged `stuck`,
 * with the reason (the mode it is judged under is the view's `mode`): only an operator or a host
 * call (a cancel, a replayed turn, an abandon) can move it. Rows under a live lease are never
 * flagged: the holder may still take them, and its release or expiry is handled.
 */

import type { CheckpointKind, LeaseOwnerIdentity, TurnInputIngress, TurnInputState } from '../contract/types.js';
import { parseRow, type StoredRow } from '../redis/row-codec.js';

export type LeaseStatus = 'none' | 'released' | 'live' | 'expired';

export interface InspectLease {
  status: LeaseStatus;
  /** The lease generation (fencingToken); survives release; 0 when the session never had a lease. */
  generation: number;
  owner?: LeaseOwnerIdentity;
  claimedAtEpochMs?: number;
  expiresAtEpochMs?: number;
  /** expiresAt - now (negative once expired), for held or expired leases. */
  expiresInMs?: number;
  /** The interrupt mark of this generation (SPEC 3.9), while a held lease carries one. */
  interrupt?: { policy: 'interrupt' | 'rollback'; reason?: string; inputId?: string; atEpochMs: number };
}

export interface InspectClaim {
  claimId: string;
  owner?: LeaseOwnerIdentity;
  /** The lease generation the claim was taken under. */
  generation: number;
  claimedAtEpochMs?: number;
  /** The stall deadline: claimedAt + the claim call's leaseTtlMs. */
  stallDeadlineEpochMs?: number;
  live: boolean;
  /** Live and past its stall deadline. */
  stalled: boolean;
}

/**
 * Why nothing will move a row (SPEC 11, operator view):
 *  - `not_indexed`: the session is not in the dispatch index and no lease is live, so no wake-up
 *    will come for input a turn would take (the index was lost, e.g. keys deleted by hand);
 *  - `awaits_replay`: keep mode, pending_active with no live lease: it waits for a replay of its
 *    turn, which only the host can run;
 *  - `dead_claim`: keep mode, accepted under a claim whose generation is dead: only that claim's
 *    completion or abandon releases it;
 *  - `no_generation`: requeue mode, pending_active with no generation and outside the no-lease
 *    index (enqueued by a keep-mode store, or before that index existed): no acquisition moves it.
 */
export type StuckReason = 'not_indexed' | 'awaits_replay' | 'dead_claim' | 'no_generation';

export interface InspectStuck {
  reason: StuckReason;
  /** One sentence for the operator. */
  detail: string;
}

export interface InspectRow {
  inputId: string;
  enqueueSeq: number;
  state: TurnInputState;
  ingress: TurnInputIngress;
  /** The ingress the row was enqueued with, when it has since been rewritten to next_turn. */
  originalIngress?: TurnInputIngress;
  sourceKey?: string;
  enqueuedAtMs: number;
  /** The lease generation live when the row was enqueued (rows T9 would requeue have one). */
  enqueueGeneration?: number;
  /** pending_active under a generation (live at enqueue, or adopted by an acquisition): T9 moves it. */
  underGeneration?: boolean;
  /** Active input enqueued while no lease was live (requeue mode): its grace deadline (T9). */
  graceDeadlineEpochMs?: number;
  /** Set when no future event would move the row; see StuckReason. */
  stuck?: InspectStuck;
  /** The row's claim counter. */
  claimCounter: number;
  claim?: InspectClaim;
}

export interface InspectView {
  sessionId: string;
  keyPrefix: string;
  /** The strandedTurnInputs mode the `stuck` flags are judged under. */
  mode: 'requeue' | 'keep';
  /** The store clock (server TIME) the view was read at. */
  nowMs: number;
  lease: InspectLease;
  head: { headRevision: number; nodeCount: number; leafNodeId?: string; schemaVersion?: string } | null;
  graphNodes: number;
  counts: {
    nonTerminal: number;
    deferredNextTurn: number;
    pendingActive: number;
    accepted: number;
    tombstones: number;
    /** Tombstones cancelled by pendingTtlMs (reason 'expired'; issue 18). */
    expired: number;
    lastEnqueueSeq: number;
  };
  dispatch: {
    /** When the session entered the shard dispatch index, or absent when it is not indexed. */
    indexedAtMs?: number;
    /** Dispatchable under strandedTurnInputs 'requeue' (the default) and under 'keep'. */
    dispatchableRequeue: boolean;
    dispatchableKeep: boolean;
    /** Issue 18: when pauseSessionDispatch paused the session (absent: not paused). */
    pausedAtMs?: number;
    /** Rows of active input enqueued while no lease was live (requeue mode), and whether one is past its grace. */
    noLeaseActive: number;
    noLeaseActivePastGrace: boolean;
  };
  /** Non-terminal rows in enqueueSeq order (at most the requested number). */
  rows: InspectRow[];
  /** True when there are more non-terminal rows than `rows` shows. */
  truncated: boolean;
}

interface RawLease {
  ownerId: string;
  incarnationId: string;
  liveness: LeaseOwnerIdentity['liveness'];
  leaseToken: string;
  fencingToken: number;
  claimedAtEpochMs: number;
  expiresAtEpochMs: number;
  interrupt?: { policy: 'interrupt' | 'rollback'; reason: string; inputId: string; atEpochMs: number };
}

interface RawCounts {
  graphNodes: number;
  nonTerminal: number;
  next: number;
  active: number;
  accepted: number;
  genactive: number;
  nogen: number;
  nogenDue: boolean;
  tombstones: number;
  expired?: number;
  lastEnqueueSeq: number;
  dispatchIndexedAtMs: number | null;
  dispatchableRequeue: boolean;
  dispatchableKeep: boolean;
  pausedAtMs?: number | null;
}

function parseJson<T>(text: unknown, what: string): T {
  try {
    return JSON.parse(String(text)) as T;
  } catch {
    throw new Error(`unexpected inspect reply: ${what} is not JSON`);
  }
}

/** Decodes the reply elements after the status (see lua/inspect-session.lua). */
export function parseInspectReply(
  reply: unknown[],
  sessionId: string,
  keyPrefix: string,
  mode: 'requeue' | 'keep' = 'requeue',
): InspectView {
  const [nowRaw, leaseRaw, headRaw, countsRaw, ...rowsRaw] = reply;
  const nowMs = Number(nowRaw);
  if (!Number.isSafeInteger(nowMs)) throw new Error('unexpected inspect reply: no store time');

  let lease: InspectLease = { status: 'none', generation: 0 };
  if (leaseRaw !== '' && leaseRaw !== undefined && leaseRaw !== null) {
    const l = parseJson<RawLease>(leaseRaw, 'the lease');
    if (l.leaseToken === '') {
      lease = { status: 'released', generation: l.fencingToken };
    } else {
      const live = l.expiresAtEpochMs > nowMs;
      lease = {
        status: live ? 'live' : 'expired',
        generation: l.fencingToken,
        owner: { ownerId: l.ownerId, incarnationId: l.incarnationId, liveness: l.liveness ?? { kind: 'opaque' } },
        claimedAtEpochMs: l.claimedAtEpochMs,
        expiresAtEpochMs: l.expiresAtEpochMs,
        expiresInMs: l.expiresAtEpochMs - nowMs,
      };
      if (l.interrupt) {
        const mark: NonNullable<InspectLease['interrupt']> = {
          policy: l.interrupt.policy,
          atEpochMs: l.interrupt.atEpochMs,
        };
        if (l.interrupt.reason !== '') mark.reason = l.interrupt.reason;
        if (l.interrupt.inputId !== '') mark.inputId = l.interrupt.inputId;
        lease.interrupt = mark;
      }
    }
  }
  const liveGeneration = lease.status === 'live' ? lease.generation : undefined;

  let head: InspectView['head'] = null;
  if (headRaw !== '' && headRaw !== undefined && headRaw !== null) {
    const h = parseJson<{ headRevision: string; nodeCount: string; leafNodeId: string; schemaVersion: string }>(
      headRaw,
      'the head',
    );
    head = { headRevision: Number(h.headRevision), nodeCount: Number(h.nodeCount) };
    if (h.leafNodeId) head.leafNodeId = h.leafNodeId;
    if (h.schemaVersion) head.schemaVersion = h.schemaVersion;
  }

  const c = parseJson<RawCounts>(countsRaw, 'the counts');
  if (rowsRaw.length % 5 !== 0) throw new Error('unexpected inspect reply: row list length');
  const rows: InspectRow[] = [];
  for (let i = 0; i < rowsRaw.length; i += 5) {
    const row = toRow(parseRow(rowsRaw[i], rowsRaw[i + 1], rowsRaw[i + 2], rowsRaw[i + 3]), nowMs, liveGeneration);
    if (rowsRaw[i + 4] !== '' && rowsRaw[i + 4] != null) row.graceDeadlineEpochMs = Number(rowsRaw[i + 4]);
    rows.push(row);
  }
  const dispatch: InspectView['dispatch'] = {
    dispatchableRequeue: c.dispatchableRequeue || c.nogenDue,
    dispatchableKeep: c.dispatchableKeep,
    noLeaseActive: c.nogen,
    noLeaseActivePastGrace: c.nogenDue,
  };
  if (c.dispatchIndexedAtMs !== null) dispatch.indexedAtMs = c.dispatchIndexedAtMs;
  if (typeof c.pausedAtMs === 'number') dispatch.pausedAtMs = c.pausedAtMs;
  const leased = liveGeneration !== undefined;
  for (const row of rows) {
    const stuck = stuckReason(row, mode, leased, dispatch.indexedAtMs !== undefined);
    if (stuck) row.stuck = stuck;
  }
  return {
    sessionId,
    keyPrefix,
    mode,
    nowMs,
    lease,
    head,
    graphNodes: c.graphNodes,
    counts: {
      nonTerminal: c.nonTerminal,
      deferredNextTurn: c.next,
      pendingActive: c.active,
      accepted: c.accepted,
      tombstones: c.tombstones,
      expired: c.expired ?? 0,
      lastEnqueueSeq: c.lastEnqueueSeq,
    },
    dispatch,
    rows,
    truncated: rows.length < c.nonTerminal,
  };
}

function toRow(r: StoredRow, nowMs: number, liveGeneration: number | undefined): InspectRow {
  const row: InspectRow = {
    inputId: r.inputId,
    enqueueSeq: r.seq,
    state: r.state,
    ingress: r.ingress,
    enqueuedAtMs: r.enqueuedAtMs,
    claimCounter: r.claimFencingToken ?? 0,
  };
  if (r.origIngress) row.originalIngress = r.origIngress;
  if (r.sourceKey !== undefined) row.sourceKey = r.sourceKey;
  if (r.enqueueGen !== undefined) row.enqueueGeneration = r.enqueueGen;
  if (r.state === 'pending_active' && r.underGeneration) row.underGeneration = true;
  if (r.claimId !== undefined && r.claimToken !== undefined) {
    const generation = r.claimGen ?? 0;
    const live = liveGeneration !== undefined && generation === liveGeneration;
    const claim: InspectClaim = {
      claimId: r.claimId,
      generation,
      live,
      stalled: live && r.claimExpiresAtMs !== undefined && r.claimExpiresAtMs <= nowMs,
    };
    if (r.claimOwner) claim.owner = r.claimOwner;
    if (r.claimedAtMs !== undefined) claim.claimedAtEpochMs = r.claimedAtMs;
    if (r.claimExpiresAtMs !== undefined) claim.stallDeadlineEpochMs = r.claimExpiresAtMs;
    row.claim = claim;
  }
  return row;
}

/** Whether nothing but an operator or host call would move the row (see StuckReason). */
export function stuckReason(
  row: InspectRow,
  mode: 'requeue' | 'keep',
  leased: boolean,
  indexed: boolean,
): InspectStuck | undefined {
  if (leased) return undefined;
  const turn = row.ingress.scope === 'active_turn' ? ` ${JSON.stringify(row.ingress.turnId)}` : '';
  if (mode === 'keep') {
    if (row.state === 'pending_active') {
      return {
        reason: 'awaits_replay',
        detail: `keep mode: waits for a replay of turn${turn}, which only the host runs; nothing dispatches it`,
      };
    }
    if (row.state === 'accepted' && !row.claim?.live) {
      return {
        reason: 'dead_claim',
        detail: `keep mode: accepted under a dead claim; only that claim's completion or abandon releases it`,
      };
    }
  } else if (row.state === 'pending_active' && !row.underGeneration && row.graceDeadlineEpochMs === undefined) {
    return {
      reason: 'no_generation',
      detail: `active input for turn${turn} with no generation and outside the no-lease index; no acquisition moves it`,
    };
  }
  const wouldDispatch =
    row.state === 'deferred_next_turn' ||
    (mode === 'requeue' && (row.state === 'accepted' || row.state === 'pending_active'));
  if (wouldDispatch && !indexed) {
    return {
      reason: 'not_indexed',
      detail: 'no lease is live and the session is not in the dispatch index: no wake-up will come',
    };
  }
  return undefined;
}

// ---------------------------------------------------------------- text

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function duration(ms: number): string {
  const a = Math.abs(ms);
  if (a < 1000) return `${a} ms`;
  if (a < 120_000) return `${(a / 1000).toFixed(1)} s`;
  if (a < 7_200_000) return `${(a / 60_000).toFixed(1)} min`;
  return `${(a / 3_600_000).toFixed(1)} h`;
}

function ownerText(owner: LeaseOwnerIdentity | undefined): string {
  if (!owner) return '?';
  const l = owner.liveness;
  const live = l && l.kind === 'local_process' ? `local_process pid ${l.pid} on ${l.hostId}` : 'opaque';
  return `${owner.ownerId} / ${owner.incarnationId} (${live})`;
}

function ingressText(i: TurnInputIngress): string {
  if (i.scope === 'next_turn') return 'next_turn';
  const b: CheckpointKind = i.minBoundary ?? 'after_work';
  return `active_turn ${JSON.stringify(i.turnId)} ${b}`;
}

function claimText(row: InspectRow, view: InspectView): string {
  const c = row.claim;
  if (!c) return row.state === 'accepted' ? 'accepted without a claim (?)' : '-';
  let status: string;
  if (c.stalled) status = 'LIVE, STALLED';
  else if (c.live) status = 'live';
  else status = `dead (generation ${c.generation} is not the live lease)`;
  let text = `${c.claimId} gen ${c.generation} ${status}`;
  if (c.stallDeadlineEpochMs !== undefined) {
    const d = c.stallDeadlineEpochMs - view.nowMs;
    text += `, stall deadline ${iso(c.stallDeadlineEpochMs)} (${d > 0 ? `in ${duration(d)}` : `${duration(d)} ago`})`;
  }
  return text;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** The human-readable view, one block of lines; ends with a newline. */
export function formatInspect(view: InspectView): string {
  const lines: string[] = [];
  lines.push(`session   ${JSON.stringify(view.sessionId)}  (prefix ${view.keyPrefix})`);
  lines.push(`as of     ${iso(view.nowMs)} (store clock ${view.nowMs})`);
  const l = view.lease;
  if (l.status === 'none') lines.push('lease     none (the session never had a lease)');
  else if (l.status === 'released') lines.push(`lease     released, last generation ${l.generation}`);
  else {
    const exp = l.expiresAtEpochMs ?? 0;
    const when =
      (l.expiresInMs ?? 0) > 0 ? `in ${duration(l.expiresInMs ?? 0)}` : `${duration(l.expiresInMs ?? 0)} ago`;
    lines.push(
      `lease     ${l.status === 'live' ? 'LIVE' : 'EXPIRED'}, generation ${l.generation}, holder ${ownerText(l.owner)}`,
    );
    lines.push(`          claimed ${iso(l.claimedAtEpochMs ?? 0)}, expires ${iso(exp)} (${when})`);
    if (l.interrupt) {
      const why = l.interrupt.reason !== undefined ? `, reason ${JSON.stringify(l.interrupt.reason)}` : '';
      const by = l.interrupt.inputId !== undefined ? `, by input ${JSON.stringify(l.interrupt.inputId)}` : '';
      lines.push(`          INTERRUPTED (${l.interrupt.policy}) at ${iso(l.interrupt.atEpochMs)}${why}${by}`);
    }
  }
  if (view.head) {
    const leaf = view.head.leafNodeId ? `, leaf ${JSON.stringify(view.head.leafNodeId)}` : ', no leaf';
    lines.push(`head      revision ${view.head.headRevision}, graph ${view.graphNodes} nodes${leaf}`);
  } else {
    lines.push(`head      none (no commit yet), graph ${view.graphNodes} nodes`);
  }
  const d = view.dispatch;
  const indexed = d.indexedAtMs !== undefined ? `indexed since ${iso(d.indexedAtMs)}` : 'not indexed';
  lines.push(
    `dispatch  ${indexed}; dispatchable: ${d.dispatchableRequeue ? 'yes' : 'no'} (requeue mode), ${d.dispatchableKeep ? 'yes' : 'no'} (keep mode)`,
  );
  if (d.pausedAtMs !== undefined) {
    lines.push(`          PAUSED since ${iso(d.pausedAtMs)}: no turn starts until resumeSessionDispatch`);
  }
  if (d.noLeaseActive > 0) {
    lines.push(
      `          ${d.noLeaseActive} active input(s) enqueued with no lease live, ${d.noLeaseActivePastGrace ? 'one past its grace: the next acquisition requeues it' : 'within their grace'}`,
    );
  }
  const n = view.counts;
  lines.push(
    `inputs    ${n.nonTerminal} non-terminal (${n.deferredNextTurn} deferred_next_turn, ${n.pendingActive} pending_active, ${n.accepted} accepted), ${n.tombstones} tombstones${n.expired > 0 ? ` (${n.expired} expired)` : ''}, last enqueueSeq ${n.lastEnqueueSeq}`,
  );
  if (view.rows.length > 0) {
    const stalled = view.rows.filter((r) => r.claim?.stalled).length;
    if (stalled > 0) lines.push(`          ${stalled} STALLED claim(s): live, past their stall deadline`);
    lines.push('');
    const header = ['seq', 'input id', 'state', 'ingress', 'claim'];
    const table = view.rows.map((r) => [
      String(r.enqueueSeq),
      r.inputId + (r.sourceKey !== undefined ? ` [src ${JSON.stringify(r.sourceKey)}]` : ''),
      r.state,
      ingressText(r.ingress) + (r.originalIngress ? ` (was ${ingressText(r.originalIngress)})` : ''),
      claimText(r, view),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    lines.push(`  ${header.map((h, i) => pad(h, widths[i])).join('  ')}`.trimEnd());
    for (const row of table) lines.push(`  ${row.map((cell, i) => pad(cell, widths[i])).join('  ')}`.trimEnd());
    if (view.truncated) lines.push(`  ... ${n.nonTerminal - view.rows.length} more (raise --max-rows)`);
    const stuck = view.rows.filter((r) => r.stuck);
    if (stuck.length > 0) {
      lines.push('');
      lines.push(`  ${stuck.length} STUCK row(s): no future event moves them (judged in ${view.mode} mode)`);
      for (const r of stuck) {
        lines.push(`  STUCK seq ${r.enqueueSeq} ${r.inputId}: ${r.stuck?.reason}: ${r.stuck?.detail}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}
