/**
 * The network layer (CNM words): a sandbox (netns) holds endpoints; endpoints join networks; drivers
 * make networks and endpoints. Life of a container's networking:
 *   attach(ctr)  → sandbox record written (incomplete) → host ports reserved → netns made → per network:
 *                  bridge ensured, address reserved, endpoint joined → firewall and names updated → complete
 *   detach(id)   → every step undone, "already gone" counts as done (CNI DEL), one error for real failures
 *   reconcile(live) → anything owned by a container not in `live` is undone (after a crash or reboot)
 * Networks: create/list/inspect/remove/prune, returning records (api/ shapes Docker's view);
 * `connect`/`disconnect` change a running container's sandbox and return its new status (so the caller
 * can rewrite /etc/hosts).
 */
import type { NetworkCreateRequest, NetworkRequest } from '../options.js';
import type { StoreLayout } from '../paths.js';
import { Manager, type NetworkManagerOptions } from './manager.js';
import type { AttachRequest, NetworkDetails, NetworkPlan, NetworkRecord, PlanContext, SandboxStatus } from './types.js';
import type { LeaseId } from '../cluster/index.js';

export type { ClusterMember } from './types.js';
export type {
  AttachRequest, NetworkPlan, NetworkMode, PlanContext, PortRequest, PublishedPort, Protocol, SandboxStatus, SandboxEndpointStatus, SandboxMode, LinkRef, NetworkDriver, NetworkRecord, NetworkDetails, EndpointRecord,
  Sandbox, Attachment, DriverContext, FirewallEndpoint, FirewallRules, ChainNames,
} from './types.js';
export type { NetworkManagerOptions } from './manager.js';
export { registerDriver, unregisterDriver } from './drivers/index.js';
export { parseBip } from './networks.js';
export { parsePublish } from './portspec.js';
export { DEFAULT_POOLS, parsePools, type PoolSpec } from './subnets.js';

export interface NetworkManager {
  create(req: NetworkCreateRequest): Promise<{ id: string }>;
  /**
   * `filters` as `docker network ls` takes them (name=, id=, driver=, label=, type=). The cluster store is
   * read first when one is configured (global networks made elsewhere), unless `cluster: false`.
   */
  list(opts?: { filters?: string[]; cluster?: boolean }): Promise<NetworkDetails[]>;
  inspect(ref: string): Promise<NetworkDetails>;
  /**
   * BadStateError for built-in networks and networks with endpoints. A global network is withdrawn from
   * the cluster (refused while any host has an endpoint on it); with `local`, it only leaves this host.
   */
  remove(ref: string, opts?: { local?: boolean }): Promise<void>;
  /** `filters`: until=, label=, label!= (util/prune-filter.ts) */
  prune(opts?: { filters?: string[] }): Promise<{ deleted: string[] }>;
  /** Adds an endpoint to a running container's sandbox (the container layer resolves the name to an id). */
  connect(network: string, ctrId: string, opts?: { ip?: string; ip6?: string; aliases?: string[] }): Promise<SandboxStatus>;
  disconnect(network: string, ctrId: string, opts?: { force?: boolean }): Promise<SandboxStatus>;
  /** Puts back Berth's jump rules (one copy each) and rewrites its chains, e.g. after a firewall flush. */
  reload(opts?: { all?: boolean; containers?: string[] }): Promise<{ reloaded: string[] }>;

  /**
   * Parses and checks a container's network flags at create; nothing is made. NotFoundError for an
   * unknown network, InvalidArgumentError (Docker's wording) for anything Docker refuses at create.
   * The plan is JSON: the container record keeps it and hands it to `attach`.
   */
  plan(req: NetworkRequest, ctx: PlanContext): Promise<NetworkPlan>;
  /**
   * Builds the container's sandbox from its plan; call before the container starts. Undoes its own
   * work on failure. NotFoundError when a planned network was removed since.
   */
  attach(ctr: AttachRequest): Promise<SandboxStatus>;
  /** Tears the sandbox down (CNI DEL semantics); call after the container stopped. */
  detach(ctrId: string): Promise<void>;
  /** Cleans every sandbox, netns, address, port and rule of containers not in the set; returns what it cleaned. */
  reconcile(liveContainerIds: ReadonlySet<string>): Promise<string[]>;
  /**
   * Finishes what a command killed inside this layer left under its locks (a firewall rewrite is done
   * again from the records); nothing to do, and one readdir, when no lock has a dead holder.
   */
  repair(): Promise<void>;
  /** Where the container's netns file is (or would be). */
  netnsPathOf(ctrId: string): string;
  /** The status of a running container's sandbox, or undefined. */
  status(ctrId: string): Promise<SandboxStatus | undefined>;
  /** Removes unused host objects of this root (name servers, bridges, chains, jumps); refuses while sandboxes exist. */
  shutdown(): Promise<void>;
  /**
   * Re-reads what the cluster holds for a global network (other hosts' endpoints: VXLAN entries, names);
   * nothing while no container of this host is on it. The cluster agent calls it on every change it sees.
   */
  refreshGlobal(netId: string): Promise<void>;
  /** The global networks a container of this host is on (the agent is idle without any). */
  globalInUse(): Promise<NetworkRecord[]>;
  /** Puts this host's endpoints and addresses on global networks back under a new lease. */
  republish(lease: LeaseId): Promise<void>;
}

export function openNetworkManager(layout: StoreLayout, opts?: NetworkManagerOptions): NetworkManager {
  return new Manager(layout, opts);
}
