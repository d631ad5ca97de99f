import { describe, expect, it } from 'vitest';
import { authKey, candidateReferences, isShortName, normalizeRegistry, pullSources, registriesConfig, registryEndpoint, resolveReference } from './names.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('resolveReference (Docker normalization)', () => {
  it.each([
    ['busybox', 'docker.io', 'library/busybox', undefined],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36'],
    ['library/busybox', 'docker.io', 'library/busybox', undefined],
    ['user/app:v2', 'docker.io', 'user/app', 'v2'],
    ['docker.io/busybox', 'docker.io', 'library/busybox', undefined],
    ['index.docker.io/busybox', 'docker.io', 'library/busybox', undefined],
    ['index.docker.io/a/b', 'docker.io', 'a/b', undefined],
    ['localhost/busybox', 'localhost', 'busybox', undefined],
    ['localhost:5000/busybox:x', 'localhost:5000', 'busybox', 'x'],
    ['127.0.0.1:15100/a/b/c:t', '127.0.0.1:15100', 'a/b/c', 't'],
    ['quay.io/podman/hello', 'quay.io', 'podman/hello', undefined],
  ])('%s', (text, registry, repository, tag) => {
    const r = resolveReference(text);
    expect(r).toMatchObject({ registry, repository, name: `${registry}/${repository}` });
    expect(r.tag).toBe(tag);
  });

  it('keeps a digest', () => {
    expect(resolveReference(`busybox@${D}`)).toMatchObject({ name: 'docker.io/library/busybox', digest: D });
    expect(resolveReference(`busybox:1@${D}`)).toMatchObject({ tag: '1', digest: D });
  });

  it('refuses what the grammar refuses', () => {
    expect(() => resolveReference('Busybox')).toThrow(/lowercase|invalid/);
    expect(() => resolveReference('a b')).toThrow(/invalid reference/);
  });
});

describe('short names', () => {
  it('are names without a registry', () => {
    expect(isShortName('busybox')).toBe(true);
    expect(isShortName('library/busybox')).toBe(true);
    expect(isShortName('localhost/busybox')).toBe(false);
    expect(isShortName('docker.io/busybox')).toBe(false);
  });

  it('go to each unqualified-search registry in order, library/ only on docker.io', () => {
    const refs = candidateReferences('busybox:1', { unqualifiedSearch: ['127.0.0.1:15100', 'docker.io'] });
    expect(refs.map((r) => `${r.name}:${r.tag}`)).toEqual(['127.0.0.1:15100/busybox:1', 'docker.io/library/busybox:1']);
    expect(candidateReferences('quay.io/a/b', { unqualifiedSearch: ['docker.io'] }).map((r) => r.name)).toEqual(['quay.io/a/b']);
  });

  it('are refused by name when no search registry is configured', () => {
    expect(() => candidateReferences('busybox', { unqualifiedSearch: [] })).toThrow(/busybox" names no registry/);
  });
});

describe('registry names', () => {
  it('normalizes what users and config files write', () => {
    expect(normalizeRegistry('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeRegistry('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeRegistry('http://127.0.0.1:5000/')).toBe('127.0.0.1:5000');
    expect(normalizeRegistry('Example.COM:443')).toBe('example.com:443');
    expect(() => normalizeRegistry('')).toThrow(/not a registry host/);
  });

  it('maps docker.io to its API host and its auth-file key', () => {
    expect(registryEndpoint('docker.io')).toBe('registry-1.docker.io');
    expect(authKey('docker.io')).toBe('https://index.docker.io/v1/');
    expect(authKey('127.0.0.1:15100')).toBe('127.0.0.1:15100');
  });
});

describe('registriesConfig', () => {
  it('has Docker\'s defaults', () => {
    expect(registriesConfig({})).toEqual({
      unqualifiedSearch: ['docker.io'], mirrors: {}, insecure: [],
      certsDirs: ['/etc/berth/certs.d', '/etc/containers/certs.d', '/etc/docker/certs.d'],
    });
  });

  it('puts registry-mirrors before docker.io, and an http:// mirror among the insecure', () => {
    const c = registriesConfig({ 'registry-mirrors': ['http://127.0.0.1:15150', 'https://m.example'], mirrors: { 'Quay.io': ['q.example:5000'] }, 'insecure-registries': ['a.example'] });
    expect(c.mirrors).toEqual({ 'docker.io': ['127.0.0.1:15150', 'm.example'], 'quay.io': ['q.example:5000'] });
    expect(c.insecure).toEqual(['a.example', '127.0.0.1:15150']);
    expect(pullSources('docker.io', c)).toEqual(['127.0.0.1:15150', 'm.example', 'docker.io']);
    expect(pullSources('ghcr.io', c)).toEqual(['ghcr.io']);
  });
});
