/**
 * Cluster-wide address allocation for one global network: host-local's idea (one record per address, made
 * only if absent, holding its owner) with etcd's create-if-absent in place of O_EXCL files and a lock. Two
 * hosts racing for one address both try to create its key; etcd lets exactly one win, the other moves on.
 * So no lock is needed and no two hosts ever get one address.
 *
 * Keys: `/berth/v1/networks/<id>/ipam/<ip>` = owner (keys.ts). Put under the allocating host's lease, an
 * address returns to the pool when that host dies and its lease expires. `ipam-last` remembers the last
 * address handed out so that the next allocation starts after it (CNI host-local); it is only a hint.
 */
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { assignableRange, contains, formatIpv4, parseCidr, parseIpv4 } from '../network/cidr.js';
import { candidates } from '../network/ipam.js';
import { keys } from './keys.js';
import type { ClusterStore, LeaseId } from './store.js';

export interface AllocateOptions {
  /** the owner's lease: the address goes when it expires */
  lease?: LeaseId;
  /** a wanted address (--ip): that one or an error */
  preferred?: string;
}

/**
 * Reserves the `preferred` address, or the next free one after the hint, for `owner` (an endpoint id or
 * `host/endpoint`). The gateway and the subnet's network and broadcast addresses are never handed out.
 * An owner that asks again for an address it already holds gets it (a retried attach).
 */
export async function allocate(store: ClusterStore, netId: string, subnet: string, gateway: string | undefined, owner: string, opts: AllocateOptions = {}): Promise<string> {
  if (!owner) throw new InvalidArgumentError('owner', 'an address needs an owner');
  const net = parseCidr(subnet, 'subnet');
  const gw = gateway === undefined ? undefined : parseIpv4(gateway);
  if (gateway !== undefined && (gw === undefined || !contains(net, gw))) throw new InvalidArgumentError('gateway', `"${gateway}" is not an address of ${subnet}`);
  const range = assignableRange(net);
  if (opts.preferred !== undefined) {
    const ip = parseIpv4(opts.preferred);
    if (ip === undefined) throw new InvalidArgumentError('ip', `invalid IPv4 address: ${opts.preferred}`, `give an address of ${subnet}`);
    if (ip === gw) throw new InvalidArgumentError('ip', `${opts.preferred} is the gateway of the network`, 'pick another address of the subnet');
    if (ip < range.first || ip > range.last) throw new InvalidArgumentError('ip', `no configured subnet contains the IP address ${opts.preferred}`, `the network's subnet is ${subnet}; its first and last addresses are not usable`);
    const text = formatIpv4(ip);
    if (await store.create(keys.address(netId, text), owner, { lease: opts.lease })) return text;
    if ((await store.get(keys.address(netId, text)))?.value === owner) return text;
    throw new BadStateError(`IP address ${text} is already in use on network ${netId}`, 'pick another --ip, or let Berth choose one');
  }
  // One read of what is taken, so that the creates below only try addresses that looked free; a create
  // that loses a race just moves on to the next candidate.
  const taken = await listAddresses(store, netId);
  for (const [ip, holder] of taken) if (holder === owner && contains(net, parseIpv4(ip) ?? -1)) return ip;
  const hint = parseIpv4((await store.get(keys.addressHint(netId)))?.value ?? '');
  const big = { first: BigInt(range.first), last: BigInt(range.last) };
  for (const candidate of candidates(big, BigInt(gw ?? -1), hint === undefined ? undefined : BigInt(hint))) {
    const text = formatIpv4(Number(candidate));
    if (taken.has(text)) continue;
    if (await store.create(keys.address(netId, text), owner, { lease: opts.lease })) {
      // Only a hint: a lost write costs the next allocation a longer walk, never a wrong answer.
      await store.put(keys.addressHint(netId), text).catch(() => undefined);
      return text;
    }
  }
  throw new BadStateError(`network ${netId} has no free IPv4 address left in ${subnet}`, 'remove unused containers from it (on any host), or create a network with a larger subnet');
}

/** Frees `ip` if `owner` still holds it; true when it did. Another owner's address is left alone. */
export function release(store: ClusterStore, netId: string, ip: string, owner: string): Promise<boolean> {
  return store.delete(keys.address(netId, ip), { ifValue: owner });
}

/** Frees every address `owner` holds on the network (a host's repair after a crash); returns them. */
export async function releaseOwner(store: ClusterStore, netId: string, owner: string): Promise<string[]> {
  const freed: string[] = [];
  for (const [ip, holder] of await listAddresses(store, netId)) {
    if (holder === owner && (await release(store, netId, ip, owner))) freed.push(ip);
  }
  return freed;
}

/** Every address of the network that is taken, with its owner. */
export async function listAddresses(store: ClusterStore, netId: string): Promise<Map<string, string>> {
  const { kvs } = await store.list(keys.addresses(netId));
  return new Map(kvs.map((kv) => [kv.key.slice(kv.key.lastIndexOf('/') + 1), kv.value]));
}

/** Removes every address record and the hint of a network (when the network is removed cluster-wide). */
export async function dropNetworkAddresses(store: ClusterStore, netId: string): Promise<void> {
  await store.deletePrefix(keys.addresses(netId));
  await store.delete(keys.addressHint(netId));
}
