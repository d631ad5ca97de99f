/**
 * Berth and skopeo (Debian's, 1.9) as peers over a real docker-registry (test/helpers/registry.ts): skopeo
 * reads what Berth pushed with the same digests, and Berth pulls and runs what skopeo pushed, with the
 * layers as skopeo compresses them (gzip by default, zstd when asked). skopeo only moves bytes here;
 * every check of the image is Berth's own (inspect, run).
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeDockerArchive, multiLayerTestImage } from '../fixtures/images.js';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const SKOPEO = '/usr/bin/skopeo';
const run = promisify(execFile);
const skopeo = async (...args: string[]) => (await run(SKOPEO, args, { timeout: 120_000, maxBuffer: 64 << 20 })).stdout;

interface RawManifest { mediaType?: string; config: { digest: string }; layers: { mediaType: string; digest: string }[] }

let reg: TestRegistry;
let src: TestEngine;
let work: string;
let busyboxId: string;
const pullers: TestEngine[] = [];
const extraRegistries: TestRegistry[] = [];
let nextPort = 0;

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-reg-interop-'));
  reg = await startRegistry({ port: 15360 + (process.pid % 10) });
  src = await testEngine(3550);
  await src.ok('image', 'default');
  busyboxId = await src.ok('image', 'inspect', '--format', '{{.Id}}', 'busybox');
}, 120_000);
afterAll(async () => {
  for (const r of extraRegistries.splice(0)) await r.stop();
  await reg?.stop();
  await cleanupAll(src, work);
});
afterEach(async () => {
  for (const t of pullers.splice(0)) await t.cleanup();
  for (const r of extraRegistries.splice(0)) await r.stop();
});

/**
 * A registry of its own for one skopeo push: skopeo's blob-info cache would otherwise mount the
 * uncompressed layer Berth pushed earlier in the run (or the gzip one of another test) instead of
 * compressing it as asked.
 */
async function ownRegistry(): Promise<TestRegistry> {
  const r = await startRegistry({ port: 15370 + (process.pid % 5) * 4 + nextPort++ });
  extraRegistries.push(r);
  return r;
}

/** A fresh, empty root to pull into. */
async function freshRoot(): Promise<TestEngine> {
  const t = await testEngine(3551 + pullers.length);
  pullers.push(t);
  return t;
}

async function berthPush(ref: string): Promise<string> {
  const out = await src.ok('push', ref);
  const m = /digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(out);
  expect(m, out).not.toBeNull();
  return m![1]!;
}

async function inspectRaw(ref: string): Promise<RawManifest> {
  return JSON.parse(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`)) as RawManifest;
}

/** Berth pulls `ref` into a fresh root, runs it with no network, and returns the digest pull printed and the image ID. */
async function berthPullAndRun(ref: string): Promise<{ digest: string; id: string }> {
  const t = await freshRoot();
  const out = await t.ok('pull', ref);
  const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1];
  expect(digest, out).toBeDefined();
  expect(await t.ok('run', '--rm', '--network', 'none', ref, 'echo', 'hello from skopeo')).toBe('hello from skopeo');
  return { digest: digest!, id: await t.ok('image', 'inspect', '--format', '{{.Id}}', ref) };
}

describe('interop with skopeo over docker-registry', () => {
  it('skopeo reads what Berth pushed (busybox) with the same manifest and config digests', async () => {
    const ref = `${reg.host}/interop/busybox:1`;
    await src.ok('tag', 'busybox', ref);
    const digest = await berthPush(ref);
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`)) as { Digest: string };
    expect(info.Digest).toBe(digest);
    expect((await inspectRaw(ref)).config.digest).toBe(busyboxId);
    const dir = path.join(work, 'from-berth');
    // skopeo's oci: transport gzips uncompressed layers (a new digest) unless told to keep them
    await skopeo('copy', '--preserve-digests', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:1`);
    const index = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]!.digest).toBe(digest);
  });

  it('skopeo reads a multi-layer image Berth pushed: the same digest, the same diff IDs', async () => {
    const { layers, config } = multiLayerTestImage();
    const archive = path.join(work, 'multi.tar');
    await makeDockerArchive(archive, layers, { config, tags: ['localhost/multi:1'] });
    await src.ok('load', '-i', archive);
    const ref = `${reg.host}/interop/multi:1`;
    await src.ok('tag', 'localhost/multi:1', ref);
    const digest = await berthPush(ref);
    expect(JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`)).Digest).toBe(digest);
    const cfg = JSON.parse(await skopeo('inspect', '--config', '--tls-verify=false', `docker://${ref}`)) as { rootfs: { diff_ids: string[] } };
    const ours = JSON.parse(await src.ok('image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref)) as string[];
    expect(cfg.rootfs.diff_ids).toEqual(ours);
    expect((await inspectRaw(ref)).layers).toHaveLength(3);
  });

  it('Berth pulls and runs what skopeo pushed from an OCI layout Berth saved, gzip-compressed by skopeo', async () => {
    const dir = path.join(work, 'saved-oci');
    await src.ok('save', '--format', 'oci-dir', '-o', dir, 'busybox');
    const ref = `${(await ownRegistry()).host}/interop/fromskopeo:1`;
    await skopeo('copy', '--dest-tls-verify=false', `oci:${dir}`, `docker://${ref}`);
    const raw = await inspectRaw(ref);
    expect(raw.layers.every((l) => l.mediaType.endsWith('+gzip') || l.mediaType.endsWith('.tar.gzip'))).toBe(true);
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`)) as { Digest: string };
    const pulled = await berthPullAndRun(ref);
    expect(pulled.digest).toBe(info.Digest);
    expect(pulled.id).toBe(busyboxId);
  });

  it('Berth pulls and runs what skopeo pushed from a docker-archive Berth saved', async () => {
    const archive = path.join(work, 'saved.tar');
    await src.ok('save', '-o', archive, 'busybox');
    const ref = `${(await ownRegistry()).host}/interop/fromarchive:1`;
    await skopeo('copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${ref}`);
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`)) as { Digest: string };
    const pulled = await berthPullAndRun(ref);
    expect(pulled.digest).toBe(info.Digest);
    expect(pulled.id).toBe(busyboxId);
  });

  it('Berth pulls and runs zstd layers skopeo pushed (--dest-compress-format zstd)', async () => {
    const dir = path.join(work, 'saved-oci-zstd');
    await src.ok('save', '--format', 'oci-dir', '-o', dir, 'busybox');
    const ref = `${(await ownRegistry()).host}/interop/zstd:1`;
    await skopeo('copy', '--dest-tls-verify=false', '--dest-compress', '--dest-compress-format', 'zstd', `oci:${dir}`, `docker://${ref}`);
    const raw = await inspectRaw(ref);
    expect(raw.layers.map((l) => l.mediaType)).toEqual(raw.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+zstd'));
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`)) as { Digest: string };
    const pulled = await berthPullAndRun(ref);
    expect(pulled.digest).toBe(info.Digest);
    expect(pulled.id).toBe(busyboxId);
  });
});
