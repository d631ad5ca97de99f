import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { claimSlot, unmountUnder } from './engine.js';
import { findLeaks } from './leaks.js';

/**
 * "Hosts" of a multi-host test: one network namespace each, joined by an underlay bridge that lives in a
 * netns of its own, so nothing of the test sits in the machine's netns. Berth runs in a host with
 * `nsenter --net` (not `ip netns exec`, whose private mount namespace would take the netns bind mounts
 * Berth makes with it), on its own --root/--runroot.
 */
export interface Host {
  /** h1, h2, ... */
  readonly name: string;
  /** the `ip netns` name: berth-t-<tag>-<name> */
  readonly netns: string;
  readonly netnsPath: string;
  /** the host's underlay address on eth0 (no prefix) */
  readonly address: string;
  readonly root: string;
  readonly runroot: string;
  /** bin/berth.js in the host on its root; never rejects, 60 s bound */
  berth(args: readonly string[], opts?: { env?: Record<string, string>; input?: string }): Promise<Result>;
  /** `berth` that must exit 0; its trimmed stdout (the error names the command and its stderr) */
  ok(...args: string[]): Promise<string>;
  /** any command in the host's netns (ping, nc, ip); never rejects */
  exec(cmd: readonly string[], opts?: { timeout?: number; input?: string }): Promise<Result>;
}

export interface Result {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface Hosts {
  readonly hosts: Host[];
  /** the netns holding the underlay bridge; `address` is the bridge's own, for a service (etcd) spawned there */
  readonly underlay: { netns: string; netnsPath: string; bridge: string; subnet: string; address: string; mtu: number };
  /** a long-running command in a host's netns (or the underlay's); kill it by its pid, remove() kills what is left */
  spawnIn(where: Host | 'underlay', cmd: string, args: readonly string[]): ChildProcess;
  /** Another netns of the test (a hand-made "container"), named berth-t-<tag>-<label>; remove() deletes it first. */
  makeNetns(label: string): Promise<{ name: string; netnsPath: string }>;
  /** Resets every root in its host, deletes the namespaces and the underlay; throws listing leaks. Idempotent. */
  remove(): Promise<void>;
}

export interface HostsOptions {
  /**
   * a subnet slot (engine.ts claims): the underlay is 10.251.<slot % 256>.0/24. It lives in netns of its
   * own, so two tests on one subnet would not meet; the claim only keeps them apart for readable logs.
   */
  slot?: number;
  /** the underlay's MTU (veths and bridge); the kernel's 1500 otherwise */
  mtu?: number;
}

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const NETNS_DIR = '/run/netns';

async function sh(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await execa(file, args, { input, timeout: 30_000, reject: false });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

async function inNs(netnsPath: string, cmd: readonly string[], opts: { timeout?: number; input?: string; env?: Record<string, string> } = {}): Promise<Result> {
  const r = await execa('nsenter', [`--net=${netnsPath}`, ...cmd], { reject: false, timeout: opts.timeout ?? 60_000, input: opts.input, env: opts.env });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Makes `n` hosts on a fresh underlay. On failure, removes what it made before throwing. */
export async function makeHosts(n: number, opts: HostsOptions = {}): Promise<Hosts> {
  const claim = claimSlot(opts.slot ?? (process.pid * 13) % 256);
  const slot = claim.slot % 256;
  const tag = randomBytes(3).toString('hex');
  const subnet = `10.251.${slot}.0/24`;
  const mtu = opts.mtu ?? 1500;
  const ul = `berth-t-${tag}-ul`;
  const underlay = { netns: ul, netnsPath: path.join(NETNS_DIR, ul), bridge: `berthul${tag}`, subnet, address: `10.251.${slot}.1`, mtu };
  const hosts: Host[] = [];
  const children = new Set<ChildProcess>();
  const made: string[] = [];
  const extra: string[] = [];
  const dirs: string[] = [];
  let removed = false;

  const remove = async () => {
    if (removed) return;
    removed = true;
    const errors: string[] = [];
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // The test's own namespaces first: their veths' host ends go with them (the kernel does it shortly after).
    for (const name of extra.reverse()) {
      const r = await execa('ip', ['netns', 'del', name], { reject: false, timeout: 15_000 });
      if (r.exitCode !== 0 && existsSync(path.join(NETNS_DIR, name))) errors.push(`ip netns del ${name}: ${r.stderr}`);
    }
    for (const h of hosts) {
      const reset = await h.berth(['system', 'reset', '-f']);
      if (reset.exitCode !== 0) errors.push(`${h.name}: system reset: ${reset.stderr}`);
      // What a reset leaves in its host is a leak of the engine: links besides lo/eth0, rules, routes.
      const others = async () => (await linksIn(h.netnsPath)).filter((l) => l !== 'lo' && l !== 'eth0');
      let links = await others();
      for (let i = 0; i < 100 && links.length; i++) {
        await new Promise((r) => setTimeout(r, 50));
        links = await others();
      }
      if (links.length) errors.push(`${h.name}: links left: ${links.join(' ')}`);
      const rules = (await h.exec(['iptables-save'])).stdout.split('\n').filter((l) => /BERTH/.test(l));
      if (rules.length) errors.push(`${h.name}: iptables left: ${rules.slice(0, 5).join(' | ')}`);
      const routes = (await h.exec(['ip', 'route', 'show'])).stdout.split('\n').filter((l) => l && !l.startsWith(`${subnet} dev eth0 `));
      if (routes.length) errors.push(`${h.name}: routes left: ${routes.join(' | ')}`);
      errors.push(...(await findLeaks(h.root, h.runroot, { final: true })).map((l) => `${h.name}: ${l}`));
    }
    for (const name of made.reverse()) {
      const r = await execa('ip', ['netns', 'del', name], { reject: false, timeout: 15_000 });
      if (r.exitCode !== 0 && existsSync(path.join(NETNS_DIR, name))) errors.push(`ip netns del ${name}: ${r.stderr}`);
    }
    for (const d of dirs) {
      unmountUnder(d);
      await rm(d, { recursive: true, force: true });
    }
    claim.release();
    const left = hostNetnsLeft(`berth-t-${tag}-`);
    if (left.length) errors.push(`netns left: ${left.join(' ')}`);
    const ps = await execa('ps', ['-eo', 'args'], { reject: false });
    for (const d of dirs) if (ps.stdout.includes(d)) errors.push(`processes still use ${d}`);
    if (errors.length) throw new Error(`hosts cleanup:\n${errors.join('\n')}`);
  };

  try {
    await sh('ip', ['netns', 'add', ul]);
    made.push(ul);
    await sh('ip', ['-n', ul, '-batch', '-'], [
      'link set lo up',
      `link add ${underlay.bridge} mtu ${mtu} type bridge`,
      `addr add ${underlay.address}/24 dev ${underlay.bridge}`,
      `link set ${underlay.bridge} up`,
    ].join('\n') + '\n');
    for (let i = 1; i <= n; i++) {
      const name = `h${i}`;
      const netns = `berth-t-${tag}-${name}`;
      const netnsPath = path.join(NETNS_DIR, netns);
      await sh('ip', ['netns', 'add', netns]);
      made.push(netns);
      const address = `10.251.${slot}.${i + 10}`;
      const root = await mkdtemp(path.join(tmpdir(), `berth-host-${name}-`));
      const runroot = path.join('/run/berth', `h${path.basename(root).slice(-6)}`);
      dirs.push(root, runroot);
      // The veth is made in the underlay with its peer sent into the host as eth0: one name space each side.
      await sh('ip', ['-n', ul, '-batch', '-'], [
        `link add ${name} mtu ${mtu} type veth peer name eth0 mtu ${mtu} netns ${netns}`,
        `link set ${name} master ${underlay.bridge} up`,
      ].join('\n') + '\n');
      await sh('ip', ['-n', netns, '-batch', '-'], ['link set lo up', `addr add ${address}/24 dev eth0`, 'link set eth0 up'].join('\n') + '\n');
      const berth = (args: readonly string[], o: { env?: Record<string, string>; input?: string } = {}) =>
        inNs(netnsPath, [BIN, '--root', root, '--runroot', runroot, ...args], { env: o.env, input: o.input });
      hosts.push({
        name, netns, netnsPath, address, root, runroot, berth,
        async ok(...args) {
          const r = await berth(args);
          if (r.exitCode !== 0) throw new Error(`${name}: berth ${args.join(' ')} exited with ${r.exitCode}: ${r.stderr}`);
          return r.stdout.trim();
        },
        exec: (cmd, o) => inNs(netnsPath, cmd, o),
      });
    }
  } catch (err) {
    await remove().catch(() => {});
    throw err;
  }

  return {
    hosts,
    underlay,
    spawnIn(where, cmd, args) {
      const netnsPath = where === 'underlay' ? underlay.netnsPath : where.netnsPath;
      // nsenter execs the command: the child's pid is the command's.
      const child = spawn('nsenter', [`--net=${netnsPath}`, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.on('error', () => {});
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    },
    async makeNetns(label) {
      const name = `berth-t-${tag}-${label}`;
      await sh('ip', ['netns', 'add', name]);
      extra.push(name);
      return { name, netnsPath: path.join(NETNS_DIR, name) };
    },
    remove,
  };
}

/** The links of a netns, by name (what `ip -o link` lists). */
export async function linksIn(netnsPath: string): Promise<string[]> {
  const r = await inNs(netnsPath, ['ip', '-o', 'link', 'show']);
  return r.stdout.split('\n').flatMap((l) => l.split(': ')[1]?.split('@')[0] ?? []);
}

/** Whether a netns name of a `makeHosts` run is still listed (for leak checks of tests that do not use remove). */
export function hostNetnsLeft(prefix = 'berth-t-'): string[] {
  try { return readdirSync(NETNS_DIR).filter((f) => f.startsWith(prefix)); } catch { return []; }
}
