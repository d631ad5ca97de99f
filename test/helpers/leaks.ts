import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { hostNames, resolveLayout } from '../../src/paths.js';

/**
 * The leak check every crash and lifecycle test can share: what one root's store left on the host and on
 * disk that no existing object owns. "Owns" is judged from the records on disk, the same way the engine
 * judges it, so a check run between commands (nothing running) must come back empty:
 *
 * - iptables/ip6tables: rules in this root's chains naming a container (`berth:<id>`) that is not
 *   running, or a network (`berth:net:<id>`) that no longer exists; jump rules into our chains that are
 *   doubled or point at a missing chain; with `final`, any chain or jump of ours at all
 * - netns files and mounts under the runroot, and mounts under the root, not of a running container;
 *   a volume mounted by its driver (tmpfs, a bind device) while no running container uses it, and the
 *   volume layer's marker of a container that is not running (`RUNROOT/vol/<name>/<id>`);
 *   `ip netns` names (/run/netns symlinks) into the runroot's netns folder, likewise
 * - veths on this root's bridges, or named for one of its containers, that no running container owns
 * - healthcheck timer loops (`berth-health`), log rotation loops (`berth-logrotate`) and their
 *   `<exits>/<id>.health` / `<exits>/<id>.logs` files of containers not running
 * - fuse-overlayfs daemons of snapshots that are not a running container's or an image mount's;
 * - runc state, conmon processes and cgroups (`/berth/<id>` in every hierarchy) of containers not running
 * - lock files of objects that no longer exist, of dead holders, and `.break` guards
 * - `.tmp-*` / `.stale-*` files anywhere in the store (container file systems excepted)
 * - records a crash can strand: a container record still in an in-progress state (creating, starting, removing), a container folder without
 *   a record, a name or snapshot without its container, sandbox records, addresses, port reservations,
 *   exit files of containers that are not running
 *
 * `known` adds container ids the test saw (e.g. of a create killed before its record was committed), so
 * that host-wide objects named by those ids (cgroups, veths) are checked even once every trace of them
 * in the store is gone.
 */
export interface LeakCheckOptions {
  /** defaults to the names the engine derives from the root (paths.ts hostNames) */
  chainPrefix?: string;
  known?: Iterable<string>;
  /** the root has been reset: no chain, jump or bridge rule of ours may remain */
  final?: boolean;
}

interface ContainerFacts {
  id: string;
  name: string;
  state: string;
}

/** States a command writes before it makes host objects: a record left in one is unfinished work. */
const IN_PROGRESS = new Set(['creating', 'starting', 'removing']);

const HEX64 = /^[0-9a-f]{64}$/;
const LIVE = new Set(['running', 'paused']);

export async function findLeaks(root: string, runroot: string, opts: LeakCheckOptions = {}): Promise<string[]> {
  const layout = resolveLayout({ root, runroot });
  const prefix = opts.chainPrefix ?? hostNames(layout.root).chainPrefix;
  const leaks: string[] = [];

  const records = new Map<string, ContainerFacts>();
  for (const id of list(layout.containers).filter((d) => HEX64.test(d))) {
    const rec = readJson<ContainerFacts>(path.join(layout.containers, id, 'container.json'));
    if (rec) records.set(id, rec);
    else leaks.push(`container folder without record ${id}`);
  }
  const live = new Set([...records.values()].filter((r) => LIVE.has(r.state)).map((r) => r.id));
  const known = new Set([...records.keys(), ...(opts.known ?? [])]);
  for (const r of records.values()) if (IN_PROGRESS.has(r.state)) leaks.push(`container ${r.name} still ${r.state}`);

  const networks = list(layout.networks).filter((f) => f.endsWith('.json') && !f.startsWith('.'))
    .map((f) => readJson<{ id: string; driver: string; driverOptions?: { bridge?: string } }>(path.join(layout.networks, f)))
    .filter((n): n is NonNullable<typeof n> => !!n);
  const bridges = new Set(networks.flatMap((n) => (n.driver === 'bridge' && n.driverOptions?.bridge ? [n.driverOptions.bridge] : [])));

  // ---- records a crash can strand
  const namesDir = path.join(layout.containers, '.names');
  for (const name of list(namesDir)) {
    const holder = read(path.join(namesDir, name)).trim();
    if (name.includes('.stale-') || !records.has(holder)) leaks.push(`name ${name} of missing container ${holder.slice(0, 12)}`);
  }
  for (const key of list(layout.snapshots)) {
    if (!key.startsWith('image-') && !key.startsWith('.') && !records.has(key)) leaks.push(`snapshot ${key}`);
  }
  const net = path.join(layout.runroot, 'net');
  const sandboxes = new Map<string, { endpoints?: { hostInterface?: string }[] }>();
  for (const f of list(path.join(net, 'sandboxes')).filter((x) => x.endsWith('.json'))) {
    const id = f.slice(0, -'.json'.length);
    const sb = readJson<{ endpoints?: { hostInterface?: string }[] }>(path.join(net, 'sandboxes', f));
    if (sb) sandboxes.set(id, sb);
    if (!live.has(id)) leaks.push(`sandbox record ${id.slice(0, 12)}`);
  }
  for (const netId of list(path.join(net, 'ipam'))) {
    if (!networks.some((n) => n.id === netId)) leaks.push(`address pool of missing network ${netId.slice(0, 12)}`);
    for (const f of list(path.join(net, 'ipam', netId))) {
      const owner = read(path.join(net, 'ipam', netId, f)).trim();
      if (HEX64.test(owner) && !live.has(owner)) leaks.push(`address ${f} held by ${owner.slice(0, 12)}`);
    }
  }
  for (const f of list(path.join(net, 'ports'))) {
    const owner = read(path.join(net, 'ports', f)).trim();
    if (!live.has(owner)) leaks.push(`port ${f} held by ${owner.slice(0, 12)}`);
  }
  for (const f of list(layout.exits)) {
    const id = f.replace(/\.mon$/, '');
    if (HEX64.test(id) && !records.has(id)) leaks.push(`exit file ${f}`);
  }

  // ---- lock files (a live holder of a removed object's lock may be a monitor's exit command finishing
  // up: it gets time below; a dead holder never comes back)
  const lockLeaks = (alive: boolean) => list(layout.locks).flatMap((f) => {
    const text = read(path.join(layout.locks, f));
    // Empty: a taker between open and write; counted as alive until the wait below is over.
    const holderLives = !text.trim() || holderAlive(text);
    if (holderLives !== alive) return [];
    if (f.endsWith('.break')) return [`lock guard ${f}`];
    const m = /^(ctr|net|ipam|snapshot|vol)-(.+)\.lock$/.exec(f);
    const gone = m && (m[1] === 'ctr' ? !existsSync(path.join(layout.containers, m[2]!, 'container.json'))
      : m[1] === 'vol' ? !existsSync(path.join(layout.volumes, m[2]!, 'volume.json'))
      : m[1] === 'snapshot' ? !existsSync(path.join(layout.snapshots, m[2]!))
        : !networks.some((n) => n.id === m[2]));
    if (gone) return [`lock of a removed object ${f}`];
    return holderLives ? [] : [`lock of a dead process ${f}`];
  });
  leaks.push(...lockLeaks(false));

  // ---- temp files (not inside container file systems or layers)
  for (const dir of [layout.root, layout.runroot]) {
    walk(dir, (p) => {
      const base = path.basename(p);
      if (base.startsWith('.tmp-') || base.includes('.stale-')) leaks.push(`temp file ${path.relative(dir, p)}`);
    });
  }

  // ---- volumes mounted by their driver, and who uses them (volume layer)
  const volumeUsers = new Map<string, string[]>();
  for (const name of list(path.join(layout.runroot, 'vol'))) {
    const users = list(path.join(layout.runroot, 'vol', name));
    volumeUsers.set(name, users);
    for (const id of users) if (!live.has(id)) leaks.push(`volume ${name} marked as used by ${id.slice(0, 12)}, which is not running`);
  }

  for (const name of list(layout.volumes).filter((n) => !n.startsWith('.'))) {
    for (const id of list(path.join(layout.volumes, name, 'refs'))) if (!records.has(id)) leaks.push(`volume ${name} referenced by missing container ${id.slice(0, 12)}`);
  }

  // ---- mounts and netns
  for (const mp of mountPoints()) {
    if (mp !== layout.root && !mp.startsWith(layout.root + '/') && mp !== layout.runroot && !mp.startsWith(layout.runroot + '/')) continue;
    const snap = /\/snapshots\/([^/]+)\/merged$/.exec(mp)?.[1];
    const ns = mp.startsWith(layout.netns + '/') ? path.basename(mp) : undefined;
    const vol = mp.startsWith(layout.volumes + '/') ? /^([^/]+)\/_data$/.exec(mp.slice(layout.volumes.length + 1))?.[1] : undefined;
    const owned = (snap && (snap.startsWith('image-') || live.has(snap))) || (ns && live.has(ns))
      || (vol && (volumeUsers.get(vol) ?? []).some((id) => live.has(id)));
    if (!owned) leaks.push(`mount ${mp}`);
  }
  for (const f of list(layout.netns).filter((x) => !x.startsWith('.'))) {
    if (!live.has(f)) leaks.push(`netns ${f.slice(0, 12)}`);
  }
  leaks.push(...ipNetnsLeaks(layout.netns, live));

  // ---- runc state, monitors, cgroups
  if (existsSync(layout.runc)) {
    const ids = execFileSync('runc', ['--root', layout.runc, 'list', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const id of ids) if (!live.has(id)) leaks.push(`runc state ${id.slice(0, 12)}`);
  }
  for (const dir of cgroupParents()) {
    for (const id of list(dir)) if (known.has(id) && !live.has(id)) leaks.push(`cgroup ${path.join(dir, id)}`);
  }

  // ---- iptables
  const netIds = networks.map((n) => n.id);
  for (const tool of ['iptables-save', 'ip6tables-save']) leaks.push(...firewallLeaks(tool, prefix, live, netIds, !!opts.final));

  // ---- what goes away in the background: veths (the kernel removes the host end of a dead netns's
  // veth asynchronously), monitors and the locks of their exit commands
  const vethLeaks = () => {
    const owned = new Set([...live].flatMap((id) => (sandboxes.get(id)?.endpoints ?? []).map((e) => e.hostInterface)));
    const named = new Set([...known].flatMap((id) => networks.map((n) => `bv${createHash('sha256').update(`${id}/${n.id}`).digest('hex').slice(0, 8)}`)));
    for (const sb of sandboxes.values()) for (const e of sb.endpoints ?? []) if (e.hostInterface) named.add(e.hostInterface);
    return vethsOnHost().filter((v) => !owned.has(v.name) && (named.has(v.name) || (v.master && bridges.has(v.master))))
      .map((v) => `veth ${v.name}${v.master ? ` on ${v.master}` : ''}${v.peerHere ? ' (peer on the host)' : ''}`);
  };
  // A monitor outlives its container by the exit command it runs (`berth container cleanup`).
  const monitors = (ps: readonly string[]) => ps.flatMap((line) => {
    const m = /conmon .*-c ([0-9a-f]{64})/.exec(line);
    return m && line.includes(layout.root + '/') && !live.has(m[1]!) ? [`monitor of ${m[1]!.slice(0, 12)}`] : [];
  });
  // A healthcheck timer loop (runtime/healthtimer.ts) lives exactly as long as its container runs.
  const healthTimers = (ps: readonly string[]) => ps.flatMap((line) => {
    const m = /berth-health .* healthcheck tick ([0-9a-f]{64})/.exec(line);
    return m && line.includes(` ${layout.root} `) && !live.has(m[1]!) ? [`healthcheck timer of ${m[1]!.slice(0, 12)}`] : [];
  });
  // A log rotation loop (runtime/logrotate.ts) too; its second argument is the container's log.
  const logRotators = (ps: readonly string[]) => ps.flatMap((line) => {
    const m = /berth-logrotate \d+ (\S+)/.exec(line);
    const id = m?.[1]!.startsWith(layout.root + '/') ? /([0-9a-f]{64})/.exec(m[1]!)?.[1] : undefined;
    return id && !live.has(id) ? [`log rotation loop of ${id.slice(0, 12)}`] : [];
  });
  // A fuse-overlayfs daemon serves a snapshot while it is mounted, and exits once it is unmounted.
  const fuseDaemons = (ps: readonly string[]) => ps.flatMap((line) => {
    const m = /^(?:\S*\/)?fuse-overlayfs .* (\S+)\/snapshots\/([^/ ]+)\/merged$/.exec(line);
    return m && m[1] === layout.root && !m[2]!.startsWith('image-') && !live.has(m[2]!) ? [`fuse-overlayfs daemon of ${m[2]!.slice(0, 12)}`] : [];
  });
  const timerFiles = () => list(layout.exits).flatMap((f) => {
    const [, id, kind] = /^([0-9a-f]{64})\.(health|logs)$/.exec(f) ?? [];
    return id && !live.has(id) ? [`${kind === 'health' ? 'healthcheck timer' : 'log rotation'} file ${f}`] : [];
  });
  // One ps per round for every kind of process: on a busy machine each costs a good part of the round.
  const transient = () => {
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n');
    return [...vethLeaks(), ...monitors(ps), ...healthTimers(ps), ...logRotators(ps), ...fuseDaemons(ps), ...timerFiles(), ...lockLeaks(true)];
  };
  let left = transient();
  // Up to 15 s: the exit command is a node process, slow to start on a busy machine.
  for (let i = 0; i < 300 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = transient();
  }
  leaks.push(...left);
  if (opts.final) for (const b of bridges) if (existsSync(`/sys/class/net/${b}`)) leaks.push(`bridge ${b}`);
  return leaks;
}

/** `ip netns` names (symlinks in /run/netns) into this root's netns folder of containers not running. */
export function ipNetnsLeaks(netnsDir: string, live: ReadonlySet<string>): string[] {
  return list('/run/netns').flatMap((name) => {
    let to: string;
    try { to = readlinkSync(path.join('/run/netns', name)); } catch { return []; }
    return path.dirname(to) === netnsDir && !live.has(path.basename(to)) ? [`ip netns ${name} of ${path.basename(to).slice(0, 12)}`] : [];
  });
}

function firewallLeaks(tool: string, prefix: string, live: ReadonlySet<string>, netIds: readonly string[], final: boolean): string[] {
  let save: string;
  try {
    save = execFileSync(tool, [], { encoding: 'utf8' });
  } catch {
    return []; // no ip6tables on this host
  }
  const leaks: string[] = [];
  const declared = new Set<string>();
  const jumps = new Map<string, number>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    if (line.startsWith(`:${prefix}-`)) {
      declared.add(`${table} ${line.slice(1).split(' ')[0]}`);
      if (final) leaks.push(`${tool} chain ${line.slice(1).split(' ')[0]}`);
    }
    if (!line.startsWith('-A ')) continue;
    if (line.startsWith(`-A ${prefix}-`)) {
      const owner = /--comment "?berth:([0-9a-f]{64})"?/.exec(line)?.[1];
      if (owner && !live.has(owner)) leaks.push(`${tool} rule of ${owner.slice(0, 12)}: ${line}`);
      const net = /--comment "?berth:net:([0-9a-f]{12})"?/.exec(line)?.[1];
      if (net && !netIds.some((id) => id.startsWith(net))) leaks.push(`${tool} rule of removed network ${net}: ${line}`);
    } else if (line.includes(`berth:${prefix}"`)) {
      jumps.set(`${table} ${line}`, (jumps.get(`${table} ${line}`) ?? 0) + 1);
      if (final) leaks.push(`${tool} jump ${line}`);
    }
  }
  for (const [jump, n] of jumps) {
    const [tbl, ...rest] = jump.split(' ');
    const target = / -j (\S+)/.exec(rest.join(' '))?.[1];
    if (n > 1) leaks.push(`${tool} jump in ${n} copies: ${rest.join(' ')}`);
    if (target && !declared.has(`${tbl} ${target}`)) leaks.push(`${tool} jump to missing chain: ${rest.join(' ')}`);
  }
  return leaks;
}

interface Veth { name: string; master?: string; peerHere: boolean }

function vethsOnHost(): Veth[] {
  const links = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }) || '[]') as
    { ifname: string; master?: string; link?: string; link_netnsid?: number }[];
  // A veth whose peer is in another netns shows link_netnsid; one whose peer is on the host shows `link`.
  return links.map((l) => ({ name: l.ifname, ...(l.master ? { master: l.master } : {}), peerHere: l.link_netnsid === undefined }));
}

function cgroupParents(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const fstype = f[f.indexOf('-') + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const dir = path.join(f[4]!, 'berth');
    if (existsSync(dir)) out.push(dir);
  }
  return [...new Set(out)];
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** Every file below `dir`, except inside container and layer file systems (user data, not ours). */
function walk(dir: string, visit: (p: string) => void): void {
  for (const name of list(dir)) {
    const p = path.join(dir, name);
    visit(p);
    if (['merged', 'upper', 'work', 'diff', 'rootfs', '_data'].includes(name)) continue;
    let st;
    try { st = lstatSync(p, { throwIfNoEntry: false }); } catch { continue; }
    if (st?.isDirectory()) walk(p, visit);
  }
}

function holderAlive(holder: string): boolean {
  const [pid, start] = holder.trim().split(' ');
  if (!(Number(pid) > 0)) return false;
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return false;
  return start === undefined || start === '0' || stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === start;
}

function list(dir: string): string[] {
  try { return readdirSync(dir); } catch { return []; }
}

function read(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch { return ''; }
}

function readJson<T>(file: string): T | undefined {
  const text = read(file);
  try { return text ? (JSON.parse(text) as T) : undefined; } catch { return undefined; }
}
