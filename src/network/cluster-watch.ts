import { FLANNEL_ROOT, keys, networkIdOf, type ClusterAgentProviderFactory, type WatchEvent } from '../cluster/index.js';
import type { NetworkManager } from './index.js';

/**
 * What the cluster agent runs for the network layer: one watch over every global network's keys, and one
 * over flannel's subnets (a host that leases or gives back a subnet changes the others' routes). A change
 * to a network's endpoints re-reads that network (this host's VXLAN entries and names follow the other
 * hosts'); a network record that comes or goes refreshes this host's copies. The agent is idle once no
 * container of this host is on a global network, and a new lease gets this host's keys put back under it.
 */
export function globalNetworksProvider(mgr: Pick<NetworkManager, 'list' | 'refreshGlobal' | 'globalInUse' | 'republish'>): ClusterAgentProviderFactory {
  const refreshAll = async () => {
    await mgr.list();
    for (const n of await mgr.globalInUse()) await mgr.refreshGlobal(n.id);
  };
  return ({ log }) => {
    const refreshOne = (id: string) => mgr.refreshGlobal(id).catch((err: unknown) => log(`network ${id}: ${err instanceof Error ? err.message : String(err)}`));
    return {
      async watchers() {
        return [{
          prefix: keys.networks(),
          resync: refreshAll,
          async apply(ev: WatchEvent) {
            if (ev.type === 'compacted') return refreshAll();
            const key = ev.type === 'put' ? ev.kv.key : ev.key;
            if (networkIdOf(key)) {
              await mgr.list();
              return;
            }
            const id = new RegExp(`^${keys.networks()}([^/]+)/endpoints/`).exec(key)?.[1];
            if (id) await refreshOne(id);
          },
        }, {
          prefix: `${FLANNEL_ROOT}/`,
          resync: refreshAll,
          async apply(ev: WatchEvent) {
            if (ev.type === 'compacted') return refreshAll();
            const id = new RegExp(`^${FLANNEL_ROOT}/([^/]+)/subnets/`).exec(ev.type === 'put' ? ev.kv.key : ev.key)?.[1];
            if (id) await refreshOne(id);
          },
        }];
      },
      idle: async () => (await mgr.globalInUse()).length === 0,
      onNewLease: (lease) => mgr.republish(lease),
    };
  };
}
