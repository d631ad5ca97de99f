/**
 * The cluster settings end to end: the real CLI takes --cluster-store / --cluster-advertise, their
 * environment variables and the config file's keys (flag beats environment beats file), shows them in
 * `info` without connecting, and refuses bad values with exit 1 and a message; an Engine opens the store
 * only when asked, and resolves an interface name to its address.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/api/index.js';
import { ClusterNotConfiguredError, InvalidArgumentError } from '../../src/errors.js';
import { etcdForFile, freePort } from '../helpers/etcd.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-cluster-cfg-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The CLI on a root and runroot inside the test's folder, with none of the caller's BERTH_* settings. */
function berth(args: string[], env: NodeJS.ProcessEnv = {}, root = 'root') {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BERTH_')));
  const res = spawnSync(BIN, ['--root', path.join(dir, root), '--runroot', path.join(dir, `${root}-run`), ...args], { encoding: 'utf8', env: { ...base, ...env }, timeout: 30_000 });
  return { code: res.status, stdout: res.stdout.trim(), stderr: res.stderr };
}

const FORMAT = ['info', '-f', '{{.ClusterStore}}|{{.ClusterAdvertise}}'];

describe('berth --cluster-store / --cluster-advertise', () => {
  it('takes the flags, the environment and the config file, in that order, and info shows them without connecting', async () => {
    // Nothing listens on this port: info must not try.
    const port = await freePort();
    expect(berth(['--cluster-store', `etcd://127.0.0.1:${port}`, '--cluster-advertise', '10.9.8.7:2376', ...FORMAT]))
      .toMatchObject({ code: 0, stdout: `etcd://127.0.0.1:${port}|10.9.8.7:2376` });
    expect(berth(FORMAT, { BERTH_CLUSTER_STORE: 'etcd://10.0.0.1:2379', BERTH_CLUSTER_ADVERTISE: 'eth0' }).stdout).toBe('etcd://10.0.0.1:2379|eth0');
    const cfg = path.join(dir, 'cluster.json');
    writeFileSync(cfg, JSON.stringify({ 'cluster-store': 'etcd://10.0.0.2:2379', 'cluster-advertise': '10.0.0.9' }));
    expect(berth(['--config', cfg, ...FORMAT]).stdout).toBe('etcd://10.0.0.2:2379|10.0.0.9');
    expect(berth(['--config', cfg, ...FORMAT], { BERTH_CLUSTER_STORE: 'etcd://10.0.0.3:2379' }).stdout).toBe('etcd://10.0.0.3:2379|10.0.0.9');
    expect(berth(['--config', cfg, '--cluster-store', 'etcd://10.0.0.4:2379', ...FORMAT], { BERTH_CLUSTER_STORE: 'etcd://10.0.0.3:2379' }).stdout)
      .toBe('etcd://10.0.0.4:2379|10.0.0.9');
    expect(berth(FORMAT)).toMatchObject({ code: 0, stdout: '|' });
    expect(berth(['--cluster-store', 'etcd://10.0.0.4:2379', 'info']).stdout).toContain(' Cluster Store: etcd://10.0.0.4:2379\n');
    expect(berth(['--help']).stdout).toMatch(/--cluster-store string/);
  });

  it.each([
    [['--cluster-store', 'etcd://admin:secret@10.0.0.1:2379'], /credentials in the URI are refused/, /kv\.username/],
    [['--cluster-store', 'http://10.0.0.1:2379'], /the scheme "http" is not supported/, /etcd:\/\/HOST:PORT/],
    [['--cluster-store', 'etcd://10.0.0.1'], /has no port/, /HOST:PORT/],
    [['--cluster-store', 'etcd://10.0.0.1:70000'], /port "70000"/, /etcd:\/\//],
    [['--cluster-store', 'etcd:// 10.0.0.1:2379'], /spaces/, /etcd:\/\//],
    [['--cluster-advertise', '10.0.0.1'], /no cluster store is/, /--cluster-store/],
    [['--cluster-store', 'etcd://h:1', '--cluster-advertise', 'not an iface'], /spaces/, /interface name/],
  ])('refuses %j with exit 1, a message and a hint; nothing is made', (flags, message, hint) => {
    const res = berth([...flags, 'info'], {}, 'refused');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).toMatch(hint);
    expect(res.stderr).not.toContain('secret');
    expect(existsSync(path.join(dir, 'refused'))).toBe(false);
    expect(existsSync(path.join(dir, 'refused-run'))).toBe(false);
  });

  it('refuses a bad config key naming the file', () => {
    const cfg = path.join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ 'cluster-store': 'zk://h:2181' }));
    const res = berth(['--config', cfg, 'info']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${cfg}: invalid cluster-store: "zk://h:2181": the scheme "zk" is not supported`);
  });
});

describe('Engine.cluster', () => {
  const cluster = etcdForFile();

  it('opens the store on first use only, and refuses without one', async () => {
    const root = path.join(dir, 'engine');
    const none = new Engine({ root, runroot: path.join(dir, 'engine-run') });
    expect(none.cluster.configured).toBe(false);
    await expect(none.cluster.store()).rejects.toBeInstanceOf(ClusterNotConfiguredError);

    const engine = new Engine({ root, runroot: path.join(dir, 'engine-run'), clusterStore: cluster.etcd.uri, clusterAdvertise: 'lo' });
    try {
      const store = await engine.cluster.store();
      expect(await engine.cluster.store()).toBe(store);
      await store.put('/berth/v1/hosts/test', 'x');
      expect((await store.get('/berth/v1/hosts/test'))?.value).toBe('x');
      // An interface name resolves to its IPv4 address in this network namespace.
      expect(await engine.cluster.advertise()).toEqual({ address: '127.0.0.1' });
    } finally {
      await engine.cluster.close();
    }
    // Constructing engines touched nothing on disk.
    expect(existsSync(root)).toBe(false);

    const missing = new Engine({ root, runroot: path.join(dir, 'engine-run'), clusterStore: cluster.etcd.uri, clusterAdvertise: 'berthnosuch0' });
    const err = await missing.cluster.advertise().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/there is no interface berthnosuch0/);
  });
});
