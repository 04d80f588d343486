/** Argument schemas: cases the fuzzer found, pinned deterministically (no server needed). */
import { describe, expect, test } from 'vitest';
import { args } from '../../src/contract/arguments.js';
import { isStoreError } from '../../src/contract/errors.js';

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (isStoreError(e, 'InvalidInput')) return e.details.issues as string[];
    throw e;
  }
  throw new Error('expected InvalidInput');
}

const commit = (nodes: unknown[]) => ({
  sessionId: 's',
  config: {},
  agentFrames: [],
  currentAgentFrameId: 'f',
  graph: { kind: 'append', nodes },
  checkpoint: { turnState: null },
  usageDeltas: [],
  completedTurnInputClaims: [],
  committedAttachmentIds: [],
});

describe('node records', () => {
  test('a null node is InvalidInput naming it, never a TypeError', () => {
    expect(issuesOf(() => args.commit(commit([{ nodeId: 'a', timestamp: 't' }, null])))).toEqual([
      'graph.nodes.1: must be a plain object',
    ]);
  });

  test('an own extra field named __proto__ is kept verbatim, the original node is returned', () => {
    const node = JSON.parse('{"nodeId":"q","timestamp":"t","__proto__":{"nodeId":"hijack"}}');
    const parsed = args.commit(commit([node]));
    const out = (parsed.graph as { nodes: unknown[] }).nodes[0] as Record<string, unknown>;
    expect(out).toBe(node);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"nodeId":"q","timestamp":"t","__proto__":{"nodeId":"hijack"}}');
  });

  test('a class instance, or an extra field that is not JSON, is InvalidInput', () => {
    class Node {
      nodeId = 'a';
      timestamp = 't';
    }
    expect(issuesOf(() => args.commit(commit([new Node()])))).toEqual(['graph.nodes.0: must be a plain object']);
    expect(issuesOf(() => args.commit(commit([{ nodeId: 'a', timestamp: 't', x: Number.NaN }])))).toEqual([
      'graph.nodes.0.x: must be a finite number',
    ]);
  });

  test('duplicate node ids are still reported', () => {
    const n = { nodeId: 'a', timestamp: 't' };
    expect(issuesOf(() => args.commit(commit([n, { ...n }])))).toEqual(['graph.nodes.1.nodeId: duplicate nodeId']);
  });
});

describe('vacuum options', () => {
  test('a plain object or nothing is accepted; an unknown key is InvalidInput naming it', () => {
    expect(args.vacuum(undefined)).toBeUndefined();
    expect(args.vacuum({ olderThanMs: 5 })).toEqual({ olderThanMs: 5 });
    expect(issuesOf(() => args.vacuum({ olderThanMs: 5, other: Number.NaN }))).toEqual([
      'options: unknown key "other" (not part of this argument)',
    ]);
  });

  test('an instance of another class is InvalidInput', () => {
    expect(issuesOf(() => args.vacuum(new Date()))[0]).toMatch(/^options: must be a plain object/);
    expect(issuesOf(() => args.vacuum(new Map()))[0]).toMatch(/^options: must be a plain object/);
  });
});
