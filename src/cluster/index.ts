/**
 * The cluster layer: where global-scope network drivers keep what every host of a Berth cluster shares
 * (README.md). Its life:
 *   clusterSettings(flags, env, config)  → parsed and checked once, at the edge; nothing connects
 *   openCluster(settings)                → a handle; still nothing connects
 *   access.store()                       → the first global-scope operation opens the store (etcd.ts is
 *                                          imported only now, so commands that never need it pay nothing);
 *                                          ClusterNotConfiguredError when no store is set
 *   access.advertise()                   → this host's underlay address (an interface name resolved)
 *   access.close()                       → ends the store's watches and connections
 * Helpers over a ClusterStore: keys.ts (the key layout), ipam.ts (cluster-wide addresses), leases.ts
 * (flannel's subnet leases).
 */
import { ClusterNotConfiguredError, InvalidArgumentError } from '../errors.js';
import { resolveAdvertise, type AdvertiseAddress } from './advertise.js';
import { parseAdvertise, parseClusterStoreUri, parseStoreOpts, type AdvertiseSpec, type ClusterStoreOpts, type ClusterStoreUri } from './settings.js';
import type { ClusterStore } from './store.js';

export type { ClusterStore, KeyValue, LeaseId, PutOptions, DeleteOptions, Watch, WatchEvent } from './store.js';
export type { AdvertiseSpec, ClusterStoreOpts, ClusterStoreUri, StoreEndpoint } from './settings.js';
export type { AdvertiseAddress } from './advertise.js';
export { parseAdvertise, parseClusterStoreUri, parseStoreOpts, STORE_OPT_NAMES } from './settings.js';
export { keys, networkIdOf, ROOT as CLUSTER_KEY_ROOT, FLANNEL_ROOT } from './keys.js';
export { allocate, release, releaseOwner, listAddresses, dropNetworkAddresses, type AllocateOptions } from './ipam.js';
export {
  acquireSubnet, renewSubnet, releaseSubnet, listSubnets, ensureFlannelConfig, readFlannelConfig, checkFlannelConfig, subnetCount,
  type FlannelConfig, type SubnetAttrs, type SubnetLease,
} from './leases.js';
export { clusterPaths, openClusterHost, type ClusterHost, type ClusterPaths, type HostIdentity, type HostLease, type HostRegistration, type NewLeaseHook } from './host.js';
export {
  runAgent, registerClusterWatchers, registeredClusterWatchers, combineProviders,
  type AgentContext, type AgentExit, type AgentLog, type AgentOptions, type ClusterAgentProvider, type ClusterAgentProviderFactory, type ClusterWatcher,
} from './agent.js';
export { ensureAgent, stopAgent, agentStatus, runAgentProcess, DEFAULT_AGENT_TTL, DEFAULT_IDLE_EXIT_SECONDS, type AgentProcessOptions, type AgentSettings, type AgentStatus } from './agent-process.js';

export interface ClusterSettings {
  store?: ClusterStoreUri;
  advertise?: AdvertiseSpec;
  opts: ClusterStoreOpts;
}

/** Where each setting came from, first match wins: a flag or Engine option, the environment, the config file. */
export interface ClusterInputs {
  store?: string;
  advertise?: string;
  /** the config file's cluster-store-opts */
  opts?: Record<string, unknown>;
}

/** Parses the settings; InvalidArgumentError names the value and says how to write it. */
export function clusterSettings(input: ClusterInputs): ClusterSettings {
  const store = input.store === undefined || input.store === '' ? undefined : parseClusterStoreUri(input.store);
  const advertise = input.advertise === undefined || input.advertise === '' ? undefined : parseAdvertise(input.advertise);
  const opts = parseStoreOpts(input.opts, store);
  if (advertise && !store) {
    throw new InvalidArgumentError('--cluster-advertise', `"${advertise.text}" is set but no cluster store is`, 'set --cluster-store etcd://HOST:PORT too, or leave --cluster-advertise out');
  }
  return { store, advertise, opts };
}

export interface ClusterAccess {
  readonly settings: ClusterSettings;
  /** a store is set (nothing has connected to it) */
  readonly configured: boolean;
  /** The store, opened on first use. ClusterNotConfiguredError when none is set. */
  store(): Promise<ClusterStore>;
  /** This host's advertised address. ClusterNotConfiguredError / InvalidArgumentError when unset or unresolvable. */
  advertise(): Promise<AdvertiseAddress>;
  /** Throws ClusterNotConfiguredError unless a store is set; `what` names what needs it ("overlay networks"). */
  require(what?: string): void;
  close(): Promise<void>;
}

export interface OpenClusterOptions {
  /** deadline of each store request in ms (default 5000) */
  timeoutMs?: number;
}

export function openCluster(settings: ClusterSettings, options: OpenClusterOptions = {}): ClusterAccess {
  let opened: Promise<ClusterStore> | undefined;
  const require = (what?: string) => {
    if (!settings.store) throw new ClusterNotConfiguredError(what);
  };
  return {
    settings,
    configured: settings.store !== undefined,
    require,
    async store() {
      require();
      const uri = settings.store!;
      opened ??= import('./etcd.js').then(({ EtcdStore }) => new EtcdStore(uri, { timeoutMs: options.timeoutMs, opts: settings.opts }));
      // A failed open (an unreadable TLS file) is not kept: the next call reports it again.
      opened.catch(() => {
        opened = undefined;
      });
      return opened;
    },
    async advertise() {
      require();
      if (!settings.advertise) {
        throw new InvalidArgumentError('--cluster-advertise', 'multi-host networks need this host\'s address: none is set',
          'set --cluster-advertise ADDR (or an interface name such as eth0; BERTH_CLUSTER_ADVERTISE, or "cluster-advertise" in the config file)');
      }
      return resolveAdvertise(settings.advertise);
    },
    async close() {
      const s = opened;
      opened = undefined;
      if (s) await (await s).close();
    },
  };
}
