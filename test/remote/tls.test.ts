/**
 * Issue 19: tcp:// with TLS, as Docker's --tlsverify. Certificates made with openssl in a temp folder: a CA,
 * a server certificate for 127.0.0.1 (subjectAltName IP), a client certificate, and a second CA with a
 * client certificate of its own. The service listens on 127.0.0.1 only.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, InvalidArgumentError, RemoteError } from '../../src/api/index.js';
import { serve, type RunningService } from '../../src/service/index.js';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { remoteCli } from './helpers.js';

let t: TestEngine;
let dir: string;
let home: string;
let svc: RunningService;
let host: string;
let cli: ReturnType<typeof remoteCli>;
const pem = (name: string) => path.join(dir, name);

async function openssl(...args: string[]): Promise<void> {
  await execa('openssl', args, { cwd: dir, timeout: 30_000 });
}

/** A key and a certificate signed by `ca` (or self-signed when `ca` is undefined), with `ext` (an openssl extension line). */
async function cert(name: string, subject: string, ca?: string, ext?: string): Promise<void> {
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-subj', `/CN=${subject}`, ...(ca ? ['-out', `${name}.csr`] : ['-x509', '-days', '2', '-out', `${name}.pem`]));
  if (!ca) return;
  const extFile = path.join(dir, `${name}.ext`);
  await execa('sh', ['-c', `printf '%s\\n' "$1" > "$2"`, 'sh', ext ?? 'extendedKeyUsage=clientAuth', extFile]);
  await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', extFile);
}

beforeAll(async () => {
  t = await testEngine(3440 + (process.pid % 40));
  await t.engine.images.ensureDefault();
  dir = await mkdtemp(path.join(tmpdir(), 'berth-tls-'));
  home = await mkdtemp(path.join(tmpdir(), 'berth-ctxhome-'));
  await cert('ca', 'berth test CA');
  await cert('server', '127.0.0.1', 'ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  await cert('client', 'client', 'ca');
  await cert('ca2', 'another CA');
  await cert('other', 'other client', 'ca2');
  svc = await serve(t.engine, { uris: ['tcp://127.0.0.1:0'], idleSeconds: 0, tls: { verify: true, ca: pem('ca.pem'), cert: pem('server.pem'), key: pem('server-key.pem') } });
  host = svc.uris[0]!;
  cli = remoteCli({ XDG_CONFIG_HOME: home });
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t, dir, home);
}, 60_000);

const withCert = () => ['--tlsverify', '--tlscacert', pem('ca.pem'), '--tlscert', pem('client.pem'), '--tlskey', pem('client-key.pem')];

describe('tcp:// with --tlsverify', () => {
  it('run and ps over TLS, with the flags and with BERTH_CERT_PATH + BERTH_TLS_VERIFY', async () => {
    const run = await cli(...withCert(), '-H', host, 'run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo over tls; exit 3');
    expect([run.exitCode, run.stdout], run.stderr).toEqual([3, 'over tls']);
    const certs = await mkdtemp(path.join(dir, 'certpath-'));
    for (const [from, to] of [['ca.pem', 'ca.pem'], ['client.pem', 'cert.pem'], ['client-key.pem', 'key.pem']]) await execa('cp', [pem(from!), path.join(certs, to!)]);
    await t.engine.containers.run({ image: 'busybox', name: 'tls1', command: ['sleep', '60'], network: { networks: ['none'] } }, { detach: true });
    const ps = await remoteCli({ XDG_CONFIG_HOME: home, BERTH_HOST: host, BERTH_CERT_PATH: certs, BERTH_TLS_VERIFY: '1' })('ps', '--format', '{{.Names}}');
    expect([ps.exitCode, ps.stdout], ps.stderr).toEqual([0, 'tls1']);
    await t.engine.containers.remove('tls1', { force: true });
  }, 60_000);

  it('the typed API: new Engine({ host, tls })', async () => {
    const remote = new Engine({ host, tls: { verify: true, ca: pem('ca.pem'), cert: pem('client.pem'), key: pem('client-key.pem') } });
    expect(await remote.containers.list({ all: true })).toEqual([]);
    expect(() => new Engine({ host: 'unix:///nowhere.sock', tls: { verify: true } })).toThrow(InvalidArgumentError);
  });

  it('a client without a certificate, or with one from another CA, is refused with a TLS error', async () => {
    const none = await cli('--tlsverify', '--tlscacert', pem('ca.pem'), '-H', host, 'ps');
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain(`the TLS connection to ${host} failed`);
    const other = await cli('--tlsverify', '--tlscacert', pem('ca.pem'), '--tlscert', pem('other.pem'), '--tlskey', pem('other-key.pem'), '-H', host, 'ps');
    expect(other.exitCode).toBe(1);
    expect(other.stderr).toContain(`the TLS connection to ${host} failed`);
    // The server's certificate checked too: a CA that did not sign it is refused on this side.
    const wrongCa = new Engine({ host, tls: { verify: true, ca: pem('ca2.pem'), cert: pem('client.pem'), key: pem('client-key.pem') } });
    const err = await wrongCa.containers.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).reason).toBe('tls');
  }, 60_000);

  it('plain HTTP to the TLS port fails saying so', async () => {
    const plain = await cli('-H', host, 'ps');
    expect(plain.exitCode).toBe(1);
    expect(plain.stderr).toContain('Client sent an HTTP request to an HTTPS server');
  }, 60_000);

  it('beyond loopback only with --tlsverify: --tls alone, or no TLS, is refused before anything listens', async () => {
    const files = { cert: pem('server.pem'), key: pem('server-key.pem') };
    await expect(serve(t.engine, { uris: ['tcp://0.0.0.0:0'], idleSeconds: 0, tls: { verify: false, ...files } })).rejects.toThrow(/beyond loopback the Engine API is served only with --tlsverify/);
    await expect(serve(t.engine, { uris: ['tcp://0.0.0.0:0'], idleSeconds: 0 })).rejects.toThrow(InvalidArgumentError);
    const cliRefused = await execa(path.resolve('bin/berth.js'), ['--root', t.root, 'system', 'service', '--tls', '--tlscert', files.cert, '--tlskey', files.key, 'tcp://0.0.0.0:0'], { reject: false, timeout: 30_000 });
    expect(cliRefused.exitCode).toBe(1);
    expect(cliRefused.stderr).toContain('beyond loopback');
    const noCa = await execa(path.resolve('bin/berth.js'), ['--root', t.root, 'system', 'service', '--tlsverify', '--tlscert', files.cert, '--tlskey', files.key, 'tcp://127.0.0.1:0'], { reject: false, timeout: 30_000 });
    expect(noCa.stderr).toContain('--tlscacert');
  }, 60_000);
});

describe('contexts with TLS material', () => {
  it('create with --tlscacert/--tlscert/--tlskey, use it, export with tls/docker/, import it back', async () => {
    const made = await cli('context', 'create', 'tls1', '--host', host, '--tlscacert', pem('ca.pem'), '--tlscert', pem('client.pem'), '--tlskey', pem('client-key.pem'));
    expect(made.exitCode, made.stderr).toBe(0);
    const ps = await cli('--context', 'tls1', 'ps', '-aq');
    expect([ps.exitCode, ps.stdout], ps.stderr).toEqual([0, '']);
    const inspect = JSON.parse((await cli('context', 'inspect', 'tls1')).stdout) as [{ TLSMaterial: { docker?: string[] } }];
    expect(inspect[0].TLSMaterial.docker?.sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem']);
    const tarFile = path.join(dir, 'tls1.tar');
    expect((await cli('context', 'export', 'tls1', tarFile)).exitCode).toBe(0);
    const listed = (await execa('tar', ['-tf', tarFile])).stdout.split('\n').sort();
    expect(listed).toEqual(['meta.json', 'tls/docker/ca.pem', 'tls/docker/cert.pem', 'tls/docker/key.pem']);
    const imported = await cli('context', 'import', 'tls2', tarFile);
    expect(imported.exitCode, imported.stderr).toBe(0);
    expect((await cli('--context', 'tls2', 'ps', '-aq')).exitCode).toBe(0);
    const refused = await cli('context', 'create', 'tls3', '--host', 'unix:///run/x.sock', '--tlscacert', pem('ca.pem'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('TLS files apply to tcp:// hosts');
    for (const n of ['tls1', 'tls2']) expect((await cli('context', 'rm', n)).exitCode).toBe(0);
    const left = await execa('sh', ['-c', `ls -A "$1"/berth/contexts/tls 2>/dev/null; true`, 'sh', home]);
    expect(left.stdout).toBe('');
    expect((await readFile(pem('ca.pem'), 'utf8'))).toContain('BEGIN CERTIFICATE');
  }, 60_000);
});
