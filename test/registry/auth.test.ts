import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/errors.js';
import type { Digest } from '../../src/ids.js';
import { DEFAULT_REGISTRIES_CONFIG, openSession, type CredentialStore, type RegistryCredentials, type SessionOptions } from '../../src/registry/index.js';
import { basicAuth, pushImage, startRegistry, type TestRegistry } from '../helpers/registry.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const none: CredentialStore = { get: async () => undefined, store: async () => {}, erase: async () => false };
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

function open(reg: { host: string }, repository: string, opts: SessionOptions, certsDirs: string[] = []) {
  return openSession({ registry: reg.host, repository }, opts, { config: { ...DEFAULT_REGISTRIES_CONFIG, certsDirs }, credentials: none });
}

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

/** Everything an error shows a user or a log: message, hint, and the messages of its causes. */
function printed(err: Error): string {
  let text = `${err.message} ${(err as RegistryError).hint ?? ''} ${err.stack ?? ''}`;
  for (let c = err.cause as Error | undefined; c; c = c.cause as Error | undefined) text += ` ${c.message} ${c.stack ?? ''}`;
  return text;
}

describe('htpasswd basic auth', () => {
  let reg: TestRegistry;
  const alice: RegistryCredentials = { username: 'alice', password: 'Sesame-Open-9431' };
  beforeAll(async () => {
    reg = await startRegistry({ port: 15110, htpasswd: [{ user: alice.username, password: alice.password }] });
    await pushImage(reg, 'team/app', 'v1', { authorization: basicAuth(alice.username, alice.password) });
  });
  afterAll(async () => { await reg?.stop(); });

  it('logs in and pulls with the right password', async () => {
    const s = await open(reg, 'team/app', { actions: ['pull'], credentials: alice });
    try {
      await s.ping();
      expect((await s.manifest('v1', [OCI])).mediaType).toBe(OCI);
    } finally { s.close(); }
  });

  it('refuses a wrong password without ever showing it', async () => {
    const wrong = { username: 'alice', password: 'Wrong-Password-7777' };
    const s = await open(reg, 'team/app', { actions: ['pull'], credentials: wrong });
    try {
      const err = await failure(s.ping());
      expect(err.reason).toBe('unauthorized');
      expect(err.message).toMatch(/incorrect username or password/);
      expect(printed(err)).not.toContain(wrong.password);
      expect(printed(err)).not.toContain(Buffer.from(`alice:${wrong.password}`).toString('base64'));
      const pull = await failure(s.manifest('v1', [OCI]));
      expect(pull.reason).toBe('unauthorized');
      expect(printed(pull)).not.toContain(wrong.password);
    } finally { s.close(); }
  });

  it('asks for a login when there is none', async () => {
    const s = await open(reg, 'team/app', { actions: ['pull'] });
    try {
      const err = await failure(s.manifest('v1', [OCI]));
      expect(err.reason).toBe('unauthorized');
      expect(err.hint).toContain(`berth login ${reg.host}`);
    } finally { s.close(); }
  });
});

describe('token auth', () => {
  let reg: TestRegistry;
  const writer: RegistryCredentials = { username: 'writer', password: 'w-secret-1' };
  const reader: RegistryCredentials = { username: 'reader', password: 'r-secret-2' };
  beforeAll(async () => {
    reg = await startRegistry({
      port: 15111,
      token: { port: 15112, users: [{ user: 'writer', password: writer.password, actions: ['pull', 'push'] }, { user: 'reader', password: reader.password, actions: ['pull'] }], field: 'access_token' },
    });
    await pushImage(reg, 'team/app', 'v1', { authorization: `Bearer ${reg.mintToken!('writer', 'repository:team/app:pull,push')}` });
  });
  afterAll(async () => { await reg?.stop(); });

  it('pulls with a pull-scoped token, asked for once per session', async () => {
    const s = await open(reg, 'team/app', { actions: ['pull'], credentials: reader });
    try {
      const before = reg.tokenRequests.length;
      const m = await s.manifest('v1', [OCI]);
      await s.headManifest('v1', [OCI]);
      expect((await s.blobSize(JSON.parse(m.bytes.toString()).config.digest)) ?? 0).toBeGreaterThan(0);
      expect(reg.tokenRequests.slice(before)).toEqual(['repository:team/app:pull']);
    } finally { s.close(); }
  });

  it('refuses a push by a read-only user as denied', async () => {
    const s = await open(reg, 'team/app', { actions: ['pull', 'push'], credentials: reader });
    try {
      const blob = Buffer.from('layer');
      const err = await failure(s.uploadBlob(sha256(blob), blob.length, () => Readable.from([blob])));
      expect(err.reason).toBe('denied');
      expect(err.message).toContain('127.0.0.1:15111');
    } finally { s.close(); }
  });

  it('pushes with push rights', async () => {
    const s = await open(reg, 'team/new', { actions: ['pull', 'push'], credentials: writer });
    try {
      const blob = Buffer.from('another layer');
      await s.uploadBlob(sha256(blob), blob.length, () => Readable.from([blob]));
      expect(await s.blobSize(sha256(blob))).toBe(blob.length);
    } finally { s.close(); }
  });

  it('refuses a wrong password at the token service without showing it', async () => {
    const s = await open(reg, 'team/app', { actions: ['pull'], credentials: { username: 'reader', password: 'not-the-Password-42' } });
    try {
      const err = await failure(s.ping());
      expect(err.reason).toBe('unauthorized');
      expect(printed(err)).not.toContain('not-the-Password-42');
    } finally { s.close(); }
  });

  it('is refused anonymously', async () => {
    const s = await open(reg, 'team/app', { actions: ['pull'] });
    try {
      expect((await failure(s.manifest('v1', [OCI]))).reason).toBe('unauthorized');
    } finally { s.close(); }
  });
});

describe('TLS', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ port: 15113, tls: true });
    await pushImage(reg, 'secure/app', 'v1');
  });
  afterAll(async () => { await reg?.stop(); });

  it('is trusted through a certs.d folder', async () => {
    const s = await open(reg, 'secure/app', { actions: ['pull'] }, [reg.certsDir!]);
    try {
      expect((await s.manifest('v1', [OCI])).mediaType).toBe(OCI);
    } finally { s.close(); }
  });

  it('is refused without the CA, with a hint naming certs.d and --tls-verify=false', async () => {
    const s = await open(reg, 'secure/app', { actions: ['pull'] }, ['/nonexistent/certs.d']);
    try {
      const err = await failure(s.manifest('v1', [OCI]));
      expect(err.reason).toBe('tls');
      expect(err.hint).toContain('/nonexistent/certs.d/127.0.0.1:15113/ca.crt');
      expect(err.hint).toContain('--tls-verify=false');
    } finally { s.close(); }
  });

  it('is accepted with tlsVerify false', async () => {
    const s = await open(reg, 'secure/app', { actions: ['pull'], tlsVerify: false });
    try {
      expect((await s.manifest('v1', [OCI])).mediaType).toBe(OCI);
    } finally { s.close(); }
  });

  it('is accepted when the registry is listed as insecure', async () => {
    const s = await openSession({ registry: reg.host, repository: 'secure/app' }, { actions: ['pull'] },
      { config: { ...DEFAULT_REGISTRIES_CONFIG, certsDirs: [], insecure: ['127.0.0.0/8'] }, credentials: none });
    try {
      expect((await s.manifest('v1', [OCI])).mediaType).toBe(OCI);
    } finally { s.close(); }
  });
});
