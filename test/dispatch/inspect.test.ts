/**
 * `redis-turn-store inspect <sessionId>` (SPEC 11, operator view): lease holder, generation,
 * expiry and liveness; every non-terminal row with state, ingress and claim (live claims past
 * their stall deadline flagged); head revision and graph size; `--json`. Run in-process through
 * the CLI's main(), and once through the built bin.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type CliIO, main } from '../../src/cli/main.js';
import { leaseFence } from '../../src/core/projections.js';
import { inspectSession } from '../../src/inspect/inspect-session.js';
import type { InspectView } from '../../src/inspect/inspect-view.js';
import { formatInspect, parseInspectReply } from '../../src/inspect/inspect-view.js';
import type { RedisRuntimeStore } from '../../src/redis/redis-store.js';
import { adminClient, redisUrl } from '../support/prefix.js';
import { freshStore, owner, sleep, turnCommit } from './helpers.js';

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: { REDIS_URL: redisUrl() },
  };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIO();
  const code = await main(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join('') };
}

/** A session with a head, a live lease, a stalled next-turn claim, an accepted row, a pending row and a tombstone. */
async function busySession(store: RedisRuntimeStore, sessionId: string) {
  const w = owner('worker-7');
  const n1 = await store.enqueuePendingTurnInput({
    sessionId,
    sourceKey: 'ui:1',
    ingress: { scope: 'next_turn' },
    input: 'n1',
  });
  const a1 = await store.enqueuePendingTurnInput({
    sessionId,
    ingress: { scope: 'active_turn', turnId: 't1' },
    input: 'a1',
  });
  const a2 = await store.enqueuePendingTurnInput({
    sessionId,
    ingress: { scope: 'active_turn', turnId: 't1', minBoundary: 'before_completion' },
    input: 'a2',
  });
  const x = await store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: 'x' });
  await store.cancelPendingTurnInput(sessionId, x.inputId);
  const acquired = await store.tryClaimSessionExecutionLease(sessionId, w, 60_000);
  if (acquired.outcome !== 'acquired') throw new Error('expected acquired');
  const fence = leaseFence(acquired.lease);
  await store.session(sessionId).commitRuntimeState({
    ...turnCommit(
      sessionId,
      [
        { nodeId: 'root', timestamp: 't' },
        { nodeId: 'leaf', parentNodeId: 'root', timestamp: 't' },
      ],
      'leaf',
      0,
    ),
    sessionExecutionLease: fence,
  });
  // A 1 ms stall deadline: the claim stays live (its generation holds the lease) but is stalled.
  const next = await store.claimNextTurnInputs({ sessionId, fence, owner: w, leaseTtlMs: 1, maxInputs: 1 });
  const active = await store.claimActiveTurnInputs({
    sessionId,
    fence,
    owner: w,
    turnId: 't1',
    checkpoint: 'after_work',
    leaseTtlMs: 60_000,
    maxInputs: 10,
  });
  await sleep(5);
  return { lease: acquired.lease, n1, a1, a2, x, next: next!, active: active! };
}

describe('inspect', () => {
  test('text view: lease, head, rows with claims, stalled flag', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const s = 'user:42/a b';
    const { n1, a1, a2 } = await busySession(store, s);

    const { code, stdout, stderr } = await cli(['inspect', s, '--prefix', prefix]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`session   "${s}"  (prefix ${prefix})`);
    expect(stdout).toMatch(/lease {5}LIVE, generation 1, holder worker-7 \/ worker-7:1 \(opaque\)/);
    expect(stdout).toContain('head      revision 1, graph 2 nodes, leaf "leaf"');
    expect(stdout).toContain(
      'inputs    3 non-terminal (1 deferred_next_turn, 1 pending_active, 1 accepted), 1 tombstones',
    );
    expect(stdout).toContain('1 STALLED claim(s)');
    const rowLine = (id: string) => stdout.split('\n').find((l) => l.includes(id)) ?? '';
    expect(rowLine(n1.inputId)).toMatch(/deferred_next_turn +next_turn +tic:1:1 gen 1 LIVE, STALLED, stall deadline/);
    expect(rowLine(n1.inputId)).toContain('[src "ui:1"]');
    expect(rowLine(a1.inputId)).toMatch(
      /accepted +active_turn "t1" after_work +tic:2:1 gen 1 live, stall deadline .* \(in /,
    );
    expect(rowLine(a2.inputId)).toMatch(/pending_active +active_turn "t1" before_completion +-$/);
  });

  test('--json view, and claims die with their generation', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const { lease, n1, a1, a2, next } = await busySession(store, 's');

    const live = JSON.parse((await cli(['inspect', 's', '--prefix', prefix, '--json'])).stdout) as InspectView;
    expect(live.lease).toMatchObject({ status: 'live', generation: 1, owner: owner('worker-7') });
    expect(live.lease.expiresInMs).toBeGreaterThan(50_000);
    expect(live.head).toEqual({ headRevision: 1, nodeCount: 2, leafNodeId: 'leaf', schemaVersion: '1' });
    expect(live.graphNodes).toBe(2);
    expect(live.counts).toEqual({
      nonTerminal: 3,
      deferredNextTurn: 1,
      pendingActive: 1,
      accepted: 1,
      tombstones: 1,
      expired: 0,
      lastEnqueueSeq: 4,
    });
    expect(live.dispatch).toMatchObject({ dispatchableRequeue: false, dispatchableKeep: false });
    expect(live.dispatch.indexedAtMs).toBeGreaterThan(0);
    expect(live.rows.map((r) => [r.inputId, r.enqueueSeq, r.state])).toEqual([
      [n1.inputId, 1, 'deferred_next_turn'],
      [a1.inputId, 2, 'accepted'],
      [a2.inputId, 3, 'pending_active'],
    ]);
    expect(live.rows[0].claim).toMatchObject({
      claimId: next.claimId,
      generation: 1,
      live: true,
      stalled: true,
      stallDeadlineEpochMs: next.expiresAtEpochMs,
    });
    expect(live.rows[1].claim).toMatchObject({ claimId: 'tic:2:1', live: true, stalled: false });
    expect(live.rows[2].claim).toBeUndefined();
    expect(live.rows[2].enqueueGeneration).toBeUndefined();
    expect(JSON.stringify(live)).not.toContain(lease.leaseToken);

    await store.releaseSessionExecutionLease(lease);
    const released = JSON.parse((await cli(['inspect', 's', '--prefix', prefix, '--json'])).stdout) as InspectView;
    expect(released.lease).toEqual({ status: 'released', generation: 1 });
    expect(released.rows.map((r) => r.claim && [r.claim.live, r.claim.stalled])).toEqual([
      [false, false],
      [false, false],
      undefined,
    ]);
    expect(released.dispatch).toMatchObject({ dispatchableRequeue: true, dispatchableKeep: true });
    const text = (await cli(['inspect', 's', '--prefix', prefix])).stdout;
    expect(text).toContain('lease     released, last generation 1');
    expect(text).toContain('dead (generation 1 is not the live lease)');

    const limited = JSON.parse((await cli(['inspect', 's', '--prefix', prefix, '--json', '--max-rows', '1'])).stdout);
    expect(limited.rows.length).toBe(1);
    expect(limited.truncated).toBe(true);
  });

  test('a session that never existed, and usage errors', async (ctx) => {
    const { prefix } = await freshStore(ctx);
    const empty = await cli(['inspect', 'nobody', '--prefix', prefix]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain('lease     none (the session never had a lease)');
    expect(empty.stdout).toContain('head      none (no commit yet), graph 0 nodes');
    expect((await cli(['inspect'])).code).toBe(2);
    expect((await cli(['inspect', 's', '--prefix', 'bad prefix'])).code).toBe(2);
    expect((await cli(['inspect', 's', '--nope'])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('redis-turn-store inspect <sessionId>');
  });

  test('--version, <command> --help, a prefix no store used, and Redis down (issue 22)', async (ctx) => {
    const version = await cli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const inspectHelp = await cli(['inspect', '--help']);
    expect(inspectHelp.code).toBe(0);
    expect(inspectHelp.stdout).toContain('Usage: redis-turn-store inspect <sessionId>');
    const dashboardHelp = await cli(['dashboard', '--help']);
    expect(dashboardHelp.code).toBe(0);
    expect(dashboardHelp.stdout).toContain('npm install express@^5.2.1');

    const nobody = await cli(['inspect', 's', '--prefix', `never-used-${ctx.task.id}`]);
    expect(nobody.code).toBe(1);
    expect(nobody.stdout).toBe('');
    expect(nobody.stderr).toContain('no store has used the prefix');
    expect(nobody.stderr).toContain('Check --prefix');

    const down = captureIO();
    down.env.REDIS_URL = 'redis://127.0.0.1:1';
    const started = Date.now();
    expect(await main(['dashboard', '--port', '0'], down)).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(down.err.join('')).toContain('cannot reach Redis at redis://127.0.0.1:1');

    const noDb = captureIO();
    const u = new URL(redisUrl());
    u.pathname = '/99';
    noDb.env.REDIS_URL = u.toString();
    expect(await main(['inspect', 's'], noDb)).toBe(1);
    expect(noDb.err.join('')).toContain('database 99 does not exist');
  });

  test('the pure formatter needs no server', () => {
    const view = parseInspectReply(
      [
        '1000',
        JSON.stringify({
          ownerId: 'w',
          incarnationId: 'w:1',
          liveness: { kind: 'local_process', hostId: 'h', bootId: 'b', pid: 7, processStart: '9' },
          leaseToken: 'tok',
          fencingToken: 4,
          claimedAtEpochMs: 500,
          expiresAtEpochMs: 900,
        }),
        '',
        JSON.stringify({
          graphNodes: 0,
          nonTerminal: 1,
          next: 1,
          active: 0,
          accepted: 0,
          genactive: 0,
          nogen: 0,
          nogenDue: false,
          tombstones: 0,
          lastEnqueueSeq: 1,
          dispatchIndexedAtMs: 10,
          dispatchableRequeue: true,
          dispatchableKeep: true,
        }),
        // A row is five elements: id, record, state entry, claim entry, nogen deadline (docs/KEYS.md).
        'i',
        JSON.stringify({
          seq: 1,
          at: 5,
          enqueuedAs: 'pending_active',
          scope: 'active_turn',
          turnId: 't',
          minBoundary: 'after_work',
          input: { text: 'hi' },
        }),
        'deferred_next_turn|1|1|tic:1:1||n||',
        `1|4|ct|600|700|${JSON.stringify({ ownerId: 'w', incarnationId: 'w:1', liveness: { kind: 'opaque' } })}`,
        '',
      ],
      's',
      'rts',
    );
    expect(view.lease).toMatchObject({ status: 'expired', generation: 4, expiresInMs: -100 });
    expect(view.rows[0]).toMatchObject({
      inputId: 'i',
      enqueueSeq: 1,
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
      originalIngress: { scope: 'active_turn', turnId: 't', minBoundary: 'after_work' },
      claimCounter: 1,
    });
    // The claim's data comes from its claim entry.
    expect(view.rows[0].claim).toEqual({
      claimId: 'tic:1:1',
      generation: 4,
      owner: { ownerId: 'w', incarnationId: 'w:1', liveness: { kind: 'opaque' } },
      claimedAtEpochMs: 600,
      stallDeadlineEpochMs: 700,
      live: false,
      stalled: false,
    });
    const text = formatInspect(view);
    expect(text).toContain('EXPIRED, generation 4, holder w / w:1 (local_process pid 7 on h)');
    expect(text).toContain('next_turn (was active_turn "t" after_work)');
    expect(text).not.toContain('tok');
  });

  test('the built bin: node dist/cli/main.js inspect', async (ctx) => {
    const root = join(import.meta.dirname, '..', '..');
    ensureBuilt(root);
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    await busySession(store, 'bin-session');
    const r = spawnSync(
      process.execPath,
      [join(root, 'dist/cli/main.js'), 'inspect', 'bin-session', '--prefix', prefix],
      {
        env: { ...process.env, REDIS_URL: redisUrl() },
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('LIVE, generation 1, holder worker-7');
    expect(r.stdout).toContain('STALLED');
  }, 120_000);

  test('rows no future event would move are flagged STUCK, with the reason, in both views (issue 17)', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    // Requeue mode, within its grace: no-lease active input waits, and is not stuck.
    const a = await store.enqueuePendingTurnInput({
      sessionId: 'st',
      ingress: { scope: 'active_turn', turnId: 't1' },
      input: 'a',
    });
    const n = await store.enqueuePendingTurnInput({ sessionId: 'st', ingress: { scope: 'next_turn' }, input: 'n' });
    let view = await inspectSession(store, 'st');
    expect(view.mode).toBe('requeue');
    expect(view.rows.map((r) => r.stuck)).toEqual([undefined, undefined]);
    expect(view.rows[0].graceDeadlineEpochMs).toBeGreaterThan(view.nowMs);
    expect(view.dispatch).toMatchObject({ noLeaseActive: 1, noLeaseActivePastGrace: false });
    expect(formatInspect(view)).toContain('1 active input(s) enqueued with no lease live, within their grace');
    expect(formatInspect(view)).not.toContain('STUCK');

    // The session leaves the dispatch index (as if its keys were edited by hand): nothing will wake it.
    await adminClient().zrem(`${prefix}:shard:{0}:dispatch`, 'st');
    view = await inspectSession(store, 'st');
    expect(view.rows.map((r) => r.stuck?.reason)).toEqual(['not_indexed', 'not_indexed']);
    let text = formatInspect(view);
    expect(text).toContain('2 STUCK row(s): no future event moves them (judged in requeue mode)');
    expect(text).toContain(`STUCK seq ${n.enqueueSeq} ${n.inputId}: not_indexed:`);

    // Judged in keep mode, the active row waits for a replay of its turn, which only the host runs.
    view = await inspectSession(store, 'st', { strandedTurnInputs: 'keep' });
    expect(view.rows[0].stuck).toEqual({ reason: 'awaits_replay', detail: expect.stringContaining('"t1"') });
    expect(view.rows[1].stuck?.reason).toBe('not_indexed');
    text = formatInspect(view);
    expect(text).toContain(`STUCK seq ${a.enqueueSeq} ${a.inputId}: awaits_replay: keep mode: waits for a replay`);

    // Under a live lease nothing is flagged: the holder may still take the rows.
    await store.tryClaimSessionExecutionLease('st', owner('w'), 30_000);
    view = await inspectSession(store, 'st', { strandedTurnInputs: 'keep' });
    expect(view.rows.map((r) => r.stuck)).toEqual([undefined, undefined]);

    // The CLI: --keep judges in keep mode.
    const r = await cli(['inspect', 'st', '--prefix', prefix, '--keep', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).mode).toBe('keep');
  });
});

/** Builds dist/ (tsc) when it is missing or older than any source file. */
function ensureBuilt(root: string): void {
  const bin = join(root, 'dist/cli/main.js');
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  if (existsSync(bin) && statSync(bin).mtimeMs >= newest(join(root, 'src'))) return;
  const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`tsc failed: ${r.stdout}${r.stderr}`);
}
