/** Redis Cluster key-slot maths (CRC16-CCITT/XMODEM, as the Cluster spec defines it). */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

export function crc16(data: string | Uint8Array): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff];
  return crc;
}

/** The slot of a key: only the first non-empty {...} section is hashed, when there is one. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384;
  }
  return crc16(key) % 16384;
}

let slotTags: string[] | undefined;

/** A short fixed string per slot whose hash is that slot: the tag of that slot's shard keys. */
export function tagForSlot(slot: number): string {
  if (!slotTags) {
    const tags: string[] = new Array(16384);
    let found = 0;
    for (let n = 0; found < 16384; n++) {
      const candidate = `s${n.toString(36)}`;
      const s = crc16(candidate) % 16384;
      if (tags[s] === undefined) {
        tags[s] = candidate;
        found++;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot];
}
