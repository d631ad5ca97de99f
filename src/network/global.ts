import { keys, networkIdOf, type ClusterStore, type LeaseId } from '../cluster/index.js';
import { AlreadyExistsError, BadStateError, InvalidArgumentError } from '../errors.js';
import type { ClusterMember, DriverContext, EndpointRecord, NetworkRecord } from './types.js';
import type { RemoteEndpoint } from './vxlan.js';

/**
 * Global-scope networks in the cluster store: their records (one key each), published atomically with a
 * key for the name and one for the VXLAN network identifier, so that no two hosts ever make two networks
 * of one name or one VNI, and withdrawn only when no host has an endpoint on them. Each host keeps a copy of
 * every record (`scope: 'global'`) in its own networks folder, so that everything that reads records
 * (plans, the firewall, inspect) reads them as it reads local ones; `networks.ts` refreshes the copies.
 */

/** Docker's overlay driver hands out VNIs from 4096 (below are left to the user's vxlanid_list). */
const FIRST_AUTO_VNI = 4096;
const LAST_VNI = 16_777_215;

const nameKey = (name: string) => `${keys.networks().replace(/networks\/$/, '')}network-names/${name}`;

export function clusterOf(ctx: DriverContext | undefined, what: string): ClusterMember {
  if (!ctx?.cluster) {
    throw new InvalidArgumentError('driver', `${what} needs a cluster store: none is set`,
      'set --cluster-store etcd://HOST:PORT and --cluster-advertise ADDR (or BERTH_CLUSTER_STORE / BERTH_CLUSTER_ADVERTISE, or the config file)');
  }
  return ctx.cluster;
}

/** Every global network the store holds. */
export async function globalRecords(cluster: ClusterMember): Promise<NetworkRecord[]> {
  const { kvs } = await (await cluster.store()).list(keys.networks());
  const out: NetworkRecord[] = [];
  for (const kv of kvs) {
    if (!networkIdOf(kv.key)) continue;
    try {
      const rec = JSON.parse(kv.value) as NetworkRecord;
      if (rec && typeof rec.id === 'string' && typeof rec.name === 'string' && rec.scope === 'global') out.push(rec);
    } catch {
      // not a record Berth wrote: skipped
    }
  }
  return out;
}

/**
 * Publishes `rec` with its name and VNI keys in one transaction. A VNI the record already names is taken
 * or refused; otherwise the first free one from 4096 is tried, and the next on a lost race.
 */
export async function publishNetwork(cluster: ClusterMember, rec: NetworkRecord<{ vni: number }>): Promise<void> {
  const store = await cluster.store();
  const given = rec.driverOptions.vni !== 0;
  const taken = new Set((await store.list(keys.vnis())).kvs.map((kv) => Number(kv.key.slice(keys.vnis().length))));
  for (let vni = given ? rec.driverOptions.vni : FIRST_AUTO_VNI; vni <= LAST_VNI; vni++) {
    if (!given && taken.has(vni)) continue;
    rec.driverOptions.vni = vni;
    const ok = await store.createAll([
      { key: nameKey(rec.name), value: rec.id },
      { key: keys.vni(vni), value: rec.id },
      { key: keys.network(rec.id), value: JSON.stringify(rec) },
    ]);
    if (ok) return;
    if ((await store.get(nameKey(rec.name))) !== undefined) throw new AlreadyExistsError('network', rec.name);
    if (given) throw new BadStateError(`VXLAN id ${vni} is already used by another network of the cluster`, 'give another vxlanid_list, or leave it out');
  }
  throw new BadStateError('the cluster has no free VXLAN network identifier left', 'remove unused global networks');
}

/** Withdraws a global network from the cluster: refused while any host has an endpoint on it. */
export async function unpublishNetwork(cluster: ClusterMember, rec: NetworkRecord<{ vni: number }>): Promise<void> {
  const store = await cluster.store();
  const eps = (await store.list(keys.endpoints(rec.id))).kvs;
  if (eps.length) {
    const where = eps.map((kv) => { try { return (JSON.parse(kv.value) as { host?: string }).host ?? '?'; } catch { return '?'; } });
    throw new BadStateError(`network ${rec.name} has active endpoints on ${[...new Set(where)].join(', ')}`, 'stop or disconnect those containers first, on every host');
  }
  await store.delete(keys.network(rec.id));
  await store.delete(nameKey(rec.name), { ifValue: rec.id });
  await store.delete(keys.vni(rec.driverOptions.vni), { ifValue: rec.id });
  await store.deletePrefix(`${keys.network(rec.id)}/`);
  // A flannel network's config (its subnets went with their hosts' last containers).
  await store.deletePrefix(`${keys.flannel(rec.id)}/`);
}

/** The hosts with an endpoint on a global network: their names and underlay addresses (Docker's `Peers`). */
export async function networkPeers(cluster: ClusterMember, netId: string): Promise<{ name: string; ip: string }[]> {
  const store = await cluster.store();
  const [eps, hosts] = await Promise.all([store.list(keys.endpoints(netId)), store.list(keys.hosts())]);
  const names = new Map<string, string>();
  for (const kv of hosts.kvs) {
    try {
      const h = JSON.parse(kv.value) as { id?: string; hostname?: string };
      if (h.id) names.set(h.id, h.hostname ?? h.id);
    } catch { /* not ours */ }
  }
  const peers = new Map<string, { name: string; ip: string }>();
  for (const kv of eps.kvs) {
    try {
      const r = JSON.parse(kv.value) as { hostId?: string; host?: string };
      if (r.hostId && r.host) peers.set(r.hostId, { name: names.get(r.hostId) ?? r.hostId, ip: r.host });
    } catch { /* not ours */ }
  }
  return [...peers.values()].sort((a, b) => a.ip.localeCompare(b.ip));
}

/** What a host registers for each of its endpoints on a global network (keys.endpoint). */
export interface EndpointRegistration {
  hostId: string;
  /** the host's underlay address: where the endpoint's MAC lives */
  host: string;
  containerId: string;
  name: string;
  aliases: string[];
  ip: string;
  mac: string;
}

/** The endpoint's key: the container's id on this network (a container has one endpoint per network). */
export const endpointKey = (net: Pick<NetworkRecord, 'id'>, ep: { containerId: string }) => keys.endpoint(net.id, ep.containerId.slice(0, 64));

/**
 * Puts an endpoint's registration under the host's lease; with the lease, it goes when the host dies. Also
 * how a host puts its endpoints back under a new lease (the old one expired while no agent renewed it).
 */
export async function registerEndpoint(store: ClusterStore, net: Pick<NetworkRecord, 'id'>, reg: EndpointRegistration, lease: LeaseId): Promise<void> {
  await store.put(endpointKey(net, reg), JSON.stringify(reg), { lease });
}

/** A joined endpoint's registration, under this host's lease (the join of overlay and flannel networks). */
export async function publishEndpoint(cluster: ClusterMember, net: Pick<NetworkRecord, 'id'>, ep: EndpointRecord, sandbox: { containerId: string; name: string }): Promise<void> {
  const [store, self] = await Promise.all([cluster.store(), cluster.self()]);
  await registerEndpoint(store, net, { hostId: self.hostId, host: self.address, containerId: sandbox.containerId, name: sandbox.name, aliases: ep.aliases, ip: ep.ipv4!, mac: ep.mac }, self.lease);
}

/** Its removal at leave. An endpoint without an address never joined, so nothing was registered (and a store that is down must not keep its sandbox). */
export async function withdrawEndpoint(ctx: DriverContext | undefined, net: Pick<NetworkRecord, 'id'>, ep: EndpointRecord, sandbox: { containerId: string }): Promise<void> {
  if (!ctx?.cluster || !ep.ipv4) return;
  await (await ctx.cluster.store()).delete(endpointKey(net, sandbox));
}

/** The endpoints other hosts registered on `net`. */
export async function remoteEndpoints(net: Pick<NetworkRecord, 'id'>, cluster: ClusterMember): Promise<(RemoteEndpoint & { reg: EndpointRegistration })[]> {
  const [store, self] = await Promise.all([cluster.store(), cluster.identity()]);
  const { kvs } = await store.list(keys.endpoints(net.id));
  const out: (RemoteEndpoint & { reg: EndpointRegistration })[] = [];
  for (const kv of kvs) {
    let reg: EndpointRegistration;
    try {
      reg = JSON.parse(kv.value) as EndpointRegistration;
    } catch {
      continue; // not ours to read: skipped, never fatal
    }
    if (reg.hostId === self.hostId) continue;
    out.push({ ip: reg.ip, mac: reg.mac, host: reg.host, reg });
  }
  return out;
}
