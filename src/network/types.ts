import type { ClusterStore, LeaseId } from '../cluster/index.js';
import type { IdMap } from '../userns/index.js';
import type { NetworkRequest } from '../options.js';
import type { SlirpRecord } from './slirp.js';

export type Protocol = 'tcp' | 'udp';

/**
 * One container port to publish. The host port is fixed (`first === last`), a range to pick a free
 * one from, or absent (any free port of the ephemeral range, as `-P` and `-p 80`).
 */
export interface PortRequest {
  hostIp: string;
  hostPorts?: { first: number; last: number };
  containerPort: number;
  protocol: Protocol;
}

/** A host port given to a container port (the reservation made from a PortRequest). */
export interface PublishedPort {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

/** What a sandbox is: its own netns, the host's, none at all (lo only), or another container's. */
export type SandboxMode = 'private' | 'host' | 'none' | 'container' | 'slirp4netns';

/**
 * One network, in networks/<id>.json. `driverOptions` is the driver's typed reading of the `-o`
 * options, made once at create (netavark's lesson: never carry an unchecked string map to the driver).
 */
export interface NetworkRecord<O = unknown> {
  id: string;
  name: string;
  driver: string;
  created: string;
  internal: boolean;
  ipv6: boolean;
  /** One IPv4 subnet per network; gateway is always set when a subnet is. */
  ipam?: { subnet: string; gateway: string; ipRange?: string };
  /** The IPv6 subnet of a dual-stack network (`--ipv6`); only with `ipam`. */
  ipam6?: { subnet: string; gateway: string; ipRange?: string };
  /** The raw `-o` options, for inspect. */
  options: Record<string, string>;
  driverOptions: O;
  labels: Record<string, string>;
  /** bridge, host, none: made by Berth, never removed */
  builtin?: boolean;
  /** A name server of Berth's own on the gateway (user-defined bridge networks, as Docker). */
  dns: boolean;
  /**
   * The network's device existed before the network (Docker adopts an existing bridge): Berth never
   * deletes it, only the `addresses` (addr/prefix) it added to it.
   */
  adopted?: { addresses: string[] };
  /**
   * The subnet is a candidate, chosen for real when the bridge is first made (the default bridge of a
   * root made by this version; records of older versions keep theirs).
   */
  subnetPending?: boolean;
  /** Created with --allow-host-overlap: the subnet may overlap the host's routes, now and when made again. */
  hostOverlapAllowed?: boolean;
  /**
   * 'global': the network lives in the cluster store (overlay): every host of the cluster has it, this
   * record is this host's copy, and its host objects are made here only while a container of this host is on it.
   */
  scope?: 'global';
  /** Set while `network create` makes host objects; a record still flagged is undone by the next command. */
  incomplete?: boolean;
  /** Set when `network rm` starts; a record still flagged is removed by the next command. */
  removing?: boolean;
}

/** A network as `network ls`/`inspect` need it: its record and the containers on it (api/ shapes Docker's view). */
export interface NetworkDetails {
  network: NetworkRecord;
  members: { containerId: string; name: string; endpoint: EndpointRecord }[];
  /** what the host holds inside the network's subnets while its bridge exists (a VPN that came up later) */
  warnings: string[];
  /** a global network's hosts, as the cluster store has them (absent when the store cannot be reached) */
  peers?: NetworkPeer[];
}

/** A host of a global network (Docker's Peers), with its subnet on a flannel network. */
export interface NetworkPeer {
  /** the host's name as it registered, or its address */
  name: string;
  ip: string;
  subnet?: string;
}

/** A container's place on one network: its interface, address and names. */
export interface EndpointRecord {
  networkId: string;
  networkName: string;
  driver: string;
  /** eth0, eth1 ... inside the sandbox */
  interface: string;
  /** The host-side interface Berth names (bridge veths), if any. */
  hostInterface?: string;
  ipv4?: string;
  prefixLength?: number;
  gateway?: string;
  ipv6?: string;
  prefixLength6?: number;
  gateway6?: string;
  /** whether the default route goes through this endpoint's gateway (one endpoint per sandbox) */
  defaultRoute?: boolean;
  /** the same for IPv6: the first routed endpoint with an IPv6 address */
  defaultRoute6?: boolean;
  mac: string;
  aliases: string[];
  /** set before any host object is made, cleared once the endpoint works */
  incomplete?: boolean;
}

export interface LinkRef {
  id: string;
  name: string;
  alias: string;
}

/** Everything Berth made for one container's networking, in sandboxes/<ctrid>.json (volatile runroot). */
export interface SandboxRecord {
  containerId: string;
  name: string;
  hostname: string;
  domainname?: string;
  mode: SandboxMode;
  /** The netns file Berth bind-mounted (private mode; none has runc's own), or the one container:X joins. */
  netnsPath?: string;
  /** The user namespace file that owns netnsPath, for a user-namespaced container (private mode only). */
  usernsPath?: string;
  /** container:X — X's id */
  sharedWith?: string;
  /** The netns's name for `ip netns` (/run/netns/<name>, a symlink to netnsPath), private mode only. */
  netnsName?: string;
  /** What the container asked for, checked at create (records of older versions have `request` instead). */
  plan?: NetworkPlan;
  /** @deprecated written by versions before NetworkPlan; read only to tear such a sandbox down */
  request?: NetworkRequest;
  links: LinkRef[];
  endpoints: EndpointRecord[];
  ports: PublishedPort[];
  /** slirp4netns mode: the helper process, stopped at detach */
  slirp?: SlirpRecord;
  /** userland proxies of ports published on [::1] (proxy.ts), killed at detach */
  proxies?: { pid: number; start: string; port: number; protocol: Protocol }[];
  incomplete?: boolean;
  /** set when teardown starts, so firewall and DNS regeneration already leave it out */
  removing?: boolean;
}

/**
 * The netns being built. Drivers queue `ip -batch` lines on either side; the manager runs consecutive
 * lines of one side in one process (the first inside batch also creates the netns), so a container on
 * one bridge costs two `ip` processes however many steps its drivers take.
 */
export interface Sandbox {
  readonly containerId: string;
  /** the container's name (a global network registers it, for the other hosts' name servers) */
  readonly name: string;
  readonly netnsPath: string;
  /** A path naming the host's netns, for `netns` arguments of lines run inside. */
  readonly hostNetnsPath: string;
  inside(lines: readonly string[]): void;
  outside(lines: readonly string[]): void;
  /** Lines run in another netns of Berth's (an overlay network's), after the lines queued before them. */
  within(netnsPath: string, lines: readonly string[]): void;
}

/** What a join produced, folded into the endpoint record and SandboxStatus. */
export interface Attachment {
  hostInterface?: string;
}

/** Facts and helpers drivers share, handed over by the manager (never probed by drivers themselves). */
export interface DriverContext {
  /** Bridge name of the default `bridge` network. */
  readonly defaultBridgeName: string;
  /** The cluster this host belongs to, for global-scope drivers; absent when no cluster store is set. */
  readonly cluster?: ClusterMember;
  /** Set when Berth runs rootless: bridge networks and iptables are out of reach. */
  readonly rootless?: RootlessNetworking;
  /** The runroot's netns folder: a driver's own netns go in a dot folder of it, which the sweeps pass over. */
  readonly netnsDir?: string;
}

/** This host as a member of the cluster: the store, and who this host is there. */
export interface ClusterMember {
  store(): Promise<ClusterStore>;
  /** This host's id, underlay (advertise) address and the lease its keys live under (granted, or renewed). */
  self(): Promise<{ hostId: string; address: string; lease: LeaseId }>;
  /** This host's id and address, the lease untouched (what a new lease's hook needs: it runs under the lease's lock). */
  identity(): Promise<{ hostId: string; address: string }>;
  /** Starts this host's cluster agent unless it runs (it keeps the lease alive and follows the other hosts). */
  ensureAgent(): Promise<void>;
}

/** Addresses of one network, from wherever its driver keeps them (the host's files, or the cluster store). */
export interface AddressAllocator {
  /**
   * An address for `owner`: `wanted` or the next free one; an owner asking again gets what it holds. A bare
   * address has the network's prefix and gateway; an allocator whose addresses come from a part of the
   * network (flannel: this host's subnet) says which prefix and gateway go with it.
   */
  allocate(owner: string, wanted?: string): Promise<string | AllocatedAddress>;
  /** Frees `ip` if `owner` still holds it. */
  release(owner: string, ip: string): Promise<void>;
}

export interface AllocatedAddress {
  ip: string;
  prefixLength: number;
  gateway: string;
}

/** What a driver's allocator may take instead of the cluster: a pool in this root's files over `spec`. */
export type LocalPool = (spec: { subnet: string; gateway: string }) => AddressAllocator;

/**
 * A network driver (CNM's driverapi, netavark's four-method driver). Every method is idempotent:
 * safe to repeat, and to re-run after a crash. `mode` decides what kind of sandbox the driver's
 * networks give; only 'private' drivers have endpoints and get `join`/`leave` calls.
 */
export interface NetworkDriver<O = unknown> {
  readonly kind: string;
  readonly mode: SandboxMode;
  /** Parses `-o` options into the typed record kept in NetworkRecord.driverOptions; throws InvalidArgumentError. */
  parseOptions(raw: Readonly<Record<string, string>>, net: { id: string; name: string; internal: boolean; subnet?: string }, ctx: DriverContext): O;
  /** Whether the network needs a subnet (IPAM) for its endpoints. */
  readonly needsSubnet: boolean;
  /** Whether containers on the network get Berth's name server (user-defined networks only). */
  readonly supportsDns: boolean;
  /**
   * 'global': networks of this driver live in the cluster store (DriverContext.cluster): `network create`
   * publishes them there and every host sees them; `createNetwork` then makes one host's objects, at its
   * first endpoint (`ensure`), and `deleteNetwork` removes them when the host's last endpoint left.
   */
  readonly scope?: 'global';
  /** The driver's own IPv4 addresses (a global network's are the cluster's), in place of the host's pool. */
  addresses?(net: NetworkRecord<O>, ctx: DriverContext, local: LocalPool): AddressAllocator;
  /**
   * A global network's own keys beside its record (flannel's config), written once the record is
   * published (its VNI is settled then); a failure withdraws the record again.
   */
  published?(net: NetworkRecord<O>, ctx: DriverContext): Promise<void>;
  /** Brings this host's objects of a global network in line with the cluster store (the agent, on every change). */
  refresh?(net: NetworkRecord<O>, ctx: DriverContext): Promise<void>;
  /** The netns holding the network's gateway, when it is not the host's: its name server runs there. */
  nameServerNetns?(net: NetworkRecord<O>, ctx: DriverContext): string | undefined;
  /** The hosts of a global network (`network inspect`). */
  peers?(net: NetworkRecord<O>, ctx: DriverContext): Promise<NetworkPeer[]>;
  /**
   * Puts this host's driver keys of a global network back under a new lease (the old one expired): its
   * endpoints' registrations are put back by the caller, the driver's own keys (addresses, a host subnet) here.
   */
  republish?(net: NetworkRecord<O>, ctx: DriverContext, host: { address: string; lease: LeaseId; endpoints: readonly { containerId: string; ip: string }[] }): Promise<void>;
  /**
   * At network create, before any host object is made: whether the network's device already exists and
   * is taken over (the result goes into `NetworkRecord.adopted`). Throws InvalidArgumentError for a device
   * that may not be used. Drivers without one always make their own devices.
   */
  adopt?(net: NetworkRecord<O>): Promise<NetworkRecord['adopted']>;
  createNetwork(net: NetworkRecord<O>, ctx?: DriverContext): Promise<void>;
  deleteNetwork(net: NetworkRecord<O>, ctx?: DriverContext): Promise<void>;
  join(net: NetworkRecord<O>, ep: EndpointRecord, sandbox: Sandbox, ctx?: DriverContext): Promise<Attachment>;
  /**
   * Undoes `join`. `sandboxGoing` says the whole netns is about to be removed, which takes the
   * interfaces inside with it: drivers then skip deleting them (a link delete waits ~30 ms for RCU).
   */
  leave(net: NetworkRecord<O>, ep: EndpointRecord, sandbox: { containerId: string; netnsPath?: string; sandboxGoing: boolean }, ctx?: DriverContext): Promise<void>;
  /** iptables lines for the network and its endpoints; see firewall.ts for the chains. */
  firewall?(net: NetworkRecord<O>, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules;
  /** ip6tables lines for a network with `ipam6` and its endpoints' IPv6 ports, in chains of the same names. */
  firewall6?(net: NetworkRecord<O>, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules;
}

export interface FirewallEndpoint {
  containerId: string;
  ipv4: string;
  /** the endpoint's IPv6 address on a dual-stack network (its ports are published on IPv6 too) */
  ipv6?: string;
  ports: PublishedPort[];
}

export interface ChainNames {
  forward: string;
  isolation1: string;
  isolation2: string;
  /** filter: the accepts of published ports (appended per container, see renderAppend) */
  ports: string;
  dnat: string;
  postrouting: string;
  /** raw PREROUTING: drops that must see a packet before conntrack and NAT rewrite it */
  raw: string;
}

/** Rule bodies (without `-A CHAIN`) per chain; a driver only fills the chains it uses. */
export interface FirewallRules {
  forward?: string[];
  isolation1?: string[];
  isolation2?: string[];
  ports?: string[];
  dnat?: string[];
  postrouting?: string[];
  raw?: string[];
}

// ---------------------------------------------------------------- what the container layer sees

/**
 * Where a container's networking lives: no network (lo only), the host's, another container's netns, or
 * endpoints on networks (the first is the primary: --ip, --ip6 and --mac-address apply to it).
 */
export type NetworkMode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; id: string }
  | { kind: 'networks'; networks: { name: string; id: string }[] }
  /** rootless Berth's default: a netns of its own reaching out through slirp4netns (slirp.ts) */
  | { kind: 'slirp4netns' };

/**
 * A container's network flags, parsed and checked once at create (`plan`) and kept in its record;
 * `attach` builds from it and re-parses nothing. JSON-serializable.
 */
export interface NetworkPlan {
  mode: NetworkMode;
  /** canonical addresses, already checked against the primary network's subnet */
  ip?: string;
  ip6?: string;
  /** lower case */
  mac?: string;
  aliases: string[];
  /** -p, then -P's from the image's ExposedPorts, in Docker's order */
  ports: PortRequest[];
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
  /** NAME:IP or NAME=IP, checked; `host-gateway` is resolved at attach (the primary network's gateway) */
  extraHosts: string[];
  links: LinkRef[];
}

/** What `plan` needs besides the flags; the container layer resolves container names to ids. */
export interface PlanContext {
  /** image ExposedPorts keys: '80/tcp' (used with -P) */
  exposedPorts: string[];
  /** --network container:X, X resolved to its id */
  sharedWith?: string;
  links?: LinkRef[];
  /** Rootless Berth (DriverContext.rootless) */
  rootless?: RootlessNetworking;
}

/** What a rootless engine may do: no bridges or iptables; ports from the host's unprivileged start up. */
export interface RootlessNetworking {
  /** net.ipv4.ip_unprivileged_port_start of the host's netns */
  unprivilegedPortStart: number;
}

/** The container, as `attach` needs it. */
export interface AttachRequest {
  id: string;
  name: string;
  hostname: string;
  domainname?: string;
  plan: NetworkPlan;
  /** container:X where X is on `none`: X's pid names its netns (runc made that one) */
  sharedWithPid?: number;
  /**
   * The container's user namespace maps: its netns is made inside a user namespace of its own (kept as a
   * file too), so that the container's root owns it: it can mount sysfs, set net sysctls, and `runc exec`
   * (which joins the user namespace first) can join the netns.
   */
  userns?: { uid: IdMap[]; gid: IdMap[] };
}

export interface SandboxEndpointStatus {
  network: string;
  networkId: string;
  ipv4?: string;
  prefixLength?: number;
  /** address/prefix, e.g. fd00:b5e7::2/64 */
  ipv6?: string;
  mac?: string;
  gateway?: string;
  gateway6?: string;
  interface?: string;
  aliases: string[];
}

/** What the runtime spec and the container's files need. File contents are ready to write. */
export interface SandboxStatus {
  mode: SandboxMode;
  /** for runc's linux.namespaces network path; absent for host */
  netnsPath?: string;
  /** the user namespace that owns netnsPath (AttachRequest.userns), for runc's user namespace path */
  usernsPath?: string;
  hostsFile: string;
  resolvConf: string;
  /** contents of /etc/hostname */
  hostname: string;
  ports: PublishedPort[];
  endpoints: SandboxEndpointStatus[];
}
