/** Defaults both backends share. */

/** How long tombstones are kept before vacuum may delete them (the store option's default). */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 604_800_000; // seven days
/**
 * How long active-turn input enqueued while no lease is live waits for a turn to take it before a
 * fresh acquisition moves it to the next turn (the store option activeInputGraceMs; SPEC 3.5, T9).
 */
export const DEFAULT_ACTIVE_INPUT_GRACE_MS = 30_000;
