/** Lease and claim tokens (SPEC 2.3: at least 128 bits from a CSPRNG), as 32 hex digits. */
import { randomBytes } from 'node:crypto';

export function newToken(): string {
  return randomBytes(16).toString('hex');
}
