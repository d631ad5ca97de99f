/** The transport and auth layers against a fake registry that misbehaves (Node http on 127.0.0.1). */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/errors.js';
import { DEFAULT_REGISTRIES_CONFIG, openSession, type CredentialStore, type SessionOptions } from '../../src/registry/index.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const none: CredentialStore = { get: async () => undefined, store: async () => {}, erase: async () => false };
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: {}, layers: [] }));

let servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  servers = [];
});

async function serve(port: number, handler: http.RequestListener): Promise<void> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
}

async function session(port: number, opts: Partial<SessionOptions> = {}) {
  return openSession({ registry: `127.0.0.1:${port}`, repository: 'a/b' }, { actions: ['pull'], timeouts: { connectMs: 2000, idleMs: 500 }, ...opts },
    { config: { ...DEFAULT_REGISTRIES_CONFIG, certsDirs: [] }, credentials: none });
}

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

describe('a hostile registry', () => {
  it('a token response over 1 MiB is refused', async () => {
    await serve(15120, (req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://127.0.0.1:15120/token",service="x"' }).end();
      } else if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token: 'x'.repeat(1024 * 1024 + 10) }));
      } else res.writeHead(500).end();
    });
    const s = await session(15120);
    const err = await failure(s.manifest('latest', [OCI]));
    expect(err).toMatchObject({ reason: 'protocol', message: expect.stringContaining('token response is larger than 1 MiB') });
    s.close();
  });

  it('a manifest over 4 MiB is refused, with or without Content-Length', async () => {
    await serve(15121, (req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
      if (req.url?.endsWith('/chunked')) {
        res.writeHead(200, { 'content-type': OCI });
        res.write(big.subarray(0, 1024 * 1024));
        res.end(big.subarray(1024 * 1024));
      } else res.writeHead(200, { 'content-type': OCI, 'content-length': big.length }).end(big);
    });
    const s = await session(15121);
    expect(await failure(s.manifest('sized', [OCI]))).toMatchObject({ reason: 'protocol', message: expect.stringMatching(/127\.0\.0\.1:15121\/a\/b:sized: the manifest is larger than 4 MiB/) });
    expect(await failure(s.manifest('chunked', [OCI]))).toMatchObject({ reason: 'protocol' });
    s.close();
  });

  it('a registry that accepts the connection and never answers times out', async () => {
    await serve(15122, () => { /* never answers */ });
    const s = await session(15122);
    const err = await failure(s.manifest('latest', [OCI]));
    expect(err.reason).toBe('timeout');
    expect(err.message).toContain('127.0.0.1:15122');
    s.close();
  });

  it('a blob download that stalls half-way fails with a time-out', async () => {
    await serve(15123, (req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(10)); // then silence
    });
    const s = await session(15123);
    const { stream } = await s.blob(sha256('x') as never);
    const err = await (async () => { for await (const _ of stream) { /* drain */ } })().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).reason).toBe('timeout');
    s.close();
  });

  it('a Docker-Content-Digest that does not match the manifest is refused', async () => {
    await serve(15124, (req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(200, { 'content-type': OCI, 'docker-content-digest': sha256('something else') }).end(MANIFEST);
    });
    const s = await session(15124);
    expect(await failure(s.manifest('latest', [OCI]))).toMatchObject({ reason: 'protocol', message: expect.stringContaining('the registry says') });
    // Asked by digest, the content must have that digest.
    const other = sha256('other');
    expect(await failure(s.manifest(other, [OCI]))).toMatchObject({ reason: 'protocol', message: expect.stringContaining(`a/b@${other}`) });
    s.close();
  });

  it('retries GETs after 503 and honours the answer after that', async () => {
    let calls = 0;
    await serve(15125, (req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (++calls < 3) return void res.writeHead(503).end();
      res.writeHead(200, { 'content-type': OCI }).end(MANIFEST);
    });
    const s = await session(15125);
    expect((await s.manifest('latest', [OCI])).digest).toBe(sha256(MANIFEST));
    expect(calls).toBe(3);
    s.close();
  });

  it('a registry that keeps answering 503 is reported unavailable', async () => {
    await serve(15126, (req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(503).end();
    });
    const s = await session(15126, { retries: 1 });
    expect((await failure(s.manifest('latest', [OCI]))).reason).toBe('unavailable');
    s.close();
  });

  it('a 403 is denied and a 404 with MANIFEST_UNKNOWN names the tag', async () => {
    await serve(15127, (req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.endsWith('/forbidden')) return void res.writeHead(403, { 'content-type': 'application/json' }).end('{"errors":[{"code":"DENIED","message":"no"}]}');
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    const s = await session(15127);
    expect((await failure(s.manifest('forbidden', [OCI]))).reason).toBe('denied');
    expect(await failure(s.manifest('v9', [OCI]))).toMatchObject({ reason: 'not-found', message: expect.stringContaining('127.0.0.1:15127/a/b:v9 not found') });
    s.close();
  });

  it('a token the registry no longer takes is renewed once, and a reset connection is retried', async () => {
    let tokens = 0;
    let resets = 0;
    await serve(15128, (req, res) => {
      if (req.url?.startsWith('/token')) {
        tokens++;
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `t${tokens}` }));
      }
      if (req.headers.authorization !== 'Bearer t2') {
        return void res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://127.0.0.1:15128/token",service="s",scope="repository:a/b:pull"' }).end();
      }
      if (req.url?.endsWith('/reset') && resets++ === 0) return void req.socket.destroy();
      res.writeHead(200, { 'content-type': OCI }).end(MANIFEST);
    });
    const s = await session(15128);
    expect((await s.manifest('latest', [OCI])).digest).toBe(sha256(MANIFEST));
    expect(tokens).toBe(2); // t1 from the first challenge, refused; t2 after the second
    expect((await s.manifest('reset', [OCI])).digest).toBe(sha256(MANIFEST));
    expect(resets).toBe(2);
    expect(tokens).toBe(2); // cached for the scope
    s.close();
  });

  it('a blob redirect to another host is followed without the registry\'s credentials', async () => {
    const seen: (string | undefined)[] = [];
    await serve(15129, (req, res) => {
      if (req.url === '/v2/') return void res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
      if (req.headers.authorization === undefined) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
      res.writeHead(307, { location: 'http://127.0.0.1:15119/storage/blob?sig=1' }).end();
    });
    await serve(15119, (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(206, { 'content-range': 'bytes 2-4/5', 'content-length': 3 }).end('llo');
    });
    const s = await openSession({ registry: '127.0.0.1:15129', repository: 'a/b' }, { actions: ['pull'], credentials: { username: 'u', password: 'p' } },
      { config: { ...DEFAULT_REGISTRIES_CONFIG, certsDirs: [] }, credentials: none });
    const { stream, size } = await s.blob(sha256('hello') as never, { offset: 2 });
    let text = '';
    for await (const c of stream) text += c;
    expect([text, size]).toEqual(['llo', 5]);
    expect(seen).toEqual([undefined]);
    s.close();
  });
});
