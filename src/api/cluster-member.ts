import { DEFAULT_AGENT_TTL, ensureAgent, openClusterHost, type ClusterAccess, type ClusterHost, type NewLeaseHook } from '../cluster/index.js';
import type { ClusterMember } from '../network/index.js';
import type { StoreLayout } from '../paths.js';

/**
 * This root as a host of its cluster, for the network layer: the store, this host's identity and lease
 * (renewed at each use; a new lease gets this host's keys put back by `onNewLease`), and its agent.
 * Nothing connects until a global network is used.
 */
export function clusterMember(layout: StoreLayout, access: ClusterAccess, opts: {
  /** how to run berth on this store (for the agent) */
  berth: () => string[];
  onNewLease: NewLeaseHook;
}): ClusterMember {
  let host: Promise<ClusterHost> | undefined;
  const open = async () => {
    const store = await access.store();
    host ??= access.advertise().then((adv) => openClusterHost(layout, { address: adv.address, endpoints: store.endpoints }));
    host.catch(() => { host = undefined; });
    return { store, host: await host };
  };
  return {
    store: () => access.store(),
    async self() {
      const { store, host: h } = await open();
      const lease = await h.lease(store, DEFAULT_AGENT_TTL, [opts.onNewLease]);
      return { hostId: h.id, address: h.address, lease: lease.id };
    },
    async identity() {
      const { host: h } = await open();
      return { hostId: h.id, address: h.address };
    },
    async ensureAgent() {
      await ensureAgent(layout, { berth: opts.berth() });
    },
  };
}
