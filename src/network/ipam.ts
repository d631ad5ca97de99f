import { promises as fsp, constants } from 'node:fs';
import path from 'node:path';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { ensureDir, readdirIfExists, writeFileAtomic } from '../util/fs.js';
import { assignableRange, contains, formatIpv4, parseCidr, parseIpv4, type Ipv4Net } from './cidr.js';
import { withFileLock } from './mutex.js';

/**
 * host-local IPAM (CNI plugins/ipam/host-local/backend/disk): one file per address, created O_EXCL and
 * holding the owner's container id, under one lock per network. `last` remembers the last address
 * handed out so addresses rotate instead of being reused at once (stale ARP entries elsewhere).
 */
export interface PoolSpec {
  subnet: string;
  gateway: string;
  ipRange?: string;
}

/** Candidates after `last`, wrapping once around the range, never the gateway. Pure, for tests. */
export function* candidates(subnet: Ipv4Net, range: Ipv4Net | undefined, gateway: number, last: number | undefined): Generator<number> {
  const { first, last: end } = assignableRange(subnet, range);
  if (end < first) return;
  const start = last !== undefined && last >= first && last < end ? last + 1 : first;
  for (let ip = start; ip <= end; ip++) if (ip !== gateway) yield ip;
  for (let ip = first; ip < start; ip++) if (ip !== gateway) yield ip;
}

export class AddressPool {
  private readonly subnet: Ipv4Net;
  private readonly range: Ipv4Net | undefined;
  private readonly gateway: number;

  constructor(private readonly dir: string, private readonly lockFile: string, private readonly networkName: string, spec: PoolSpec) {
    this.subnet = parseCidr(spec.subnet, 'subnet');
    this.range = spec.ipRange ? parseCidr(spec.ipRange, 'ip-range') : undefined;
    this.gateway = parseIpv4(spec.gateway) ?? 0;
  }

  /** Reserves `wanted` (--ip) or the next free address for `owner`. */
  allocate(owner: string, wanted?: string): Promise<string> {
    return withFileLock(this.lockFile, async () => {
      await ensureDir(this.dir);
      if (wanted !== undefined) return this.reserveWanted(owner, wanted);
      const lastText = await fsp.readFile(path.join(this.dir, 'last'), 'utf8').catch(() => '');
      for (const ip of candidates(this.subnet, this.range, this.gateway, parseIpv4(lastText.trim()))) {
        if (await this.tryReserve(owner, ip)) {
          await writeFileAtomic(path.join(this.dir, 'last'), formatIpv4(ip));
          return formatIpv4(ip);
        }
      }
      throw new BadStateError(`network ${this.networkName} has no free IPv4 address left`, 'remove unused containers from it, or create a network with a larger subnet');
    });
  }

  private async reserveWanted(owner: string, wanted: string): Promise<string> {
    const ip = parseIpv4(wanted);
    const { first, last } = assignableRange(this.subnet);
    if (ip === undefined || !contains(this.subnet, ip) || ip < first || ip > last || ip === this.gateway) {
      throw new InvalidArgumentError('ip', `${wanted} is not a usable address of network ${this.networkName} (${formatIpv4(this.subnet.base)}/${this.subnet.prefix})`);
    }
    if (!(await this.tryReserve(owner, ip))) {
      const holder = await this.ownerOf(wanted);
      if (holder !== owner) throw new BadStateError(`IP address ${wanted} is already in use on network ${this.networkName}`, 'pick another --ip, or let Berth choose one');
    }
    return wanted;
  }

  private async tryReserve(owner: string, ip: number): Promise<boolean> {
    try {
      const fh = await fsp.open(path.join(this.dir, formatIpv4(ip)), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try { await fh.writeFile(owner); } finally { await fh.close(); }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private async ownerOf(ip: string): Promise<string | undefined> {
    return (await fsp.readFile(path.join(this.dir, ip), 'utf8').catch(() => undefined))?.trim();
  }

  /** Frees `ip` if `owner` holds it; a missing file is already free. */
  async release(owner: string, ip: string): Promise<void> {
    await withFileLock(this.lockFile, async () => {
      if ((await this.ownerOf(ip)) === owner) await fsp.rm(path.join(this.dir, ip), { force: true });
    });
  }

  /** Every address and its owner. */
  async holders(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const name of await readdirIfExists(this.dir)) {
      if (parseIpv4(name) === undefined) continue;
      const owner = await this.ownerOf(name);
      if (owner) out.set(name, owner);
    }
    return out;
  }
}

/** Frees every address in an IPAM folder whose owner fails `keep`; returns what it freed. Reconcile uses it. */
export async function releaseOrphans(dir: string, keep: (owner: string) => boolean): Promise<string[]> {
  const freed: string[] = [];
  for (const name of await readdirIfExists(dir)) {
    if (parseIpv4(name) === undefined) continue;
    const owner = (await fsp.readFile(path.join(dir, name), 'utf8').catch(() => '')).trim();
    if (owner && keep(owner)) continue;
    await fsp.rm(path.join(dir, name), { force: true });
    freed.push(name);
  }
  return freed;
}
