import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, RegistryError } from '../errors.js';
import { MediaType } from '../image/oci.js';
import { hostPlatform, parseManifest, parsePlatform, selectPlatform, type Descriptor } from './manifest.js';
import type { Digest } from '../ids.js';

const D = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const src = { registry: '127.0.0.1:5000', reference: '127.0.0.1:5000/app:latest' };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

const manifest = (mediaType: string, layerType: string = MediaType.layerGzip, configType: string = MediaType.config) => ({
  schemaVersion: 2, mediaType,
  config: { mediaType: configType, digest: D('a'), size: 10 },
  layers: [{ mediaType: layerType, digest: D('b'), size: 20 }],
});

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RegistryError);
    return `${(err as RegistryError).reason}: ${(err as Error).message}`;
  }
  throw new Error('did not throw');
}

describe('parseManifest', () => {
  it('reads OCI and Docker schema 2 manifests', () => {
    for (const mt of [MediaType.manifest, MediaType.dockerManifest]) {
      const m = parseManifest(json(manifest(mt, MediaType.dockerLayerGzip, MediaType.dockerConfig)), mt, src);
      expect(m).toMatchObject({ kind: 'manifest', mediaType: mt, config: { digest: D('a') }, layers: [{ digest: D('b'), size: 20 }] });
    }
  });

  it('takes an OCI document without mediaType by its shape', () => {
    const { mediaType: _, ...bare } = manifest(MediaType.manifest);
    expect(parseManifest(json(bare), 'application/octet-stream', src).kind).toBe('manifest');
    expect(parseManifest(json({ schemaVersion: 2, manifests: [] }), 'application/json', src).kind).toBe('index');
  });

  it('reads indexes and manifest lists with their platforms', () => {
    const idx = { schemaVersion: 2, mediaType: MediaType.dockerList, manifests: [{ mediaType: MediaType.dockerManifest, digest: D('c'), size: 5, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }] };
    expect(parseManifest(json(idx), MediaType.dockerList, src)).toEqual({ kind: 'index', mediaType: MediaType.dockerList, manifests: [{ mediaType: MediaType.dockerManifest, digest: D('c'), size: 5, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }] });
  });

  it('refuses schema 1, unknown media types, artifacts and bad descriptors with protocol errors', () => {
    expect(reason(() => parseManifest(json({ schemaVersion: 1 }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', src))).toMatch(/^protocol: .*schema 1/);
    expect(reason(() => parseManifest(json({ schemaVersion: 1, name: 'x' }), 'application/json', src))).toMatch(/schema 1/);
    expect(reason(() => parseManifest(json({ schemaVersion: 2, mediaType: 'application/x-thing' }), 'application/x-thing', src))).toMatch(/media type application\/x-thing/);
    expect(reason(() => parseManifest(json(manifest(MediaType.manifest, MediaType.layer, 'application/vnd.cncf.helm.config.v1+json')), MediaType.manifest, src))).toMatch(/not a container image/);
    expect(reason(() => parseManifest(json(manifest(MediaType.dockerManifest, 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip')), MediaType.dockerManifest, src))).toMatch(/cannot unpack/);
    const bad = manifest(MediaType.manifest);
    bad.layers[0]!.digest = 'md5:abc' as Digest;
    expect(reason(() => parseManifest(json(bad), MediaType.manifest, src))).toMatch(/only sha256/);
    expect(reason(() => parseManifest(Buffer.from('{nope'), MediaType.manifest, src))).toMatch(/not valid JSON/);
    expect(reason(() => parseManifest(json({ ...manifest(MediaType.manifest), layers: 'x' }), MediaType.manifest, src))).toMatch(/no layers list/);
  });
});

describe('platforms', () => {
  const entry = (c: string, os: string, architecture: string, variant?: string): Descriptor =>
    ({ mediaType: MediaType.manifest, digest: D(c), size: 1, platform: { os, architecture, ...(variant ? { variant } : {}) } });
  const index = [entry('1', 'linux', 'amd64'), entry('2', 'linux', 'arm64', 'v8'), entry('3', 'linux', 'arm', 'v6'), entry('4', 'linux', 'arm', 'v7'), entry('5', 'windows', 'amd64')];

  it("names this machine's platform in OCI words", () => {
    expect(hostPlatform('x64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(hostPlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(hostPlatform('arm', '6')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
  });

  it('parses --platform and refuses what is not os/arch[/variant]', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('Linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/am d64']) expect(() => parsePlatform(bad)).toThrow(InvalidArgumentError);
  });

  it('picks os/arch, matches variants, and lists what is offered when nothing matches', () => {
    expect(selectPlatform(index, { os: 'linux', architecture: 'amd64' }, src).digest).toBe(D('1'));
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm64' }, src).digest).toBe(D('2'));
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }, src).digest).toBe(D('4'));
    // arm64 entries without a variant are v8
    expect(selectPlatform([entry('6', 'linux', 'arm64')], { os: 'linux', architecture: 'arm64', variant: 'v8' }, src).digest).toBe(D('6'));
    expect(reason(() => selectPlatform(index, { os: 'linux', architecture: 's390x' }, src)))
      .toBe('not-found: 127.0.0.1:5000/app:latest: no image for platform linux/s390x in the index (it offers linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7, windows/amd64) (registry 127.0.0.1:5000)');
  });

  it('skips attestation entries (unknown/unknown) when listing', () => {
    const att = { mediaType: MediaType.manifest, digest: D('9'), size: 1, platform: { os: 'unknown', architecture: 'unknown' } };
    expect(reason(() => selectPlatform([entry('1', 'linux', 'amd64'), att], { os: 'linux', architecture: 'riscv64' }, src))).toMatch(/offers linux\/amd64\)/);
  });
});
