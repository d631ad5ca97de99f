import { describe, expect, test } from 'vitest';
import { CorruptError } from '../errors.js';
import { ancestors, entryPath, isWithin, linkTarget, parseWhiteout } from './tarpath.js';

describe('entryPath', () => {
  test.each([
    ['etc/passwd', 'etc/passwd'],
    ['./etc/passwd', 'etc/passwd'],
    ['etc/', 'etc'],
    ['./', ''],
    ['.', ''],
    ['/', ''],
    ['/etc/passwd', 'etc/passwd'],
    ['//usr//bin/', 'usr/bin'],
    ['a/b/../c', 'a/c'],
    ['a/..', ''],
    ['..foo', '..foo'],
    ['a/..b', 'a/..b'],
  ])('%s → %s', (name, rel) => {
    expect(entryPath(name)).toBe(rel);
  });

  test.each(['..', '../x', 'a/../../x', '/../etc/passwd', './../x', 'a/b/../../../x', 'x\0y'])('refuses %s', (name) => {
    expect(() => entryPath(name)).toThrow(CorruptError);
  });

  test('the refusal names the entry', () => {
    expect(() => entryPath('../../etc/shadow')).toThrow(/"\.\.\/\.\.\/etc\/shadow"/);
  });
});

describe('linkTarget', () => {
  test('normalizes like entries', () => {
    expect(linkTarget('b', '/bin/busybox')).toBe('bin/busybox');
  });
  test.each(['../outside', '/../outside', '.', '/'])('refuses %s', (target) => {
    expect(() => linkTarget('b', target)).toThrow(CorruptError);
  });
});

describe('parseWhiteout', () => {
  test('plain entries are not whiteouts', () => {
    expect(parseWhiteout('etc/passwd')).toBeUndefined();
    expect(parseWhiteout('etc/x.wh.y')).toBeUndefined();
  });
  test('.wh.NAME deletes NAME in the same folder', () => {
    expect(parseWhiteout('etc/.wh.passwd')).toEqual({ kind: 'delete', path: 'etc/passwd' });
    expect(parseWhiteout('.wh.tmp')).toEqual({ kind: 'delete', path: 'tmp' });
    expect(parseWhiteout('a/b/.wh..hidden')).toEqual({ kind: 'delete', path: 'a/b/.hidden' });
  });
  test('.wh..wh..opq makes its folder opaque', () => {
    expect(parseWhiteout('var/lib/.wh..wh..opq')).toEqual({ kind: 'opaque', dir: 'var/lib' });
    expect(parseWhiteout('.wh..wh..opq')).toEqual({ kind: 'opaque', dir: '' });
  });
  test('other AUFS metadata is ignored', () => {
    expect(parseWhiteout('.wh..wh.plnk/123.456')).toBeUndefined();
    expect(parseWhiteout('.wh..wh.plnk')).toEqual({ kind: 'ignore' });
    expect(parseWhiteout('x/.wh..wh.aufs')).toEqual({ kind: 'ignore' });
  });
  test.each(['.wh.', 'a/.wh..', 'a/.wh...'])('refuses a whiteout of nothing: %s', (rel) => {
    expect(() => parseWhiteout(rel)).toThrow(CorruptError);
  });
});

test('ancestors lists every parent outermost first', () => {
  expect(ancestors('a/b/c')).toEqual(['a', 'a/b']);
  expect(ancestors('a')).toEqual([]);
});

test('isWithin matches whole components only', () => {
  expect(isWithin('a/b', 'a')).toBe(true);
  expect(isWithin('a', 'a')).toBe(true);
  expect(isWithin('ab', 'a')).toBe(false);
});
