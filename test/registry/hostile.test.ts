/**
 * A registry that lies, breaks and stalls (test/helpers/fake-registry.ts): every case is a RegistryError
 * of the right reason that names the reference and the registry, never the password, and never a hang.
 *
 * The session's part (src/registry/client.ts) is checked here directly; pull's part (what reaches the
 * store) in the pull cases below, through the CLI.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/errors.js';
import type { Digest } from '../../src/ids.js';
import { openImageStore, type ImageStore } from '../../src/image/index.js';
import {
  DEFAULT_REGISTRIES_CONFIG, MANIFEST_CAP, openSession, pullImage, pushImage, resolveReference,
  type CredentialStore, type RegistryAccess, type RegistryCredentials, type RegistrySession, type SessionOptions, type TransferEvent,
} from '../../src/registry/index.js';
import { openStorage } from '../../src/storage/index.js';
import { withTempRoot, type LayerSpec, type TempRoot } from '../fixtures/images.js';
import { makeTar, type TarEntry } from '../storage/helpers.js';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
import { MediaType, paddedManifest, rawManifest, remoteImage, sha256, startFakeRegistry, type FakeAuth, type FakeRegistry, type RemoteImage } from '../helpers/fake-registry.js';

const PASSWORD = 'pa55-never-printed';
const USER = 'alice';
/** Every test that waits for a time-out waits this long, at most a few times over. */
const SHORT = { connectMs: 1000, idleMs: 700 };
const ACCEPT = [MediaType.manifest, MediaType.index, MediaType.dockerManifest, MediaType.dockerList];

const noCredentials: CredentialStore = { get: async () => undefined, store: async () => {}, erase: async () => false };
const deps = { config: { ...DEFAULT_REGISTRIES_CONFIG, certsDirs: [] }, credentials: noCredentials };

let image: RemoteImage;
let fake: FakeRegistry | undefined;
const sessions: RegistrySession[] = [];

beforeAll(async () => {
  image = await remoteImage([
    { entries: [{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/hello', content: 'hello\n' }] },
    // random content: gzip cannot shrink it, so a cut lands inside the body
    { entries: [{ type: 'file', path: 'big', content: randomBytes(400_000) }] },
  ]);
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await fake?.close();
  fake = undefined;
});
afterAll(async () => { await fake?.close(); });

const bigLayer = (): Digest => [...image.blobs.entries()].filter(([d]) => d !== image.id).sort((a, b) => b[1].length - a[1].length)[0]![0];

async function serve(auth?: FakeAuth): Promise<FakeRegistry> {
  fake = await startFakeRegistry(auth ? { auth } : {});
  fake.put('hostile/img', 'v1', image);
  return fake;
}

async function session(opts: Partial<SessionOptions> = {}, repository = 'hostile/img'): Promise<RegistrySession> {
  const s = await openSession({ registry: fake!.host, repository }, { actions: ['pull'], timeouts: SHORT, ...opts }, deps);
  sessions.push(s);
  return s;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The error `p` rejects with, checked to be a RegistryError of `reason` naming `reference` and the registry. */
async function refused(p: Promise<unknown>, reason: RegistryError['reason'], reference: string): Promise<RegistryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, 'it should have failed').toBeInstanceOf(RegistryError);
  const re = err as RegistryError;
  expect({ reason: re.reason, message: re.message }).toMatchObject({ reason });
  expect(re.message).toContain(reference);
  expect(re.message).toContain(`registry ${fake!.host}`);
  expect(re.exitCode).toBe(125);
  expect(`${re.message} ${re.hint} ${String(re.stack)}`).not.toContain(PASSWORD);
  return re;
}

describe('session against a hostile registry', () => {
  it('refuses a manifest over 4 MiB, announced or streamed without a length', async () => {
    await serve();
    fake!.put('hostile/img', 'huge', paddedManifest(image, MANIFEST_CAP + 1));
    const s = await session();
    await refused(s.manifest('huge', ACCEPT), 'protocol', `${fake!.host}/hostile/img:huge`);
    fake!.misbehave({ on: 'manifest', ref: 'v1', times: 1, trick: { kind: 'oversize', bytes: 6 << 20, chunked: true } });
    await refused(s.manifest('v1', ACCEPT), 'protocol', `${fake!.host}/hostile/img:v1`);
    // exactly the cap is still a manifest
    fake!.put('hostile/img', 'edge', paddedManifest(image, MANIFEST_CAP));
    expect((await s.manifest('edge', ACCEPT)).bytes.length).toBe(MANIFEST_CAP);
  });

  it('refuses a manifest whose Docker-Content-Digest lies, and one that does not match the digest asked for', async () => {
    await serve();
    const s = await session();
    fake!.misbehave({ on: 'manifest', times: 1, trick: { kind: 'lie-digest' } });
    await refused(s.manifest('v1', ACCEPT), 'protocol', `${fake!.host}/hostile/img:v1`);
    fake!.misbehave({ on: 'manifest', times: 1, trick: { kind: 'corrupt' } });
    await refused(s.manifest(image.digest, ACCEPT), 'protocol', `${fake!.host}/hostile/img@${image.digest}`);
    fake!.misbehave({ on: 'manifest', times: 1, trick: { kind: 'lie-digest' } });
    await refused(s.headManifest(image.digest, ACCEPT), 'protocol', `${fake!.host}/hostile/img@${image.digest}`);
  });

  it('passes a manifest of an unknown media type through as it is, for pull to refuse', async () => {
    await serve();
    const weird = rawManifest('application/vnd.example.unknown+json', { schemaVersion: 2, mediaType: 'application/vnd.example.unknown+json' });
    fake!.put('hostile/img', 'weird', weird);
    const m = await (await session()).manifest('weird', ACCEPT);
    expect(m).toMatchObject({ mediaType: 'application/vnd.example.unknown+json', digest: weird.digest });
  });

  it('refuses a token answer over 1 MiB', async () => {
    await serve({ scheme: 'bearer', username: USER, password: PASSWORD });
    fake!.misbehave({ on: 'token', trick: { kind: 'oversize', bytes: (1 << 20) + 4096 } });
    const s = await session({ credentials: { username: USER, password: PASSWORD } });
    await refused(s.manifest('v1', ACCEPT), 'protocol', `${fake!.host}/hostile/img:v1`);
    fake!.behave();
    fake!.misbehave({ on: 'token', trick: { kind: 'oversize', bytes: 3 << 20, chunked: true } });
    const s2 = await session({ credentials: { username: USER, password: PASSWORD } });
    await refused(s2.manifest('v1', ACCEPT), 'protocol', `${fake!.host}/hostile/img:v1`);
  });

  it('times out on a registry that accepts and never answers', async () => {
    await serve();
    fake!.misbehave({ on: 'ping', trick: { kind: 'hang' } });
    await refused((await session()).manifest('v1', ACCEPT), 'timeout', fake!.host);
    fake!.behave();
    fake!.misbehave({ on: 'manifest', trick: { kind: 'hang' } });
    await refused((await session()).manifest('v1', ACCEPT), 'timeout', `${fake!.host}/hostile/img:v1`);
  });

  // Failed before issue14a's 0f08c0c: blob()'s close handler reported the stall as "the connection broke".
  it('times out on a blob that stalls mid-way, and says so', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', trick: { kind: 'stall', after: 50_000 } });
    const { stream } = await (await session()).blob(bigLayer());
    await refused(readAll(stream), 'timeout', `${fake!.host}/hostile/img@${bigLayer()}`);
  });

  it('says "unreachable" for a registry that is down', async () => {
    await serve();
    const s = await session();
    await fake!.close();
    await refused(s.manifest('v1', ACCEPT), 'unreachable', fake!.host);
  });

  it('refuses a wrong password (401) without printing it, on Basic and on Bearer', async () => {
    for (const scheme of ['basic', 'bearer'] as const) {
      await serve({ scheme, username: USER, password: 'the-right-one' });
      const s = await session({ credentials: { username: USER, password: PASSWORD } });
      await refused(s.manifest('v1', ACCEPT), 'unauthorized', `${fake!.host}/hostile/img:v1`);
      await fake!.close();
    }
  });

  it('says "denied" for a push the registry forbids (403), on Basic and on Bearer', async () => {
    for (const scheme of ['basic', 'bearer'] as const) {
      await serve({ scheme, username: USER, password: PASSWORD, pushable: [] });
      const s = await session({ actions: ['pull', 'push'], credentials: { username: USER, password: PASSWORD } }, 'hostile/pushed');
      const blob = Buffer.from('a blob');
      await refused(s.uploadBlob(sha256(blob), blob.length, () => Readable.from([blob])), 'denied', `${fake!.host}/hostile/pushed@${sha256(blob)}`);
      await fake!.close();
    }
  });

  it('retries 500s and 429s of a GET and then succeeds; gives up after the retries with "unavailable"', async () => {
    await serve();
    const s = await session({ retries: 2 });
    fake!.misbehave({ on: 'manifest', times: 1, trick: { kind: 'status', status: 500 } });
    fake!.misbehave({ on: 'manifest', times: 1, trick: { kind: 'status', status: 429, headers: { 'Retry-After': '0' } } });
    expect((await s.manifest('v1', ACCEPT)).digest).toBe(image.digest);
    expect(fake!.requests.filter((r) => r.kind === 'manifest').map((r) => r.outcome)).toEqual(['status', 'status', 'served']);
    fake!.misbehave({ on: 'manifest', times: 3, trick: { kind: 'status', status: 503 } });
    await refused(s.manifest('v1', ACCEPT), 'unavailable', `${fake!.host}/hostile/img:v1`);
  });

  it('resumes a blob from an offset with a Range request after a cut', async () => {
    await serve();
    const s = await session();
    const d = bigLayer();
    const whole = fake!.blob(d)!;
    fake!.misbehave({ on: 'blob', ref: d, times: 1, trick: { kind: 'cut', after: 100_000 } });
    const first = await s.blob(d);
    const got: Buffer[] = [];
    const cut = await new Promise<unknown>((resolve) => {
      first.stream.on('data', (c: Buffer) => got.push(c));
      first.stream.on('error', resolve);
      first.stream.on('end', () => resolve(undefined));
    });
    expect(cut).toBeInstanceOf(RegistryError);
    const have = Buffer.concat(got);
    expect(have.length).toBeLessThan(whole.length);
    const rest = await s.blob(d, { offset: have.length });
    expect(rest.size).toBe(whole.length);
    expect(Buffer.concat([have, await readAll(rest.stream)]).equals(whole)).toBe(true);
    expect(fake!.requests.filter((r) => r.kind === 'blob').at(-1)!.range).toBe(`bytes=${have.length}-`);
  });
});

// ------------------------------------------------------------------ pull and push into a real store

interface StoreState {
  /** files under images/ (records and tags) */
  records: string[];
  blobs: string[];
  layers: string[];
  /** temp and trash files or folders anywhere in the root */
  temps: string[];
  /** blobs whose bytes do not hash to their name */
  badBlobs: string[];
  /** layers still flagged incomplete */
  flagged: string[];
}

async function storeState(t: TempRoot): Promise<StoreState> {
  const { layout } = t;
  const list = async (dir: string) => (await fsp.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []));
  const records = (await list(layout.images)).filter((e) => !e.isDirectory()).map((e) => path.relative(layout.images, path.join(e.parentPath, e.name)))
    .filter((f) => !f.startsWith('leases')).sort();
  const blobDir = path.join(layout.blobs, 'sha256');
  const blobs = (await fsp.readdir(blobDir).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
  const badBlobs: string[] = [];
  for (const b of blobs) {
    const st = await fsp.lstat(path.join(blobDir, b));
    if (st.isFile() && st.size > 0 && sha256(await fsp.readFile(path.join(blobDir, b))) !== `sha256:${b}`) badBlobs.push(b);
  }
  const layers = (await fsp.readdir(layout.layers).catch(() => [] as string[])).filter((n) => /^(sha256:)?[0-9a-f]{64}$/.test(n)).sort();
  const flagged = layers.filter((l) => existsSync(path.join(layout.layers, l, 'incomplete')));
  const temps = (await list(t.root)).filter((e) => /^\.(tmp|trash|stale)-/.test(e.name) && !e.parentPath.includes('/diff'))
    .map((e) => path.relative(t.root, path.join(e.parentPath, e.name)));
  return { records, blobs, layers, temps, badBlobs, flagged };
}

/** After a failed pull: no record or tag, nothing half-written; blobs/layers only verified ones (kept for the next pull). */
async function expectNothingHalfStored(t: TempRoot, before: StoreState, opts: { notStored?: Digest[] } = {}): Promise<void> {
  const after = await storeState(t);
  expect(after.records, 'no image record or tag').toEqual(before.records);
  expect(after.temps, 'no temp files').toEqual([]);
  expect(after.badBlobs, 'no blob whose bytes differ from its digest').toEqual([]);
  expect(after.flagged, 'no layer left incomplete').toEqual([]);
  for (const d of opts.notStored ?? []) expect(after.blobs, `the bad blob ${d} is not kept`).not.toContain(d.slice('sha256:'.length));
  for (const b of before.blobs) expect(after.blobs).toContain(b);
}

/*
 * A layer the store refuses (digest mismatch, an unsafe tar entry) is reported as the registry's fault,
 * naming the reference and the registry, as every other case here; the store stays clean in every case.
 */
describe('pull and push against a hostile registry: the error, and nothing half-stored', () => {
  let t: TempRoot;
  let store: ImageStore;
  let creds: RegistryCredentials | undefined;
  let empty: StoreState;

  const access: RegistryAccess = {
    parse: (text) => resolveReference(text),
    candidates: (text) => [resolveReference(text)],
    pullSessions: async (ref, o) => [await session({ ...o, ...(creds && { credentials: creds }) }, ref.repository)],
    session: async (ref, o) => session({ ...o, ...(creds && { credentials: creds }) }, ref.repository),
  };
  const pull = (ref: string) => pullImage(access, store, ref);

  beforeEach(async () => {
    creds = undefined;
    t = await withTempRoot('berth-reg-hostile-');
    store = openImageStore(t.layout, openStorage(t.layout));
    empty = await storeState(t);
  });
  afterEach(async () => { await t?.cleanup(); });

  /** A pull that must fail: the error names the reference and registry, is 125, and shows no password. */
  async function pullFails(ref: string, pattern?: RegExp): Promise<Error> {
    const err = await pull(`${fake!.host}/${ref}`).then(() => undefined, (e: unknown) => e);
    expect(err, `pull of ${ref} should fail`).toBeInstanceOf(Error);
    const e = err as Error & { exitCode?: number; hint?: string };
    // soft: the store checks after this still run when the message falls short
    expect.soft(e.message, 'the error names the registry').toContain(`${fake!.host}`);
    expect.soft(e.message, 'the error names the repository').toContain(ref.split(/[:@]/)[0]!);
    expect(e.exitCode).toBe(125);
    if (pattern) expect(e.message).toMatch(pattern);
    expect(`${e.message} ${e.hint ?? ''}`).not.toContain(PASSWORD);
    return e;
  }

  it('a layer whose bytes do not match its digest', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), trick: { kind: 'corrupt' } });
    await pullFails('hostile/img:v1', /digest/);
    await expectNothingHalfStored(t, empty, { notStored: [bigLayer()] });
  });

  it('a layer longer than its size', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), trick: { kind: 'resize', by: 10 } });
    await pullFails('hostile/img:v1', /larger than/);
    await expectNothingHalfStored(t, empty, { notStored: [bigLayer()] });
  });

  it('a layer shorter than its size, every time: resumed, then refused as truncated', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), trick: { kind: 'resize', by: -1000 } });
    await pullFails('hostile/img:v1', /truncated/);
    await expectNothingHalfStored(t, empty, { notStored: [bigLayer()] });
  });

  it('a connection cut mid-layer, then the rest served on the Range request: the pull succeeds', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), times: 1, trick: { kind: 'cut', after: 100_000 } });
    const res = await pull(`${fake!.host}/hostile/img:v1`);
    expect(res.id).toBe(image.id);
    expect(res.digest).toBe(image.digest);
    const ranged = fake!.requests.filter((r) => r.kind === 'blob' && r.ref === bigLayer());
    expect(ranged.map((r) => r.outcome)).toEqual(['cut', 'served']);
    expect(ranged[1]!.range).toMatch(/^bytes=\d+-$/);
    expect((await store.resolve(`${fake!.host}/hostile/img:v1`)).id).toBe(image.id);
    expect((await storeState(t)).badBlobs).toEqual([]);
  });

  it('a connection cut mid-layer, and cut again on every Range request: refused as truncated after the resumes', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), times: 1, trick: { kind: 'cut', after: 100_000 } });
    fake!.misbehave({ on: 'blob', ref: bigLayer(), trick: { kind: 'cut', after: 0 } });
    await pullFails('hostile/img:v1', /truncated/);
    await expectNothingHalfStored(t, empty, { notStored: [bigLayer()] });
  });

  it('a manifest over 4 MiB', async () => {
    await serve();
    fake!.put('hostile/img', 'huge', paddedManifest(image, MANIFEST_CAP + 1));
    await pullFails('hostile/img:huge', /larger than 4 MiB/);
    await expectNothingHalfStored(t, empty);
    expect(await storeState(t)).toEqual(empty);
  });

  it('a manifest of an unknown media type', async () => {
    await serve();
    fake!.put('hostile/img', 'weird', rawManifest('application/vnd.example.unknown+json', { schemaVersion: 2, mediaType: 'application/vnd.example.unknown+json' }));
    await pullFails('hostile/img:weird', /application\/vnd\.example\.unknown\+json/);
    expect(await storeState(t)).toEqual(empty);
  });

  it('a manifest whose Docker-Content-Digest lies', async () => {
    await serve();
    fake!.misbehave({ on: 'manifest', trick: { kind: 'lie-digest' } });
    await pullFails('hostile/img:v1', /digest/);
    expect(await storeState(t)).toEqual(empty);
  });

  it('a token endpoint answering over 1 MiB', async () => {
    await serve({ scheme: 'bearer', username: USER, password: PASSWORD });
    creds = { username: USER, password: PASSWORD };
    fake!.misbehave({ on: 'token', trick: { kind: 'oversize', bytes: 2 << 20 } });
    await pullFails('hostile/img:v1', /larger than 1 MiB/);
    expect(await storeState(t)).toEqual(empty);
  });

  it('a registry that accepts and never answers: a time-out, not a hang', async () => {
    await serve();
    fake!.misbehave({ on: 'manifest', trick: { kind: 'hang' } });
    const err = await pullFails('hostile/img:v1');
    expect((err as RegistryError).reason).toBe('timeout');
    expect(await storeState(t)).toEqual(empty);
  });

  it('a layer download that stalls: timed out, then resumed from where it stopped', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), times: 1, trick: { kind: 'stall', after: 100_000 } });
    expect((await pull(`${fake!.host}/hostile/img:v1`)).id).toBe(image.id);
    const tries = fake!.requests.filter((r) => r.kind === 'blob' && r.ref === bigLayer());
    expect(tries.map((r) => r.outcome)).toEqual(['stall', 'served']);
    expect(tries[1]!.range).toMatch(/^bytes=\d+-$/);
  });

  it('a wrong password', async () => {
    await serve({ scheme: 'bearer', username: USER, password: 'the-right-one' });
    creds = { username: USER, password: PASSWORD };
    const err = await pullFails('hostile/img:v1', /incorrect username or password/);
    expect((err as RegistryError).reason).toBe('unauthorized');
    expect(await storeState(t)).toEqual(empty);
  });

  it('500s, then success: retried', async () => {
    await serve();
    fake!.misbehave({ on: 'manifest', times: 2, trick: { kind: 'status', status: 500 } });
    fake!.misbehave({ on: 'blob', ref: bigLayer(), times: 1, trick: { kind: 'status', status: 503 } });
    expect((await pull(`${fake!.host}/hostile/img:v1`)).id).toBe(image.id);
  });

  it('an image config that fails the image-spec check', async () => {
    await serve();
    const bad = await remoteImage([{ entries: [{ type: 'file', path: 'x', content: 'x' }] }], {
      editConfig: (c) => ({ ...c, config: { Cmd: 'echo not-a-list' } }),
    });
    fake!.put('hostile/img', 'badconfig', bad);
    await pullFails('hostile/img:badconfig', /not a valid image config.*Cmd/);
    await expectNothingHalfStored(t, empty);
    expect((await storeState(t)).layers).toEqual([]);
  });

  it.each([
    ['a ../ path', [{ name: '../escape', data: 'x' }]],
    ['an absolute symlink, then a write through it', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'etc/evil', data: 'x' }]],
    ['a hard link out of the layer', [{ name: 'passwd', type: 'link', linkname: '../../../../etc/passwd' }]],
  ] as [string, TarEntry[]][])('a layer tar with %s', async (_what, entries) => {
    await serve();
    const evil = await remoteImage([await makeTar(entries)]);
    fake!.put('hostile/img', 'evil', evil);
    await pullFails('hostile/img:evil', /outside the layer|through a symlink/);
    await expectNothingHalfStored(t, empty);
    expect((await storeState(t)).layers).toEqual([]);
    expect(existsSync('/etc/evil')).toBe(false);
  });

  it('after a complete pull, a failing pull of an image on the same base keeps the earlier image whole', async () => {
    await serve();
    const base: LayerSpec = { entries: [{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/hello', content: 'hello\n' }] };
    const next = await remoteImage([base, { entries: [{ type: 'file', path: 'more', content: randomBytes(200_000) }] }]);
    fake!.put('hostile/next', 'v1', next);
    await pull(`${fake!.host}/hostile/img:v1`);
    const before = await storeState(t);
    const nextTop = [...next.blobs.keys()].find((d) => !image.blobs.has(d) && d !== next.id)!;
    fake!.misbehave({ on: 'blob', ref: nextTop, trick: { kind: 'corrupt' } });
    await pullFails('hostile/next:v1', /digest/);
    await expectNothingHalfStored(t, before, { notStored: [nextTop] });
    expect((await store.resolve(`${fake!.host}/hostile/img:v1`)).id).toBe(image.id);
  });

  // "An interrupted pull leaves no half image (the next pull reuses the complete blobs)": a pull that fails
  // keeps what it verified, and only that.
  it('after an interrupted pull, the next pull fetches only what the interrupted one did not complete', async () => {
    await serve();
    const small = [...image.blobs.keys()].find((d) => d !== image.id && d !== bigLayer())!;
    fake!.misbehave({ on: 'blob', ref: bigLayer(), times: 1, trick: { kind: 'cut', after: 100_000 } });
    fake!.misbehave({ on: 'blob', ref: bigLayer(), trick: { kind: 'cut', after: 0 } });
    await expect(pull(`${fake!.host}/hostile/img:v1`)).rejects.toThrow(/truncated/);
    expect(fake!.requests.some((r) => r.kind === 'blob' && r.ref === small && r.method === 'GET')).toBe(true);
    const kept = await storeState(t);
    expect(kept.records).toEqual(empty.records);
    fake!.behave();
    fake!.requests.length = 0;
    const events: TransferEvent[] = [];
    const res = await pullImage(access, store, `${fake!.host}/hostile/img:v1`, { onProgress: (e) => events.push(e) });
    expect(res.id).toBe(image.id);
    const fetched = fake!.requests.filter((r) => r.kind === 'blob' && r.method === 'GET').map((r) => r.ref);
    expect({ fetched, keptBlobs: kept.blobs.length }).toEqual({ fetched: [bigLayer()], keptBlobs: 3 });
    expect(events).toContainEqual({ type: 'layer', id: small.slice(7, 19), status: 'exists' });
  });

  it('a cut layer shows as "retrying" in the progress events, then completes', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), times: 1, trick: { kind: 'cut', after: 100_000 } });
    const events: TransferEvent[] = [];
    await pullImage(access, store, `${fake!.host}/hostile/img:v1`, { onProgress: (e) => events.push(e) });
    const mine = events.filter((e) => e.type === 'layer' && e.id === bigLayer().slice(7, 19)).map((e) => (e as { status: string }).status);
    expect(mine).toContain('retrying');
    expect(mine.at(-1)).toBe('complete');
    expect(mine.indexOf('retrying')).toBeLessThan(mine.lastIndexOf('complete'));
  });

  it('a push the registry forbids (403)', async () => {
    await serve({ scheme: 'basic', username: USER, password: PASSWORD, pushable: [] });
    creds = { username: USER, password: PASSWORD };
    await pull(`${fake!.host}/hostile/img:v1`);
    await store.tag(`${fake!.host}/hostile/img:v1`, `${fake!.host}/hostile/mine:v1`);
    const err = await pushImage(access, store, `${fake!.host}/hostile/mine:v1`).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).reason).toBe('denied');
    expect((err as Error).message).toContain(`${fake!.host}/hostile/mine`);
    expect((err as Error).message).not.toContain(PASSWORD);
    expect(fake!.tags('hostile/mine')).toEqual([]);
  });
});

// ------------------------------------------------------------------ the CLI: exit 125, and what it prints

describe('berth pull/push against a hostile registry (the built CLI)', () => {
  let te: TestEngine;
  let home: string;
  beforeEach(async () => {
    te = await testEngine(3500 + (process.pid % 50));
    // Logins are looked up under HOME and DOCKER_CONFIG: a folder of the test's, so the user's are never read.
    home = await fsp.mkdtemp(path.join(tmpdir(), 'berth-reg-home-'));
  });
  afterEach(async () => { await cleanupAll(te, home); });

  const berthWith = (input: string | undefined, ...args: string[]) => execa(BIN, ['--root', te.root, '--runroot', te.runroot, ...args], {
    reject: false, timeout: 30_000, env: { HOME: home, DOCKER_CONFIG: path.join(home, '.docker'), BERTH_AUTH_FILE: path.join(home, 'auth.json') },
    ...(input !== undefined ? { input } : {}),
  });
  const berth = (...args: string[]) => berthWith(undefined, ...args);

  /** Files under the root that are records, tags, temp files: what a failed pull may not add. */
  async function recordsAndTemps(): Promise<string[]> {
    const out: string[] = [];
    for (const e of await fsp.readdir(te.root, { withFileTypes: true, recursive: true }).catch(() => [])) {
      const rel = path.relative(te.root, path.join(e.parentPath, e.name));
      if (/^\.(tmp|trash|stale)-/.test(e.name) && !rel.includes('/diff/')) out.push(rel);
      else if (rel.startsWith('images/') && !e.isDirectory() && !rel.startsWith('images/leases')) out.push(rel);
    }
    return out.sort();
  }

  async function cliFails(args: string[], ref: string, pattern?: RegExp): Promise<string> {
    const before = await recordsAndTemps();
    const res = await berth(...args);
    expect(res.exitCode, res.stderr).toBe(125);
    expect(res.stderr).toContain(fake!.host);
    expect(res.stderr).toContain(ref);
    if (pattern) expect(res.stderr).toMatch(pattern);
    expect(`${res.stdout}${res.stderr}`).not.toContain(PASSWORD);
    expect(await recordsAndTemps()).toEqual(before);
    return res.stderr;
  }

  it('exits 125 naming the reference and the registry for an unknown tag, an unknown repository, a registry that is down', async () => {
    await serve();
    await cliFails(['pull', `${fake!.host}/hostile/img:nope`], 'hostile/img:nope', /manifest unknown/);
    await cliFails(['pull', `${fake!.host}/hostile/other:v1`], 'hostile/other', /not found/);
    const host = fake!.host;
    await fake!.close();
    const res = await berth('pull', `${host}/hostile/img:v1`);
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toContain(`${host}/hostile/img`);
    expect(res.stderr).toMatch(/refused|unreachable/);
  });

  it('exits 125 for a manifest over 4 MiB, of an unknown media type, or with a lying digest, storing nothing', async () => {
    await serve();
    fake!.put('hostile/img', 'huge', paddedManifest(image, MANIFEST_CAP + 1));
    fake!.put('hostile/img', 'weird', rawManifest('application/vnd.example.unknown+json', { schemaVersion: 2, mediaType: 'application/vnd.example.unknown+json' }));
    await cliFails(['pull', `${fake!.host}/hostile/img:huge`], 'hostile/img:huge', /4 MiB/);
    await cliFails(['pull', `${fake!.host}/hostile/img:weird`], 'hostile/img:weird', /unknown\+json/);
    fake!.misbehave({ on: 'manifest', ref: 'v1', times: 1, trick: { kind: 'lie-digest' } });
    await cliFails(['pull', `${fake!.host}/hostile/img:v1`], 'hostile/img:v1', /digest/);
  });

  it('exits 125 for a corrupt layer and for a layer that climbs out (see the known failure above)', async () => {
    await serve();
    fake!.misbehave({ on: 'blob', ref: bigLayer(), trick: { kind: 'corrupt' } });
    await cliFails(['pull', `${fake!.host}/hostile/img:v1`], 'hostile/img', /digest/);
    fake!.behave();
    fake!.put('hostile/img', 'evil', await remoteImage([await makeTar([{ name: '../escape', data: 'x' }])]));
    await cliFails(['pull', `${fake!.host}/hostile/img:evil`], 'hostile/img', /outside the layer/);
  });

  it('pulls through 500s and a cut layer, and prints the digest the registry serves', async () => {
    await serve();
    fake!.misbehave({ on: 'manifest', times: 2, trick: { kind: 'status', status: 500 } });
    fake!.misbehave({ on: 'blob', ref: bigLayer(), times: 1, trick: { kind: 'cut', after: 100_000 } });
    const res = await berth('pull', `${fake!.host}/hostile/img:v1`);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toContain(`Digest: ${image.digest}`);
    const id = (await berth('image', 'inspect', '--format', '{{.Id}}', `${fake!.host}/hostile/img:v1`)).stdout.trim();
    expect(id).toBe(image.id);
  });

  it('a wrong password: login refused, a stored wrong login refused by pull with 125, the password never printed', async () => {
    await serve({ scheme: 'bearer', username: USER, password: 'the-right-one' });
    const login = await berthWith(`${PASSWORD}\n`, 'login', '-u', USER, '--password-stdin', fake!.host);
    expect(login.exitCode).not.toBe(0);
    expect(`${login.stdout}${login.stderr}`).not.toContain(PASSWORD);
    expect(login.stderr).toMatch(/incorrect username or password|unauthorized/i);
    // A login stored by another tool (Docker's config.json) that has gone stale
    await fsp.mkdir(path.join(home, '.docker'), { recursive: true });
    await fsp.writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [fake!.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
    await cliFails(['pull', `${fake!.host}/hostile/img:v1`], 'hostile/img', /incorrect username or password/);
  });

  it('a push the registry forbids: 125, "denied", the password never printed, nothing tagged there', async () => {
    await serve({ scheme: 'basic', username: USER, password: PASSWORD, pushable: [] });
    const login = await berthWith(`${PASSWORD}\n`, 'login', '-u', USER, '--password-stdin', fake!.host);
    expect(login.exitCode, login.stderr).toBe(0);
    expect(`${login.stdout}${login.stderr}`).not.toContain(PASSWORD);
    expect((await berth('pull', '-q', `${fake!.host}/hostile/img:v1`)).exitCode).toBe(0);
    expect((await berth('tag', `${fake!.host}/hostile/img:v1`, `${fake!.host}/hostile/mine:v1`)).exitCode).toBe(0);
    await cliFails(['push', `${fake!.host}/hostile/mine:v1`], 'hostile/mine', /denied/);
    expect(fake!.tags('hostile/mine')).toEqual([]);
  });
});
