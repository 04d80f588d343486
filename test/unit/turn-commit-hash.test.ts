/**
 * turnCommitHash (SPEC 6.4). Pure: no server. The reference value is computed from a canonical
 * string written out by hand from the SPEC rules, hashed with node:crypto.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { RuntimeCommit } from '../../src/index.js';
import { turnCommitHash } from '../../src/index.js';

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

const fence = {
  sessionId: 's1',
  owner: { ownerId: 'w', incarnationId: 'w:1', liveness: { kind: 'opaque' as const } },
  leaseToken: 'tok',
  fencingToken: 3,
};

function minimal(overrides: Partial<RuntimeCommit> = {}): RuntimeCommit {
  return {
    sessionId: 's1',
    config: {},
    agentFrames: [],
    currentAgentFrameId: 'f1',
    graph: { kind: 'unchanged' },
    checkpoint: { turnState: null },
    usageDeltas: [],
    completedTurnInputClaims: [],
    committedAttachmentIds: [],
    ...overrides,
  };
}

/** A commit that exercises every normalisation rule at once. */
function full(): RuntimeCommit {
  return {
    sessionId: 's1',
    expectedHeadRevision: 4,
    sessionExecutionLease: fence,
    releaseSessionExecutionLease: fence,
    config: { model: 'm', nodeId: 'drop-me' },
    agentFrames: [
      {
        id: 'msg-1',
        role: 'user',
        parts: [{ id: 'part-1', kind: 'text', content: 'hi', pruneState: 'kept', timestamp: 't0' }],
      },
    ],
    currentAgentFrameId: 'f1',
    graph: {
      kind: 'append',
      nodes: [{ nodeId: 'n1', parentNodeId: 'n0', timestamp: '2024', body: { id: 'keep', leafNodeId: 'x' } }],
      leafNodeId: 'n1',
    },
    checkpoint: { turnState: { step: 2 }, executionState: new Uint8Array([0xde, 0xad, 0x0b, 0xef]) },
    usageDeltas: [
      {
        source: 'turn',
        model: 'm1',
        usage: {
          inputTokens: 1,
          outputTokens: 2,
          cacheReadInputTokens: 0,
          cacheWriteInputTokens: 0,
          reasoningOutputTokens: 3,
        },
      },
    ],
    turnCommit: { sessionId: 's1', turnId: 't1', turnCommitHash: 'whatever' },
    completedQueueClaims: [],
    completedTurnInputClaims: [{ sessionId: 's1', claimId: 'tic:1:1', leaseToken: 'ct', inputIds: ['i1'] }],
    interruptedTurnInputTurnId: 't1',
    committedAttachmentIds: ['att1'],
  };
}

const FULL_CANONICAL =
  '{"agentFrames":[{"parts":[{"content":"hi","kind":"text","pruneState":"kept"}],"role":"user"}],' +
  '"checkpoint":{"executionState":"dead0bef","turnState":{"step":2}},' +
  '"committedAttachmentIds":["att1"],' +
  '"completedTurnInputClaims":[{"claimId":"tic:1:1","inputIds":["i1"],"leaseToken":"ct","sessionId":"s1"}],' +
  '"config":{"model":"m"},' +
  '"currentAgentFrameId":"f1",' +
  '"graph":{"kind":"append","nodes":[{"body":{"id":"keep"}}]},' +
  '"interruptedTurnInputTurnId":"t1",' +
  '"sessionId":"s1",' +
  '"usageDeltas":[{"model":"m1","source":"turn","usage":{"cacheReadInputTokens":0,"cacheWriteInputTokens":0,"inputTokens":1,"outputTokens":2,"reasoningOutputTokens":3}}]}';

describe('turnCommitHash (SPEC 6.4)', () => {
  test('is sha256hex of the canonical normalised commit (reference value)', () => {
    expect(turnCommitHash(full())).toBe(sha(FULL_CANONICAL));
  });

  test('the minimal commit hashes its canonical form', () => {
    const expected = sha(
      '{"agentFrames":[],"checkpoint":{"turnState":null},"committedAttachmentIds":[],' +
        '"completedTurnInputClaims":[],"config":{},"currentAgentFrameId":"f1","graph":{"kind":"unchanged"},' +
        '"sessionId":"s1","usageDeltas":[]}',
    );
    expect(turnCommitHash(minimal())).toBe(expected);
  });

  test('is 64 lowercase hex characters', () => {
    for (const c of [minimal(), full()]) expect(turnCommitHash(c)).toMatch(/^[0-9a-f]{64}$/);
  });

  test('ignores expectedHeadRevision, both leases and turnCommit', () => {
    const base = turnCommitHash(minimal());
    expect(turnCommitHash(minimal({ expectedHeadRevision: 7 }))).toBe(base);
    expect(turnCommitHash(minimal({ expectedHeadRevision: 0 }))).toBe(base);
    expect(turnCommitHash(minimal({ sessionExecutionLease: fence }))).toBe(base);
    expect(turnCommitHash(minimal({ releaseSessionExecutionLease: fence }))).toBe(base);
    expect(turnCommitHash(minimal({ turnCommit: { sessionId: 's1', turnId: 'x', turnCommitHash: 'h' } }))).toBe(base);
    const f1 = full();
    const f2 = { ...full(), expectedHeadRevision: 99, sessionExecutionLease: { ...fence, leaseToken: 'other' } };
    delete f2.releaseSessionExecutionLease;
    delete f2.turnCommit;
    expect(turnCommitHash(f2)).toBe(turnCommitHash(f1));
  });

  test('drops completedQueueClaims when absent or empty, and covers a non-empty list', () => {
    const base = turnCommitHash(minimal());
    expect(turnCommitHash(minimal({ completedQueueClaims: [] }))).toBe(base);
    const q = { sessionId: 's1', claimId: 'q1', leaseToken: 'qt', batchIds: ['b1'] };
    const withQueue = turnCommitHash(minimal({ completedQueueClaims: [q] }));
    expect(withQueue).not.toBe(base);
    expect(withQueue).toBe(
      sha(
        '{"agentFrames":[],"checkpoint":{"turnState":null},"committedAttachmentIds":[],' +
          '"completedQueueClaims":[{"batchIds":["b1"],"claimId":"q1","leaseToken":"qt","sessionId":"s1"}],' +
          '"completedTurnInputClaims":[],"config":{},"currentAgentFrameId":"f1","graph":{"kind":"unchanged"},' +
          '"sessionId":"s1","usageDeltas":[]}',
      ),
    );
  });

  test('removes nodeId, parentNodeId, leafNodeId and timestamp at every depth', () => {
    const a = minimal({
      config: { nodeId: 'a', deep: [{ parentNodeId: 'p', leafNodeId: 'l', timestamp: 't', keep: 1 }] },
      agentFrames: [{ timestamp: '1', x: { y: { nodeId: 'q' } } }],
      graph: {
        kind: 'replace_full',
        graph: {
          nodes: [
            { nodeId: 'n1', timestamp: 't1', v: 1 },
            { nodeId: 'n2', parentNodeId: 'n1', timestamp: 't2', v: 2 },
          ],
          leafNodeId: 'n2',
        },
      },
      checkpoint: { turnState: { cursor: { leafNodeId: 'z', timestamp: 'now' } } },
    });
    const b = minimal({
      config: { nodeId: 'b', deep: [{ parentNodeId: 'p2', leafNodeId: 'l2', timestamp: 't2', keep: 1 }] },
      agentFrames: [{ timestamp: '2', x: { y: { nodeId: 'r' } } }],
      graph: {
        kind: 'replace_full',
        graph: {
          nodes: [
            { nodeId: 'm1', timestamp: 'u1', v: 1 },
            { nodeId: 'm2', parentNodeId: 'm1', timestamp: 'u2', v: 2 },
          ],
          leafNodeId: 'm1',
        },
      },
      checkpoint: { turnState: { cursor: { leafNodeId: 'other' } } },
    });
    expect(turnCommitHash(a)).toBe(turnCommitHash(b));
    expect(turnCommitHash(a)).toBe(
      sha(
        '{"agentFrames":[{"x":{"y":{}}}],"checkpoint":{"turnState":{"cursor":{}}},"committedAttachmentIds":[],' +
          '"completedTurnInputClaims":[],"config":{"deep":[{"keep":1}]},"currentAgentFrameId":"f1",' +
          '"graph":{"graph":{"nodes":[{"v":1},{"v":2}]},"kind":"replace_full"},"sessionId":"s1","usageDeltas":[]}',
      ),
    );
    // The leaf of unchanged/append deltas is dropped as well.
    expect(turnCommitHash(minimal({ graph: { kind: 'unchanged', leafNodeId: 'x' } }))).toBe(turnCommitHash(minimal()));
    // Other node content still counts.
    const c = structuredClone(a);
    (c.graph as { graph: { nodes: Array<Record<string, unknown>> } }).graph.nodes[1].v = 3;
    expect(turnCommitHash(c)).not.toBe(turnCommitHash(a));
  });

  test('removes id from messages (role + parts) and message parts (kind + content + pruneState) only', () => {
    const msg = (id: string) => ({ id, role: 'assistant', parts: [] });
    const part = (id: string) => ({ id, kind: 'text', content: 'c', pruneState: 'live' });
    expect(turnCommitHash(minimal({ agentFrames: [msg('a')] }))).toBe(
      turnCommitHash(minimal({ agentFrames: [msg('b')] })),
    );
    expect(turnCommitHash(minimal({ agentFrames: [part('a')] }))).toBe(
      turnCommitHash(minimal({ agentFrames: [part('b')] })),
    );
    // Deep inside opaque payloads, too.
    expect(turnCommitHash(minimal({ checkpoint: { turnState: { history: [msg('a')] } } }))).toBe(
      turnCommitHash(minimal({ checkpoint: { turnState: { history: [msg('z')] } } })),
    );
    expect(turnCommitHash(minimal({ config: { m: { ...msg('a'), parts: [part('p1')] } } }))).toBe(
      turnCommitHash(minimal({ config: { m: { ...msg('b'), parts: [part('p2')] } } })),
    );
    // Not a message: role without parts, or parts without role.
    expect(turnCommitHash(minimal({ agentFrames: [{ id: 'a', role: 'user' }] }))).not.toBe(
      turnCommitHash(minimal({ agentFrames: [{ id: 'b', role: 'user' }] })),
    );
    expect(turnCommitHash(minimal({ agentFrames: [{ id: 'a', parts: [] }] }))).not.toBe(
      turnCommitHash(minimal({ agentFrames: [{ id: 'b', parts: [] }] })),
    );
    // Not a message part: any of kind, content, pruneState missing.
    expect(turnCommitHash(minimal({ agentFrames: [{ id: 'a', kind: 'text', content: 'c' }] }))).not.toBe(
      turnCommitHash(minimal({ agentFrames: [{ id: 'b', kind: 'text', content: 'c' }] })),
    );
    expect(turnCommitHash(minimal({ agentFrames: [{ id: 'a', kind: 'text', pruneState: 'p' }] }))).not.toBe(
      turnCommitHash(minimal({ agentFrames: [{ id: 'b', kind: 'text', pruneState: 'p' }] })),
    );
    // A plain object with an id keeps it.
    expect(turnCommitHash(minimal({ config: { id: 'a' } }))).not.toBe(turnCommitHash(minimal({ config: { id: 'b' } })));
    // The message's other content still counts.
    expect(turnCommitHash(minimal({ agentFrames: [{ id: 'a', role: 'user', parts: [] }] }))).not.toBe(
      turnCommitHash(minimal({ agentFrames: [{ id: 'a', role: 'assistant', parts: [] }] })),
    );
  });

  test('hashes executionState as its lowercase hex string; Buffer and Uint8Array agree', () => {
    const bytes = [0x00, 0x0f, 0xab, 0xcd, 0xff];
    const asU8 = turnCommitHash(minimal({ checkpoint: { turnState: null, executionState: new Uint8Array(bytes) } }));
    const asBuf = turnCommitHash(minimal({ checkpoint: { turnState: null, executionState: Buffer.from(bytes) } }));
    expect(asBuf).toBe(asU8);
    expect(asU8).toBe(
      sha(
        '{"agentFrames":[],"checkpoint":{"executionState":"000fabcdff","turnState":null},"committedAttachmentIds":[],' +
          '"completedTurnInputClaims":[],"config":{},"currentAgentFrameId":"f1","graph":{"kind":"unchanged"},' +
          '"sessionId":"s1","usageDeltas":[]}',
      ),
    );
    const other = turnCommitHash(
      minimal({ checkpoint: { turnState: null, executionState: new Uint8Array([0x00, 0x0f, 0xab, 0xcd, 0xfe]) } }),
    );
    expect(other).not.toBe(asU8);
    const empty = turnCommitHash(minimal({ checkpoint: { turnState: null, executionState: new Uint8Array(0) } }));
    expect(empty).toBe(
      sha(
        '{"agentFrames":[],"checkpoint":{"executionState":"","turnState":null},"committedAttachmentIds":[],' +
          '"completedTurnInputClaims":[],"config":{},"currentAgentFrameId":"f1","graph":{"kind":"unchanged"},' +
          '"sessionId":"s1","usageDeltas":[]}',
      ),
    );
  });

  test('covers completions and the interrupt deferral', () => {
    const base = turnCommitHash(minimal());
    const completion = { sessionId: 's1', claimId: 'tic:1:1', leaseToken: 'ct', inputIds: ['i1'] };
    const withCompletion = turnCommitHash(minimal({ completedTurnInputClaims: [completion] }));
    expect(withCompletion).not.toBe(base);
    expect(turnCommitHash(minimal({ completedTurnInputClaims: [{ ...completion, inputIds: ['i1', 'i2'] }] }))).not.toBe(
      withCompletion,
    );
    expect(turnCommitHash(minimal({ completedTurnInputClaims: [{ ...completion, claimId: 'tic:1:2' }] }))).not.toBe(
      withCompletion,
    );
    const withInterrupt = turnCommitHash(minimal({ interruptedTurnInputTurnId: 't1' }));
    expect(withInterrupt).not.toBe(base);
    expect(turnCommitHash(minimal({ interruptedTurnInputTurnId: 't2' }))).not.toBe(withInterrupt);
    expect(turnCommitHash(minimal({ interruptedTurnInputTurnId: undefined }))).toBe(base);
  });

  test('covers the content of the commit', () => {
    const base = turnCommitHash(minimal());
    expect(turnCommitHash(minimal({ sessionId: 's2' }))).not.toBe(base);
    expect(turnCommitHash(minimal({ config: { a: 1 } }))).not.toBe(base);
    expect(turnCommitHash(minimal({ currentAgentFrameId: 'f2' }))).not.toBe(base);
    expect(turnCommitHash(minimal({ committedAttachmentIds: ['a'] }))).not.toBe(base);
    expect(turnCommitHash(minimal({ checkpoint: { turnState: null, toolState: { a: 1 } } }))).not.toBe(base);
    expect(turnCommitHash(minimal({ checkpoint: { turnState: null, toolStateRef: 'r' } }))).not.toBe(base);
    expect(turnCommitHash(minimal({ graph: { kind: 'append', nodes: [] } }))).not.toBe(base);
  });

  test('key order and undefined properties do not matter', () => {
    const a = minimal({ config: { b: 1, a: { d: 2, c: 3 } } });
    const b: RuntimeCommit = {
      committedAttachmentIds: [],
      completedTurnInputClaims: [],
      usageDeltas: [],
      checkpoint: { turnState: null, toolStateRef: undefined },
      graph: { kind: 'unchanged' },
      currentAgentFrameId: 'f1',
      agentFrames: [],
      config: { a: { c: 3, d: 2 }, b: 1, z: undefined } as unknown as RuntimeCommit['config'],
      sessionId: 's1',
    };
    expect(turnCommitHash(b)).toBe(turnCommitHash(a));
  });
});
