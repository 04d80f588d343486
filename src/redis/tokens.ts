/**
 * Lease and claim tokens (SPEC 2.3: at least 128 bits from a CSPRNG), as 32 hex digits. Bytes come
 * from crypto.randomFillSync in 4 KiB batches, as node:crypto's randomUUID does, so a token costs
 * a slice instead of a CSPRNG call of its own.
 */
import { randomFillSync } from 'node:crypto';

const TOKEN_BYTES = 16;
const pool = Buffer.alloc(4096);
let offset = pool.length;

export function newToken(): string {
  if (offset + TOKEN_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString('hex', offset, offset + TOKEN_BYTES);
  // Zero the bytes handed out, so the pool never holds a token that is in use.
  pool.fill(0, offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return token;
}
