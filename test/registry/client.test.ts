import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/ids.js';
import { DEFAULT_REGISTRIES_CONFIG, openSession, type CredentialStore, type RegistrySession } from '../../src/registry/index.js';
import { pushImage, startRegistry, type TestRegistry } from '../helpers/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const noCredentials: CredentialStore = { get: async () => undefined, store: async () => {}, erase: async () => false };
const deps = { config: { ...DEFAULT_REGISTRIES_CONFIG, certsDirs: [] }, credentials: noCredentials };
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('registry session on a plain-HTTP docker-registry', () => {
  let reg: TestRegistry;
  let session: RegistrySession;
  beforeAll(async () => {
    reg = await startRegistry({ port: 15100 });
    session = await openSession({ registry: reg.host, repository: 'berth/test' }, { actions: ['pull', 'push'] }, deps);
  });
  afterAll(async () => {
    session?.close();
    await reg?.stop();
  });

  it('pushes blobs and a manifest, and reads them back', async () => {
    await session.ping();
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const layer = Buffer.alloc(20 * 1024 * 1024 + 17, 7); // over MONOLITHIC_MAX: a streamed PATCH
    const cd = sha256(config);
    const ld = sha256(layer);
    expect(await session.blobSize(cd)).toBeUndefined();
    let progress = 0;
    await session.uploadBlob(cd, config.length, () => Readable.from([config]));
    await session.uploadBlob(ld, layer.length, () => Readable.from([layer.subarray(0, 1000), layer.subarray(1000)]), (n) => { progress = n; });
    expect(progress).toBe(layer.length);
    expect(await session.blobSize(cd)).toBe(config.length);
    expect(await session.blobSize(ld)).toBe(layer.length);

    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: ld, size: layer.length }],
    }));
    const digest = await session.putManifest('v1', OCI_MANIFEST, manifest);
    expect(digest).toBe(sha256(manifest));

    const byTag = await session.manifest('v1', [OCI_MANIFEST]);
    expect(byTag).toEqual({ mediaType: OCI_MANIFEST, digest, bytes: manifest });
    expect((await session.manifest(digest, [OCI_MANIFEST])).bytes).toEqual(manifest);
    expect(await session.headManifest('v1', [OCI_MANIFEST])).toEqual({ digest, mediaType: OCI_MANIFEST, size: manifest.length });
    expect(await session.headManifest('nope', [OCI_MANIFEST])).toBeUndefined();

    const whole = await session.blob(ld);
    expect(whole.size).toBe(layer.length);
    expect(sha256(await readAll(whole.stream))).toBe(ld);
    const tail = await session.blob(ld, { offset: 1000 });
    expect(tail.size).toBe(layer.length);
    expect((await readAll(tail.stream)).equals(layer.subarray(1000))).toBe(true);

    expect(await session.tags()).toEqual(['v1']);
  });

  it('mounts a blob from another repository', async () => {
    const pushed = await pushImage(reg, 'berth/source', 'latest');
    const layer = pushed.layerDigests[0] as Digest;
    expect(await session.mountBlob(layer, 'berth/source')).toBe(true);
    expect(await session.blobSize(layer)).toBe(pushed.layers[0]!.length);
  });

  it('reads an image another client pushed', async () => {
    const pushed = await pushImage(reg, 'other/image', 'latest', { format: 'docker' });
    const s = await openSession({ registry: reg.host, repository: 'other/image' }, { actions: ['pull'] }, deps);
    try {
      const m = await s.manifest('latest', ['application/vnd.docker.distribution.manifest.v2+json', OCI_MANIFEST]);
      expect(m.digest).toBe(pushed.manifestDigest);
      expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      expect(await readAll((await s.blob(pushed.configDigest as Digest)).stream)).toEqual(pushed.config);
    } finally {
      s.close();
    }
  });

  it('names unknown manifests, blobs and repositories', async () => {
    await expect(session.manifest('missing', [OCI_MANIFEST])).rejects.toMatchObject({ reason: 'not-found', message: expect.stringContaining('127.0.0.1:15100/berth/test:missing') });
    const s = await openSession({ registry: reg.host, repository: 'no/such' }, { actions: ['pull'] }, deps);
    try {
      await expect(s.manifest('latest', [OCI_MANIFEST])).rejects.toMatchObject({ reason: 'not-found', message: expect.stringMatching(/repository no\/such not found|not found/) });
      await expect(s.blob(sha256(Buffer.from('x')))).rejects.toMatchObject({ reason: 'not-found' });
    } finally {
      s.close();
    }
  });

  it('fails fast on a registry that is down', async () => {
    const s = await openSession({ registry: '127.0.0.1:15101', repository: 'a' }, { actions: ['pull'] }, deps);
    await expect(s.manifest('latest', [OCI_MANIFEST])).rejects.toMatchObject({ reason: 'unreachable', registry: '127.0.0.1:15101' });
    s.close();
  });
});
