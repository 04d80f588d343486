/**
 * The key layout and the pure modules under it: id encoding (SPEC 10.3), one Cluster slot per
 * session (SPEC 10.2, 10.4), CRC16 and shard tags, the keys each script's header names, and the
 * /proc liveness parser (SPEC 4.2). No server needed. Expected encodings are written out by hand from the SPEC rules.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { LeaseOwnerIdentity } from '../../src/contract/types.js';
import { currentProcessLiveness, isDefinitelyDead, readProcessStart } from '../../src/core/liveness.js';
import { crc16, keySlot, tagForSlot } from '../../src/redis/cluster-slot.js';
import { decodeId, encodeId } from '../../src/redis/key-encoding.js';
import { KeyLayout, SESSION_KEY_NAMES, type SessionKeys, SHARD_KEY_NAMES } from '../../src/redis/keys.js';
import { commandName, LUA_DIR, loadScripts, scriptOf } from '../../src/redis/scripts/registry.js';

/** Ids that break naive key building: separators, braces, percent signs, whitespace, unicode. */
const TRICKY_IDS = [
  'a',
  'a}:x',
  '{b}',
  'b',
  '{',
  '}',
  '}{',
  '{}',
  'a:',
  'a%3A',
  'a%253A',
  '%',
  '%%',
  '%7B',
  'user:42/a b',
  'line\nbreak',
  'tab\there',
  ' ',
  'shard:{0}:tombs',
  'x}:lease',
  'x',
  'é',
  'e\u0301',
  '日本語',
  '😀',
  "!'()*",
  '\u0000',
  'a'.repeat(4096),
  'é'.repeat(2048),
];

describe('id encoding (SPEC 10.3)', () => {
  test('the SPEC example', () => {
    expect(encodeId('user:42/a b')).toBe('user%3A42%2Fa%20b');
  });

  test('unreserved characters stay, everything else is %XX in uppercase hex', () => {
    expect(encodeId('AZaz09._~-')).toBe('AZaz09._~-');
    expect(encodeId('{')).toBe('%7B');
    expect(encodeId('}')).toBe('%7D');
    expect(encodeId('%')).toBe('%25');
    expect(encodeId(':')).toBe('%3A');
    expect(encodeId('\n')).toBe('%0A');
    expect(encodeId(' ')).toBe('%20');
    expect(encodeId('\u0000')).toBe('%00');
    expect(encodeId('\u007f')).toBe('%7F');
    // encodeURIComponent would keep these; the required alphabet does not.
    expect(encodeId("!'()*")).toBe('%21%27%28%29%2A');
    expect(encodeId('a}:x')).toBe('a%7D%3Ax');
    expect(encodeId('{b}')).toBe('%7Bb%7D');
  });

  test('non-ASCII is encoded byte by byte from UTF-8', () => {
    expect(encodeId('é')).toBe('%C3%A9');
    expect(encodeId('e\u0301')).toBe('e%CC%81');
    expect(encodeId('日')).toBe('%E6%97%A5');
    expect(encodeId('😀')).toBe('%F0%9F%98%80');
  });

  test('4096-byte ids encode and decode', () => {
    const ascii = 'a'.repeat(4096);
    expect(encodeId(ascii)).toBe(ascii);
    const wide = 'é'.repeat(2048);
    expect(Buffer.byteLength(wide, 'utf8')).toBe(4096);
    expect(encodeId(wide)).toBe('%C3%A9'.repeat(2048));
    expect(decodeId(encodeId(wide))).toBe(wide);
  });

  test('the output alphabet never contains a separator, a brace or whitespace', () => {
    for (const id of TRICKY_IDS) {
      const enc = encodeId(id);
      expect(enc).toMatch(/^[A-Za-z0-9._~%-]+$/);
      expect(enc).not.toMatch(/[:{}\s]/);
      // Every % starts an uppercase-hex escape.
      expect(enc.replace(/%[0-9A-F]{2}/g, '')).not.toContain('%');
    }
  });

  test('decode inverts encode, and encoding is injective over the tricky ids', () => {
    const seen = new Map<string, string>();
    for (const id of TRICKY_IDS) {
      const enc = encodeId(id);
      expect(decodeId(enc)).toBe(id);
      expect(seen.get(enc), `${JSON.stringify(id)} collides`).toBeUndefined();
      seen.set(enc, id);
    }
  });

  test('composite members of encoded parts cannot collide the way naive ones do', () => {
    // Naively `a:b` + `c` and `a` + `b:c` both give `a:b:c`.
    const naive = (x: string, y: string) => `${x}:${y}`;
    const member = (x: string, y: string) => `${encodeId(x)}:${encodeId(y)}`;
    expect(naive('a:b', 'c')).toBe(naive('a', 'b:c'));
    expect(member('a:b', 'c')).not.toBe(member('a', 'b:c'));
    expect(member('a%3Ab', 'c')).not.toBe(member('a:b', 'c'));
  });
});

describe('session keys (SPEC 10.2, 10.3)', () => {
  const PAIRS: Array<[string, string]> = [
    ['a}:x', 'a'],
    ['{b}', 'b'],
    ['a%3A', 'a:'],
    ['x}:lease', 'x'],
    ['%7B', '{'],
    ['shard:{0}:tombs', '0'],
  ];

  const sessionKeys = (k: SessionKeys) => SESSION_KEY_NAMES.map((n) => k.byName[n]);
  const shardKeys = (k: SessionKeys) => SHARD_KEY_NAMES.map((n) => k.byName[n]);

  test('pairs that collide under naive concatenation get disjoint keys and distinct hash tags', () => {
    const layout = new KeyLayout('rts');
    const naiveTag = (id: string) => /\{([^}]*)\}/.exec(`rts:{${id}}:lease`)?.[1];
    for (const [x, y] of PAIRS) {
      const kx = layout.session(x);
      const ky = layout.session(y);
      const overlap = sessionKeys(kx).filter((key) => sessionKeys(ky).includes(key));
      expect(overlap, `${JSON.stringify(x)} vs ${JSON.stringify(y)}`).toEqual([]);
      // The hash tag Redis sees (the first {...}) is exactly the encoded id.
      for (const [id, k] of [
        [x, kx],
        [y, ky],
      ] as const) {
        for (const key of sessionKeys(k)) expect(/\{([^}]*)\}/.exec(key)?.[1]).toBe(encodeId(id));
      }
      expect(kx.encodedSessionId).not.toBe(ky.encodedSessionId);
    }
    // The naive form really is broken for these: the first brace pair would be another session's tag.
    expect(naiveTag('a}:x')).toBe('a');
    expect(naiveTag('{b}')).toBe('{b');
  });

  test('the key names, and each key of a session by name in the documented form', () => {
    expect([...SESSION_KEY_NAMES]).toEqual([
      'lease',
      'inputs',
      'states',
      'src',
      'next',
      'active',
      'accepted',
      'genactive',
      'nogen',
      'tomb',
      'head',
      'nodes',
      'order',
      'blobs',
      'usage',
      'usageorder',
      'stamps',
      'meta',
      'claims',
      'failures',
      'expiry',
      'expired',
    ]);
    expect([...SHARD_KEY_NAMES]).toEqual([
      'dispatch',
      'tombs',
      'att',
      'att-uncommitted',
      'att-byid',
      'att-bysession',
      'activity',
    ]);
    const layout = new KeyLayout('p');
    const k = layout.session('s 1');
    expect(k).toEqual({ encodedSessionId: 's%201', shardTag: '0', byName: expect.any(Object) });
    expect(k.byName).toEqual(
      Object.fromEntries([
        ...SESSION_KEY_NAMES.map((n) => [n, `p:{s%201}:${n}`]),
        ...SHARD_KEY_NAMES.map((n) => [n, `p:shard:{0}:${n}`]),
      ]),
    );
    expect(Object.keys(k.byName)).toHaveLength(SESSION_KEY_NAMES.length + SHARD_KEY_NAMES.length);
    // The key list is gone: callers name the keys they want.
    expect('block' in k).toBe(false);
    expect(layout.shardKey('0', 'tombs')).toBe('p:shard:{0}:tombs');
    expect(layout.layoutKey()).toBe('p:layout');
  });

  test('cluster mode: every key of a session, shard keys included, hashes to one slot', () => {
    const layout = new KeyLayout('rts', 'cluster');
    for (const id of TRICKY_IDS) {
      const k = layout.session(id);
      const slot = crc16(encodeId(id)) % 16384;
      expect(keySlot(`{${k.encodedSessionId}}`)).toBe(slot);
      const slots = new Set(Object.values(k.byName).map((key) => keySlot(key)));
      expect([...slots], JSON.stringify(id)).toEqual([slot]);
      expect(k.shardTag).toBe(tagForSlot(slot));
      for (const key of shardKeys(k)) expect(key.startsWith(`rts:shard:{${k.shardTag}}:`)).toBe(true);
    }
  });

  test('standalone mode: one shard, tag 0, for every session', () => {
    const layout = new KeyLayout('rts');
    for (const id of TRICKY_IDS) expect(layout.session(id).shardTag).toBe('0');
    expect(layout.shardTags()).toEqual(['0']);
  });
});

describe('Cluster slot maths', () => {
  test('crc16 is CRC16-CCITT/XMODEM (check value of "123456789")', () => {
    expect(crc16('123456789')).toBe(0x31c3);
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(crc16('')).toBe(0);
  });

  test('keySlot follows the Cluster spec hash-tag rules', () => {
    // Values of CLUSTER KEYSLOT on a real cluster.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    // Only the first {...} counts; an empty first pair means the whole key is hashed.
    expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
    expect(keySlot('foo{{bar}}zap')).toBe(crc16('{bar') % 16384);
    expect(keySlot('foo{}{bar}')).toBe(crc16('foo{}{bar}') % 16384);
    expect(keySlot('foo{bar')).toBe(crc16('foo{bar') % 16384);
  });

  test('tagForSlot gives a distinct brace-free tag for each of the 16384 slots that hashes back to it', () => {
    const tags = new Set<string>();
    for (let slot = 0; slot < 16384; slot++) {
      const tag = tagForSlot(slot);
      expect(tag).toMatch(/^[a-z0-9]+$/);
      if (keySlot(`p:shard:{${tag}}:tombs`) !== slot) {
        expect.fail(`tag ${tag} of slot ${slot} hashes to ${keySlot(`{${tag}}`)}`);
      }
      tags.add(tag);
    }
    expect(tags.size).toBe(16384);
  });
});

describe('liveness: /proc parsing and the definitely-dead verdict (SPEC 4.2)', () => {
  const roots: string[] = [];
  afterAll(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  /** A stat line whose 20th field after the last ')' is `start` (kernel field 22). */
  function statLine(pid: number, comm: string, start: string): string {
    // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime
    // cstime priority nice num_threads itrealvalue starttime vsize rss ...
    return `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194560 1200 0 3 0 17 4 0 0 20 0 1 0 ${start} 123904000 2048 18446744073709551615\n`;
  }

  function fakeProc(procs: Record<number, string | null>, withSelf = true): string {
    const root = mkdtempSync(join(tmpdir(), 'rts-proc-'));
    roots.push(root);
    if (withSelf) {
      mkdirSync(join(root, 'self'));
      writeFileSync(join(root, 'self', 'stat'), statLine(1, 'self', '1'));
    }
    for (const [pid, content] of Object.entries(procs)) {
      mkdirSync(join(root, pid));
      if (content !== null) writeFileSync(join(root, pid, 'stat'), content);
      else mkdirSync(join(root, pid, 'stat')); // a directory: reading it fails with EISDIR
    }
    return root;
  }

  const local = (pid: number, processStart: string, hostId = 'h1', bootId = 'b1'): LeaseOwnerIdentity => ({
    ownerId: `w${pid}`,
    incarnationId: `w${pid}:1`,
    liveness: { kind: 'local_process', hostId, bootId, pid, processStart },
  });
  const claimant = local(999_999, '1');

  test('readProcessStart reads field 22 even when comm has spaces and parentheses', () => {
    const root = fakeProc({
      4242: statLine(4242, 'my (weird) ) proc', '987654'),
      4343: statLine(4343, ') S 1 2 3', '55'),
      4444: statLine(4444, 'plain', '7'),
    });
    expect(readProcessStart(4242, root)).toBe('987654');
    expect(readProcessStart(4343, root)).toBe('55');
    expect(readProcessStart(4444, root)).toBe('7');
    expect(readProcessStart(4545, root)).toBeNull();
  });

  test('readProcessStart throws on a truncated or unreadable stat file', () => {
    const root = fakeProc({ 10: '10 (short) S 1 2 3\n', 11: null });
    expect(() => readProcessStart(10, root)).toThrow();
    expect(() => readProcessStart(11, root)).toThrow();
  });

  test('dead when the pid is gone or its start time differs; alive when it matches', () => {
    const root = fakeProc({ 4242: statLine(4242, 'a b (c)', '1000') });
    expect(isDefinitelyDead(local(4242, '1000'), claimant, root)).toBe(false);
    expect(isDefinitelyDead(local(4242, '1001'), claimant, root)).toBe(true);
    // Compared as decimal strings, not numbers.
    expect(isDefinitelyDead(local(4242, '01000'), claimant, root)).toBe(true);
    expect(isDefinitelyDead(local(5000, '1000'), claimant, root)).toBe(true);
  });

  test('anything uncertain is not dead', () => {
    const root = fakeProc({ 4242: statLine(4242, 'x', '1000'), 10: '10 (short) S 1\n', 11: null });
    const opaque: LeaseOwnerIdentity = { ownerId: 'o', incarnationId: 'o:1', liveness: { kind: 'opaque' } };
    const omitted: LeaseOwnerIdentity = { ownerId: 'o', incarnationId: 'o:1' };
    expect(isDefinitelyDead(opaque, claimant, root)).toBe(false);
    expect(isDefinitelyDead(omitted, claimant, root)).toBe(false);
    expect(isDefinitelyDead(local(5000, '1'), opaque, root)).toBe(false);
    expect(isDefinitelyDead(local(5000, '1'), omitted, root)).toBe(false);
    expect(isDefinitelyDead(local(5000, '1', 'h2'), claimant, root)).toBe(false);
    expect(isDefinitelyDead(local(5000, '1', 'h1', 'b2'), claimant, root)).toBe(false);
    expect(isDefinitelyDead(local(10, '1'), claimant, root)).toBe(false);
    expect(isDefinitelyDead(local(11, '1'), claimant, root)).toBe(false);
    // No readable /proc (a non-Linux host): never dead.
    const noSelf = fakeProc({}, false);
    expect(isDefinitelyDead(local(5000, '1'), claimant, noSelf)).toBe(false);
    expect(isDefinitelyDead(local(5000, '1'), claimant, join(noSelf, 'missing'))).toBe(false);
  });

  test.skipIf(!existsSync('/proc/self/stat'))('against the real /proc: this process is alive', () => {
    const stat = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const expected = stat
      .slice(stat.lastIndexOf(')') + 1)
      .trim()
      .split(/\s+/)[19];
    expect(readProcessStart(process.pid)).toBe(expected);
    expect(expected).toMatch(/^\d+$/);

    const me = currentProcessLiveness('host-a');
    expect(me.kind).toBe('local_process');
    if (me.kind !== 'local_process') return;
    expect(me.pid).toBe(process.pid);
    expect(me.processStart).toBe(expected);
    const holder: LeaseOwnerIdentity = { ownerId: 'me', incarnationId: 'me:1', liveness: me };
    const other: LeaseOwnerIdentity = { ownerId: 'c', incarnationId: 'c:1', liveness: { ...me, pid: 1 } };
    expect(isDefinitelyDead(holder, other)).toBe(false);
    // The same pid with another start time is a recycled pid: the holder is gone.
    const recycled: LeaseOwnerIdentity = { ...holder, liveness: { ...me, processStart: `${expected}0` } };
    expect(isDefinitelyDead(recycled, other)).toBe(true);
    // A pid with no /proc entry.
    let free = 4_000_000;
    while (existsSync(`/proc/${free}`)) free++;
    const gone: LeaseOwnerIdentity = { ...holder, liveness: { ...me, pid: free } };
    expect(isDefinitelyDead(gone, other)).toBe(true);
  });
});

describe("the keys a script's header names (KEYS[i] <name>)", () => {
  const scripts = loadScripts();
  const known = new Set<string>([...SESSION_KEY_NAMES, ...SHARD_KEY_NAMES]);
  const shardOnly = new Set<string>(SHARD_KEY_NAMES);
  /** A per-session script takes at least one session key; the others take only shard keys. */
  const perSession = scripts.filter((s) => s.keys.some((name) => !shardOnly.has(name)));

  test('every script of lua/ is loaded, under its command name, with its header keys', () => {
    const files = readdirSync(LUA_DIR)
      .filter((f) => f.endsWith('.lua'))
      .map((f) => f.slice(0, -4));
    expect(scripts.map((s) => s.file).sort()).toEqual(files.sort());
    for (const file of files) {
      const script = scriptOf(commandName(file));
      expect(script?.file).toBe(file);
      expect(script?.command).toBe(`rts_${file.replace(/-/g, '_')}`);
      // The header, read here independently: `KEYS[i] <name>` lines in order from 1.
      const source = readFileSync(join(LUA_DIR, `${file}.lua`), 'utf8');
      const header = source.slice(0, source.indexOf(']]'));
      const listed = [...header.matchAll(/^\s*KEYS\[(\d+)\]\s+([a-z][a-z-]*)/gm)];
      expect(
        listed.map((m) => Number(m[1])),
        file,
      ).toEqual(listed.map((_, i) => i + 1));
      expect(script?.keys, file).toEqual(listed.map((m) => m[2]));
    }
    expect(scriptOf('rts_no_such_script')).toBeUndefined();
  });

  test('every header key is a key name of src/redis/keys.ts, listed once', () => {
    for (const s of scripts) {
      expect(s.keys.length, s.file).toBeGreaterThan(0);
      for (const name of s.keys) expect(known.has(name), `${s.file}: ${name}`).toBe(true);
      expect(new Set(s.keys).size, s.file).toBe(s.keys.length);
    }
    // Spot checks against the headers as documented.
    expect(scriptOf('rts_claim_next_inputs')?.keys.slice(0, 4)).toEqual(['lease', 'inputs', 'states', 'claims']);
    expect(scriptOf('rts_claim_active_inputs')?.keys.slice(0, 4)).toEqual(['lease', 'inputs', 'states', 'claims']);
    expect(scriptOf('rts_vacuum_scan')?.keys).toEqual(['tombs']);
    expect(scriptOf('rts_sweep_session')?.keys).toEqual([
      'lease',
      'states',
      'next',
      'accepted',
      'genactive',
      'nogen',
      'dispatch',
    ]);
  });

  test("a per-session script's keys, built by name, are the session's: its hash tag, its shard, one slot", () => {
    expect(perSession.length).toBeGreaterThan(10);
    for (const mode of ['standalone', 'cluster'] as const) {
      const layout = new KeyLayout('rts', mode);
      for (const id of TRICKY_IDS) {
        const k = layout.session(id);
        const tag = `{${encodeId(id)}}`;
        for (const s of perSession) {
          const keys = s.keys.map((name) => k.byName[name as keyof SessionKeys['byName']]);
          expect(keys.every((key) => typeof key === 'string')).toBe(true);
          keys.forEach((key, i) => {
            // The first {...} is the hash tag Redis uses: the session's own, or its shard's.
            const first = /\{[^}]*\}/.exec(key)?.[0];
            if (shardOnly.has(s.keys[i])) expect(first, `${s.file}: ${key}`).toBe(`{${k.shardTag}}`);
            else expect(first, `${s.file}: ${key}`).toBe(tag);
          });
          if (mode === 'cluster') {
            expect(new Set(keys.map((key) => keySlot(key))).size, `${s.file} for ${JSON.stringify(id)}`).toBe(1);
            expect(keySlot(keys[0])).toBe(keySlot(tag));
          }
        }
      }
    }
  });
});
