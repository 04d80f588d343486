/** Defaults both backends share. */

/** How long tombstones are kept before vacuum may delete them (the store option's default). */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 604_800_000; // seven days
