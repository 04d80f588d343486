import { describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import { encodeNodeValue, nodeJsonOf } from '../../src/redis/node-value.js';

const T = '2025-01-01T00:00:00.000Z';

describe('stored graph node value (docs/KEYS.md, nodes)', () => {
  test('the parent id encoded in front, the JSON verbatim after the first |', () => {
    expect(encodeNodeValue({ nodeId: 'a', timestamp: T })).toBe(`|{"nodeId":"a","timestamp":"${T}"}`);
    expect(encodeNodeValue({ nodeId: 'b', parentNodeId: 'a', timestamp: T })).toBe(
      `a|{"nodeId":"b","parentNodeId":"a","timestamp":"${T}"}`,
    );
    const n = { nodeId: 'x|y', parentNodeId: 'p|q %', timestamp: T, text: 'one|two' };
    const stored = encodeNodeValue(n);
    expect(stored.startsWith('p%7Cq%20%25|')).toBe(true);
    expect(JSON.parse(nodeJsonOf(stored))).toEqual(n);
    expect(nodeJsonOf(stored)).toBe(JSON.stringify(n));
  });

  test('a value without the prefix is a Backend error', () => {
    let err: unknown;
    try {
      nodeJsonOf('{"nodeId":"a"}');
    } catch (e) {
      err = e;
    }
    expect(isStoreError(err) && err.code).toBe('Backend');
  });
});
