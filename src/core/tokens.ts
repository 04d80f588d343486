/** Lease and claim tokens (SPEC 2.3: at least 128 bits from a CSPRNG), as 32 hex digits. */
import { randomBytes } from 'node:crypto';

const TOKEN_BYTES = 16;
const POOL_TOKENS = 256;

// Random bytes are drawn for 256 tokens at a time, as Node's randomUUID does for UUIDs: each
// randomBytes call is a system call, about 25 times the cost of slicing a pooled buffer
// (docs/DECISIONS.md, "Pooled token bytes").
let pool = Buffer.alloc(0);
let offset = 0;

export function newToken(): string {
  if (offset === pool.length) {
    pool = randomBytes(TOKEN_BYTES * POOL_TOKENS);
    offset = 0;
  }
  const token = pool.toString('hex', offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return token;
}
