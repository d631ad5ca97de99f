/**
 * The fake registry itself: that it speaks the distribution API well enough for a real client (skopeo,
 * Debian's) to pull from and push to it, with and without auth, and that each trick does what it says.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MediaType, paddedManifest, rawManifest, remoteImage, remoteIndex, sha256, startFakeRegistry, type FakeRegistry, type RemoteImage } from './fake-registry.js';

const run = promisify(execFile);
const SKOPEO = '/usr/bin/skopeo';

let work: string;
let image: RemoteImage;
let fake: FakeRegistry | undefined;

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-fakereg-'));
  image = await remoteImage([
    { entries: [{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/hello', content: 'hello\n' }] },
    { entries: [{ type: 'file', path: 'big', content: randomBytes(300_000) }] },
  ]);
});
afterAll(async () => { await fsp.rm(work, { recursive: true, force: true }); });
afterEach(async () => { await fake?.close(); fake = undefined; });

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer; error?: string }

/** One request with node's http client, reading whatever comes until the socket ends. */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (error?: string) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error });
      res.on('end', () => done());
      res.on('error', (e) => done(e.message));
      res.on('aborted', () => done('aborted'));
    });
    req.setTimeout(opts.timeoutMs ?? 5000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error: e.message }));
    req.end(opts.body);
  });
}

/** the largest layer blob (random content: gzip cannot shrink it) */
const layer = () => [...image.blobs.entries()].filter(([d]) => d !== image.id).sort((a, b) => b[1].length - a[1].length)[0]![0];

describe('the fake registry, honest', () => {
  it('serves manifests by tag and digest, blobs with ranges, tags in pages, and 404s in the distribution format', async () => {
    fake = await startFakeRegistry();
    fake.put('test/img', 'v1', image);
    fake.put('test/img', 'v2', image);
    expect((await request(`${fake.url}/v2/`)).status).toBe(200);
    const byTag = await request(`${fake.url}/v2/test/img/manifests/v1`);
    expect(byTag.headers['content-type']).toBe(MediaType.manifest);
    expect(byTag.headers['docker-content-digest']).toBe(image.digest);
    expect(sha256(byTag.body)).toBe(image.digest);
    expect((await request(`${fake.url}/v2/test/img/manifests/${image.digest}`)).body.equals(image.manifest)).toBe(true);
    const head = await request(`${fake.url}/v2/test/img/manifests/v1`, { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(image.manifest.length));

    const d = layer();
    const whole = fake.blob(d)!;
    const part = await request(`${fake.url}/v2/test/img/blobs/${d}`, { headers: { Range: 'bytes=100-' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-${whole.length - 1}/${whole.length}`);
    expect(part.body.equals(whole.subarray(100))).toBe(true);

    const page1 = await request(`${fake.url}/v2/test/img/tags/list?n=1`);
    expect(JSON.parse(page1.body.toString()).tags).toEqual(['v1']);
    expect(page1.headers.link).toContain('last=v1');

    const missing = await request(`${fake.url}/v2/test/img/manifests/nope`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString()).errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect(JSON.parse((await request(`${fake.url}/v2/other/manifests/v1`)).body.toString()).errors[0].code).toBe('NAME_UNKNOWN');
  });

  it('answers Basic auth challenges, and Bearer challenges with a token endpoint that checks the password', async () => {
    fake = await startFakeRegistry({ auth: { scheme: 'basic', username: 'alice', password: 's3cret' } });
    fake.put('x', 'v1', image);
    const none = await request(`${fake.url}/v2/x/manifests/v1`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="fake-registry"');
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    expect((await request(`${fake.url}/v2/x/manifests/v1`, { headers: { Authorization: basic('alice', 'wrong') } })).status).toBe(401);
    expect((await request(`${fake.url}/v2/x/manifests/v1`, { headers: { Authorization: basic('alice', 's3cret') } })).status).toBe(200);
    await fake.close();

    fake = await startFakeRegistry({ auth: { scheme: 'bearer', username: 'alice', password: 's3cret', pushable: [] } });
    fake.put('x', 'v1', image);
    const challenge = (await request(`${fake.url}/v2/x/manifests/v1`)).headers['www-authenticate']!;
    expect(challenge).toBe(`Bearer realm="${fake.url}/token",service="fake-registry",scope="repository:x:pull"`);
    expect((await request(`${fake.url}/token?service=fake-registry&scope=repository:x:pull`, { headers: { Authorization: basic('alice', 'nope') } })).status).toBe(401);
    const tok = JSON.parse((await request(`${fake.url}/token?service=fake-registry&scope=repository:x:pull,push`, { headers: { Authorization: basic('alice', 's3cret') } })).body.toString()).token as string;
    expect((await request(`${fake.url}/v2/x/manifests/v1`, { headers: { Authorization: `Bearer ${tok}` } })).status).toBe(200);
    // push was asked for, but this user may not: the token carries pull only
    expect((await request(`${fake.url}/v2/x/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${tok}` } })).status).toBe(401);
  });
});

describe('the fake registry, hostile', () => {
  it('cuts a blob mid-way, then serves the rest to a Range request', async () => {
    fake = await startFakeRegistry();
    fake.put('x', 'v1', image);
    const d = layer();
    const whole = fake.blob(d)!;
    fake.misbehave({ on: 'blob', ref: d, times: 1, trick: { kind: 'cut', after: 1000 } });
    const first = await request(`${fake.url}/v2/x/blobs/${d}`);
    expect(first.headers['content-length']).toBe(String(whole.length));
    expect(first.body.length).toBe(1000);
    expect(first.error).toBeDefined();
    const rest = await request(`${fake.url}/v2/x/blobs/${d}`, { headers: { Range: 'bytes=1000-' } });
    expect(Buffer.concat([first.body, rest.body]).equals(whole)).toBe(true);
    expect(fake.requests.filter((r) => r.kind === 'blob').map((r) => [r.outcome, r.range])).toEqual([['cut', undefined], ['served', 'bytes=1000-']]);
  });

  it('corrupts, resizes, lies about digests, pads, redirects, hangs and answers statuses as told', async () => {
    fake = await startFakeRegistry();
    fake.put('x', 'v1', image);
    const d = layer();
    const whole = fake.blob(d)!;
    fake.misbehave({ on: 'blob', times: 1, trick: { kind: 'corrupt' } });
    fake.misbehave({ on: 'blob', times: 1, trick: { kind: 'resize', by: -10 } });
    fake.misbehave({ on: 'blob', times: 1, trick: { kind: 'resize', by: 10 } });
    fake.misbehave({ on: 'blob', times: 1, trick: { kind: 'redirect' } });
    const corrupt = await request(`${fake.url}/v2/x/blobs/${d}`);
    expect(corrupt.body.length).toBe(whole.length);
    expect(sha256(corrupt.body)).not.toBe(d);
    expect((await request(`${fake.url}/v2/x/blobs/${d}`)).body.length).toBe(whole.length - 10);
    expect((await request(`${fake.url}/v2/x/blobs/${d}`)).body.length).toBe(whole.length + 10);
    const redirect = await request(`${fake.url}/v2/x/blobs/${d}`);
    expect(redirect.status).toBe(307);
    expect((await request(`${fake.url}${redirect.headers.location!.replace(fake.url, '')}`)).body.equals(whole)).toBe(true);

    fake.misbehave({ on: 'manifest', times: 1, trick: { kind: 'lie-digest' } });
    fake.misbehave({ on: 'manifest', times: 1, trick: { kind: 'oversize', bytes: 5 << 20, chunked: true } });
    fake.misbehave({ on: 'manifest', times: 2, trick: { kind: 'status', status: 500 } });
    const lie = await request(`${fake.url}/v2/x/manifests/v1`);
    expect(lie.body.equals(image.manifest)).toBe(true);
    expect(lie.headers['docker-content-digest']).not.toBe(image.digest);
    const big = await request(`${fake.url}/v2/x/manifests/v1`);
    expect(big.headers['content-length']).toBeUndefined();
    expect(big.body.length).toBe(5 << 20);
    expect((await request(`${fake.url}/v2/x/manifests/v1`)).status).toBe(500);
    expect((await request(`${fake.url}/v2/x/manifests/v1`)).status).toBe(500);
    expect((await request(`${fake.url}/v2/x/manifests/v1`)).status).toBe(200);

    fake.misbehave({ on: 'ping', trick: { kind: 'hang' } });
    expect((await request(`${fake.url}/v2/`, { timeoutMs: 300 })).error).toBe('timeout');
    fake.misbehave({ on: 'token', trick: { kind: 'oversize', bytes: 2 << 20 } });
    expect((await request(`${fake.url}/token`)).status).toBe(401); // no auth configured: no anonymous tokens
  });

  it('serves manifests of any media type, padded manifests and indexes as given', async () => {
    fake = await startFakeRegistry();
    fake.put('x', 'weird', rawManifest('application/vnd.example.unknown+json', { schemaVersion: 2, mediaType: 'application/vnd.example.unknown+json' }));
    fake.put('x', 'huge', paddedManifest(image, 5 << 20));
    const idx = remoteIndex([{ image, platform: { os: 'linux', architecture: 'amd64' } }]);
    fake.put('x', 'multi', idx);
    expect((await request(`${fake.url}/v2/x/manifests/weird`)).headers['content-type']).toBe('application/vnd.example.unknown+json');
    expect((await request(`${fake.url}/v2/x/manifests/huge`)).body.length).toBe(5 << 20);
    expect((await request(`${fake.url}/v2/x/manifests/multi`)).headers['content-type']).toBe(MediaType.index);
    expect((await request(`${fake.url}/v2/x/manifests/${image.digest}`)).status).toBe(200);
  });
});

describe.skipIf(!existsSync(SKOPEO))('a real client (skopeo) against the fake', () => {
  const skopeo = (...args: string[]) => run(SKOPEO, args, { timeout: 60_000 });

  // (skopeo 1.9 does not resume a cut blob: it fails with "unexpected EOF", so no cut here.)
  it('pulls with the digests the fake serves, through a bearer token and a blob redirect', async () => {
    fake = await startFakeRegistry({ auth: { scheme: 'bearer', username: 'alice', password: 's3cret' } });
    fake.put('test/img', 'v1', image);
    fake.misbehave({ on: 'blob', ref: layer(), times: 1, trick: { kind: 'redirect' } });
    const dir = path.join(work, 'pulled');
    await skopeo('copy', '--src-tls-verify=false', '--src-creds', 'alice:s3cret', `docker://${fake.host}/test/img:v1`, `oci:${dir}`);
    const index = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(image.digest);
    expect(fake.requests.some((r) => r.outcome === 'redirect')).toBe(true);
    expect(fake.requests.some((r) => r.path.startsWith('/_storage/'))).toBe(true);
  });

  it('accepts a push (uploads, manifest PUT) and serves it back', async () => {
    fake = await startFakeRegistry({ auth: { scheme: 'basic', username: 'alice', password: 's3cret' } });
    fake.put('src', 'v1', image);
    const dir = path.join(work, 'roundtrip');
    await skopeo('copy', '--src-tls-verify=false', '--src-creds', 'alice:s3cret', `docker://${fake.host}/src:v1`, `oci:${dir}:v1`);
    await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'alice:s3cret', `oci:${dir}:v1`, `docker://${fake.host}/dst:v1`);
    expect(fake.manifest('dst', 'v1')?.digest).toBe(image.digest);
    expect(fake.requests.some((r) => r.kind === 'upload' || (r.kind === 'blob' && r.method === 'HEAD'))).toBe(true);
    const { stdout } = await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', 'alice:s3cret', `docker://${fake.host}/dst:v1`);
    expect(sha256(Buffer.from(stdout))).toBe(image.digest);
  });

  it('is refused by skopeo for a wrong password and a 403 on push', async () => {
    fake = await startFakeRegistry({ auth: { scheme: 'basic', username: 'alice', password: 's3cret', pushable: [] } });
    fake.put('src', 'v1', image);
    await expect(skopeo('inspect', '--tls-verify=false', '--creds', 'alice:wrong', `docker://${fake.host}/src:v1`)).rejects.toThrow(/unauthorized|authentication/i);
    const dir = path.join(work, 'denied');
    await skopeo('copy', '--src-tls-verify=false', '--src-creds', 'alice:s3cret', `docker://${fake.host}/src:v1`, `oci:${dir}:v1`);
    await expect(skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'alice:s3cret', `oci:${dir}:v1`, `docker://${fake.host}/dst:v1`)).rejects.toThrow(/denied/i);
  });
});
