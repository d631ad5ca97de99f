/**
 * A real etcd for tests: Debian's `etcd-server` (3.4) on 127.0.0.1 (or another address the test owns) with
 * free ports and a data dir in a temp folder, stopped by its PID. `stop()` ends it for good and removes the
 * folder; `kill()` and `restart()` keep the data, for tests of what clients do while it is away.
 * Optional TLS (a CA, a server and a client certificate made here with openssl).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { EtcdStore, type EtcdOptions as StoreOptions } from '../../src/cluster/etcd.js';
import { parseClusterStoreUri } from '../../src/cluster/settings.js';
import type { ClusterStore } from '../../src/cluster/store.js';

export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
  /** a client certificate signed by the same CA */
  clientCert: string;
  clientKey: string;
}

export interface TestEtcd {
  /** `etcd://HOST:PORT` or `etcds://HOST:PORT`, for --cluster-store */
  uri: string;
  /** `http://HOST:PORT` or `https://...`, for etcdctl --endpoints */
  url: string;
  host: string;
  port: number;
  dir: string;
  tls?: EtcdTls;
  /** SIGKILLs etcd, keeping its data (a crash) */
  kill(): Promise<void>;
  /** starts it again on the same ports and data (after kill) */
  restart(): Promise<void>;
  /** stops it and removes everything it had; safe to call twice */
  stop(): Promise<void>;
  /** runs etcdctl against it */
  ctl(args: string[]): string;
}

export interface EtcdOptions {
  /** the address to listen on (default 127.0.0.1) */
  host?: string;
  tls?: boolean;
  /** with tls: clients must present a certificate signed by the CA */
  clientCertAuth?: boolean;
  /** more etcd flags (e.g. --auth-token-ttl 1) */
  extraArgs?: string[];
  /** a network namespace to run etcd in (a multi-host test's underlay): `host` is then an address there */
  netns?: string;
}

/** A port nobody listens on now (the kernel's pick, released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

async function makeCertificates(dir: string, host: string): Promise<EtcdTls> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-days', '2', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=berth etcd test CA'], dir);
  openssl(['req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${host}`], dir);
  await writeFile(path.join(dir, 'server.ext'), `subjectAltName=IP:${host},DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.crt'], dir);
  openssl(['req', '-new', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=berth-client'], dir);
  await writeFile(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'client.ext', '-out', 'client.crt'], dir);
  const p = (f: string) => path.join(dir, f);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key') };
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<TestEtcd> {
  const host = opts.host ?? '127.0.0.1';
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-etcd-'));
  let proc: ChildProcess | undefined;
  let stopped = false;
  try {
    // A namespace of the test's own has every port free.
    const port = opts.netns ? 2379 : await freePort(host);
    const peerPort = opts.netns ? 2380 : await freePort(host);
    const tls = opts.tls ? await makeCertificates(dir, host) : undefined;
    const scheme = tls ? 'https' : 'http';
    const url = `${scheme}://${host}:${port}`;
    const args = [
      '--name', 'berth-test', '--data-dir', path.join(dir, 'data'),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', `http://${host}:${peerPort}`, '--initial-advertise-peer-urls', `http://${host}:${peerPort}`,
      '--initial-cluster', `berth-test=http://${host}:${peerPort}`, '--initial-cluster-state', 'new',
      '--log-outputs', path.join(dir, 'etcd.log'), '--logger', 'zap',
      ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca] : []),
      ...(tls && opts.clientCertAuth ? ['--client-cert-auth'] : []),
      ...(opts.extraArgs ?? []),
    ];
    const env = { ...process.env, ...(process.arch === 'x64' ? {} : { ETCD_UNSUPPORTED_ARCH: process.arch === 'arm64' ? 'arm64' : process.arch }) };
    const ctlArgs = [`--endpoints=${url}`, '--dial-timeout=3s', '--command-timeout=5s',
      ...(tls ? [`--cacert=${tls.ca}`, `--cert=${tls.clientCert}`, `--key=${tls.clientKey}`] : [])];
    const inNs = (file: string, a: string[]): [string, string[]] => (opts.netns ? ['nsenter', [`--net=${opts.netns}`, file, ...a]] : [file, a]);
    const ctl = (a: string[]) => execFileSync(...inNs('etcdctl', [...ctlArgs, ...a]), { encoding: 'utf8', timeout: 15_000, env: { ...env, ETCDCTL_API: '3' } });

    const launch = async () => {
      proc = spawn(...inNs('/usr/bin/etcd', args), { stdio: 'ignore', env });
      const started = proc;
      const exited = new Promise<never>((_, reject) => started.once('exit', (code) => reject(new Error(`etcd exited with ${code} at start; see ${dir}/etcd.log`))));
      exited.catch(() => {});
      // Ready when a client call answers (etcdctl endpoint health).
      for (let i = 0; i < 200; i++) {
        if (started.exitCode !== null) await exited;
        try {
          execFileSync(...inNs('etcdctl', [...ctlArgs, 'endpoint', 'health']), { stdio: 'ignore', timeout: 5000, env: { ...env, ETCDCTL_API: '3' } });
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error(`etcd did not become healthy; see ${dir}/etcd.log`);
    };
    const kill = async () => {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    };
    await launch();
    return {
      uri: `${tls ? 'etcds' : 'etcd'}://${host}:${port}`, url, host, port, dir, tls,
      kill,
      restart: async () => {
        await kill();
        await launch();
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await kill();
        await rm(dir, { recursive: true, force: true });
      },
      ctl,
    };
  } catch (err) {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * One etcd for a test file (started in beforeAll, stopped in afterAll with a check that its folder went)
 * and store clients on it, each its own connection as separate hosts would be, closed at the end.
 */
export function etcdForFile(opts: EtcdOptions = {}): { readonly etcd: TestEtcd; client(storeOpts?: StoreClientOptions): ClusterStore } {
  let etcd: TestEtcd | undefined;
  const clients: ClusterStore[] = [];
  beforeAll(async () => {
    etcd = await startEtcd(opts);
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    const dir = etcd?.dir;
    await etcd?.stop();
    if (dir) expect(existsSync(dir)).toBe(false);
  });
  return {
    get etcd() {
      if (!etcd) throw new Error('etcd is not started yet');
      return etcd;
    },
    client(storeOpts: StoreClientOptions = {}) {
      const { uri, ...rest } = storeOpts;
      const c = new EtcdStore(parseClusterStoreUri(uri ?? this.etcd.uri), { timeoutMs: 5000, ...rest });
      clients.push(c);
      return c;
    },
  };
}

export interface StoreClientOptions extends StoreOptions {
  /** another URI than the file's etcd (a dead port, several endpoints) */
  uri?: string;
}
