import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { NetworkRequest } from '../options.js';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError, runTeardown } from '../errors.js';
import { shortId } from '../ids.js';
import { failpoint } from '../util/failpoint.js';
import { ensureDir, readdirIfExists, removeDeadTemps } from '../util/fs.js';
import { isStaleLock } from '../util/lock.js';
import { parseCidr } from './cidr.js';
import { parseCidr6 } from './cidr6.js';
import { NameServer } from './dns.js';
import { driverFor } from './drivers/index.js';
import { usableUpstreams } from './files.js';
import type { FirewallSync } from './firewall-sync.js';
import { HostPorts } from './hostports.js';
import { hostNetnsPath, IP_NETNS_DIR, ipBatch, ipv6DisabledInNewNetns, isMountPoint, linkNetns, makeUsernsNetns, removeNetns, unlinkNetns, type Side } from './hostnet.js';
import { AddressPool, releaseOrphans } from './ipam.js';
import { coalesced, withFileLock } from './mutex.js';
import { bridgeOf, type Networks } from './networks.js';
import type { LeaseId } from '../cluster/index.js';
import { registerEndpoint, remoteEndpoints } from './global.js';
import { canPublish, planNetwork } from './plan.js';
import { needsProxy, startProxy, stopProxy } from './proxy.js';
import { addHostFwd, createNetns, SLIRP, startSlirp, stopSlirp } from './slirp.js';
import { readHostFiles, sandboxStatus, type HostFiles } from './status.js';
import { USERNS_DIR, type NetStore } from './store.js';
import type {
  AddressAllocator, DriverContext, AttachRequest, EndpointRecord, NetworkPlan, NetworkRecord, PlanContext, Sandbox, SandboxRecord, SandboxStatus,
} from './types.js';

/**
 * Sandboxes (CNM's sandbox: a netns holding endpoints): the plan made at create, attach before the
 * container starts, detach after it stopped, connect/disconnect while it runs, and the clean-up of
 * sandboxes whose containers are gone.
 */
export interface Sandboxes {
  plan(req: NetworkRequest, ctx: PlanContext): Promise<NetworkPlan>;
  attach(ctr: AttachRequest): Promise<SandboxStatus>;
  detach(ctrId: string): Promise<void>;
  connect(network: string, ctrId: string, opts?: { ip?: string; ip6?: string; aliases?: string[] }): Promise<SandboxStatus>;
  disconnect(network: string, ctrId: string, opts?: { force?: boolean }): Promise<SandboxStatus>;
  /** The status of a running container's sandbox, or undefined. */
  statusOf(ctrId: string): Promise<SandboxStatus | undefined>;
  reconcile(liveContainerIds: ReadonlySet<string>): Promise<string[]>;
  /** Clears torn sandbox records and the IPAM/port locks of dead holders among `lockFiles`. */
  repair(lockFiles: readonly string[]): Promise<void>;
  /** Ids of the sandboxes not being torn down. */
  ids(): Promise<string[]>;
  netnsPathOf(ctrId: string): string;
  /** Re-reads what the cluster holds for a global network (the cluster agent calls it on every change). */
  refreshGlobal(netId: string): Promise<void>;
  globalInUse(): Promise<NetworkRecord[]>;
  republish(lease: LeaseId): Promise<void>;
}

export function openSandboxes(store: NetStore, networks: Networks, firewall: FirewallSync, ctx: DriverContext): Sandboxes {
  return new SandboxManager(store, networks, firewall, ctx);
}

/** The ip lines drivers queue while joining, run as few processes as possible (see Sandbox). */
class SandboxBuilder implements Sandbox {
  readonly hostNetnsPath = hostNetnsPath();
  private readonly steps: { side: Side | 'within'; lines: string[]; netns?: string }[] = [];

  /** set when an endpoint has IPv6 and a new netns would start with it off */
  enableIpv6 = false;

  constructor(readonly containerId: string, readonly name: string, readonly netnsPath: string, private created: boolean) {
    if (!created) this.steps.push({ side: 'inside', lines: ['link set lo up'] });
  }

  /** The netns was made apart (makeUsernsNetns): the steps enter it rather than create it. */
  adopt(): void { this.created = true; }

  inside(lines: readonly string[]): void { this.queue('inside', lines); }
  outside(lines: readonly string[]): void { this.queue('outside', lines); }
  within(netnsPath: string, lines: readonly string[]): void { this.queue('within', lines, netnsPath); }

  private queue(side: Side | 'within', lines: readonly string[], netns?: string): void {
    const last = this.steps[this.steps.length - 1];
    if (last?.side === side && last.netns === netns) last.lines.push(...lines);
    else this.steps.push({ side, lines: [...lines], ...(netns ? { netns } : {}) });
  }

  async flush(): Promise<void> {
    for (const step of this.steps.splice(0)) {
      if (step.side === 'outside') await ipBatch(step.lines, { side: 'outside' });
      else if (step.side === 'within') await ipBatch(step.lines, { side: 'inside', netns: step.netns! });
      else await ipBatch(step.lines, { side: 'inside', netns: this.netnsPath, create: !this.created, enableIpv6: this.enableIpv6 });
      if (step.side === 'inside') { this.created = true; this.enableIpv6 = false; }
    }
  }
}

class SandboxManager implements Sandboxes {
  private readonly ports: HostPorts;
  private hostFilesCache: HostFiles | undefined;
  private readonly dnsSyncs = new Map<string, () => Promise<void>>();

  constructor(private readonly store: NetStore, private readonly networks: Networks, private readonly firewall: FirewallSync, private readonly ctx: DriverContext) {
    this.ports = new HostPorts(store.portsDir, store.locks.ports());
  }

  private get host(): HostFiles {
    return (this.hostFilesCache ??= readHostFiles());
  }

  netnsPathOf(ctrId: string): string {
    return this.store.netnsPath(ctrId);
  }

  async plan(req: NetworkRequest, ctx: PlanContext): Promise<NetworkPlan> {
    try {
      return planNetwork(req, { ...ctx, ...(this.ctx.rootless ? { rootless: this.ctx.rootless } : {}) }, await this.networks.all());
    } catch (err) {
      // A global network made on another host since this one last looked: refresh the copies, plan again.
      if (!(err instanceof NotFoundError) || !this.ctx.cluster) throw err;
      return planNetwork(req, { ...ctx, ...(this.ctx.rootless ? { rootless: this.ctx.rootless } : {}) }, await this.networks.refreshed());
    }
  }

  // ------------------------------------------------------------ attach

  async attach(ctr: AttachRequest): Promise<SandboxStatus> {
    if (await this.store.readSandbox(ctr.id)) await this.detach(ctr.id); // a stop that never detached
    const { plan } = ctr;
    const base: SandboxRecord = {
      containerId: ctr.id, name: ctr.name, hostname: ctr.hostname, ...(ctr.domainname ? { domainname: ctr.domainname } : {}),
      mode: 'private', plan, links: plan.links, endpoints: [], ports: [], incomplete: true,
    };
    switch (plan.mode.kind) {
      case 'host': return this.finish({ ...base, mode: 'host', incomplete: false });
      // No netns file for none: runc makes a fresh netns when given no path and brings its lo up itself,
      // which saves an unshare at start and an umount at the end.
      case 'none': return this.finish({ ...base, mode: 'none', incomplete: false });
      case 'container': return this.attachShared(base, plan.mode.id, ctr.sharedWithPid);
      case 'slirp4netns': {
        try {
          return await this.attachSlirp(base, plan, ctr.userns);
        } catch (err) {
          await this.detach(ctr.id).catch(() => {});
          throw err;
        }
      }
      case 'networks': {
        // By id, as planned: a network removed since (even if made again under its name) is gone.
        const all = await this.networks.all();
        const nets = plan.mode.networks.map((p) => {
          const net = all.find((n) => n.id === p.id);
          if (!net) throw new NotFoundError('network', p.name, 'the network was removed after the container was created: create the container again');
          return net;
        });
        try {
          const status = await this.attachPrivate(base, plan, nets, ctr.userns);
          if (nets.some((n) => n.scope === 'global')) await this.ctx.cluster?.ensureAgent();
          return status;
        } catch (err) {
          await this.detach(ctr.id).catch(() => {});
          throw err;
        }
      }
    }
  }

  private async attachShared(base: SandboxRecord, ownerId: string, pid: number | undefined): Promise<SandboxStatus> {
    const owner = await this.store.readSandbox(ownerId);
    if (!owner || owner.removing) throw new BadStateError(`cannot join the network of container ${shortId(ownerId)}: it has no sandbox`, 'start that container first');
    const netnsPath = owner.netnsPath ?? (owner.mode === 'none' ? runcMadeNetns(owner, pid) : undefined);
    const sb: SandboxRecord = { ...base, mode: 'container', sharedWith: owner.containerId, incomplete: false, ...(netnsPath ? { netnsPath } : {}) };
    await this.store.writeSandbox(sb);
    // Docker: a container in another's netns sees that container's hosts and resolv.conf.
    const status = await this.render(owner);
    return { ...status, mode: owner.mode === 'host' ? 'host' : 'container', ports: [], endpoints: [], ...(netnsPath ? { netnsPath } : {}) };
  }

  /**
   * Rootless (slirp.ts): a netns of our own pinned under the runroot, slirp4netns started on it and
   * recorded before it is waited for, then each port forwarded through its API socket.
   */
  private async attachSlirp(base: SandboxRecord, plan: NetworkPlan, userns: AttachRequest['userns']): Promise<SandboxStatus> {
    const sb: SandboxRecord = {
      ...base, mode: 'slirp4netns', netnsPath: this.netnsPathOf(base.containerId),
      ...(userns ? { usernsPath: this.store.usernsPath(base.containerId) } : {}),
      endpoints: [{ networkId: '', networkName: 'slirp4netns', driver: 'slirp4netns', interface: SLIRP.interface, ipv4: SLIRP.address,
        prefixLength: SLIRP.prefixLength, gateway: SLIRP.gateway, mac: '', aliases: [], defaultRoute: true }],
    };
    await this.store.writeSandbox(sb); // incomplete, before any host object exists
    sb.ports = await this.ports.reserve(sb.containerId, plan.ports);
    await this.store.writeSandbox(sb);
    await ensureDir(this.store.layout.netns);
    // A container with a user namespace nested in rootless Berth's (keep-id, auto, --uidmap) gets a netns
    // owned by it, as root's containers do: only its owner may mount sysfs or set the netns's sysctls.
    if (userns) await makeUsernsNetns(sb.netnsPath!, sb.usernsPath!, userns);
    else await createNetns(sb.netnsPath!);
    const sockets = await ensureDir(this.store.layout.sockets);
    const short = sb.containerId.slice(0, 12);
    await startSlirp({ netns: sb.netnsPath!, ...(sb.usernsPath ? { userns: sb.usernsPath } : {}) }, path.join(sockets, `${short}.slirp`), path.join(this.store.layout.netns, `.${short}.slirp.log`), async (rec) => {
      sb.slirp = rec;
      await this.store.writeSandbox(sb);
    });
    failpoint('container.run.after-slirp');
    for (const p of sb.ports) await addHostFwd(sb.slirp!.apiSocket, p);
    delete sb.incomplete;
    await this.store.writeSandbox(sb);
    return this.render(sb);
  }

  private async attachPrivate(base: SandboxRecord, plan: NetworkPlan, nets: NetworkRecord[], userns: AttachRequest['userns']): Promise<SandboxStatus> {
    const sb: SandboxRecord = {
      ...base, netnsPath: this.netnsPathOf(base.containerId), netnsName: this.store.netnsLinkName(base.name),
      ...(userns ? { usernsPath: this.store.usernsPath(base.containerId) } : {}),
    };
    sb.endpoints = nets.map((net, i) => plannedEndpoint(sb.containerId, net, i, i === 0 ? plan.mac : undefined, plan.aliases));
    const routed = sb.endpoints.find((_, i) => !nets[i]!.internal);
    if (routed) routed.defaultRoute = true;
    const routed6 = sb.endpoints.find((_, i) => !nets[i]!.internal && nets[i]!.ipam6);
    if (routed6) routed6.defaultRoute6 = true;
    await this.store.writeSandbox(sb); // incomplete, before any host object exists
    sb.ports = await this.ports.reserve(sb.containerId, plan.ports);
    await this.store.writeSandbox(sb);

    await ensureDir(this.store.layout.netns);
    const builder = new SandboxBuilder(sb.containerId, sb.name, sb.netnsPath!, false);
    builder.enableIpv6 = nets.some((n) => n.ipam6) && ipv6DisabledInNewNetns();
    if (userns) {
      await makeUsernsNetns(sb.netnsPath!, sb.usernsPath!, userns);
      builder.adopt();
    }
    for (const [i, ep] of sb.endpoints.entries()) {
      const net = nets[i]!;
      await this.networks.ensure(net);
      if (net.ipam) await this.allocate(sb, ep, net, i === 0 ? { ip: plan.ip, ip6: plan.ip6 } : {});
      Object.assign(ep, await driverFor(net.driver).join(net, ep, builder, this.ctx));
    }
    await builder.flush();
    await linkNetns(path.join(IP_NETNS_DIR, sb.netnsName!), sb.netnsPath!, this.store.layout.netns);
    failpoint('container.run.after-veth');
    for (const ep of sb.endpoints) delete ep.incomplete;
    delete sb.incomplete;
    await this.store.writeSandbox(sb);
    await Promise.all([
      sb.ports.length ? this.firewall.addPortRules(sb, nets) : undefined,
      ...nets.map((n) => this.syncDns(n)),
    ]);
    await this.startProxies(sb, nets);
    return this.render(sb);
  }

  /** [::1] ports of the publishing endpoint, when it has IPv6 (proxy.ts); each recorded as it starts. */
  private async startProxies(sb: SandboxRecord, nets: readonly NetworkRecord[]): Promise<void> {
    const ep = sb.endpoints.find((e) => nets.some((n) => n.id === e.networkId && canPublish(n)));
    if (!ep?.ipv6) return;
    for (const p of sb.ports.filter((x) => needsProxy(x, true))) {
      (sb.proxies ??= []).push(await startProxy(p, ep.ipv6));
      await this.store.writeSandbox(sb);
    }
  }

  /** Addresses from each family the network has; the record is written after each, so detach finds them. */
  private async allocate(sb: SandboxRecord, ep: EndpointRecord, net: NetworkRecord, wanted: { ip?: string; ip6?: string }): Promise<void> {
    const ipam = net.ipam!;
    const got = await this.poolOf(net).allocate(sb.containerId, wanted.ip);
    const a = typeof got === 'string' ? { ip: got, prefixLength: parseCidr(ipam.subnet, 'subnet').prefix, gateway: ipam.gateway } : got;
    ep.ipv4 = a.ip;
    ep.prefixLength = a.prefixLength;
    ep.gateway = a.gateway;
    await this.store.writeSandbox(sb);
    if (!net.ipam6) return;
    ep.ipv6 = await this.localPool(net, net.ipam6, 6).allocate(sb.containerId, wanted.ip6);
    ep.prefixLength6 = parseCidr6(net.ipam6.subnet, 'subnet').prefix;
    ep.gateway6 = net.ipam6.gateway;
    await this.store.writeSandbox(sb);
  }

  private poolOf(net: NetworkRecord, family: 4 | 6 = 4): AddressAllocator {
    // A global network's addresses are its driver's (the cluster's, or flannel's host subnet in this root's
    // files); IPv6 stays host-local (none is global yet).
    if (family === 6) return this.localPool(net, net.ipam6!, 6);
    return driverFor(net.driver).addresses?.(net, this.ctx, (spec) => this.localPool(net, spec, 4)) ?? this.localPool(net, net.ipam!, 4);
  }

  private localPool(net: NetworkRecord, spec: { subnet: string; gateway: string }, family: 4 | 6): AddressPool {
    return new AddressPool(this.store.ipamDir(net.id), this.store.locks.ipam(net.id), net.name, spec, family);
  }

  /** Frees both addresses of an endpoint (each only if the container still holds it). */
  private async release(ctrId: string, ep: EndpointRecord, net: NetworkRecord | undefined): Promise<void> {
    if (ep.ipv4 && net?.ipam) await this.poolOf(net).release(ctrId, ep.ipv4);
    if (ep.ipv6 && net?.ipam6) await this.poolOf(net, 6).release(ctrId, ep.ipv6);
  }

  private async finish(sb: SandboxRecord): Promise<SandboxStatus> {
    await this.store.writeSandbox(sb);
    return this.render(sb);
  }

  private async render(sb: SandboxRecord): Promise<SandboxStatus> {
    const nets = new Map((await this.store.listNetworks()).map((n) => [n.id, n]));
    const linked = new Map<string, SandboxRecord>();
    for (const l of sb.links ?? []) {
      const other = await this.store.readSandbox(l.id);
      if (other) linked.set(l.id, other);
    }
    return sandboxStatus(sb, nets, linked, this.host);
  }

  async statusOf(ctrId: string): Promise<SandboxStatus | undefined> {
    const sb = await this.store.readSandbox(ctrId);
    return sb && !sb.removing ? this.render(sb) : undefined;
  }

  async ids(): Promise<string[]> {
    return (await this.store.listSandboxes()).filter((s) => !s.removing).map((s) => s.containerId);
  }

  // ------------------------------------------------------------ detach and clean-up

  async detach(ctrId: string): Promise<void> {
    const sb = await this.store.readSandbox(ctrId);
    if (!sb) return this.sweep(ctrId);
    sb.removing = true;
    await this.store.writeSandbox(sb);
    const nets = await this.store.listNetworks();
    const netOf = (ep: EndpointRecord) => nets.find((n) => n.id === ep.networkId);
    await runTeardown([
      ...(sb.proxies ?? []).map((p) => async () => stopProxy(p)),
      ...sb.endpoints.map((ep) => async () => {
        const net = netOf(ep);
        const going = sb.mode === 'private' && isMountPoint(this.netnsPathOf(ctrId));
        if (net) await driverFor(net.driver).leave(net, ep, { ...sb, sandboxGoing: going }, this.ctx);
      }),
      ...sb.endpoints.map((ep) => () => this.release(ctrId, ep, netOf(ep))),
      async () => { if (sb.ports.length) await this.ports.releaseWhere((o) => o !== ctrId); },
      async () => { if (sb.ports.length) await this.firewall.apply(); },
      async () => { if (sb.slirp) await stopSlirp(sb.slirp); },
      async () => { if (sb.mode === 'slirp4netns') await fsp.rm(path.join(this.store.layout.netns, `.${ctrId.slice(0, 12)}.slirp.log`), { force: true }); },
      ...sb.endpoints.map((ep) => async () => { const net = netOf(ep); if (net) await this.syncDns(net); }),
      async () => { if (sb.mode === 'private') await unlinkNetns(this.store.layout.netns, { target: this.netnsPathOf(ctrId) }); },
      // none sandboxes recorded before runc made their netns still have a file.
      async () => { if (sb.netnsPath && (sb.mode === 'private' || sb.mode === 'none' || sb.mode === 'slirp4netns')) await removeNetns(this.netnsPathOf(ctrId)); },
      async () => { if (sb.usernsPath) await removeNetns(sb.usernsPath); },
    ]);
    await this.store.removeSandbox(ctrId);
    await this.retireGlobal(sb.endpoints.flatMap((ep) => netOf(ep) ?? []));
  }

  /**
   * A global network's host objects go with this host's last container on it (Docker's overlay sandbox
   * does): the other hosts then send it nothing, and a network removed elsewhere leaves nothing here.
   */
  private async retireGlobal(nets: readonly NetworkRecord[]): Promise<void> {
    const global = nets.filter((n) => n.scope === 'global');
    if (!global.length) return;
    const sbs = (await this.store.listSandboxes()).filter((s) => !s.removing);
    for (const net of global) {
      if (sbs.some((s) => s.endpoints.some((e) => e.networkId === net.id))) continue;
      await withFileLock(this.store.locks.network(net.id), () => driverFor(net.driver).deleteNetwork(net, this.ctx));
      await this.firewall.apply();
    }
  }

  /** The global networks a container of this host is on. */
  async globalInUse(): Promise<NetworkRecord[]> {
    const sbs = (await this.store.listSandboxes()).filter((s) => !s.removing);
    return (await this.store.listNetworks()).filter((n) => n.scope === 'global' && sbs.some((s) => s.endpoints.some((e) => e.networkId === n.id)));
  }

  /** Puts this host's endpoints and addresses on global networks back under `lease` (the old one expired). */
  async republish(lease: LeaseId): Promise<void> {
    const cluster = this.ctx.cluster;
    if (!cluster) return;
    const nets = new Map((await this.globalInUse()).map((n) => [n.id, n]));
    if (!nets.size) return;
    const [store, self] = await Promise.all([cluster.store(), cluster.identity()]);
    const mine = new Map<string, { containerId: string; ip: string }[]>();
    for (const sb of (await this.store.listSandboxes()).filter((s) => !s.removing)) {
      for (const ep of sb.endpoints) {
        const net = nets.get(ep.networkId);
        if (!net || !ep.ipv4) continue;
        await registerEndpoint(store, net, {
          hostId: self.hostId, host: self.address, containerId: sb.containerId, name: sb.name, aliases: ep.aliases, ip: ep.ipv4, mac: ep.mac,
        }, lease);
        mine.set(net.id, [...mine.get(net.id) ?? [], { containerId: sb.containerId, ip: ep.ipv4 }]);
      }
    }
    for (const net of nets.values()) await driverFor(net.driver).republish?.(net, this.ctx, { address: self.address, lease, endpoints: mine.get(net.id) ?? [] });
  }

  /** Re-reads what the cluster holds for a global network: other hosts' endpoints (VXLAN entries) and names. */
  async refreshGlobal(netId: string): Promise<void> {
    const net = (await this.store.listNetworks()).find((n) => n.id === netId);
    if (!net || net.scope !== 'global' || !this.ctx.cluster) return;
    if (!(await this.store.listSandboxes()).some((s) => !s.removing && s.endpoints.some((e) => e.networkId === net.id))) return;
    await driverFor(net.driver).refresh?.(net, this.ctx);
    await this.syncDns(net);
  }

  /** Detach without a record (lost in a crash): whatever carries the id by name or owner goes. */
  private async sweep(ctrId: string): Promise<void> {
    const nets = await this.store.listNetworks();
    await runTeardown([
      async () => { await unlinkNetns(this.store.layout.netns, { target: this.netnsPathOf(ctrId) }); },
      () => removeNetns(this.netnsPathOf(ctrId)),
      () => removeNetns(this.store.usernsPath(ctrId)),
      ...nets.map((n) => async () => { await releaseOrphans(this.store.ipamDir(n.id), (o) => o !== ctrId); }),
      async () => { await this.ports.releaseWhere((o) => o !== ctrId); },
    ]);
  }

  async repair(lockFiles: readonly string[]): Promise<void> {
    // A sandbox or network record torn by a kill mid-write leaves its temp file; only dead writers' are removed.
    await removeDeadTemps(this.store.sandboxDir);
    await removeDeadTemps(this.store.layout.networks);
    for (const file of lockFiles) {
      const f = path.basename(file);
      if ((f.startsWith('ipam-') || file === this.store.locks.ports()) && (await isStaleLock(file))) {
        // Each address and port file is written whole, and a partial reservation is its owner's to
        // release: nothing to finish, only the lock to clear, which taking it does.
        await withFileLock(file, async () => {});
      }
    }
  }

  async reconcile(liveContainerIds: ReadonlySet<string>): Promise<string[]> {
    const cleaned: string[] = [];
    for (const sb of await this.store.listSandboxes()) {
      if (liveContainerIds.has(sb.containerId)) continue;
      await this.detach(sb.containerId);
      cleaned.push(`sandbox ${sb.containerId}`);
    }
    for (const name of await unlinkNetns(this.store.layout.netns, { keep: (id) => liveContainerIds.has(id) })) cleaned.push(`ip netns ${name}`);
    for (const name of await readdirIfExists(this.store.layout.netns)) {
      if (liveContainerIds.has(name) || name.startsWith('.')) continue;
      await removeNetns(this.netnsPathOf(name));
      cleaned.push(`netns ${name}`);
    }
    for (const name of await readdirIfExists(path.join(this.store.layout.netns, USERNS_DIR))) {
      if (liveContainerIds.has(name) || name.startsWith('.')) continue;
      await removeNetns(this.store.usernsPath(name));
      cleaned.push(`user namespace ${name}`);
    }
    const nets = await this.store.listNetworks();
    for (const net of nets) {
      for (const ip of await releaseOrphans(this.store.ipamDir(net.id), (o) => liveContainerIds.has(o))) cleaned.push(`address ${ip} on ${net.name}`);
    }
    for (const p of await this.ports.releaseWhere((o) => liveContainerIds.has(o))) cleaned.push(`port ${p}`);
    const stale = [...(await this.firewall.owners())].filter((o) => !liveContainerIds.has(o));
    if (stale.length) {
      await this.firewall.apply();
      cleaned.push(...stale.map((o) => `iptables rules of ${o}`));
    }
    for (const net of nets) await this.syncDns(net);
    return cleaned;
  }

  // ------------------------------------------------------------ connect, disconnect

  async connect(network: string, ctrId: string, opts: { ip?: string; ip6?: string; aliases?: string[] } = {}): Promise<SandboxStatus> {
    const net = await this.networks.find(network);
    const driver = driverFor(net.driver);
    const sb = await this.store.readSandbox(ctrId);
    if (!sb || sb.removing) throw new BadStateError(`container ${shortId(ctrId)} has no network sandbox`, 'start the container first: connect changes a running container');
    if (sb.mode !== 'private' || driver.mode !== 'private') throw new BadStateError(`container ${sb.name} uses network mode ${sb.mode}`, 'only containers on bridge-like networks can be connected');
    if (sb.endpoints.some((e) => e.networkId === net.id)) throw new AlreadyExistsError('network', `endpoint of ${sb.name} on ${net.name}`, 'disconnect it first');
    if (opts.ip6 && !net.ipam6) throw new InvalidArgumentError('ip6', `--ip6 ${opts.ip6}: network ${net.name} has no IPv6 subnet`, 'create the network with --ipv6');
    const used = new Set(sb.endpoints.map((e) => e.interface));
    let index = 0;
    while (used.has(`eth${index}`)) index++;
    const ep = plannedEndpoint(ctrId, net, index, undefined, opts.aliases ?? []);
    if (!net.internal && !sb.endpoints.some((e) => e.defaultRoute)) ep.defaultRoute = true;
    if (!net.internal && net.ipam6 && !sb.endpoints.some((e) => e.defaultRoute6)) ep.defaultRoute6 = true;
    sb.endpoints.push(ep);
    await this.store.writeSandbox(sb);
    try {
      await this.networks.ensure(net);
      if (net.ipam) await this.allocate(sb, ep, net, { ip: opts.ip, ip6: opts.ip6 });
      const builder = new SandboxBuilder(ctrId, sb.name, sb.netnsPath!, true);
      // A netns made before it had any IPv6 endpoint may have IPv6 off.
      builder.enableIpv6 = !!net.ipam6 && ipv6DisabledInNewNetns();
      Object.assign(ep, await driver.join(net, ep, builder, this.ctx));
      await builder.flush();
    } catch (err) {
      // Undo the half-made endpoint (address, veth, record) so that a retry starts clean.
      await this.disconnect(network, ctrId, { force: true }).catch(() => {});
      throw err;
    }
    delete ep.incomplete;
    await this.store.writeSandbox(sb);
    await this.syncDns(net);
    return this.render(sb);
  }

  async disconnect(network: string, ctrId: string, _opts: { force?: boolean } = {}): Promise<SandboxStatus> {
    const net = await this.networks.find(network);
    const sb = await this.store.readSandbox(ctrId);
    const ep = sb?.endpoints.find((e) => e.networkId === net.id);
    if (!sb || !ep) throw new NotFoundError('network', `endpoint of ${shortId(ctrId)} on ${net.name}`, 'see the container\'s networks with "berth inspect"');
    sb.endpoints = sb.endpoints.filter((e) => e !== ep);
    await runTeardown([
      () => driverFor(net.driver).leave(net, ep, { ...sb, sandboxGoing: false }, this.ctx),
      async () => { await ipBatch([`link del ${ep.interface}`], { side: 'inside', netns: sb.netnsPath! }).catch((err) => { if (!/Cannot find device/.test(String((err as Error).message))) throw err; }); },
      () => this.release(ctrId, ep, net),
      () => this.store.writeSandbox(sb),
      () => this.firewall.apply(),
      () => this.syncDns(net),
      () => this.retireGlobal([net]),
    ]);
    return this.render(sb);
  }

  // ------------------------------------------------------------ names

  /** Rewrites one network's names and starts or stops its name server (coalesced per network). */
  private syncDns(net: NetworkRecord): Promise<void> {
    if (!net.dns || !net.ipam) return Promise.resolve();
    let sync = this.dnsSyncs.get(net.id);
    if (!sync) {
      sync = coalesced(() => withFileLock(this.store.locks.network(net.id), async () => {
        const sbs = (await this.store.listSandboxes()).filter((s) => !s.removing);
        // IPv6 lines become AAAA records; dnsmasq still listens on the IPv4 gateway only.
        const entries = sbs.flatMap((s) => s.endpoints
          .filter((e) => e.networkId === net.id && e.ipv4)
          .flatMap((e) => [e.ipv4!, ...(e.ipv6 ? [e.ipv6] : [])].map((ip) => ({ ip, names: [s.name, shortId(s.containerId), ...e.aliases] }))));
        // A global network's names are every host's: the others' come from what their hosts registered.
        if (net.scope === 'global' && this.ctx.cluster && entries.length) {
          for (const r of await remoteEndpoints(net, this.ctx.cluster).catch(() => [])) {
            entries.push({ ip: r.ip, names: [r.reg.name, shortId(r.reg.containerId), ...r.reg.aliases].filter(Boolean) });
          }
        }
        const server = new NameServer(this.store.dnsDir(net.id));
        if (!entries.length) return server.stop();
        // On this host's gateway, which a flannel network's endpoints have from this host's subnet.
        const gateway = sbs.flatMap((s) => s.endpoints).find((e) => e.networkId === net.id && e.gateway)?.gateway ?? net.ipam!.gateway;
        await server.sync(gateway, entries, usableUpstreams(this.host.resolv), driverFor(net.driver).nameServerNetns?.(net, this.ctx));
      }));
      this.dnsSyncs.set(net.id, sync);
    }
    return sync();
  }
}

function plannedEndpoint(ctrId: string, net: NetworkRecord, index: number, mac: string | undefined, aliases: readonly string[]): EndpointRecord {
  const hash = createHash('sha256').update(`${ctrId}/${net.id}`).digest('hex');
  return {
    networkId: net.id, networkName: net.name, driver: net.driver, interface: `eth${index}`,
    ...(bridgeOf(net) ? { hostInterface: `bv${hash.slice(0, 8)}` } : {}),
    mac: mac ?? randomMac(), aliases: net.dns ? [...aliases] : [], incomplete: true,
  };
}

function randomMac(): string {
  // Locally administered, unicast (02:...), random: a reused IP must not inherit a stale ARP entry.
  return ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** A --network none container's netns is runc's, reachable only through its process. */
function runcMadeNetns(owner: SandboxRecord, pid: number | undefined): string {
  if (!pid) throw new BadStateError(`cannot join the network of container ${shortId(owner.containerId)}: its process is not known`, 'start that container first');
  return `/proc/${pid}/ns/net`;
}
