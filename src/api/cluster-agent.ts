/**
 * The entry of the per-root cluster agent (`berth system cluster-agent`, started by ensureAgent): the
 * store's settings as every other command reads them, then the cluster layer's agent with what the
 * network layer registered. Imported on its own, never through api/index.ts: the agent lives for as long
 * as the host has global endpoints, and the Engine's graph (images, containers, runc) would only weigh on
 * its memory.
 */
import { clusterSettings, openCluster, runAgentProcess, type AgentExit } from '../cluster/index.js';
import { loadConfig, parseConfig } from '../config/index.js';
import { resolveLayout } from '../paths.js';
import type { EngineOptions } from './types.js';
import { openNetworkManager } from '../network/index.js';
import { globalNetworksProvider } from '../network/cluster-watch.js';
import { clusterMember } from './cluster-member.js';
import { networkManagerOptions } from './network-options.js';

export interface ClusterAgentOptions extends Pick<EngineOptions, 'root' | 'runroot' | 'config' | 'clusterStore' | 'clusterAdvertise'> {
  ttl?: number;
  idleExitSeconds?: number;
  /** aborted on SIGTERM: a clean stop */
  signal?: AbortSignal;
}

/** Runs the agent until it is stopped or idle; 'locked' when this root's agent already runs. */
export async function runClusterAgent(opts: ClusterAgentOptions): Promise<AgentExit | 'locked'> {
  const config = typeof opts.config === 'object' ? parseConfig(opts.config, 'the Engine config option') : loadConfig(opts.config);
  const cluster = openCluster(clusterSettings({
    store: opts.clusterStore ?? config['cluster-store'],
    advertise: opts.clusterAdvertise ?? config['cluster-advertise'],
    opts: config['cluster-store-opts'] as Record<string, unknown> | undefined,
  }));
  cluster.require('the cluster agent');
  const layout = resolveLayout(opts, process.env, { root: config['data-root'], runroot: config['exec-root'] });
  // The same network manager every command of this store runs, following the other hosts for it.
  const member = clusterMember(layout, cluster, {
    berth: () => [],
    onNewLease: (lease) => network.republish(lease),
  });
  const network = openNetworkManager(layout, networkManagerOptions(layout, config, undefined, member));
  return runAgentProcess({
    layout, cluster, ttl: opts.ttl, idleExitSeconds: opts.idleExitSeconds, signal: opts.signal, providers: [globalNetworksProvider(network)],
  });
}
