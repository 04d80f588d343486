/**
 * The dashboard's sessions page (SPEC 17.5), beside bull-board: `/sessions` lists the sessions
 * with pending input, the oldest pending input first (lua/pending-sessions.lua over every shard's
 * dispatch index); `/sessions/<id>` shows a session's inspect view (lease, rows and their states,
 * claims). With `writable`, a queued input (no live claim) can be cancelled, through the same
 * cancel script as `cancelPendingTurnInput`; the form carries a per-process token, so another
 * site cannot post it through an operator's browser.
 *
 * Like `inspect`, it works on the bare client and never creates a store (which would write the
 * layout key). Plain server-rendered HTML: no script, no assets.
 */
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { isStoreError } from '../contract/errors.js';
import type { PendingTurnInput } from '../contract/types.js';
import { inspectSession } from '../inspect/inspect-session.js';
import { formatInspect, type InspectRow, type InspectView } from '../inspect/inspect-view.js';
import { isClusterClient, RedisContext } from '../redis/context.js';
import { KeyLayout } from '../redis/keys.js';
import * as lease from '../redis/lease-ops.js';
import { registerScripts } from '../redis/scripts/registry.js';
import { listPendingSessions } from '../redis/stats-ops.js';
import * as inputs from '../redis/turn-input-ops.js';

export interface SessionsPageOptions {
  client: Redis | Cluster;
  keyPrefix: string;
  writable: boolean;
}

const esc = (s: unknown): string =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}
pre{background:#f7f7f7;padding:.8rem;overflow:auto}nav a{margin-right:1rem}.note{color:#555}.ok{color:#060}.err{color:#a00}</style>
</head><body><nav><a href="/">Dispatch queue (bull-board)</a><a href="/sessions">Sessions</a></nav>${body}</body></html>`;
}

function age(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

function sessionHref(sessionId: string): string {
  return `/sessions/${encodeURIComponent(sessionId)}`;
}

/** A row a cancel would cancel: queued, and carrying no live claim (SPEC 5.3). */
function cancellable(row: InspectRow): boolean {
  return (row.state === 'deferred_next_turn' || row.state === 'pending_active') && !row.claim?.live;
}

export function sessionsRouter(options: SessionsPageOptions): Router {
  const { client, keyPrefix, writable } = options;
  registerScripts(client);
  const layout = new KeyLayout(keyPrefix, isClusterClient(client) ? 'cluster' : 'standalone');
  const ctx = new RedisContext(
    client,
    layout,
    { keyPrefix, strandedTurnInputs: 'requeue', activeInputGraceMs: 0, tombstoneRetentionMs: 0, idleDispatch: false },
    () => undefined,
  );
  const csrf = randomBytes(16).toString('hex');
  const router = express.Router();

  const fail = (res: Response, e: unknown) => {
    res
      .status(isStoreError(e, 'InvalidInput') ? 400 : 500)
      .send(page('error', `<p class="err">${esc((e as Error)?.message ?? e)}</p>`));
  };

  router.get('/sessions', async (_req: Request, res: Response) => {
    try {
      const sessions = await listPendingSessions(ctx);
      const rows = sessions
        .map(
          (s) =>
            `<tr><td><a href="${esc(sessionHref(s.sessionId))}">${esc(s.sessionId)}</a></td><td>${s.pendingInputs}</td>` +
            `<td>${esc(age(s.oldestPendingAgeMs))}</td><td>${s.leaseLive ? 'live' : '-'}</td><td>${s.stalledClaims || '-'}</td></tr>`,
        )
        .join('');
      res.send(
        page(
          `sessions ${keyPrefix}`,
          `<h1>Sessions with pending input <small>(prefix ${esc(keyPrefix)}${writable ? ', writable' : ', read-only'})</small></h1>` +
            (sessions.length === 0
              ? '<p class="note">No session has pending input.</p>'
              : `<table id="sessions"><thead><tr><th>session</th><th>pending inputs</th><th>oldest pending</th><th>lease</th><th>stalled claims</th></tr></thead><tbody>${rows}</tbody></table>`) +
            '<p class="note">Oldest pending input first. Sessions are read from the dispatch index (SPEC 17.5).</p>',
        ),
      );
    } catch (e) {
      fail(res, e);
    }
  });

  const showSession = async (req: Request, res: Response, sessionId: string, message = '') => {
    let view: InspectView;
    let failed: PendingTurnInput[];
    try {
      view = await inspectSession({ client, keyPrefix }, sessionId);
      failed = await inputs.listFailed(ctx, sessionId);
    } catch (e) {
      fail(res, e);
      return;
    }
    const retryForm = (inputId: string) =>
      writable
        ? `<form method="post" action="${esc(sessionHref(sessionId))}/retry">` +
          `<input type="hidden" name="inputId" value="${esc(inputId)}"><input type="hidden" name="token" value="${csrf}">` +
          `<button type="submit" data-retry="${esc(inputId)}">Retry</button></form>`
        : '';
    const failedTable =
      failed.length === 0
        ? ''
        : `<h2>Failed inputs</h2><table id="failed"><thead><tr><th>seq</th><th>input</th><th>attempts</th><th>last error</th><th></th></tr></thead><tbody>${failed
            .map(
              (f) =>
                `<tr data-input="${esc(f.inputId)}"><td>${f.enqueueSeq}</td><td>${esc(f.inputId)}</td><td>${f.attempts ?? ''}</td>` +
                `<td>${esc(f.lastError ?? '')}</td><td>${retryForm(f.inputId)}</td></tr>`,
            )
            .join('')}</tbody></table>`;
    const actions = (row: InspectRow): string => {
      if (!writable) return '';
      let html = '';
      if (cancellable(row)) {
        html +=
          `<form method="post" action="${esc(sessionHref(sessionId))}/cancel">` +
          `<input type="hidden" name="inputId" value="${esc(row.inputId)}"><input type="hidden" name="token" value="${csrf}">` +
          `<button type="submit" data-cancel="${esc(row.inputId)}">Cancel</button></form>`;
      }
      return html;
    };
    const rows = view.rows
      .map(
        (r) =>
          `<tr data-input="${esc(r.inputId)}"><td>${r.enqueueSeq}</td><td>${esc(r.inputId)}${r.sourceKey ? ` <small>src ${esc(r.sourceKey)}</small>` : ''}</td>` +
          `<td>${esc(r.state)}</td><td>${esc(r.ingress.scope === 'active_turn' ? `active_turn ${r.ingress.turnId}` : 'next_turn')}</td>` +
          `<td>${esc(age(Math.max(0, view.nowMs - r.enqueuedAtMs)))}</td>` +
          `<td>${r.claim ? esc(`${r.claim.claimId} gen ${r.claim.generation}${r.claim.live ? ' live' : ''}${r.claim.stalled ? ' STALLED' : ''}`) : '-'}</td>` +
          `<td>${actions(r)}</td></tr>`,
      )
      .join('');
    void req;
    const interruptForm =
      writable && view.lease.status === 'live'
        ? `<form method="post" action="${esc(sessionHref(sessionId))}/interrupt">` +
          `<input type="hidden" name="token" value="${csrf}">` +
          '<button type="submit" id="interrupt">Interrupt the running turn</button></form>'
        : '';
    res.send(
      page(
        `session ${sessionId}`,
        `<h1>Session ${esc(sessionId)}</h1>${message}${interruptForm}` +
          (view.rows.length === 0
            ? '<p class="note">No non-terminal input.</p>'
            : `<table id="inputs"><thead><tr><th>seq</th><th>input</th><th>state</th><th>ingress</th><th>age</th><th>claim</th><th></th></tr></thead><tbody>${rows}</tbody></table>`) +
          failedTable +
          `<h2>Inspect</h2><pre id="inspect">${esc(formatInspect(view))}</pre>`,
      ),
    );
  };

  router.get('/sessions/:sessionId', (req: Request, res: Response) => {
    const message =
      typeof req.query.done === 'string'
        ? `<p class="ok" id="message">${esc(req.query.done)}: ${esc(req.query.outcome ?? '')}</p>`
        : '';
    return showSession(req, res, String(req.params.sessionId), message);
  });

  /** The checks of every write: writable, and the page's token. Answers and returns false when refused. */
  const mayWrite = (req: Request, res: Response): boolean => {
    if (!writable) {
      res
        .status(403)
        .send(page('read-only', '<p class="err">The dashboard is read-only (start it with --writable).</p>'));
      return false;
    }
    if ((req.body as { token?: unknown } | undefined)?.token !== csrf) {
      res.status(403).send(page('refused', '<p class="err">Missing or stale form token: reload the page.</p>'));
      return false;
    }
    return true;
  };
  const form = express.urlencoded({ extended: false, limit: '8kb' });

  // Cancel a queued input (the cancel rule of SPEC 5.3 decides; the outcome is shown).
  router.post('/sessions/:sessionId/cancel', form, async (req: Request, res: Response) => {
    if (!mayWrite(req, res)) return;
    const sessionId = String(req.params.sessionId);
    const inputId = String((req.body as { inputId?: unknown }).inputId ?? '');
    try {
      const [result] = await inputs.cancel(ctx, sessionId, [{ kind: 'input_id', value: inputId }]);
      res.redirect(
        303,
        `${sessionHref(sessionId)}?${new URLSearchParams({ done: inputId, outcome: result.outcome.outcome })}`,
      );
    } catch (e) {
      fail(res, e);
    }
  });

  // Put a failed input back (retryFailedTurnInputs, SPEC 3.8).
  router.post('/sessions/:sessionId/retry', form, async (req: Request, res: Response) => {
    if (!mayWrite(req, res)) return;
    const sessionId = String(req.params.sessionId);
    const inputId = String((req.body as { inputId?: unknown }).inputId ?? '');
    try {
      const [result] = await inputs.retryFailed(ctx, sessionId, [inputId]);
      res.redirect(
        303,
        `${sessionHref(sessionId)}?${new URLSearchParams({ done: inputId, outcome: result.outcome.outcome })}`,
      );
    } catch (e) {
      fail(res, e);
    }
  });

  // Interrupt the running turn (requestTurnInterrupt, SPEC 3.9): the stop button, no new input.
  router.post('/sessions/:sessionId/interrupt', form, async (req: Request, res: Response) => {
    if (!mayWrite(req, res)) return;
    const sessionId = String(req.params.sessionId);
    try {
      const result = await lease.requestInterrupt(ctx, sessionId, { reason: 'dashboard' });
      res.redirect(
        303,
        `${sessionHref(sessionId)}?${new URLSearchParams({ done: 'interrupt', outcome: result.interrupted ? `generation ${result.generation} interrupted` : 'no live turn' })}`,
      );
    } catch (e) {
      fail(res, e);
    }
  });

  return router;
}
