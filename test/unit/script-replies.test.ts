/**
 * The reply forms of the scripts (src/redis/error-map.ts, row-codec.ts): a table `{ 0, ... }` or
 * a bare integer or string on success, `{ code, detailsJson }` on a domain error, and the one-string
 * reply of a new enqueue. Pure: no Redis here (the conformance suite runs every script).
 */
import { describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import { unwrapReply } from '../../src/redis/error-map.js';
import { newInput } from '../../src/redis/row-codec.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isStoreError(e) ? e.code : 'not a StoreError';
  }
  return undefined;
}

describe('script replies', () => {
  test('a table with status 0 is its payload; a bare integer or string is the payload alone', () => {
    expect(unwrapReply([0, 'a', 2])).toEqual(['a', 2]);
    expect(unwrapReply([0])).toEqual([]);
    expect(unwrapReply(7)).toEqual([7]);
    expect(unwrapReply('3:1796223203011')).toEqual(['3:1796223203011']);
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
    expect(codeOf(() => unwrapReply([-99, '{}']))).toBe('Backend');
    expect(codeOf(() => unwrapReply(null))).toBe('Backend');
    expect(codeOf(() => unwrapReply(['0']))).toBe('Backend');
  });

  test("a new enqueue's reply names its state, seq and time; a malformed one is Backend", () => {
    const ingress = { scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' } as const;
    const deferred = newInput('s', 'i', 'k', ingress, '{"a":1}', 'd:12:1796223203011');
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
    const pending = newInput('s', 'i', undefined, ingress, '[]', 'p:1:5');
    expect(pending.state).toBe('pending_active');
    expect(pending.ingress).toEqual(ingress);
    for (const bad of ['x:1:2', 'd:1', 'd:1:2:3', 'd:-1:2', 7, ['d:1:2']]) {
      expect(codeOf(() => newInput('s', 'i', undefined, ingress, '1', bad))).toBe('Backend');
    }
  });
});
