/**
 * zod schemas for every public argument. Validation happens before any I/O; a failure is
 * StoreError('InvalidInput', { issues }) where each issue starts with the dotted path of the field.
 * Unknown properties on structured arguments and options are InvalidInput naming them (issue 22:
 * a misspelt option, or a field a newer version understands, must not be dropped silently). Where
 * the contract lets a caller pass a richer object (a full lease as a fence, a full claim to
 * abandon), that object's own fields are known keys. Opaque payloads and a node's extra fields are
 * kept verbatim.
 */
import { z } from 'zod';
import { invalidInput } from './errors.js';
import type { JsonValue, SessionNodeRecord } from './types.js';

const MAX_ID_BYTES = 4096;
/** A UTF-16 unit is at most 3 UTF-8 bytes, so a string this short always fits in MAX_ID_BYTES. */
const MAX_ID_UNITS_ALWAYS_FITTING = Math.floor(MAX_ID_BYTES / 3);
const LONE_SURROGATE = /\p{Surrogate}/u;

const isWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

function wellFormed(s: string): boolean {
  // String.prototype.isWellFormed (Node >= 20) is a native scan, several times cheaper than the regex.
  if (isWellFormed !== undefined) return isWellFormed.call(s);
  // A lone surrogate survives the /u regex as its own code point; paired ones do not match.
  return !LONE_SURROGATE.test(s);
}

/** A zod issue as `.refine(fn, message)` raises it (non-aborting), for the raw checks below. */
function refineIssue(input: unknown, message: string, path: PropertyKey[] = []) {
  return { code: 'custom' as const, message, input, path, continue: true };
}

/** The message of an unknown-keys issue: names every key. Other issues keep zod's message. */
function strictError(issue: { code?: string; keys?: PropertyKey[] }): string | undefined {
  if (issue.code !== 'unrecognized_keys' || !issue.keys) return undefined;
  const names = issue.keys.map((k) => JSON.stringify(String(k))).join(', ');
  return `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${names} (not part of this argument)`;
}

/** An object schema that rejects unknown keys (every structured argument and option object). */
export function strictObject<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.strictObject(shape, { error: strictError });
}

/**
 * The unknown-keys issue of an options object that is not a zod schema (it holds functions or
 * clients), or none: `path: unknown key "x" ...`, worded as strictObject words it.
 */
export function unknownKeyIssues(value: unknown, known: readonly string[], path: string): string[] {
  if (!isPlainObject(value)) return [];
  const keys = Object.keys(value).filter((k) => !known.includes(k));
  if (keys.length === 0) return [];
  return [`${path}: ${strictError({ code: 'unrecognized_keys', keys })}`];
}

/** A string that must be well-formed Unicode (no lone surrogates); any length. */
export const textSchema = z.string().refine(wellFormed, 'must be well-formed Unicode (no lone surrogates)');

/** Identifiers: non-empty, well-formed, at most 4096 UTF-8 bytes; any character allowed. */
export const idSchema = z
  .string({ error: 'must be a string' })
  // One raw check instead of .min() and two .refine()s (ids are validated a dozen times per
  // commit), with no byte count for strings too short to exceed the limit.
  .check((payload) => {
    const s = payload.value;
    if (s.length === 0) payload.issues.push(refineIssue(s, 'must be a non-empty string'));
    if (!wellFormed(s)) payload.issues.push(refineIssue(s, 'must be well-formed Unicode (no lone surrogates)'));
    if (s.length > MAX_ID_UNITS_ALWAYS_FITTING && Buffer.byteLength(s, 'utf8') > MAX_ID_BYTES) {
      payload.issues.push(refineIssue(s, `must be at most ${MAX_ID_BYTES} bytes in UTF-8`));
    }
  });

const isSafeNonNegInt = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
const isLeaseTtl = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 86_400_000;
const isMaxInputs = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 1000;

const safeNonNegInt = z
  .number({ error: 'must be a safe integer >= 0' })
  .refine(isSafeNonNegInt, 'must be a safe integer >= 0');

export const leaseTtlSchema = z
  .number({ error: 'must be an integer in 0..86400000' })
  .refine(isLeaseTtl, 'must be an integer in 0..86400000');

export const maxInputsSchema = z
  .number({ error: 'must be an integer in 0..1000' })
  .refine(isMaxInputs, 'must be an integer in 0..1000');

// ---------------------------------------------------------------- opaque JSON

/** The problem of a value that is not an object, or undefined when it is a JSON scalar. */
export function scalarIssue(value: unknown): string | undefined {
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'string') return wellFormed(value) ? undefined : 'must be well-formed Unicode';
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'must be a finite number';
  return `must be a JSON value (got ${typeof value})`;
}

/** A member of an array or object: scalars are checked here, without building their path. */
function memberIssues(v: unknown, path: string, key: string | number, issues: string[], seen: Set<object>): void {
  if (v !== null && typeof v === 'object') {
    jsonIssues(v, path === '' ? `${key}` : `${path}.${key}`, issues, seen);
  } else if (issues.length < 20) {
    const issue = scalarIssue(v);
    if (issue !== undefined) issues.push(`${path === '' ? key : `${path}.${key}`}: ${issue}`);
  }
}

/**
 * Collects the problems of a would-be JSON payload; an empty list means it is a JSON value.
 * Scalar members are checked in the loops, so a clean payload builds no path strings except for
 * its nested objects (it runs on every enqueue and commit).
 */
export function jsonIssues(value: unknown, path: string, issues: string[], seen: Set<object> = new Set()): void {
  if (issues.length >= 20) return;
  const at = path === '' ? '(value)' : path;
  if (value === null || typeof value !== 'object') {
    const issue = scalarIssue(value);
    if (issue !== undefined) issues.push(`${at}: ${issue}`);
    return;
  }
  if (seen.has(value)) {
    issues.push(`${at}: must not be cyclic`);
    return;
  }
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      // JSON.stringify writes null for undefined array slots, so only reject real junk.
      if (v === undefined) issues.push(`${path}.${i}: must be a JSON value (got undefined)`);
      else memberIssues(v, path, i, issues, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      issues.push(`${at}: must be a plain object (got ${proto?.constructor?.name ?? 'an instance'})`);
    } else {
      for (const key of Object.keys(value)) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        if (!wellFormed(key)) issues.push(`${at}: keys must be well-formed Unicode`);
        memberIssues(v, path, key, issues, seen);
      }
      if (Object.getOwnPropertySymbols(value).length > 0) issues.push(`${at}: must not have symbol keys`);
    }
  }
  seen.delete(value);
}

/** A JSON payload, validated in place and returned as the same reference (the store copies it). */
export const jsonSchema = z.custom<JsonValue>().check((payload) => {
  const value = payload.value;
  const issues: string[] = [];
  jsonIssues(value, '', issues);
  for (const issue of issues) {
    // Report nested problems relative to the field zod is checking.
    const [sub, message] = splitIssue(issue);
    payload.issues.push(refineIssue(value, message, sub === '' ? [] : sub.split('.')));
  }
});

function splitIssue(issue: string): [string, string] {
  const i = issue.indexOf(': ');
  const p = issue.slice(0, i);
  return [p === '(value)' ? '' : p, issue.slice(i + 2)];
}

export const bytesSchema = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a Uint8Array or Buffer');

// ---------------------------------------------------------------- leases

const isPid = (n: number): boolean => Number.isSafeInteger(n) && n >= 1;

export const livenessSchema = z.discriminatedUnion(
  'kind',
  [
    strictObject({ kind: z.literal('opaque') }),
    strictObject({
      kind: z.literal('local_process'),
      hostId: idSchema,
      bootId: idSchema,
      pid: z.number().refine(isPid, 'must be an integer >= 1'),
      processStart: idSchema,
    }),
  ],
  { error: "must be { kind: 'opaque' } or { kind: 'local_process', ... }" },
);

export const ownerSchema = strictObject({
  ownerId: idSchema,
  incarnationId: idSchema,
  liveness: livenessSchema.optional(),
});

const fenceFields = {
  sessionId: idSchema,
  owner: ownerSchema,
  leaseToken: idSchema,
  fencingToken: safeNonNegInt,
};

export const leaseSchema = strictObject({
  ...fenceFields,
  claimedAtEpochMs: safeNonNegInt,
  expiresAtEpochMs: safeNonNegInt,
});

/**
 * A fence. A full SessionExecutionLease passes too: its two times are known keys, not read, and
 * left out of the parsed value (which is exactly a fence).
 */
export const fenceSchema = strictObject({
  ...fenceFields,
  claimedAtEpochMs: z.unknown().optional(),
  expiresAtEpochMs: z.unknown().optional(),
}).transform(({ claimedAtEpochMs: _c, expiresAtEpochMs: _e, ...fence }) => fence);

// ---------------------------------------------------------------- turn inputs

export const checkpointKindSchema = z.enum(['after_work', 'before_completion'], {
  error: "must be 'after_work' or 'before_completion'",
});

export const ingressSchema = z.discriminatedUnion(
  'scope',
  [
    strictObject({ scope: z.literal('active_turn'), turnId: idSchema, minBoundary: checkpointKindSchema.optional() }),
    strictObject({ scope: z.literal('next_turn') }),
  ],
  { error: "must be { scope: 'active_turn', turnId } or { scope: 'next_turn' }" },
);

export const draftSchema = strictObject({
  sessionId: idSchema,
  inputId: idSchema.optional(),
  sourceKey: idSchema.optional(),
  ingress: ingressSchema,
  input: jsonSchema,
  whenBusy: z
    .enum(['enqueue', 'reject', 'interrupt', 'rollback'], {
      error: "must be 'enqueue', 'reject', 'interrupt' or 'rollback'",
    })
    .optional(),
}).refine((d) => d.whenBusy === undefined || d.whenBusy === 'enqueue' || d.ingress.scope === 'next_turn', {
  message: "whenBusy other than 'enqueue' needs ingress { scope: 'next_turn' }",
  path: ['whenBusy'],
});

export const interruptPolicySchema = z.enum(['interrupt', 'rollback'], { error: "must be 'interrupt' or 'rollback'" });

/** requestTurnInterrupt's options: a short reason and the policy. */
export const interruptOptionsSchema = z
  .custom<Record<string, unknown>>((v) => isPlainObject(v), "must be a plain object such as { reason: 'stop' }")
  .pipe(
    strictObject({
      reason: textSchema.refine((s) => s.length <= 1024, 'must be at most 1024 characters').optional(),
      policy: interruptPolicySchema.optional(),
    }),
  )
  .optional();

export const cancelTargetSchema = z.discriminatedUnion(
  'kind',
  [
    strictObject({ kind: z.literal('input_id'), value: idSchema }),
    strictObject({ kind: z.literal('source_key'), value: idSchema }),
  ],
  { error: "must be { kind: 'input_id' | 'source_key', value }" },
);

export const cancelTargetsSchema = z.array(cancelTargetSchema).max(1000, 'must have at most 1000 entries');

export const claimActiveRequestSchema = strictObject({
  sessionId: idSchema,
  fence: fenceSchema,
  owner: ownerSchema,
  turnId: idSchema,
  checkpoint: checkpointKindSchema,
  leaseTtlMs: leaseTtlSchema,
  maxInputs: maxInputsSchema,
});

export const claimNextRequestSchema = strictObject({
  sessionId: idSchema,
  fence: fenceSchema,
  owner: ownerSchema,
  leaseTtlMs: leaseTtlSchema,
  maxInputs: maxInputsSchema,
});

const claimModeSchema = z.discriminatedUnion('kind', [
  strictObject({ kind: z.literal('active_turn'), turnId: idSchema, checkpoint: checkpointKindSchema }),
  strictObject({ kind: z.literal('next_turn') }),
]);

/** A row of a claim: only inputId is read; the other keys are those of a PendingTurnInput. */
const claimedInputSchema = strictObject({
  inputId: idSchema,
  sessionId: z.unknown().optional(),
  enqueueSeq: z.unknown().optional(),
  sourceKey: z.unknown().optional(),
  ingress: z.unknown().optional(),
  state: z.unknown().optional(),
  enqueuedAtMs: z.unknown().optional(),
  input: z.unknown().optional(),
  attempts: z.unknown().optional(),
  lastError: z.unknown().optional(),
  traceContext: z.unknown().optional(),
});

/**
 * What abandon needs of a claim: its session, id, token and mode; the inputs only bound the work.
 * The other keys of a TurnInputClaim are known (a claim is passed whole) and not read.
 */
export const claimSchema = strictObject({
  sessionId: idSchema,
  claimId: idSchema,
  leaseToken: idSchema,
  owner: z.unknown().optional(),
  fencingToken: z.unknown().optional(),
  sessionLeaseGeneration: z.unknown().optional(),
  claimedAtEpochMs: z.unknown().optional(),
  expiresAtEpochMs: z.unknown().optional(),
  mode: claimModeSchema,
  inputs: z.array(claimedInputSchema).max(1000, 'must have at most 1000 entries'),
});

export const claimsSchema = z.array(claimSchema);

const isMaxAttempts = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 1000;

export const maxAttemptsSchema = z
  .number({ error: 'must be an integer in 1..1000' })
  .refine(isMaxAttempts, 'must be an integer in 1..1000');

/** The options of abandonTurnInputClaim(s) (SPEC 3.8). */
export const abandonOptionsSchema = strictObject({
  failure: strictObject({ error: textSchema, maxAttempts: maxAttemptsSchema }).optional(),
}).optional();

/** The ids of retryFailedTurnInputs: at most 1000 (repeats allowed, applied in order). */
export const retryInputIdsSchema = z.array(idSchema).max(1000, 'must have at most 1000 entries');

/** No repeated element; short lists (the usual one or two ids) are compared without a Set. */
export function distinct(ids: string[]): boolean {
  if (ids.length > 8) return new Set(ids).size === ids.length;
  for (let i = 1; i < ids.length; i++) {
    for (let j = 0; j < i; j++) if (ids[i] === ids[j]) return false;
  }
  return true;
}

export const completionSchema = strictObject({
  sessionId: idSchema,
  claimId: idSchema,
  leaseToken: idSchema,
  inputIds: z
    .array(idSchema)
    .refine((ids) => ids.length >= 1 && ids.length <= 1000 && distinct(ids), 'must list 1 to 1000 distinct ids'),
});

// ---------------------------------------------------------------- session commit

/** An object literal's kind of object (prototype Object.prototype or null), not an array or instance. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const nodeFields = z
  .object({
    nodeId: idSchema,
    parentNodeId: idSchema.optional(),
    timestamp: textSchema,
  })
  .loose();

/**
 * A node: nodeId, optional parentNodeId, timestamp, and any extra JSON fields, kept verbatim. The
 * node must be a plain JSON object; the ORIGINAL object is returned, because rebuilding it (as a
 * zod object parse does) would silently drop an own field named `__proto__` (from JSON.parse).
 */
export const nodeSchema = z.custom<SessionNodeRecord>().superRefine((value, ctx) => {
  if (!isPlainObject(value)) {
    ctx.addIssue({ code: 'custom', message: 'must be a plain object' });
    return;
  }
  const fields = nodeFields.safeParse(value);
  if (!fields.success) {
    for (const issue of fields.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  }
  const issues: string[] = [];
  jsonIssues(value, '', issues);
  for (const issue of issues) {
    const [sub, message] = splitIssue(issue);
    ctx.addIssue({ code: 'custom', message, path: sub === '' ? [] : sub.split('.') });
  }
});

function noDuplicateNodeIds(nodes: unknown[], ctx: z.RefinementCtx): void {
  const seen = new Set<unknown>();
  nodes.forEach((n, i) => {
    // zod still runs this refinement when an element failed; such elements are reported already.
    if (!isPlainObject(n)) return;
    if (seen.has(n.nodeId)) ctx.addIssue({ code: 'custom', message: 'duplicate nodeId', path: [i, 'nodeId'] });
    seen.add(n.nodeId);
  });
}

const nodesSchema = z.array(nodeSchema).superRefine(noDuplicateNodeIds);

export const graphDeltaSchema = z.discriminatedUnion(
  'kind',
  [
    strictObject({ kind: z.literal('unchanged'), leafNodeId: idSchema.optional() }),
    strictObject({ kind: z.literal('append'), nodes: nodesSchema, leafNodeId: idSchema.optional() }),
    strictObject({
      kind: z.literal('replace_full'),
      graph: strictObject({ nodes: nodesSchema, leafNodeId: idSchema.optional() }),
    }),
  ],
  { error: "must be { kind: 'unchanged' | 'append' | 'replace_full', ... }" },
);

export const checkpointSchema = strictObject({
  turnState: jsonSchema,
  toolStateRef: idSchema.optional(),
  toolState: jsonSchema.optional(),
  pluginSnapshotRef: idSchema.optional(),
  pluginSnapshot: jsonSchema.optional(),
  pluginSnapshotRevision: z.number().refine(isSafeNonNegInt, 'must be a safe integer >= 0').optional(),
  executionStateRef: idSchema.optional(),
  executionState: bytesSchema.optional(),
});

export const tokenUsageSchema = strictObject({
  inputTokens: safeNonNegInt,
  outputTokens: safeNonNegInt,
  cacheReadInputTokens: safeNonNegInt,
  cacheWriteInputTokens: safeNonNegInt,
  reasoningOutputTokens: safeNonNegInt,
});

export const ledgerEntrySchema = strictObject({ source: textSchema, model: textSchema, usage: tokenUsageSchema });

export const turnCommitStampSchema = strictObject({ sessionId: idSchema, turnId: idSchema, turnCommitHash: idSchema });

export const queuedWorkCompletionSchema = strictObject({
  sessionId: idSchema,
  claimId: idSchema,
  leaseToken: idSchema,
  batchIds: z.array(idSchema),
});

export const runtimeCommitSchema = z
  .strictObject(
    {
      sessionId: idSchema,
      expectedHeadRevision: safeNonNegInt.optional(),
      sessionExecutionLease: fenceSchema.optional(),
      releaseSessionExecutionLease: fenceSchema.optional(),
      config: jsonSchema,
      agentFrames: z.array(jsonSchema),
      currentAgentFrameId: textSchema,
      graph: graphDeltaSchema,
      checkpoint: checkpointSchema,
      usageDeltas: z.array(ledgerEntrySchema),
      turnCommit: turnCommitStampSchema.optional(),
      completedQueueClaims: z.array(queuedWorkCompletionSchema).optional(),
      completedTurnInputClaims: z.array(completionSchema),
      interruptedTurnInputTurnId: idSchema.optional(),
      committedAttachmentIds: z.array(idSchema),
    },
    { error: strictError },
  )
  // A raw check rather than superRefine, which allocates an addIssue closure on every parse.
  .check((payload) => {
    const c = payload.value;
    if (c.releaseSessionExecutionLease && c.releaseSessionExecutionLease.sessionId !== c.sessionId) {
      payload.issues.push(
        refineIssue(c, 'must name the commit session', ['releaseSessionExecutionLease', 'sessionId']),
      );
    }
  });

export const readScopeSchema = z.discriminatedUnion(
  'kind',
  [
    strictObject({ kind: z.literal('full_graph') }),
    strictObject({ kind: z.literal('active_path'), leafNodeId: idSchema.optional() }),
  ],
  { error: "must be { kind: 'full_graph' } or { kind: 'active_path', leafNodeId? }" },
);

export const sessionMetaSchema = strictObject({
  sessionId: idSchema,
  sessionName: textSchema,
  createdAt: textSchema,
  model: textSchema,
  cwd: textSchema.optional(),
  relation: z.discriminatedUnion(
    'kind',
    [
      strictObject({ kind: z.literal('root') }),
      strictObject({ kind: z.literal('child'), parentSessionId: idSchema, causedBy: jsonSchema.optional() }),
    ],
    { error: "must be { kind: 'root' } or { kind: 'child', parentSessionId }" },
  ),
});

// ---------------------------------------------------------------- attachments

export const attachmentIntentSchema = strictObject({
  attachmentId: idSchema,
  sessionId: idSchema,
  canonicalUri: textSchema,
  intentAtEpochMs: safeNonNegInt,
});

export const epochCutoffSchema = safeNonNegInt;
export const attachmentIdsSchema = z.array(idSchema);

// ---------------------------------------------------------------- store options

export const strandedSchema = z.enum(['requeue', 'keep'], { error: "must be 'requeue' or 'keep'" });

export const vacuumOptionsSchema = z
  .custom<Record<string, unknown>>((v) => isPlainObject(v), 'must be a plain object such as { olderThanMs }')
  .pipe(strictObject({ olderThanMs: safeNonNegInt.optional() }))
  .optional();

export const deleteSessionOptionsSchema = z
  .custom<Record<string, unknown>>((v) => isPlainObject(v), 'must be a plain object such as { force: true }')
  .pipe(strictObject({ force: z.boolean({ error: 'must be a boolean' }).optional() }))
  .optional();

/** A store's keyPrefix: no ':', braces or spaces (it also names the dispatch queue). */
export const KEY_PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

const providerSchema = <P>(method: string) =>
  z.custom<P>(
    (v) => typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[method] === 'function',
    `must be an object with a ${method} method`,
  );

export const telemetryOptionsSchema = strictObject({
  enabled: z.boolean({ error: 'must be a boolean' }).optional(),
  sessionId: z.enum(['raw', 'hashed', 'omit'], { error: "must be 'raw', 'hashed' or 'omit'" }).optional(),
  tracerProvider: providerSchema<{ getTracer(name: string, version?: string): unknown }>('getTracer').optional(),
  meterProvider: providerSchema<{ getMeter(name: string, version?: string): unknown }>('getMeter').optional(),
});
const maxPendingSchema = z
  .number({ error: 'must be an integer in 1..1000000' })
  .refine((n) => Number.isInteger(n) && n >= 1 && n <= 1_000_000, 'must be an integer in 1..1000000');

const pendingTtlSchema = z
  .number({ error: 'must be an integer in 1..2592000000' })
  .refine((n) => Number.isInteger(n) && n >= 1 && n <= 2_592_000_000, 'must be an integer in 1..2592000000');

export const redisOptionsSchema = strictObject({
  redis: z.unknown().optional(),
  connectTimeoutMs: z
    .number({ error: 'must be an integer in 1..600000' })
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= 600_000, 'must be an integer in 1..600000')
    .optional(),
  keyPrefix: z.string().regex(KEY_PREFIX_PATTERN, `must match ${KEY_PREFIX_PATTERN}`).optional(),
  durability: z.enum(['auto', 'durable', 'inline'], { error: "must be 'auto', 'durable' or 'inline'" }).optional(),
  strandedTurnInputs: strandedSchema.optional(),
  activeInputGraceMs: leaseTtlSchema.optional(),
  tombstoneRetentionMs: safeNonNegInt.optional(),
  idleDispatch: z.boolean({ error: 'must be a boolean' }).optional(),
  sessionRetentionMs: safeNonNegInt.optional(),
  writeBatching: z.enum(['coalesce', 'off'], { error: "must be 'coalesce' or 'off'" }).optional(),
  telemetry: telemetryOptionsSchema.optional(),
  maxPendingPerSession: maxPendingSchema.optional(),
  pendingTtlMs: pendingTtlSchema.optional(),
});

export const memoryOptionsSchema = strictObject({
  now: z.custom<() => number>((v) => typeof v === 'function', 'must be a function').optional(),
  strandedTurnInputs: strandedSchema.optional(),
  activeInputGraceMs: leaseTtlSchema.optional(),
  tombstoneRetentionMs: safeNonNegInt.optional(),
  sessionRetentionMs: safeNonNegInt.optional(),
  telemetry: telemetryOptionsSchema.optional(),
  maxPendingPerSession: maxPendingSchema.optional(),
  pendingTtlMs: pendingTtlSchema.optional(),
});

// ---------------------------------------------------------------- running a schema

function formatIssues(error: z.ZodError, root: string, relative: boolean): string[] {
  return error.issues.map((issue) => {
    const inner = issue.path.map(String);
    const parts = relative && inner.length > 0 ? inner : [root, ...inner];
    const path = parts.filter((p) => p !== '').join('.');
    return `${path === '' ? '(argument)' : path}: ${issue.message}`;
  });
}

/**
 * Parses the single structured argument of a method (a draft, request, commit, ...). Issue paths
 * are relative to it, as in SPEC 2.4 (`maxInputs: ...` for a claim request); `name` is used only
 * when the argument as a whole is wrong. Throws InvalidInput listing every problem.
 */
export function parseArg<S extends z.ZodType>(schema: S, value: unknown, name: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw invalidInput(formatIssues(result.error, name, true));
  return result.data;
}

/** Parses several named arguments at once (paths start with the parameter name), reporting every problem. */
export function parseArgs<T extends Record<string, z.ZodType>>(
  shape: T,
  values: { [K in keyof T]: unknown },
): { [K in keyof T]: z.output<T[K]> } {
  const issues: string[] = [];
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    const result = shape[key].safeParse(values[key]);
    if (result.success) out[key] = result.data;
    else issues.push(...formatIssues(result.error, key, false));
  }
  if (issues.length > 0) throw invalidInput(issues);
  return out as { [K in keyof T]: z.output<T[K]> };
}
