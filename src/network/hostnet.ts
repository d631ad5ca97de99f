import { existsSync, promises as fsp, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { run } from '../util/exec.js';
import { bindMount, umountOnce } from '../util/syscalls.js';
import type { IdMap } from '../userns/index.js';
import { parseIpv6 } from './cidr6.js';

/**
 * Host-side primitives: `ip -batch`, the netns bind mount, sysctls, link probes. Node cannot setns a
 * thread, so work inside a netns runs as a child: `unshare --net=FILE` for the batch that creates it,
 * `nsenter --net=FILE` afterwards (`ip -n` only knows /run/netns names).
 */

const TIMEOUT = 15_000;

const gone = (stderr: string) => /Cannot find device|does not exist|No such file|not mounted|no mount point/i.test(stderr);

export type Side = 'inside' | 'outside';

/**
 * Runs `ip -batch -`: in the host netns, inside an existing netns, or creating the netns file on the way.
 * `enableIpv6` first turns IPv6 on inside the netns (sysctls under /proc/sys/net belong to the netns of
 * the process writing them), still in the same process chain.
 */
export async function ipBatch(lines: readonly string[], where: { side: 'outside' } | { side: 'inside'; netns: string; create?: boolean; enableIpv6?: boolean }): Promise<void> {
  if (!lines.length) return;
  const input = lines.join('\n') + '\n';
  if (where.side === 'outside') {
    await run('ip', ['-batch', '-'], { input, timeout: TIMEOUT });
    return;
  }
  const ip = where.enableIpv6
    ? ['sh', '-c', 'for f in all default; do echo 0 > /proc/sys/net/ipv6/conf/$f/disable_ipv6 || exit 1; done; exec ip -batch -']
    : ['ip', '-batch', '-'];
  if (where.create) {
    // unshare bind-mounts the new netns on the file, then runs ip inside it: one process for both.
    await (await fsp.open(where.netns, constants.O_CREAT | constants.O_WRONLY, 0o444)).close();
    await run('unshare', [`--net=${where.netns}`, ...ip], { input, timeout: TIMEOUT });
  } else {
    await run('nsenter', [`--net=${where.netns}`, ...ip], { input, timeout: TIMEOUT });
  }
}

/** A sysctl of a netns: `net.bridge.bridge-nf-call-iptables` or `net.ipv4.conf.gw0.proxy_arp`, and its value. */
export type NetnsSysctl = readonly [key: string, value: string];

/**
 * `ip -batch -` inside a netns (made on the way with `create`), with sysctls of that netns written before
 * the batch and after it (for links the batch makes), in the same process chain: /proc/sys/net is the
 * writer's netns's. A key with no file (net.bridge.* while br_netfilter is not loaded) is skipped: what
 * it would turn off is not there.
 */
export async function netnsBatch(netns: string, lines: readonly string[], opts: { create?: boolean; before?: readonly NetnsSysctl[]; after?: readonly NetnsSysctl[] } = {}): Promise<void> {
  const write = (list: readonly NetnsSysctl[] = []) => list.map(([key, value]) => {
    if (!/^[\w.-]+$/.test(key) || !/^\w+$/.test(value)) throw new Error(`bad sysctl ${key}=${value}`);
    const file = `/proc/sys/${key.replace(/\./g, '/')}`;
    return `[ ! -e ${file} ] || echo ${value} > ${file} || exit 1`;
  });
  const script = [...write(opts.before), ...(lines.length ? ['ip -batch - || exit 1'] : []), ...write(opts.after), 'true'].join('\n');
  const input = lines.length ? lines.join('\n') + '\n' : '';
  if (opts.create) {
    await (await fsp.open(netns, constants.O_CREAT | constants.O_WRONLY, 0o444)).close();
    await run('unshare', [`--net=${netns}`, 'sh', '-c', script], { input, timeout: TIMEOUT });
  } else {
    await run('nsenter', [`--net=${netns}`, 'sh', '-c', script], { input, timeout: TIMEOUT });
  }
}

/**
 * A netns owned by a new user namespace with these maps, both kept as bind-mounted files. A placeholder
 * process is made in both namespaces, its maps written from here (the host's root may map any ids;
 * `unshare --map-users` would go through newuidmap, which wants root to have subuid lines), its two
 * namespace files bound, and it is let go. (`unshare --user=FILE` cannot bind a user namespace file here:
 * EPERM from its helper.) Everything else is done from the host: its root may enter a child's netns.
 */
export async function makeUsernsNetns(netns: string, userns: string, maps: { uid: readonly IdMap[]; gid: readonly IdMap[] }): Promise<void> {
  // node's spawn, not execa: this module is on every command's path, and execa's import costs ~70 ms.
  const holder = spawn('unshare', ['--user', '--net', '--', 'sh', '-c', 'echo ready; read _'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => { holder.once('close', () => resolve()); holder.once('error', () => resolve()); });
  const timer = setTimeout(() => holder.kill('SIGKILL'), TIMEOUT);
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', () => resolve());
      holder.once('error', reject);
      holder.once('exit', () => reject(new Error('unshare exited before it was ready')));
    });
    const pid = holder.pid!;
    const line = (maps: readonly IdMap[]) => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
    await fsp.writeFile(`/proc/${pid}/uid_map`, line(maps.uid));
    await fsp.writeFile(`/proc/${pid}/gid_map`, line(maps.gid));
    await fsp.mkdir(path.dirname(userns), { recursive: true, mode: 0o700 });
    for (const [kind, file] of [['user', userns], ['net', netns]] as const) {
      await (await fsp.open(file, constants.O_CREAT | constants.O_WRONLY, 0o444)).close();
      await bindMount(`/proc/${pid}/ns/${kind}`, file);
    }
  } catch (err) {
    await removeNetns(netns).catch(() => {});
    await removeNetns(userns).catch(() => {});
    throw err;
  } finally {
    holder.stdin!.end();
    await exited;
    clearTimeout(timer);
  }
}

function readSysctl(key: string): string | undefined {
  try { return readFileSync(path.join('/proc/sys', ...key.split('.')), 'utf8').trim(); } catch { return undefined; }
}

/** Whether links made on the host start with IPv6 off (net.ipv6.conf.default.disable_ipv6=1). */
export function ipv6DisabledForNewLinks(): boolean {
  return readSysctl('net.ipv6.conf.default.disable_ipv6') === '1';
}

/**
 * Whether a new netns starts with IPv6 off. By default the kernel resets a new netns's IPv6 settings
 * (IPv6 on); with devconf_inherit_init_net 1 or 3 it copies the host's, which may have it off.
 */
export function ipv6DisabledInNewNetns(): boolean {
  const inherit = readSysctl('net.core.devconf_inherit_init_net');
  return (inherit === '1' || inherit === '3') && (ipv6DisabledForNewLinks() || readSysctl('net.ipv6.conf.all.disable_ipv6') === '1');
}

/** `ip link del`; a missing link is "already gone". */
export async function deleteLink(name: string): Promise<void> {
  await run('ip', ['link', 'del', 'dev', name], { timeout: TIMEOUT, alreadyGone: gone });
}

/**
 * The names of the links of this process's netns. /proc/self/net is per netns; /sys/class/net is not: it
 * shows the netns of whoever mounted sysfs, so a Berth run with `nsenter --net` in another netns (one
 * "host" of a multi-host test, a netns a user made) would see the initial netns's links there.
 */
function netnsLinkNames(): string[] {
  let text = '';
  try { text = readFileSync('/proc/self/net/dev', 'utf8'); } catch { return []; }
  return text.split('\n').slice(2).flatMap((l) => {
    const i = l.indexOf(':');
    return i > 0 ? [l.slice(0, i).trim()] : [];
  });
}

export function linkExists(name: string): boolean {
  return netnsLinkNames().includes(name);
}

/** What Berth needs to know of an existing link before it takes it over or deletes it; undefined when absent. */
export interface LinkFacts {
  isBridge: boolean;
  /** the link's ifalias ('' when unset): Berth writes `berth:<network id>` on the bridges it creates */
  alias: string;
}

/**
 * Whether /sys/class/net shows this netns for `name`: sysfs lists exactly the links procfs lists, and
 * the link's ifindex there is the one procfs gives (dev_snmp6, per netns like all of /proc/self/net).
 * Anything else (nsenter into another netns; a link made or removed between the reads; a link without
 * IPv6) takes the slow, always right path: `ip`, which asks the kernel over netlink in this netns.
 * (/proc/1/ns/net would say it more directly, but reading it needs ptrace rights this sandbox lacks.)
 */
function sysfsShows(name: string, names: readonly string[]): boolean {
  try {
    // bonding_masters is the bonding module's control file, not a link.
    const sys = readdirSync('/sys/class/net').filter((n) => n !== 'bonding_masters');
    if (sys.length !== names.length || !names.every((n) => sys.includes(n))) return false;
    const index = /^ifIndex\s+(\d+)/m.exec(readFileSync(path.join('/proc/self/net/dev_snmp6', name), 'utf8'))?.[1];
    return index !== undefined && index === readFileSync(path.join('/sys/class/net', name, 'ifindex'), 'utf8').trim();
  } catch {
    return false;
  }
}

export async function linkFacts(name: string): Promise<LinkFacts | undefined> {
  const names = netnsLinkNames();
  if (!names.includes(name)) return undefined;
  if (sysfsShows(name, names)) {
    const dir = path.join('/sys/class/net', name);
    let alias = '';
    try { alias = readFileSync(path.join(dir, 'ifalias'), 'utf8').trim(); } catch { /* no alias support: none set */ }
    return { isBridge: existsSync(path.join(dir, 'bridge')), alias };
  }
  const res = await run('ip', ['-d', '-j', 'link', 'show', 'dev', name], { timeout: TIMEOUT, alreadyGone: gone }).catch((err: unknown) => {
    if ((err as { alreadyGone?: boolean }).alreadyGone) return undefined;
    throw err;
  });
  const [link] = res ? JSON.parse(res.stdout) as { ifalias?: string; linkinfo?: { info_kind?: string } }[] : [];
  return link ? { isBridge: link.linkinfo?.info_kind === 'bridge', alias: link.ifalias ?? '' } : undefined;
}

/** The interfaces enslaved to a bridge (`ip link show master`); empty for a bridge with none. */
export async function bridgeMembers(bridge: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show', 'master', bridge], { timeout: TIMEOUT });
  return stdout.split('\n').flatMap((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? []);
}

/** The addresses on a link, as `addr/prefix`. */
export async function linkAddresses(name: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'addr', 'show', 'dev', name], { timeout: TIMEOUT });
  return stdout.split('\n').flatMap((l) => /\binet6? (\S+)/.exec(l)?.[1] ?? []);
}

/** `ip addr del`; an address (or link) already gone is success. */
export async function deleteAddress(dev: string, cidr: string): Promise<void> {
  await run('ip', ['addr', 'del', cidr, 'dev', dev], { timeout: TIMEOUT, alreadyGone: (e) => gone(e) || /Cannot assign requested address/.test(e) });
}

/** Unmounts and removes a netns file; missing or unmounted is success (CNI DEL). */
export async function removeNetns(file: string): Promise<void> {
  if (isMountPoint(file)) {
    try {
      await umountOnce(file, false);
    } catch (err) {
      // Unmounted meanwhile by another command's teardown is what was wanted.
      if (isMountPoint(file)) throw err;
    }
  }
  await fsp.rm(file, { force: true });
}

/** Where `ip netns` looks (iproute2's NETNS_RUN_DIR); Podman bind-mounts its netns here too. */
export const IP_NETNS_DIR = '/run/netns';

/**
 * Names a container's netns for `ip netns` (list, exec, identify): a symlink in /run/netns to the bind
 * mount under the runroot. A symlink rather than a second bind mount: nothing more pins the netns, and
 * removing it can never take a mount of someone else's. One left by a dead container of the same name
 * (ours: it points into `ownDir`) is replaced; anything else there is not ours and is left alone.
 */
export async function linkNetns(link: string, target: string, ownDir: string): Promise<void> {
  await fsp.mkdir(path.dirname(link), { recursive: true, mode: 0o755 });
  try {
    await fsp.symlink(target, link);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const old = await fsp.readlink(link).catch(() => undefined);
    if (old === undefined || path.dirname(old) !== ownDir) throw new Error(`${link} exists and is not a netns link of this root`, { cause: err });
    const tmp = `${link}.tmp-${process.pid}`;
    await fsp.rm(tmp, { force: true });
    await fsp.symlink(target, tmp);
    await fsp.rename(tmp, link);
  }
}

/** Removes `ip netns` links into `ownDir` that point at `target`, or (no target) at a netns `keep` refuses. */
export async function unlinkNetns(ownDir: string, which: { target: string } | { keep: (id: string) => boolean }): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try { names = await fsp.readdir(IP_NETNS_DIR); } catch { return removed; }
  for (const name of names) {
    const link = path.join(IP_NETNS_DIR, name);
    const to = await fsp.readlink(link).catch(() => undefined);
    if (to === undefined || path.dirname(to) !== ownDir) continue;
    if ('target' in which ? to === which.target : !which.keep(path.basename(to))) {
      await fsp.rm(link, { force: true });
      removed.push(name);
    }
  }
  return removed;
}

export function isMountPoint(file: string): boolean {
  // A netns file is bound to nsfs, which has a device of its own: no read of the mount table, which
  // grows with every container (storage/mounts.ts hasOwnDevice says more).
  try {
    return statSync(file).dev !== statSync(path.dirname(file)).dev;
  } catch {
    return false;
  }
}

export async function writeSysctl(key: string, value: string): Promise<void> {
  const file = path.join('/proc/sys', ...key.split('.'));
  const current = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (current?.trim() !== value) await fsp.writeFile(file, value);
}

/** The netns this process runs in, as a path lines run inside another netns can name. */
export function hostNetnsPath(): string {
  return `/proc/${process.pid}/ns/net`;
}

/**
 * One thing on the host that occupies addresses: a route (any interface: other engines' bridges, VPNs,
 * the uplink) or an address of an interface (a /32 or /128, which may have no route of its own).
 */
export interface HostUse<N> {
  net: N;
  dev: string;
  kind: 'route' | 'address';
}

/** Routes of the main table (/proc/net/route) and the addresses of every interface, IPv4. */
export function hostUses(): HostUse<{ base: number; prefix: number }>[] {
  const out: HostUse<{ base: number; prefix: number }>[] = [];
  let text = '';
  try { text = readFileSync('/proc/net/route', 'utf8'); } catch { /* no procfs: addresses only */ }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const mask = leHex(f[7] ?? '0');
    if (mask === 0) continue; // the default route overlaps everything
    out.push({ net: { base: leHex(f[1] ?? '0'), prefix: popcount(mask) }, dev: f[0]!, kind: 'route' });
  }
  for (const [dev, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue;
      const ip = a.address.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
      out.push({ net: { base: ip, prefix: 32 }, dev, kind: 'address' });
    }
  }
  return out;
}

/** The same for IPv6 (/proc/net/ipv6_route), except the default route, link-local, multicast and loopback. */
export function hostUses6(): HostUse<{ base: bigint; prefix: number }>[] {
  const out: HostUse<{ base: bigint; prefix: number }>[] = [];
  let text = '';
  try { text = readFileSync('/proc/net/ipv6_route', 'utf8'); } catch { /* IPv6 off */ }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const [dest, len] = f;
    const prefix = parseInt(len ?? '', 16);
    if (!dest || !(prefix > 0) || prefix === 128 || dest.startsWith('fe80') || dest.startsWith('ff')) continue;
    out.push({ net: { base: BigInt(`0x${dest}`), prefix }, dev: f[9] ?? '', kind: 'route' });
  }
  for (const [dev, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv6' || a.internal || a.address.toLowerCase().startsWith('fe80')) continue;
      const ip = parseIpv6(a.address.split('%')[0]!);
      if (ip !== undefined) out.push({ net: { base: ip, prefix: 128 }, dev, kind: 'address' });
    }
  }
  return out;
}

function leHex(h: string): number {
  const n = parseInt(h, 16) >>> 0;
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | (n >>> 24)) >>> 0;
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n >>> 0; x; x = (x & (x - 1)) >>> 0) c++;
  return c;
}
