/**
 * Argument checking for every public method, shared by both backends so they reject exactly
 * the same things. Each function returns the parsed (stripped, typed) arguments or throws
 * InvalidInput before any I/O.
 */
import { z } from 'zod';
import * as S from './schemas.js';

type Out<T extends z.ZodType> = z.output<T>;

// Built once: one object parse instead of one parse per argument (parseArgs) on every turn.
const tryClaimArgs = z.object({ sessionId: S.idSchema, owner: S.ownerSchema, leaseTtlMs: S.leaseTtlSchema });

export const args = {
  tryClaim: (sessionId: unknown, owner: unknown, leaseTtlMs: unknown) =>
    S.parseArg(tryClaimArgs, { sessionId, owner, leaseTtlMs }, 'arguments'),
  reclaim: (sessionId: unknown, owner: unknown, observedHolder: unknown, leaseTtlMs: unknown) =>
    S.parseArgs(
      { sessionId: S.idSchema, owner: S.ownerSchema, observedHolder: S.fenceSchema, leaseTtlMs: S.leaseTtlSchema },
      { sessionId, owner, observedHolder, leaseTtlMs },
    ),
  renew: (fence: unknown, leaseTtlMs: unknown) =>
    S.parseArgs({ fence: S.fenceSchema, leaseTtlMs: S.leaseTtlSchema }, { fence, leaseTtlMs }),
  release: (completion: unknown) => S.parseArg(S.fenceSchema, completion, 'completion'),
  interrupt: (sessionId: unknown, options: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, options: S.interruptOptionsSchema }, { sessionId, options }),

  enqueue: (draft: unknown): ParsedDraft => S.parseArg(S.draftSchema, draft, 'draft'),
  sessionId: (sessionId: unknown) => S.parseArg(S.idSchema, sessionId, 'sessionId'),
  cancel: (sessionId: unknown, targets: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, targets: S.cancelTargetsSchema }, { sessionId, targets }),
  cancelOne: (sessionId: unknown, inputId: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, inputId: S.idSchema }, { sessionId, inputId }),
  suffix: (sessionId: unknown, anchor: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, anchor: S.cancelTargetSchema }, { sessionId, anchor }),
  claimActive: (request: unknown) => S.parseArg(S.claimActiveRequestSchema, request, 'request'),
  claimNext: (request: unknown): ParsedClaimNext => S.parseArg(S.claimNextRequestSchema, request, 'request'),
  abandon: (claim: unknown) => S.parseArg(S.claimSchema, claim, 'claim'),
  abandonMany: (claims: unknown) => S.parseArgs({ claims: S.claimsSchema }, { claims }).claims,
  abandonOptions: (options: unknown) => S.parseArgs({ options: S.abandonOptionsSchema }, { options }).options,
  retryFailed: (sessionId: unknown, inputIds: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, inputIds: S.retryInputIdsSchema }, { sessionId, inputIds }),
  vacuum: (options: unknown) => S.parseArg(S.vacuumOptionsSchema, options, 'options'),
  deleteSession: (sessionId: unknown, options: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, options: S.deleteSessionOptionsSchema }, { sessionId, options }),

  commit: (commit: unknown): ParsedCommit => S.parseArg(S.runtimeCommitSchema, commit, 'commit'),
  readScope: (scope: unknown) => S.parseArg(S.readScopeSchema, scope, 'scope'),
  nodeId: (nodeId: unknown) => S.parseArg(S.idSchema, nodeId, 'nodeId'),
  meta: (meta: unknown) => S.parseArg(S.sessionMetaSchema, meta, 'meta'),

  recordIntent: (intent: unknown) => S.parseArg(S.attachmentIntentSchema, intent, 'intent'),
  commitRefs: (sessionId: unknown, attachmentIds: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, attachmentIds: S.attachmentIdsSchema }, { sessionId, attachmentIds }),
  cutoff: (name: string, value: unknown) => S.parseArg(S.epochCutoffSchema, value, name),
  hasLiveRef: (attachmentId: unknown, cutoffEpochMs: unknown) =>
    S.parseArgs({ attachmentId: S.idSchema, cutoffEpochMs: S.epochCutoffSchema }, { attachmentId, cutoffEpochMs }),
  attachmentPair: (sessionId: unknown, attachmentId: unknown) =>
    S.parseArgs({ sessionId: S.idSchema, attachmentId: S.idSchema }, { sessionId, attachmentId }),
};

export type ParsedDraft = Out<typeof S.draftSchema>;
export type ParsedCommit = Out<typeof S.runtimeCommitSchema>;
export type ParsedClaimActive = Out<typeof S.claimActiveRequestSchema>;
export type ParsedClaimNext = Out<typeof S.claimNextRequestSchema>;
export type ParsedClaim = Out<typeof S.claimSchema>;
export type ParsedAbandonOptions = Out<typeof S.abandonOptionsSchema>;

/** The stored form of a failure's error text: its first 1000 characters (code points). */
export function boundedErrorText(error: string): string {
  if (error.length <= 1000) return error;
  return Array.from(error).slice(0, 1000).join('');
}
