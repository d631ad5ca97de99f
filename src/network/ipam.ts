import { promises as fsp, constants } from 'node:fs';
import path from 'node:path';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { ensureDir, readdirIfExists } from '../util/fs.js';
import { assignableRange, formatIpv4, parseCidr, parseIpv4 } from './cidr.js';
import { assignableRange6, formatIpv6, parseCidr6, parseIpv6 } from './cidr6.js';
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

/** What a pool needs of an address family; addresses are bigints so one pool serves both. */
interface Family {
  readonly name: 'IPv4' | 'IPv6';
  /** the file remembering the last address handed out (CNI: one per range) */
  readonly lastFile: string;
  parse(text: string): bigint | undefined;
  format(ip: bigint): string;
  /** `usable`: the subnet's host addresses (for --ip); `pool`: those of the range, for automatic picks */
  plan(spec: PoolSpec): { usable: Range; pool: Range };
}

interface Range { first: bigint; last: bigint }

const IPV4: Family = {
  name: 'IPv4',
  lastFile: 'last',
  parse: (text) => { const ip = parseIpv4(text); return ip === undefined ? undefined : BigInt(ip); },
  format: (ip) => formatIpv4(Number(ip)),
  plan(spec) {
    const subnet = parseCidr(spec.subnet, 'subnet');
    const big = (r: { first: number; last: number }) => ({ first: BigInt(r.first), last: BigInt(r.last) });
    return { usable: big(assignableRange(subnet)), pool: big(assignableRange(subnet, spec.ipRange ? parseCidr(spec.ipRange, 'ip-range') : undefined)) };
  },
};

const IPV6: Family = {
  name: 'IPv6',
  lastFile: 'last6',
  parse: parseIpv6,
  format: formatIpv6,
  plan(spec) {
    const subnet = parseCidr6(spec.subnet, 'subnet');
    return { usable: assignableRange6(subnet), pool: assignableRange6(subnet, spec.ipRange ? parseCidr6(spec.ipRange, 'ip-range') : undefined) };
  },
};

function isAddressName(name: string): boolean {
  return parseIpv4(name) !== undefined || parseIpv6(name) !== undefined;
}

/** Candidates after `last`, wrapping once around the range, never the gateway. Pure, for tests. */
export function* candidates(range: Range, gateway: bigint, last: bigint | undefined): Generator<bigint> {
  const { first, last: end } = range;
  if (end < first) return;
  const start = last !== undefined && last >= first && last < end ? last + 1n : first;
  for (let ip = start; ip <= end; ip++) if (ip !== gateway) yield ip;
  for (let ip = first; ip < start; ip++) if (ip !== gateway) yield ip;
}

/**
 * Checks an address asked for with --ip/--ip6 against a network's subnet (not against what is taken:
 * that is the allocation's). Returns its canonical spelling, which names its file: one file per address.
 */
export function checkWanted(spec: PoolSpec, family: 4 | 6, wanted: string, networkName: string): string {
  const f = family === 6 ? IPV6 : IPV4;
  const field = family === 6 ? 'ip6' : 'ip';
  const ip = f.parse(wanted);
  // Messages open with Docker's (EndpointIPAMConfig.Validate, validateIPAMConfigIsInRange).
  if (ip === undefined) throw new InvalidArgumentError(field, `invalid ${f.name} address: ${wanted}`, `give an ${f.name} address of network ${networkName} (${spec.subnet})`);
  const { usable } = f.plan(spec);
  if (ip === f.parse(spec.gateway)) throw new InvalidArgumentError(field, `${wanted} is the gateway of network ${networkName}`, 'pick another address of the subnet');
  if (ip < usable.first || ip > usable.last) {
    throw new InvalidArgumentError(field, `no configured subnet or ip-range contain the IP address ${wanted}`, `network ${networkName} has subnet ${spec.subnet}; its first and last addresses are not usable`);
  }
  return f.format(ip);
}

/**
 * One family's addresses of a network. IPv4 and IPv6 pools of a network share its folder and lock:
 * file names tell the families apart, and reconcile frees both with one sweep.
 */
export class AddressPool {
  private readonly family: Family;
  private readonly pool: Range;
  private readonly gateway: bigint;

  constructor(private readonly dir: string, private readonly lockFile: string, private readonly networkName: string, private readonly spec: PoolSpec, family: 4 | 6 = 4) {
    this.family = family === 6 ? IPV6 : IPV4;
    this.pool = this.family.plan(spec).pool;
    this.gateway = this.family.parse(spec.gateway) ?? 0n;
  }

  /** Reserves `wanted` (--ip, --ip6) or the next free address for `owner`. */
  allocate(owner: string, wanted?: string): Promise<string> {
    const f = this.family;
    return withFileLock(this.lockFile, async () => {
      await ensureDir(this.dir);
      if (wanted !== undefined) return this.reserveWanted(owner, wanted);
      const lastText = await fsp.readFile(path.join(this.dir, f.lastFile), 'utf8').catch(() => '');
      for (const ip of candidates(this.pool, this.gateway, f.parse(lastText.trim()))) {
        if (await this.tryReserve(owner, ip)) {
          // A hint, not a record: written in place, since a torn write only parses as "no hint" and a
          // temp file left by a kill here would have no owner to clear it.
          await fsp.writeFile(path.join(this.dir, f.lastFile), f.format(ip));
          return f.format(ip);
        }
      }
      throw new BadStateError(`network ${this.networkName} has no free ${f.name} address left`, 'remove unused containers from it, or create a network with a larger subnet');
    });
  }

  private async reserveWanted(owner: string, wanted: string): Promise<string> {
    const f = this.family;
    const canonical = checkWanted(this.spec, f === IPV6 ? 6 : 4, wanted, this.networkName);
    const ip = f.parse(canonical)!;
    if (!(await this.tryReserve(owner, ip))) {
      const holder = await this.ownerOf(canonical);
      if (holder !== owner) throw new BadStateError(`IP address ${wanted} is already in use on network ${this.networkName}`, `pick another --${f.name === 'IPv6' ? 'ip6' : 'ip'}, or let Berth choose one`);
    }
    return canonical;
  }

  private async tryReserve(owner: string, ip: bigint): Promise<boolean> {
    try {
      const fh = await fsp.open(path.join(this.dir, this.family.format(ip)), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
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
      if (this.family.parse(name) === undefined) continue;
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
    if (!isAddressName(name)) continue;
    const owner = (await fsp.readFile(path.join(dir, name), 'utf8').catch(() => '')).trim();
    if (owner && keep(owner)) continue;
    await fsp.rm(path.join(dir, name), { force: true });
    freed.push(name);
  }
  return freed;
}
