/** Canonical JSON (SPEC 2.7) and SHA-256 hex: the byte-stable forms hashes and blobs are built on. */
import * as crypto from 'node:crypto';

/**
 * Sorted keys (UTF-16 code-unit order), undefined properties dropped, no whitespace. Built by
 * string concatenation rather than map/filter/join: it runs on every commit and enqueue replay.
 */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    if (s === undefined) throw new TypeError('canonical: not a JSON value');
    return s;
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v = value[i];
      // A hole is written as nothing, as Array.prototype.map + join did (JSON values have none).
      if (v !== undefined) out += canonical(v);
      else if (i in value) out += 'null';
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(k)}:${canonical(v)}`;
  }
  return `${out}}`;
}

/** crypto.hash (Node >= 20.12): a one-shot digest without a Hash object; createHash otherwise. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string })
  .hash;

export function sha256hex(data: string | Uint8Array): string {
  if (oneShotHash !== undefined) return oneShotHash('sha256', data, 'hex');
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** A deep copy of a JSON value (undefined properties dropped), so callers never share our state. */
export function copyJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
