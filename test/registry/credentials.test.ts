import { mkdtemp, readFile, rm, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCredentialStore } from '../../src/registry/credentials.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(path.join(tmpdir(), 'berth-creds-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A docker-credential-NAME that keeps logins in a JSON file, speaking the documented protocol. */
async function writeHelper(name: string): Promise<{ env: Record<string, string>; db: string }> {
  const bin = path.join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const db = path.join(dir, `${name}.db.json`);
  const script = `#!${process.execPath}
const fs = require('fs');
const db = ${JSON.stringify(db)};
const load = () => { try { return JSON.parse(fs.readFileSync(db, 'utf8')); } catch { return {}; } };
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const all = load();
  const verb = process.argv[2];
  if (verb === 'store') { const r = JSON.parse(input); all[r.ServerURL] = r; fs.writeFileSync(db, JSON.stringify(all)); return; }
  const url = input.trim();
  if (!all[url]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
  if (verb === 'get') process.stdout.write(JSON.stringify(all[url]));
  if (verb === 'erase') { delete all[url]; fs.writeFileSync(db, JSON.stringify(all)); }
});
`;
  await writeFile(path.join(bin, `docker-credential-${name}`), script);
  await chmod(path.join(bin, `docker-credential-${name}`), 0o755);
  return { env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: dir }, db };
}

describe('Berth auth file', () => {
  it('stores a login atomically with mode 0600, under docker.io\'s Docker key, and erases it', async () => {
    const authFile = path.join(dir, 'cfg', 'berth', 'auth.json');
    const store = createCredentialStore({ authFile, dockerConfig: null });
    await store.store('docker.io', { username: 'u', password: 'p:w' });
    await store.store('127.0.0.1:15140', { username: 'a', password: 'b' });
    expect((await stat(authFile)).mode & 0o777).toBe(0o600);
    const content = JSON.parse(await readFile(authFile, 'utf8'));
    expect(content.auths).toEqual({ 'https://index.docker.io/v1/': { auth: b64('u:p:w') }, '127.0.0.1:15140': { auth: b64('a:b') } });
    expect(await store.get('index.docker.io')).toEqual({ username: 'u', password: 'p:w' });
    expect(await store.erase('docker.io')).toBe(true);
    expect(await store.erase('docker.io')).toBe(false);
    expect(await store.get('docker.io')).toBeUndefined();
    expect(await store.get('127.0.0.1:15140')).toEqual({ username: 'a', password: 'b' });
  });

  it('a damaged file is refused without quoting it', async () => {
    const authFile = path.join(dir, 'auth.json');
    await writeFile(authFile, '{"auths": {"x": {"auth": "c2VjcmV0LXBhc3N3b3Jk"');
    const err = await createCredentialStore({ authFile, dockerConfig: null }).get('x').catch((e: Error) => e);
    expect(String((err as Error).message)).toContain(authFile);
    expect(String((err as Error).message)).not.toContain('c2VjcmV0');
  });
});

describe('Docker config.json, read through', () => {
  it('a docker login is found, and Berth never writes Docker\'s file', async () => {
    const docker = path.join(dir, 'docker');
    await mkdir(docker);
    const dockerFile = path.join(docker, 'config.json');
    const text = JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('dock:er') }, 'reg.example:5000': { auth: b64('r:s') } } });
    await writeFile(dockerFile, text);
    const store = createCredentialStore({ authFile: path.join(dir, 'berth.json'), env: { DOCKER_CONFIG: docker, HOME: dir } });
    expect(await store.get('docker.io')).toEqual({ username: 'dock', password: 'er' });
    expect(await store.get('reg.example:5000')).toEqual({ username: 'r', password: 's' });
    await store.store('docker.io', { username: 'berth', password: 'own' });
    expect(await store.get('docker.io')).toEqual({ username: 'berth', password: 'own' }); // Berth's file first
    expect(await readFile(dockerFile, 'utf8')).toBe(text);
    expect(await store.erase('reg.example:5000')).toBe(false);
  });
});

describe('credential helpers (docker-credential-* protocol)', () => {
  it('credHelpers and credsStore are asked, with the registry\'s server URL', async () => {
    const { env, db } = await writeHelper('berthtest');
    const docker = path.join(dir, 'docker');
    await mkdir(docker);
    await writeFile(path.join(docker, 'config.json'), JSON.stringify({ credsStore: 'berthtest', auths: { 'https://index.docker.io/v1/': {} } }));
    await writeFile(db, JSON.stringify({ 'https://index.docker.io/v1/': { ServerURL: 'https://index.docker.io/v1/', Username: 'hub', Secret: 's3' } }));
    const store = createCredentialStore({ authFile: path.join(dir, 'berth.json'), env: { ...env, DOCKER_CONFIG: docker } });
    expect(await store.get('docker.io')).toEqual({ username: 'hub', password: 's3' });
    expect(await store.get('127.0.0.1:15141')).toBeUndefined(); // helper says "not found"
  });

  it('Berth\'s own credHelpers stores and erases through the helper', async () => {
    const { env, db } = await writeHelper('berthtest');
    const authFile = path.join(dir, 'berth.json');
    await writeFile(authFile, JSON.stringify({ credHelpers: { '127.0.0.1:15142': 'berthtest' } }));
    const store = createCredentialStore({ authFile, env, dockerConfig: null });
    await store.store('127.0.0.1:15142', { username: 'x', password: 'y' });
    expect(JSON.parse(await readFile(db, 'utf8'))['127.0.0.1:15142']).toEqual({ ServerURL: '127.0.0.1:15142', Username: 'x', Secret: 'y' });
    expect(JSON.parse(await readFile(authFile, 'utf8')).auths).toBeUndefined(); // not in the file
    expect(await store.get('127.0.0.1:15142')).toEqual({ username: 'x', password: 'y' });
    expect(await store.erase('127.0.0.1:15142')).toBe(true);
    expect(await store.get('127.0.0.1:15142')).toBeUndefined();
  });

  it('a missing helper is a clear error', async () => {
    const authFile = path.join(dir, 'berth.json');
    await writeFile(authFile, JSON.stringify({ credsStore: 'nosuchhelper' }));
    const err = await createCredentialStore({ authFile, env: { PATH: dir }, dockerConfig: null }).get('x.example').catch((e: Error) => e);
    expect((err as Error).message).toBe('credential helper docker-credential-nosuchhelper is not installed');
  });
});
