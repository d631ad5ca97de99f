import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { networkView } from '../../src/api/networks.js';
import { openNetworkManager, type LinkRef, type NetworkManager, type SandboxStatus } from '../../src/network/index.js';
import type { NetworksApi } from '../../src/types.js';
import type { NetworkRequest } from '../../src/options.js';
import { resolveLayout, type StoreLayout } from '../../src/paths.js';
import { run } from '../../src/util/exec.js';
import { ipNetnsLeaks } from '../helpers/leaks.js';

/**
 * One isolated world per test: its own root, default bridge name and subnet, and chain prefix
 * (numbers are unique across test files, which vitest runs in parallel).
 */
export interface NetEnv {
  n: number;
  root: string;
  layout: StoreLayout;
  mgr: TestNetworkManager;
  prefix: string;
  /** berthtN<suffix>, ≤ 15 chars */
  bridge(suffix: string): string;
  subnet(k: number): string;
  /** fd42:7e57:N:k::/64, a ULA of the tests' own */
  subnet6(k: number): string;
  /** every host interface a sandbox of this env ever had, for the leak check */
  seen: Set<string>;
  procs: ResultPromise[];
  extraLinks: string[];
  noteInterfaces(): Promise<void>;
}

/** The network layer with `list` and `inspect` shaped as the engine shows them (Docker's view). */
export type TestNetworkManager = Omit<NetworkManager, 'list' | 'inspect'> & Pick<NetworksApi, 'list' | 'inspect'>;

function withViews(mgr: NetworkManager): TestNetworkManager {
  // Inherits every other method (and the fields they use) from the manager itself.
  return Object.assign(Object.create(mgr) as NetworkManager, {
    list: async (opts?: { filters?: string[] }) => (await mgr.list(opts)).map(networkView),
    inspect: async (ref: string) => networkView(await mgr.inspect(ref)),
  });
}

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export async function makeEnv(n: number): Promise<NetEnv> {
  const root = await mkdtemp(path.join(tmpdir(), `berth-net${n}-`));
  await chmod(root, 0o755);
  const layout = resolveLayout({ root, runroot: path.join(root, 'run') });
  const prefix = `BERTHT${String(n).padStart(2, '0')}X`;
  const env: NetEnv = {
    n, root, layout, prefix, seen: new Set(), procs: [], extraLinks: [],
    mgr: managerFor(n, layout, prefix),
    bridge: (s) => `bertht${n}${s}`,
    subnet: (k) => `10.231.${n * 4 + k}.0/24`,
    subnet6: (k) => `fd42:7e57:${n.toString(16)}${k ? `:${k}` : ''}::/64`,
    async noteInterfaces() {
      const dir = path.join(layout.runroot, 'net', 'sandboxes');
      for (const f of await readdir(dir).catch(() => [] as string[])) {
        const rec = JSON.parse(await readFile(path.join(dir, f), 'utf8').catch(() => '{}')) as { endpoints?: { hostInterface?: string }[] };
        for (const ep of rec.endpoints ?? []) if (ep.hostInterface) env.seen.add(ep.hostInterface);
      }
    },
  };
  return env;
}

/** The env's network manager: made again by a test that simulates a new command on the same root. */
export function managerFor(n: number, layout: StoreLayout, prefix: string): TestNetworkManager {
  return withViews(openNetworkManager(layout, { defaultBridge: { name: `bertht${n}d`, subnet: `10.232.${n}.0/24` }, chainPrefix: prefix }));
}

/** Removes everything the env made, then asserts nothing leaked; throws listing what did. */
export async function destroyEnv(env: NetEnv): Promise<void> {
  for (const p of env.procs) p.kill('SIGKILL');
  await Promise.allSettled(env.procs);
  await env.noteInterfaces();
  const errors: unknown[] = [];
  const attempt = async (fn: () => Promise<unknown>) => { try { await fn(); } catch (e) { errors.push(e); } };
  await attempt(() => env.mgr.reconcile(new Set()));
  for (const net of await env.mgr.list().catch(() => [])) {
    if (!['bridge', 'host', 'none'].includes(net.name)) await attempt(() => env.mgr.remove(net.id));
  }
  await attempt(() => env.mgr.shutdown());
  for (const l of env.extraLinks) await run('ip', ['link', 'del', l]).catch(() => {});
  const leaks = await leftovers(env);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(env.root)) await run('umount', ['-l', line.split(' ')[4]!]).catch(() => {});
  }
  await rm(env.root, { recursive: true, force: true });
  if (errors.length || leaks.length) throw new AggregateError(errors, `cleanup failed; leaked: ${leaks.join(', ') || 'nothing'}: ${errors.map(String).join('; ')}`);
}

export async function leftovers(env: NetEnv): Promise<string[]> {
  const leaks: string[] = [];
  // A netns is destroyed asynchronously once unmounted; its veth follows shortly after.
  for (let i = 0; i < 50; i++) {
    if (![...env.seen].some((l) => existsSync(`/sys/class/net/${l}`))) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const l of env.seen) if (existsSync(`/sys/class/net/${l}`)) leaks.push(`link ${l}`);
  const links = await readdir('/sys/class/net');
  for (const l of links) if (l.startsWith(`bertht${env.n}`) && /^bertht\d+/.exec(l)?.[0] === `bertht${env.n}`) leaks.push(`link ${l}`);
  for (const f of await readdir(env.layout.netns).catch(() => [] as string[])) leaks.push(`netns ${f}`);
  leaks.push(...ipNetnsLeaks(env.layout.netns, new Set()));
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const save = (await run(tool, [])).stdout;
    for (const line of save.split('\n')) if (line.includes(`${env.prefix}-`) || line.includes(`berth:${env.prefix}"`)) leaks.push(`${tool} rule ${line}`);
  }
  if (readFileSync('/proc/self/mountinfo', 'utf8').includes(env.root)) leaks.push('mounts under root');
  const ps = await run('ps', ['-eo', 'args']);
  if (ps.stdout.includes(env.root)) leaks.push('processes using root');
  return leaks;
}

/** Runs a command inside a netns; resolves with its exit code and output instead of throwing. */
export async function inNetns(netns: string, args: string[], timeout = 10_000): Promise<{ code: number; out: string }> {
  const r = await execa('nsenter', [`--net=${netns}`, ...args], { reject: false, timeout });
  return { code: r.exitCode ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Like inNetns, with /etc/resolv.conf (and hosts) of the container bind-mounted in a private mount ns. */
export async function inContainer(netns: string, files: { resolvConf: string; hostsFile: string }, dir: string, cmd: string): Promise<{ code: number; out: string }> {
  const { writeFile } = await import('node:fs/promises');
  const resolv = path.join(dir, `resolv-${randomBytes(4).toString('hex')}`);
  const hosts = path.join(dir, `hosts-${randomBytes(4).toString('hex')}`);
  await writeFile(resolv, files.resolvConf);
  await writeFile(hosts, files.hostsFile);
  const script = `mount --bind ${resolv} /etc/resolv.conf && mount --bind ${hosts} /etc/hosts && ${cmd}`;
  return inNetns(netns, ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script]);
}

/** Starts a long-running process inside a netns; destroyEnv kills it. */
export function spawnInNetns(env: NetEnv, netns: string, args: string[]): void {
  env.procs.push(execa('nsenter', [`--net=${netns}`, ...args], { reject: false }));
}

export async function save(tool: 'iptables-save' | 'ip6tables-save' = 'iptables-save'): Promise<string> {
  return (await run(tool, [])).stdout;
}

export function linesWith(text: string, needle: string): string[] {
  return text.split('\n').filter((l) => l.includes(needle));
}

/** The old one-step attach of tests: plan the request (as the container layer does at create), then attach. */
export async function attachReq(mgr: Pick<NetworkManager, 'plan' | 'attach'>, ctr: {
  id: string; name: string; hostname: string; domainname?: string; request: NetworkRequest; exposedPorts?: string[];
  sharedWith?: { id: string; pid?: number }; links?: LinkRef[];
}): Promise<SandboxStatus> {
  const plan = await mgr.plan(ctr.request, { exposedPorts: ctr.exposedPorts ?? [], sharedWith: ctr.sharedWith?.id, links: ctr.links });
  return mgr.attach({
    id: ctr.id, name: ctr.name, hostname: ctr.hostname, ...(ctr.domainname ? { domainname: ctr.domainname } : {}), plan,
    ...(ctr.sharedWith?.pid ? { sharedWithPid: ctr.sharedWith.pid } : {}),
  });
}
