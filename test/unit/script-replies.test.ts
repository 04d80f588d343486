/**
 * The reply forms of the scripts (src/redis/error-map.ts, row-codec.ts): every reply is a table,
 * `{ 0, ... }` on success or `{ code, detailsJson }` on a domain error; a new enqueue answers
 * `'new', state, seq, enqueuedAtMs`; rows come back as triples (input id, record, state entry),
 * with the claim entry as a fourth element where a reply carries it. Pure: no Redis here (the
 * conformance suite runs every script).
 */
import { describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import { unwrapReply } from '../../src/redis/error-map.js';
import {
  decodeCancelResults,
  decodeInputTriples,
  newInput,
  parseRow,
  parseRowQuads,
} from '../../src/redis/row-codec.js';
import { SCRIPT_ERROR_CODES } from '../../src/redis/script-errors.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isStoreError(e) ? e.code : 'not a StoreError';
  }
  return undefined;
}

const OWNER = { ownerId: 'w', incarnationId: 'w:1', liveness: { kind: 'opaque' } } as const;
const record = (r: Record<string, unknown>) =>
  JSON.stringify({ seq: 1, at: 5, enqueuedAs: 'deferred_next_turn', ...r });

describe('script replies', () => {
  test('a table with status 0 is its payload; anything but a table with a numeric status is Backend', () => {
    expect(unwrapReply([0, 'a', 2])).toEqual(['a', 2]);
    expect(unwrapReply([0])).toEqual([]);
    expect(unwrapReply([0, [1, 2], ''])).toEqual([[1, 2], '']);
    // Bare integers and strings are no longer replies of any script.
    for (const bad of [7, 0, '3:1796223203011', 'OK', null, undefined, [], ['0'], [null], {}]) {
      expect(
        codeOf(() => unwrapReply(bad)),
        JSON.stringify(bad),
      ).toBe('Backend');
    }
  });

  test('a domain error becomes its StoreError with the details; anything else is Backend', () => {
    let caught: unknown;
    try {
      unwrapReply([-1, '{"sessionId":"s"}']);
    } catch (e) {
      caught = e;
    }
    expect(isStoreError(caught) && caught.code === 'SessionExecutionLeaseExpired').toBe(true);
    expect((caught as { details: unknown }).details).toEqual({ sessionId: 's' });
    // Every code of src/redis/script-errors.ts maps back to its name.
    for (const [name, code] of Object.entries(SCRIPT_ERROR_CODES)) {
      expect(codeOf(() => unwrapReply([code, '{}']))).toBe(name);
    }
    // Details that are not a JSON object become {}.
    for (const details of ['[]', 'nope', undefined]) {
      try {
        unwrapReply([-2, details]);
      } catch (e) {
        expect((e as { details: unknown }).details).toEqual({});
      }
    }
    expect(codeOf(() => unwrapReply([-99, '{}']))).toBe('Backend');
    expect(codeOf(() => unwrapReply([1, '{}']))).toBe('Backend');
    expect(codeOf(() => unwrapReply(null))).toBe('Backend');
    expect(codeOf(() => unwrapReply(['0']))).toBe('Backend');
  });

  test("a new enqueue's reply names its state, seq and time; a malformed one is Backend", () => {
    const ingress = { scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' } as const;
    const deferred = newInput('s', 'i', 'k', ingress, '{"a":1}', ['new', 'deferred_next_turn', '12', 1796223203011]);
    expect(deferred).toEqual({
      inputId: 'i',
      sessionId: 's',
      enqueueSeq: 12,
      ingress: { scope: 'next_turn' },
      state: 'deferred_next_turn',
      enqueuedAtMs: 1796223203011,
      input: { a: 1 },
      sourceKey: 'k',
    });
    const pending = newInput('s', 'i', undefined, ingress, '[]', ['new', 'pending_active', '1', 5]);
    expect(pending).toEqual({
      inputId: 'i',
      sessionId: 's',
      enqueueSeq: 1,
      ingress,
      state: 'pending_active',
      enqueuedAtMs: 5,
      input: [],
    });
    for (const bad of [
      ['new', 'x', '1', '2'],
      ['new', 'accepted', '1', '2'],
      ['new', 'deferred_next_turn', '1'],
      ['new', 'deferred_next_turn', '1.5', '2'],
      ['new', 'deferred_next_turn', 'seven', '2'],
      ['new', 'deferred_next_turn', '1', '2e400'],
      ['new', 'deferred_next_turn', [1], '2'],
      ['new'],
    ]) {
      expect(
        codeOf(() => newInput('s', 'i', undefined, ingress, '1', bad)),
        JSON.stringify(bad),
      ).toBe('Backend');
    }
  });

  test('a new enqueue reply with an empty or negative seq or time is Backend', () => {
    const ingress = { scope: 'next_turn' } as const;
    for (const bad of [
      ['new', 'deferred_next_turn', '-1', '2'],
      ['new', 'deferred_next_turn', '', '2'],
      ['new', 'deferred_next_turn', '1', '-2'],
    ]) {
      expect(
        codeOf(() => newInput('s', 'i', undefined, ingress, '1', bad)),
        JSON.stringify(bad),
      ).toBe('Backend');
    }
  });

  test('rows are triples: id, record, state entry ("" for an untouched next-turn row)', () => {
    const fresh = ['a', record({ scope: 'next_turn', input: { x: 1 } }), ''];
    const active = [
      'b',
      record({
        seq: 2,
        enqueuedAs: 'pending_active',
        scope: 'active_turn',
        turnId: 't:1',
        minBoundary: 'before_completion',
        sourceKey: 'k|1',
        inputHash: 'h',
        enqueueGen: 3,
        input: 'p',
      }),
      'pending_active|2|0|||b:t%3A1|1|k|1',
    ];
    // T3, or T6 after a stamp: the record keeps the ingress it was enqueued with.
    const deferred = [
      'c',
      record({ seq: 3, scope: 'active_turn', turnId: 't', minBoundary: 'after_work', input: null }),
      'deferred_next_turn|3|2|tic:3:2||n||',
    ];
    const rows = decodeInputTriples('s', [...fresh, ...active, ...deferred]);
    expect(rows).toEqual([
      {
        inputId: 'a',
        sessionId: 's',
        enqueueSeq: 1,
        ingress: { scope: 'next_turn' },
        state: 'deferred_next_turn',
        enqueuedAtMs: 5,
        input: { x: 1 },
      },
      {
        inputId: 'b',
        sessionId: 's',
        enqueueSeq: 2,
        ingress: { scope: 'active_turn', turnId: 't:1', minBoundary: 'before_completion' },
        state: 'pending_active',
        enqueuedAtMs: 5,
        input: 'p',
        sourceKey: 'k|1',
      },
      {
        inputId: 'c',
        sessionId: 's',
        enqueueSeq: 3,
        ingress: { scope: 'next_turn' },
        state: 'deferred_next_turn',
        enqueuedAtMs: 5,
        input: null,
      },
    ]);
    expect(decodeInputTriples('s', [0, ...fresh], 1)).toHaveLength(1);
    expect(parseRow(...(fresh as [string, string, string]))).toMatchObject({ state: 'deferred_next_turn' });
    expect(parseRow(...(fresh as [string, string, string])).claimFencingToken).toBeUndefined();
    expect(parseRow(...(deferred as [string, string, string]))).toMatchObject({
      claimFencingToken: 2,
      claimId: 'tic:3:2',
      origIngress: { scope: 'active_turn', turnId: 't', minBoundary: 'after_work' },
    });
    const tomb = parseRow('d', record({ scope: 'next_turn', input: 1 }), 'cancelled|1|1||99|n||');
    expect(tomb).toMatchObject({ state: 'cancelled', terminalAtMs: 99, claimFencingToken: 1 });
    expect(tomb.claimId).toBeUndefined();

    // Anything else is corruption.
    expect(codeOf(() => decodeInputTriples('s', [...fresh, 'x']))).toBe('Backend');
    expect(codeOf(() => decodeInputTriples('s', [...fresh], 1))).toBe('Backend');
    const good = fresh[1];
    for (const [id, rec, entry] of [
      [1, good, ''],
      ['a', 'not json', ''],
      ['a', 'null', ''],
      ['a', JSON.stringify({ seq: 1, at: 5 }), ''],
      ['a', JSON.stringify({ seq: '1', at: 5, input: 1 }), ''],
      ['a', record({ scope: 'active_turn', input: 1 }), ''],
      ['a', good, 'bogus|1|0|||n||'],
      ['a', good, 'deferred_next_turn|1|0|||x||'],
      ['a', good, 'deferred_next_turn|1|0|||n|2|'],
      ['a', good, 'deferred_next_turn|1|x|||n||'],
      ['a', good, 'deferred_next_turn|1|0||'],
      ['a', good, null],
    ] as const) {
      expect(
        codeOf(() => decodeInputTriples('s', [id, rec, entry])),
        `${rec} / ${entry}`,
      ).toBe('Backend');
    }
  });

  test('cancel and inspect rows add the claim entry: quadruples, claim data read from it alone', () => {
    const claimEntry = `2|4|tok|600|700|${JSON.stringify(OWNER)}`;
    const rec = record({ scope: 'next_turn', input: 'hi' });
    const [claimed, plain] = parseRowQuads([
      'a',
      rec,
      'deferred_next_turn|1|1|tic:1:1||n||',
      claimEntry,
      'b',
      rec,
      '',
      '',
    ]);
    expect(claimed).toMatchObject({
      claimId: 'tic:1:1',
      claimFencingToken: 1,
      claimGen: 4,
      claimToken: 'tok',
      claimedAtMs: 600,
      claimExpiresAtMs: 700,
      claimOwner: OWNER,
    });
    expect(plain.claimId).toBeUndefined();
    expect(plain.claimGen).toBeUndefined();
    // A claim entry counts only for a row that carries a claim.
    expect(parseRowQuads(['a', rec, 'deferred_next_turn|1|1|||n||', claimEntry])[0].claimGen).toBeUndefined();
    expect(codeOf(() => parseRowQuads(['a', rec, '']))).toBe('Backend');
    expect(codeOf(() => parseRowQuads(['a', rec, 'deferred_next_turn|1|1|tic:1:1||n||', 'x|4|tok|600|700|{}']))).toBe(
      'Backend',
    );
    expect(
      codeOf(() => parseRowQuads(['a', rec, 'deferred_next_turn|1|1|tic:1:1||n||', '1|4|tok|600|700|{"no":1}'])),
    ).toBe('Backend');

    // cancel-inputs: five elements per target, the outcome first; not_found is five with four ''.
    const targets = [
      { kind: 'input_id', value: 'a' },
      { kind: 'source_key', value: 'k' },
    ] as const;
    const results = decodeCancelResults(
      's',
      [...targets],
      ['already_claimed', 'a', rec, 'deferred_next_turn|1|1|tic:1:1||n||', claimEntry, 'not_found', '', '', '', ''],
    );
    expect(results).toEqual([
      {
        target: targets[0],
        outcome: {
          outcome: 'already_claimed',
          input: {
            inputId: 'a',
            sessionId: 's',
            enqueueSeq: 1,
            ingress: { scope: 'next_turn' },
            state: 'deferred_next_turn',
            enqueuedAtMs: 5,
            input: 'hi',
          },
          claim: {
            state: 'deferred_next_turn',
            claimFencingToken: 1,
            claimId: 'tic:1:1',
            claimOwner: OWNER,
            claimSessionLeaseGeneration: 4,
          },
        },
      },
      { target: targets[1], outcome: { outcome: 'not_found' } },
    ]);
    expect(codeOf(() => decodeCancelResults('s', [...targets], ['not_found', '', '', '', '']))).toBe('Backend');
    expect(
      codeOf(() => decodeCancelResults('s', [targets[0]], ['maybe', 'a', rec, 'deferred_next_turn|1|1|||n||', ''])),
    ).toBe('Backend');
  });
});
