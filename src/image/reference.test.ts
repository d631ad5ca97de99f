import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { candidateTags, hasDomain, idPrefix, matchesReferencePattern, parseReference, parseTagTarget } from './reference.js';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseReference', () => {
  it.each([
    ['busybox', { name: 'busybox' }],
    ['busybox:1.36', { name: 'busybox', tag: '1.36' }],
    ['localhost/busybox:latest', { name: 'localhost/busybox', tag: 'latest' }],
    ['example.com:5000/team/app:v1_2-3', { name: 'example.com:5000/team/app', tag: 'v1_2-3' }],
    [`busybox@${D}`, { name: 'busybox', digest: D }],
    [`a/b:t@${D}`, { name: 'a/b', tag: 't', digest: D }],
    ['a__b/c-d.e---f', { name: 'a__b/c-d.e---f' }],
    ['UPPER.example.com/a', { name: 'UPPER.example.com/a' }],
  ])('parses %s', (text, want) => {
    expect(parseReference(text)).toEqual(want);
  });

  it.each([
    ['', 'empty'],
    ['Busybox', 'must be lowercase'],
    ['library/Busybox:1', 'must be lowercase'],
    ['busybox:', 'invalid tag'],
    ['busybox:-x', 'invalid tag'],
    [`busybox:${'t'.repeat(129)}`, 'invalid tag'],
    ['busybox@sha256:abc', 'invalid digest'],
    [`busybox@sha512:${'a'.repeat(128)}`, 'only sha256'],
    ['a//b', 'component'],
    ['-a', 'component'],
    ['a_', 'component'],
    ['a/', 'component'],
    ['bad_domain.com/a', 'domain'],
    [`${'a'.repeat(256)}`, 'longer than 255'],
  ])('refuses %j (%s)', (text, why) => {
    let err: unknown;
    try { parseReference(text); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain(why);
    expect((err as Error).message).toContain(JSON.stringify(text));
  });
});

describe('lookup helpers', () => {
  it('tries localhost/ first for names without a domain', () => {
    expect(candidateTags(parseReference('busybox'))).toEqual(['localhost/busybox:latest', 'busybox:latest', 'docker.io/library/busybox:latest']);
    expect(candidateTags(parseReference('team/app:v1'))).toEqual(['localhost/team/app:v1', 'team/app:v1', 'docker.io/team/app:v1']);
    expect(candidateTags(parseReference('app'), ['docker.io', 'quay.io'])).toEqual(['localhost/app:latest', 'app:latest', 'docker.io/library/app:latest', 'quay.io/app:latest']);
    expect(candidateTags(parseReference('localhost/busybox'))).toEqual(['localhost/busybox:latest']);
    expect(candidateTags(parseReference('quay.io/a/b:2'))).toEqual(['quay.io/a/b:2']);
  });

  it('tells domains from path components as Docker does', () => {
    expect(hasDomain('busybox')).toBe(false);
    expect(hasDomain('team/app')).toBe(false);
    expect(hasDomain('localhost/app')).toBe(true);
    expect(hasDomain('host:5000/app')).toBe(true);
    expect(hasDomain('a.b/app')).toBe(true);
  });

  it('adds the default tag to tag targets and refuses digests there', () => {
    expect(parseTagTarget('app')).toBe('app:latest');
    expect(parseTagTarget('localhost/app:v2')).toBe('localhost/app:v2');
    expect(() => parseTagTarget(`app@${D}`)).toThrow(InvalidArgumentError);
  });

  it('recognises IDs and ID prefixes', () => {
    expect(idPrefix(D)).toBe('ab'.repeat(32));
    expect(idPrefix('abab12')).toBe('abab12');
    expect(idPrefix('sha256:abab')).toBe('abab');
    expect(idPrefix('busybox')).toBeUndefined();
    expect(idPrefix('ABAB')).toBeUndefined();
  });

  it('matches reference filters like docker images --filter reference=', () => {
    expect(matchesReferencePattern('busybox', 'localhost/busybox:latest')).toBe(true);
    expect(matchesReferencePattern('busybox:latest', 'localhost/busybox:latest')).toBe(true);
    expect(matchesReferencePattern('busy*', 'busybox:1')).toBe(true);
    expect(matchesReferencePattern('*:1', 'busybox:1')).toBe(true);
    expect(matchesReferencePattern('*', 'team/app:1')).toBe(false);
    expect(matchesReferencePattern('team/*', 'team/app:1')).toBe(true);
    expect(matchesReferencePattern('other', 'busybox:1')).toBe(false);
  });
});
