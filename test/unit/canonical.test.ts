/**
 * Canonical JSON and sha256hex (SPEC 2.7). Pure: no server. Every expected string is written out
 * by hand from the SPEC rules, not computed with the implementation.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { canonical, sha256hex } from '../../src/index.js';

describe('canonical (SPEC 2.7)', () => {
  test('null, true and false are literals', () => {
    expect(canonical(null)).toBe('null');
    expect(canonical(true)).toBe('true');
    expect(canonical(false)).toBe('false');
  });

  test('numbers are written exactly as JSON.stringify writes them', () => {
    const cases: Array<[number, string]> = [
      [0, '0'],
      [-0, '0'],
      [100, '100'],
      [-5, '-5'],
      [1.5, '1.5'],
      [0.1 + 0.2, '0.30000000000000004'],
      [2 ** 53 - 1, '9007199254740991'],
      [1_700_000_000_123, '1700000000123'],
      [1e21, '1e+21'],
      [1.5e300, '1.5e+300'],
      [1e-7, '1e-7'],
      [5e-324, '5e-324'],
      [-1.7976931348623157e308, '-1.7976931348623157e+308'],
    ];
    for (const [value, expected] of cases) {
      expect(canonical(value)).toBe(expected);
      expect(canonical(value)).toBe(JSON.stringify(value));
    }
  });

  test('strings are written exactly as JSON.stringify writes them', () => {
    const cases = [
      '',
      'plain',
      'quote " and backslash \\ and slash /',
      'newline \n tab \t cr \r bs \b ff \f',
      'controls \u0000 \u0001 \u001f del \u007f',
      'separators \u2028 \u2029',
      'non-ascii é ß 漢字 😀',
      'lone \ud800 surrogate \udc00',
    ];
    for (const s of cases) expect(canonical(s)).toBe(JSON.stringify(s));
    expect(canonical('a"b\n')).toBe('"a\\"b\\n"');
    expect(canonical('\u0000')).toBe('"\\u0000"');
    expect(canonical('é😀')).toBe('"é😀"');
  });

  test('arrays keep their order', () => {
    expect(canonical([3, 1, 2])).toBe('[3,1,2]');
    expect(canonical(['b', 'a', null, true])).toBe('["b","a",null,true]');
    expect(canonical([])).toBe('[]');
    expect(canonical([[], {}])).toBe('[[],{}]');
  });

  test('object keys are sorted ascending and nested objects are sorted too', () => {
    expect(canonical({ b: 1, a: 2, c: 3 })).toBe('{"a":2,"b":1,"c":3}');
    expect(canonical({})).toBe('{}');
    expect(canonical({ b: [{ d: 1, c: 2 }, [3, { f: 'x', e: null }]], a: {} })).toBe(
      '{"a":{},"b":[{"c":2,"d":1},[3,{"e":null,"f":"x"}]]}',
    );
  });

  test('keys sort by UTF-16 code units, not by code point or UTF-8 bytes', () => {
    // '😀' is U+1F600 (surrogates D83D DE00); '｡' is U+FF61. In UTF-16 code units D83D < FF61, so
    // '😀' sorts before '｡', while code point and UTF-8 byte order would put it after.
    const value = { '｡': 7, '😀': 6, é: 5, aa: 4, a: 3, B: 2, '': 1 };
    expect(canonical(value)).toBe('{"":1,"B":2,"a":3,"aa":4,"é":5,"😀":6,"｡":7}');
  });

  test('properties whose value is undefined are dropped at every depth', () => {
    expect(canonical({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonical({ x: { y: undefined, z: [{ q: undefined }] } })).toBe('{"x":{"z":[{}]}}');
    expect(canonical({ only: undefined })).toBe('{}');
  });

  test('keys are escaped like JSON.stringify and the output has no whitespace', () => {
    expect(canonical({ 'a"b': 1, 'k ey': ' v ' })).toBe('{"a\\"b":1,"k ey":" v "}');
    const out = canonical({ list: [1, 2, { nested: { deep: [true, false, null] } }], s: 'x' });
    expect(out).toBe('{"list":[1,2,{"nested":{"deep":[true,false,null]}}],"s":"x"}');
    expect(out).not.toMatch(/\s/);
  });

  test('key order of the input does not matter', () => {
    const one = { a: 1, b: { c: [1, { e: 2, d: 3 }] } };
    const two = { b: { c: [1, { d: 3, e: 2 }] }, a: 1 };
    expect(canonical(one)).toBe(canonical(two));
  });
});

describe('sha256hex (SPEC 2.7)', () => {
  test('is the lowercase hex SHA-256 of the UTF-8 bytes', () => {
    expect(sha256hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const text = 'é 漢字 😀';
    expect(sha256hex(text)).toBe(createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex'));
    expect(sha256hex(text)).toMatch(/^[0-9a-f]{64}$/);
  });

  test('hashes of canonical text are independent of key order', () => {
    expect(sha256hex(canonical({ b: 1, a: 2 }))).toBe(
      createHash('sha256').update('{"a":2,"b":1}', 'utf8').digest('hex'),
    );
  });
});
