import type { EngineConfig } from '../config/index.js';
import type { ClusterMember, NetworkManagerOptions } from '../network/index.js';
import { hostNames, type StoreLayout } from '../paths.js';
import { stripUndefined } from '../util/object.js';
import { isRootless, unprivilegedPortStart } from '../rootless/index.js';
import type { EngineOptions } from './types.js';

/**
 * The network layer's options for a store, as every process of it must see them: the engine of each
 * command and the cluster agent (api/cluster-agent.ts), which runs the same network manager to follow the
 * other hosts. Names derive from the root; the config file, then the Engine's `network` option, override.
 */
export function networkManagerOptions(layout: StoreLayout, config: EngineConfig, network: EngineOptions['network'], cluster?: ClusterMember): NetworkManagerOptions {
  const fromConfig = { bridgeName: config.bridge, mtu: config.mtu, chainPrefix: config['iptables-chain-prefix'] };
  const names = { ...hostNames(layout.root), ...stripUndefined(fromConfig), ...stripUndefined(network ?? {}) };
  return {
    defaultBridge: { name: names.bridgeName, subnet: names.subnet, subnetSeed: names.subnetSeed, bip: config.bip, mtu: names.mtu },
    addressPools: config['default-address-pools'],
    chainPrefix: names.chainPrefix,
    ...(cluster ? { cluster } : {}),
    ...(isRootless() ? { rootless: { unprivilegedPortStart: unprivilegedPortStart() } } : {}),
  };
}
