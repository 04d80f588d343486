/**
 * Runs one generated Sequence against a fresh Redis store (its own key prefix) and a fresh in-memory
 * store, comparing normalised results after every step and once more over a closing observation.
 * Returns null when they agree, or the first divergence. `report` turns a divergence into the
 * readable text a failing test prints.
 */
import type { Redis } from 'ioredis';
import { createInMemoryRuntimeStore, createRedisRuntimeStore } from '../../src/index.js';
import {
  type Captured,
  capture,
  execute,
  LONG_SESSION_INPUTS,
  LONG_TTL,
  newRunState,
  normalise,
  type Op,
  observeAll,
  PRESENT_UNDEFINED,
  type RunState,
  renderOp,
  type Sequence,
  same,
} from './model.js';

export interface Divergence {
  /** Index of the op, or ops.length for the closing observation. */
  step: number;
  what: string;
  redis: unknown;
  memory: unknown;
  /** Steps before the divergence, with the (agreed) normalised result. */
  trace: string[];
  prefix: string;
}

export interface RunEnv {
  client: Redis;
  nextPrefix(): string;
  stats?: Stats;
}

/**
 * Outcome counts per op kind, to show what the random sequences actually exercised, and the sizes
 * the long histories (issue 16) reached.
 */
export class Stats {
  sequences = 0;
  ops = 0;
  readonly outcomes = new Map<string, Map<string, number>>();
  /** Sequences whose ops all agreed, and of those the long ones (Sequence.long). */
  agreedSequences = 0;
  longSequences = 0;
  /** Agreed sequences in which one session received more than LONG_SESSION_INPUTS inputs. */
  longSessionRuns = 0;
  /** The most generated inputs one session received in one run. */
  mostSessionInputs = 0;
  /** The most inputs in one claim, in one suffix cancel, in one pending list; tombstones one vacuum removed. */
  largestClaim = 0;
  largestSuffixCancel = 0;
  longestList = 0;
  largestVacuum = 0;

  /** After a run whose ops all agreed: its per-session input counts (from either backend's state). */
  noteRun(seq: Sequence, rs: RunState): void {
    this.agreedSequences++;
    if (seq.long) this.longSequences++;
    const most = Math.max(0, ...[...rs.genIdsBySession.values()].map((ids) => ids.length));
    this.mostSessionInputs = Math.max(this.mostSessionInputs, most);
    if (most > LONG_SESSION_INPUTS) this.longSessionRuns++;
  }

  note(op: Op, result: unknown): void {
    this.ops++;
    let label = 'ok';
    const r = result as Record<string, unknown>;
    const ok = (r as { ok?: unknown }).ok as Record<string, unknown> | null | undefined;
    if (ok && typeof ok === 'object') {
      if ((op.op === 'claimActive' || op.op === 'claimNext') && Array.isArray(ok.inputs))
        this.largestClaim = Math.max(this.largestClaim, ok.inputs.length);
      if (op.op === 'suffix' && Array.isArray(ok.outcomes))
        this.largestSuffixCancel = Math.max(this.largestSuffixCancel, ok.outcomes.length);
      if (op.op === 'list' && Array.isArray(ok)) this.longestList = Math.max(this.longestList, ok.length);
      if (op.op === 'vacuum' && typeof ok.removedPendingTurnInputTombstones === 'number')
        this.largestVacuum = Math.max(this.largestVacuum, ok.removedPendingTurnInputTombstones);
    }
    if ('error' in r) label = String(r.error);
    else if ('crash' in r) label = 'CRASH';
    else if (r.ok === null) label = 'null';
    else if (op.op === 'tryClaim' || op.op === 'reclaim') label = String((r.ok as { outcome: string }).outcome);
    else if (op.op === 'suffix') label = String((r.ok as { outcome: string }).outcome);
    else if (op.op === 'enqueue') label = `ok:${(r.ok as { state: string }).state}`;
    else if (op.op === 'listFailed') label = (r.ok as unknown[]).length > 0 ? 'some failed' : 'none';
    else if (op.op === 'retryFailed') {
      const outs = (r.ok as Array<{ outcome: { outcome: string } }>).map((x) => x.outcome.outcome);
      label = outs.includes('retried') ? 'retried' : outs.length === 0 ? 'empty' : 'nothing retried';
    } else if (op.op === 'abandon' && op.failure) label = 'ok:with failure';
    const m = this.outcomes.get(op.op) ?? new Map<string, number>();
    m.set(label, (m.get(label) ?? 0) + 1);
    this.outcomes.set(op.op, m);
  }

  /** The long-history line the test prints (issue 16). */
  longHistories(): string {
    return (
      `${this.longSessionRuns} of ${this.agreedSequences} agreeing sequences (${this.longSequences} long ones) had a ` +
      `session with more than ${LONG_SESSION_INPUTS} inputs; most inputs in one session ${this.mostSessionInputs}, ` +
      `largest claim ${this.largestClaim} inputs, largest suffix cancel ${this.largestSuffixCancel} rows, ` +
      `longest pending list ${this.longestList}, most tombstones removed by one vacuum ${this.largestVacuum}`
    );
  }

  table(): string {
    const rows = [...this.outcomes.entries()].sort(([a], [b]) => a.localeCompare(b));
    return rows
      .map(
        ([op, m]) =>
          `  ${op.padEnd(16)} ${[...m.entries()]
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
      )
      .join('\n');
  }
}

function compact(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 400 ? `${s.slice(0, 400)}…` : s;
}

function norm(c: Captured, rs: RunState): unknown {
  return normalise(c, rs);
}

export async function runSequence(seq: Sequence, env: RunEnv): Promise<Divergence | null> {
  const prefix = env.nextPrefix();
  const redis = await createRedisRuntimeStore({
    redis: env.client,
    keyPrefix: prefix,
    idleDispatch: false,
    durability: 'inline',
    strandedTurnInputs: seq.strandedTurnInputs,
    activeInputGraceMs: seq.activeInputGraceMs ?? LONG_TTL,
  });
  const memory = createInMemoryRuntimeStore({
    now: () => Date.now(),
    strandedTurnInputs: seq.strandedTurnInputs,
    activeInputGraceMs: seq.activeInputGraceMs ?? LONG_TTL,
  });
  const R = newRunState('redis', redis);
  const M = newRunState('memory', memory);
  const trace: string[] = [];
  env.stats && env.stats.sequences++;
  try {
    for (let i = 0; i < seq.ops.length; i++) {
      const op = seq.ops[i];
      const r = norm(await capture(() => execute(op, R)), R);
      const m = norm(await capture(() => execute(op, M)), M);
      const crashed =
        'crash' in (r as object) || 'crash' in (m as object) || JSON.stringify([r, m]).includes(PRESENT_UNDEFINED);
      if (!same(r, m) || crashed) {
        return { step: i, what: renderOp(op), redis: r, memory: m, trace, prefix };
      }
      env.stats?.note(op, r);
      trace.push(`${String(i).padStart(3)}. ${renderOp(op)}\n       -> ${compact(r)}`);
    }
    env.stats?.noteRun(seq, M);
    const r = normalise(await observeAll(R), R);
    const m = normalise(await observeAll(M), M);
    if (!same(r, m)) {
      return {
        step: seq.ops.length,
        what: 'closing observation (list, graph, meta, row states, attachments)',
        redis: r,
        memory: m,
        trace,
        prefix,
      };
    }
    return null;
  } finally {
    await redis.close();
    await memory.close();
  }
}

/** Lines of `a` and `b` (pretty JSON) that differ, marked, for the failure report. */
function diffLines(a: unknown, b: unknown): string {
  const la = JSON.stringify(a, null, 2).split('\n');
  const lb = JSON.stringify(b, null, 2).split('\n');
  const out: string[] = [];
  const n = Math.max(la.length, lb.length);
  for (let i = 0; i < n; i++) {
    if (la[i] === lb[i]) out.push(`    ${la[i] ?? ''}`);
    else {
      if (la[i] !== undefined) out.push(`  R ${la[i]}`);
      if (lb[i] !== undefined) out.push(`  M ${lb[i]}`);
    }
  }
  return out.join('\n');
}

export function report(seq: Sequence, d: Divergence, header: string): string {
  return [
    header,
    `strandedTurnInputs: ${seq.strandedTurnInputs}, activeInputGraceMs: ${seq.activeInputGraceMs ?? LONG_TTL}; Redis keys kept under prefix ${d.prefix}`,
    'Minimal sequence:',
    ...seq.ops
      .slice(0, d.step + 1)
      .map((op, i) => `${String(i).padStart(3)}. ${renderOp(op)}${i === d.step ? '    <== DIVERGES' : ''}`),
    ...(d.step + 1 < seq.ops.length ? [`     (${seq.ops.length - d.step - 1} later ops not run)`] : []),
    '',
    'Agreed results before the divergence:',
    ...d.trace,
    '',
    `Step ${d.step}: ${d.what}`,
    `  redis : ${JSON.stringify(d.redis)}`,
    `  memory: ${JSON.stringify(d.memory)}`,
    'Line diff (R = redis, M = memory):',
    diffLines(d.redis, d.memory),
    '',
    `Sequence as data: ${JSON.stringify(seq)}`,
  ].join('\n');
}
