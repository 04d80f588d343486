/**
 * Injective id encoding for key names and composite members (SPEC 10.3): UTF-8 bytes, keep
 * `A-Z a-z 0-9 . _ ~ -`, every other byte as %XX (uppercase). An encoded id never contains
 * ':', '{', '}' or whitespace, so it can neither close a hash tag nor forge a key separator.
 */

export function encodeId(id: string): string {
  // encodeURIComponent also keeps ! ' ( ) *, which the required alphabet does not.
  return encodeURIComponent(id).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function decodeId(encoded: string): string {
  return decodeURIComponent(encoded);
}
