import { afterEach, describe, expect, test } from 'vitest';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { makeHosts, type Host, type Hosts } from '../helpers/hosts.js';

/**
 * Issue 17: an overlay network shared by hosts through etcd. Hosts are network namespaces on an underlay
 * bridge (helpers/hosts.ts); etcd runs in the underlay's namespace; each host's Berth has its own root.
 */

let hosts: Hosts | undefined;
let etcd: TestEtcd | undefined;
afterEach(async () => {
  const h = hosts;
  const e = etcd;
  hosts = undefined;
  etcd = undefined;
  try {
    await h?.remove();
  } finally {
    await e?.stop();
  }
});

/** `berth` in a host of the cluster: the store and this host's underlay address as global flags. */
function member(h: Host, store: TestEtcd) {
  const flags = ['--cluster-store', store.uri, '--cluster-advertise', h.address];
  return {
    ok: (...args: string[]) => h.ok(...flags, ...args),
    run: (...args: string[]) => h.berth([...flags, ...args]),
  };
}

async function ipOf(h: ReturnType<typeof member>, name: string, network: string): Promise<string> {
  return h.ok('inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name);
}

describe('overlay networks', () => {
  test('made on one host, seen on the other; containers on two hosts reach each other by address and by name', async () => {
    hosts = await makeHosts(2);
    etcd = await startEtcd({ netns: hosts.underlay.netnsPath, host: hosts.underlay.address });
    const [a, b] = hosts.hosts.map((h) => member(h, etcd!)) as [ReturnType<typeof member>, ReturnType<typeof member>];
    await a.ok('network', 'create', '-d', 'overlay', '--subnet', '10.70.0.0/24', 'ovl');
    expect(await b.ok('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}')).toContain('ovl overlay global');

    await a.ok('run', '-d', '--name', 'alpha', '--network', 'ovl', 'busybox', 'sleep', '1d');
    await b.ok('run', '-d', '--name', 'beta', '--network', 'ovl', 'busybox', 'sleep', '1d');
    const ipA = await ipOf(a, 'alpha', 'ovl');
    const ipB = await ipOf(b, 'beta', 'ovl');
    expect(ipA).not.toBe(ipB);
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', ipA)).toContain('1 packets received');
    expect(await a.ok('exec', 'alpha', 'ping', '-c1', '-W3', ipB)).toContain('1 packets received');
    // Names: each host's name server holds the other hosts' containers too (the agent follows them).
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', 'alpha')).toContain(ipA);

    // Teardown in the order a user would: containers, then the network (from either host).
    await a.ok('rm', '-f', 'alpha');
    await b.ok('rm', '-f', 'beta');
    await b.ok('network', 'rm', 'ovl');
    expect(await a.ok('network', 'ls', '--format', '{{.Name}}')).not.toContain('ovl');
  }, 180_000);
});
