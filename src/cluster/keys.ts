/**
 * The layout of Berth's keys in the cluster store, in one place (README.md shows it). Everything of Berth's
 * own lives under /berth/v1/ (the version lets a later layout live beside this one); the flannel driver's
 * state is under /berth/flannel/<network-id>/ in flannel's own layout (`config`, `subnets/10.70.3.0-24`),
 * so that anyone who ran flannel reads it.
 *
 * Listing `networks()` returns the networks' endpoint and ipam keys too (they are below each network):
 * `networkIdOf` tells a network's own key from the rest.
 */
import { InvalidArgumentError } from '../errors.js';

export const ROOT = '/berth/v1';
export const FLANNEL_ROOT = '/berth/flannel';

/** A path segment: no "/", no empty or dot names, printable ASCII (ids, addresses, host names). */
function segment(value: string, what: string): string {
  if (!/^[A-Za-z0-9_.:@-]{1,253}$/.test(value) || value === '.' || value === '..') {
    throw new InvalidArgumentError(what, `"${value}" cannot be part of a cluster store key`, 'use letters, digits and . _ : @ - only');
  }
  return value;
}

export const keys = {
  /** a host's registration (under its lease): `{ address, ... }` */
  host: (hostId: string) => `${ROOT}/hosts/${segment(hostId, 'host id')}`,
  hosts: () => `${ROOT}/hosts/`,
  /** a global network's record */
  network: (netId: string) => `${ROOT}/networks/${segment(netId, 'network id')}`,
  networks: () => `${ROOT}/networks/`,
  /** an endpoint of a global network, registered by the host it runs on (under that host's lease) */
  endpoint: (netId: string, epId: string) => `${ROOT}/networks/${segment(netId, 'network id')}/endpoints/${segment(epId, 'endpoint id')}`,
  endpoints: (netId: string) => `${ROOT}/networks/${segment(netId, 'network id')}/endpoints/`,
  /** an address of a global network, its value the owner (ipam.ts) */
  address: (netId: string, ip: string) => `${ROOT}/networks/${segment(netId, 'network id')}/ipam/${segment(ip, 'address')}`,
  addresses: (netId: string) => `${ROOT}/networks/${segment(netId, 'network id')}/ipam/`,
  /** the last address handed out: a hint, never needed for correctness (beside ipam/, not under it) */
  addressHint: (netId: string) => `${ROOT}/networks/${segment(netId, 'network id')}/ipam-last`,
  /** a VXLAN network identifier taken by a network: the value is the network's id */
  vni: (n: number) => `${ROOT}/vni/${n}`,
  vnis: () => `${ROOT}/vni/`,
  /** the flannel layout's prefix of one network (leases.ts) */
  flannel: (netId: string) => `${FLANNEL_ROOT}/${segment(netId, 'network id')}`,
};

/** The network id when `key` is a network's own record (not one of its endpoints or addresses). */
export function networkIdOf(key: string): string | undefined {
  const m = /^\/berth\/v1\/networks\/([^/]+)$/.exec(key);
  return m?.[1];
}
