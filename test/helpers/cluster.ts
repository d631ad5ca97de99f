import { startEtcd, type TestEtcd } from './etcd.js';
import { makeHosts, type Host, type Hosts, type HostsOptions } from './hosts.js';

/**
 * Berth on one host of a multi-host test's cluster: the store and the host's underlay address as global
 * flags, as a user of that host would give them.
 */
export function member(h: Host, store: TestEtcd) {
  const flags = ['--cluster-store', store.uri, '--cluster-advertise', h.address];
  return {
    host: h,
    ok: (...args: string[]) => h.ok(...flags, ...args),
    run: (...args: string[]) => h.berth([...flags, ...args]),
  };
}
export type Member = ReturnType<typeof member>;

/** A container's address on a network, as `inspect` gives it. */
export function ipOf(h: Member, name: string, network: string): Promise<string> {
  return h.ok('inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name);
}

/**
 * The end of a multi-host test, failed or not: each host reset with the store (so what it still has on
 * global networks leaves the cluster too), the hosts removed (which fails on any leak), etcd stopped.
 */
export async function removeCluster(hosts: Hosts | undefined, etcd: TestEtcd | undefined): Promise<void> {
  try {
    if (hosts && etcd) for (const host of hosts.hosts) await member(host, etcd).run('system', 'reset', '-f');
    await hosts?.remove();
  } finally {
    await etcd?.stop();
  }
}

/** `n` hosts on an underlay (helpers/hosts.ts), etcd in the underlay's netns, and Berth on each as a member. */
export async function startCluster(n: number, opts: HostsOptions = {}): Promise<{ hosts: Hosts; etcd: TestEtcd; members: Member[] }> {
  const hosts = await makeHosts(n, opts);
  try {
    const etcd = await startEtcd({ netns: hosts.underlay.netnsPath, host: hosts.underlay.address });
    return { hosts, etcd, members: hosts.hosts.map((h) => member(h, etcd)) };
  } catch (err) {
    await hosts.remove().catch(() => {});
    throw err;
  }
}
