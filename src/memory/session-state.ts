/**
 * Everything the in-memory store holds, as plain data (Maps, records, JSON text and bytes), so a
 * test can take a deep snapshot with structuredClone. Payloads are held as JSON text written once:
 * every read parses a fresh copy, and nothing a caller passes in is kept by reference.
 */
import type { TokenLedgerEntry } from '../contract/types.js';
import { InputTable } from './input-rows.js';
import type { LeaseRecord } from './lease-record.js';

export interface HeadRecord {
  schemaVersion: 1;
  headRevision: number;
  configJson: string;
  agentFramesJson: string;
  currentAgentFrameId: string;
  checkpointRef: string;
  leafNodeId?: string;
  nodeCount: number;
}

export interface StoredNode {
  /** The node record, verbatim, as JSON text. */
  json: string;
  parentNodeId?: string;
}

export interface TurnStamp {
  turnCommitHash: string;
  /** The exact RuntimeCommitResult of the stamped commit, as JSON text. */
  resultJson: string;
  committedAtMs: number;
}

/** The settled state of a session: only commitRuntimeState writes it. */
export interface SettledState {
  head?: HeadRecord;
  /** Graph nodes in insertion order. */
  nodes: Map<string, StoredNode>;
  /** Content-addressed blobs: canonical JSON text, or the raw bytes of an executionState. */
  blobs: Map<string, string | Uint8Array>;
  /** The usage aggregate, one group per (source, model), in first-seen order. */
  usage: TokenLedgerEntry[];
  /** Turn-commit stamps by turn id, kept for the life of the session. */
  stamps: Map<string, TurnStamp>;
}

export interface SessionState {
  lease?: LeaseRecord;
  inputs: InputTable;
  settled: SettledState;
  /** The saved SessionMeta as JSON text. */
  metaJson?: string;
  /**
   * The last enqueue, fresh lease acquisition, release or commit (or the end of a fence), for
   * idle-session expiry (SPEC 8.5). Undefined: the session is not in the activity index.
   */
  lastActivityAtMs?: number;
  /** Issue 18: set while the session's dispatch is paused (pauseSessionDispatch). */
  pausedAtMs?: number;
}

/** Records activity at `now` (never moves the time back). */
export function touchSession(session: SessionState, now: number): void {
  if (session.lastActivityAtMs === undefined || session.lastActivityAtMs < now) session.lastActivityAtMs = now;
}

export interface AttachmentEntryRecord {
  canonicalUri: string;
  intentAtEpochMs: number;
  committedAtEpochMs?: number;
}

export interface MemoryStoreState {
  sessions: Map<string, SessionState>;
  /** The store-wide attachment manifest: attachmentId -> sessionId -> entry. */
  attachments: Map<string, Map<string, AttachmentEntryRecord>>;
}

export function emptyStoreState(): MemoryStoreState {
  return { sessions: new Map(), attachments: new Map() };
}

export function newSessionState(): SessionState {
  return {
    inputs: new InputTable(),
    settled: { nodes: new Map(), blobs: new Map(), usage: [], stamps: new Map() },
  };
}

/** The session's state, created on first write. Reads use `peekSession` and never create. */
export function sessionFor(state: MemoryStoreState, sessionId: string): SessionState {
  let s = state.sessions.get(sessionId);
  if (!s) {
    s = newSessionState();
    state.sessions.set(sessionId, s);
  }
  return s;
}

export function peekSession(state: MemoryStoreState, sessionId: string): SessionState | undefined {
  return state.sessions.get(sessionId);
}

/** What every operation module needs: the state, the store clock, the options and the close gate. */
export interface MemoryContext {
  readonly state: MemoryStoreState;
  /** The store clock: Math.floor(now()). Read once per operation. */
  clock(): number;
  readonly requeue: boolean;
  /** SPEC 3.5, T9: how long no-lease active input waits for a turn (requeue mode). */
  readonly activeInputGraceMs: number;
  readonly tombstoneRetentionMs: number;
  /** Idle-session expiry (SPEC 8.5); undefined = off. */
  readonly sessionRetentionMs?: number;
  /** Queue cap (issue 18); undefined = none. */
  readonly maxPendingPerSession?: number;
  /** Input expiry (issue 18); undefined = none. */
  readonly pendingTtlMs?: number;
  /** Rejects with StoreClosed once the store is closed. */
  assertOpen(): void;
}
