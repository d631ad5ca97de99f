import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { rootTag, type StoreLayout } from '../paths.js';
import { ensureDir, readJsonIfExists, readdirIfExists, writeJsonAtomic } from '../util/fs.js';
import type { NetworkRecord, SandboxRecord } from './types.js';

/**
 * Where the network layer keeps things. Networks are persistent (root); sandboxes, addresses, port
 * reservations and name server state are volatile (runroot): a reboot takes the netns and veths too.
 */

export const USERNS_DIR = '.userns';
export class NetStore {
  readonly sandboxDir: string;
  readonly ipamRoot: string;
  readonly portsDir: string;
  readonly dnsRoot: string;

  constructor(readonly layout: StoreLayout) {
    const run = path.join(layout.runroot, 'net');
    this.sandboxDir = path.join(run, 'sandboxes');
    this.ipamRoot = path.join(run, 'ipam');
    this.portsDir = path.join(run, 'ports');
    this.dnsRoot = path.join(run, 'dns');
  }

  ipamDir(netId: string): string { return path.join(this.ipamRoot, netId); }
  dnsDir(netId: string): string { return path.join(this.dnsRoot, netId.slice(0, 12)); }
  netnsPath(ctrId: string): string { return path.join(this.layout.netns, ctrId); }
  /** A dot folder: the netns folder's sweeps (sandbox.ts reconcile) pass over it. */
  usernsPath(ctrId: string): string { return path.join(this.layout.netns, USERNS_DIR, ctrId); }
  /** The container's name for `ip netns`: the root's tag keeps two roots' containers of one name apart. */
  netnsLinkName(ctrName: string): string { return `berth-${rootTag(this.layout.root).slice(0, 8)}-${ctrName}`; }

  /** Lock order: container (the caller's) → networks → subnets (host-wide, networks.ts) → network → IPAM → ports → firewall. */
  readonly locks = {
    networks: () => path.join(this.layout.locks, 'networks.lock'),
    network: (id: string) => path.join(this.layout.locks, `net-${id}.lock`),
    ipam: (id: string) => path.join(this.layout.locks, `ipam-${id}.lock`),
    ports: () => path.join(this.layout.locks, 'hostports.lock'),
    firewall: (prefix: string) => path.join(this.layout.locks, `firewall-${prefix}.lock`),
  };

  async listNetworks(): Promise<NetworkRecord[]> {
    const out: NetworkRecord[] = [];
    for (const name of await readdirIfExists(this.layout.networks)) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const rec = await readJsonIfExists<NetworkRecord>(path.join(this.layout.networks, name));
      if (rec) out.push(rec);
    }
    return out.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
  }

  async writeNetwork(rec: NetworkRecord): Promise<void> {
    await ensureDir(this.layout.networks);
    await writeJsonAtomic(path.join(this.layout.networks, `${rec.id}.json`), rec);
  }

  async removeNetwork(id: string): Promise<void> {
    await fsp.rm(path.join(this.layout.networks, `${id}.json`), { force: true });
  }

  readSandbox(id: string): Promise<SandboxRecord | undefined> {
    return readJsonIfExists<SandboxRecord>(path.join(this.sandboxDir, `${id}.json`));
  }

  async writeSandbox(rec: SandboxRecord): Promise<void> {
    await ensureDir(this.sandboxDir);
    await writeJsonAtomic(path.join(this.sandboxDir, `${rec.containerId}.json`), rec);
  }

  async removeSandbox(id: string): Promise<void> {
    await fsp.rm(path.join(this.sandboxDir, `${id}.json`), { force: true });
  }

  async listSandboxes(): Promise<SandboxRecord[]> {
    const out: SandboxRecord[] = [];
    for (const name of await readdirIfExists(this.sandboxDir)) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const rec = await readJsonIfExists<SandboxRecord>(path.join(this.sandboxDir, name)).catch(() => undefined);
      if (rec) out.push(rec);
    }
    return out;
  }
}
