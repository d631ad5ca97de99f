/**
 * Issue 17's benchmark: an overlay network across two "hosts" against the underlay that carries it.
 * The hosts are network namespaces on an underlay bridge (its own netns, as test/helpers/hosts.ts makes
 * them; the few lines are repeated here because that helper imports vitest's leak checks), etcd runs in
 * the underlay's netns, and each host has its own Berth root, run with `nsenter --net`.
 *
 * Traffic tools (busybox `ping`, `nc`) run from the host through `nsenter --net` into either a host's
 * netns or a container's (its first process's), so both sides pay the same process start and the same
 * binary; the packets of the overlay side leave from the container's eth0 exactly as its own would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BERTH_BIN, BERTH_IMAGE, listProcesses, stopProcessesNaming } from './berth.js';
import { type Benchmark, deferCleanup, errorText, forEachSoft, measureInterleaved, now, Report, removeTree, sh, sleep, timed } from './lib.js';
import type { CommandOptions, CommandResult } from '../src/util/exec.js';

const OVERLAY = 'bench-ovl';
const BRIDGE = 'bench-br';
const NC_BYTES = 200_000_000;
const NC_PORT = 5001;
const PINGS = ['-c', '20', '-i', '0.2'];
/**
 * busybox nc copies in small blocks and is CPU-bound: left to the scheduler, sender and listener share a
 * core in some runs and not in others, which moved single runs by 3x. Pinned, every run of either side
 * has the same placement (the kernel's share of the sender's packets runs on the sender's core).
 */
const SENDER_CPU = '0';
const RECEIVER_CPU = '1';
/** The underlay lives in the bench's own netns, so its subnet meets nothing of the machine's. */
const UNDERLAY_PREFIX = '10.253.0';

interface BenchHost {
  name: string;
  netnsPath: string;
  address: string;
  root: string;
  runroot: string;
  /** berth in this host, as a member of the cluster */
  berth(args: readonly string[], opts?: CommandOptions): Promise<CommandResult>;
}

interface Cluster {
  hosts: [BenchHost, BenchHost];
  /** removes everything; idempotent, also run by the harness on Ctrl-C */
  remove(): Promise<void>;
}

function nsenter(netnsPath: string, cmd: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return sh('nsenter', [`--net=${netnsPath}`, ...cmd], opts);
}

/** Starts etcd in the underlay's netns; resolves when a client call answers. */
async function startEtcd(netnsPath: string, host: string, dir: string): Promise<ChildProcess> {
  const url = `http://${host}:2379`;
  const peer = `http://${host}:2380`;
  const proc = spawn('nsenter', [`--net=${netnsPath}`, '/usr/bin/etcd', '--name', 'berth-bench', '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `berth-bench=${peer}`, '--initial-cluster-state', 'new', '--log-outputs', path.join(dir, 'etcd.log'), '--logger', 'zap'],
  { stdio: 'ignore' });
  proc.on('error', () => {});
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode} at start; see ${dir}/etcd.log`);
    const health = await nsenter(netnsPath, ['etcdctl', `--endpoints=${url}`, '--dial-timeout=2s', 'endpoint', 'health'],
      { timeout: 5_000, env: { ETCDCTL_API: '3' } }).then(() => true, () => false);
    if (health) return proc;
    await sleep(100);
  }
  throw new Error(`etcd did not become healthy in 20 s; see ${dir}/etcd.log`);
}

async function stopProcess(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await gone;
}

/**
 * Two hosts on a fresh underlay, etcd, a Berth root per host with busybox. The clean-up is registered
 * before the first thing is made, so a failure half-way still removes what exists.
 */
async function makeCluster(log: (m: string) => void): Promise<Cluster> {
  const tag = randomBytes(3).toString('hex');
  const ul = `berth-b-${tag}-ul`;
  const ulPath = `/run/netns/${ul}`;
  const bridge = `berthbu${tag}`;
  const made: string[] = [];
  const hosts: BenchHost[] = [];
  const dirs: string[] = [];
  let etcd: ChildProcess | undefined;

  const remove = deferCleanup(async () => {
    const failures: string[] = [];
    // Berth outside its host's netns would act on the machine's network: a host whose netns is gone is skipped.
    const live = hosts.filter((h) => existsSync(h.netnsPath));
    for (const h of live) {
      const ids = await h.berth(['ps', '-aq'], { timeout: 30_000 }).then((r) => r.stdout.split('\n').map((l) => l.trim()).filter(Boolean), () => []);
      if (ids.length) await h.berth(['rm', '-f', ...ids], { timeout: 120_000 }).catch((err) => failures.push(`${h.name}: rm: ${errorText(err)}`));
    }
    // The overlay is global: one host removes it for both, and both resets leave the others' networks alone.
    if (live[0]) await live[0].berth(['network', 'rm', OVERLAY], { timeout: 60_000 }).catch(() => undefined);
    for (const h of live) {
      await h.berth(['system', 'reset', '-f'], { timeout: 120_000 }).catch((err) => failures.push(`${h.name}: reset: ${errorText(err)}`));
    }
    await stopProcessesNaming(hosts.flatMap((h) => [h.root, h.runroot]));
    await stopProcess(etcd);
    failures.push(...await forEachSoft([...made].reverse().filter((n) => existsSync(`/run/netns/${n}`)), (n) => sh('ip', ['netns', 'del', n], { timeout: 15_000 })));
    for (const d of dirs) await removeTree(d);
    // What the steps above missed is a leak of the bench or the engine: said, never left silently.
    const netnsLeft = (await readdir('/run/netns').catch(() => [])).filter((n) => n.startsWith(`berth-b-${tag}-`));
    if (netnsLeft.length) failures.push(`netns left: ${netnsLeft.join(' ')}`);
    const procsLeft = (await listProcesses()).filter((p) => dirs.some((d) => p.cmdline.includes(d)));
    if (procsLeft.length) failures.push(`processes left: ${procsLeft.map((p) => p.pid).join(' ')}`);
    if (failures.length) throw new Error(`overlay clean-up: ${failures.join('; ')}`);
  });

  try {
    await sh('ip', ['netns', 'add', ul]);
    made.push(ul);
    await sh('ip', ['-n', ul, '-batch', '-'], { input: [
      'link set lo up', `link add ${bridge} type bridge`, `addr add ${UNDERLAY_PREFIX}.1/24 dev ${bridge}`, `link set ${bridge} up`,
    ].join('\n') + '\n' });
    const etcdDir = await mkdtemp(path.join(tmpdir(), 'berth-bench-etcd-'));
    dirs.push(etcdDir);
    etcd = await startEtcd(ulPath, `${UNDERLAY_PREFIX}.1`, etcdDir);
    const store = `etcd://${UNDERLAY_PREFIX}.1:2379`;
    for (const name of ['h1', 'h2']) {
      const netns = `berth-b-${tag}-${name}`;
      const netnsPath = `/run/netns/${netns}`;
      await sh('ip', ['netns', 'add', netns]);
      made.push(netns);
      const address = `${UNDERLAY_PREFIX}.${hosts.length + 11}`;
      // The veth is made in the underlay with its peer sent into the host as eth0.
      await sh('ip', ['-n', ul, '-batch', '-'], { input: [
        `link add ${name} type veth peer name eth0 netns ${netns}`, `link set ${name} master ${bridge} up`,
      ].join('\n') + '\n' });
      await sh('ip', ['-n', netns, '-batch', '-'], { input: ['link set lo up', `addr add ${address}/24 dev eth0`, 'link set eth0 up'].join('\n') + '\n' });
      const root = await mkdtemp(path.join(tmpdir(), `berth-bench-ovl-${name}-`));
      const runroot = path.join('/run/berth', `b${path.basename(root).slice(-6)}`);
      dirs.push(root, runroot);
      const flags = ['--root', root, '--runroot', runroot, '--cluster-store', store, '--cluster-advertise', address];
      hosts.push({
        name, netnsPath, address, root, runroot,
        berth: (args, opts = {}) => nsenter(netnsPath, [process.execPath, BERTH_BIN, ...flags, ...args], { timeout: 60_000, ...opts }),
      });
    }
    log(`overlay: hosts ${hosts.map((h) => h.address).join(', ')}, etcd at ${store}`);
    for (const h of hosts) await h.berth(['image', 'default'], { timeout: 120_000 });
  } catch (err) {
    await remove().catch(() => undefined);
    throw err;
  }
  return { hosts: hosts as [BenchHost, BenchHost], remove };
}

/** The container's network namespace, as the host sees it. */
async function netnsOf(h: BenchHost, name: string): Promise<string> {
  const pid = (await h.berth(['inspect', '-f', '{{.State.Pid}}', name])).stdout.trim();
  if (!/^[1-9]\d*$/.test(pid)) throw new Error(`${h.name}: inspect ${name} printed no pid ("${pid}")`);
  return `/proc/${pid}/ns/net`;
}

/** The per-packet round trips (microseconds) of one `ping` run. */
async function pingRtts(fromNetns: string, to: string): Promise<number[]> {
  const { stdout } = await nsenter(fromNetns, ['busybox', 'ping', ...PINGS, to], { timeout: 30_000 });
  const rtts = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
  if (rtts.length === 0) throw new Error(`ping ${to} got no answer: ${stdout.trim().split('\n').at(-1) ?? ''}`);
  return rtts;
}

/**
 * Whether a process's netns has a TCP socket listening on `port` (its /proc/PID/net/tcp* are that
 * netns's). busybox nc -l binds the IPv6 wildcard when the kernel has IPv6, hence tcp6 too.
 */
async function listening(pid: number, port: number): Promise<boolean> {
  const local = new RegExp(`^\\s*\\d+: [0-9A-F]+:${port.toString(16).toUpperCase().padStart(4, '0')} [0-9A-F]+:0000 0A `, 'm');
  for (const table of ['tcp', 'tcp6']) {
    if (local.test(await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => ''))) return true;
  }
  return false;
}

/**
 * MB/s of `NC_BYTES` zeros sent by busybox nc from one netns to a listener in another, which counts what
 * it got. The clock runs from the sender's start to its exit: busybox nc shuts down its sending half at
 * the end of its input and exits when the listener, having read everything, closes. The listener's own
 * stdin is a pipe left open: at its end of input it would shut down its half, and the sender would quit
 * at once on that.
 */
async function ncThroughput(fromNetns: string, toNetns: string, toAddress: string): Promise<number> {
  const server = spawn('taskset', ['-c', RECEIVER_CPU, 'nsenter', `--net=${toNetns}`, 'sh', '-c', `busybox nc -l -p ${NC_PORT} | wc -c`], { stdio: ['pipe', 'pipe', 'ignore'] });
  server.on('error', () => {});
  let received = '';
  server.stdout!.on('data', (d: Buffer) => { received += d.toString(); });
  const serverDone = new Promise<number | null>((resolve) => server.once('close', (code) => resolve(code)));
  try {
    const deadline = now() + 10_000;
    while (!(server.pid && await listening(server.pid, NC_PORT))) {
      if (server.exitCode !== null || now() > deadline) throw new Error(`nc -l on ${toAddress}:${NC_PORT} did not start listening`);
      await sleep(10);
    }
    const ms = await timed(() => sh('taskset', ['-c', SENDER_CPU, 'nsenter', `--net=${fromNetns}`, 'sh', '-c', `head -c ${NC_BYTES} /dev/zero | busybox nc ${toAddress} ${NC_PORT}`], { timeout: 120_000 }));
    const code = await Promise.race([serverDone, sleep(5_000).then(() => 'timeout')]);
    if (code !== 0 || Number(received.trim()) !== NC_BYTES) {
      throw new Error(`the listener on ${toAddress} got ${received.trim() || 'nothing'} of ${NC_BYTES} bytes (exit ${String(code)})`);
    }
    return NC_BYTES / 1e6 / (ms / 1000);
  } finally {
    server.stdin!.end();
    await stopProcess(server);
  }
}

/** VmRSS (MB) of the cluster agent whose pid RUNROOT/cluster/agent.pid holds ("pid starttime"). */
async function agentRss(h: BenchHost): Promise<number> {
  const pid = Number((await readFile(path.join(h.runroot, 'cluster', 'agent.pid'), 'utf8')).trim().split(/\s+/)[0]);
  if (!Number.isInteger(pid) || pid < 1) throw new Error(`${h.name}: agent.pid holds no pid`);
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kb) throw new Error(`${h.name}: no VmRSS for the agent (pid ${pid})`);
  return Number(kb) / 1024;
}

export const overlay: Benchmark = {
  name: 'overlay',
  title: 'overlay network across two hosts (netns + etcd): ping RTT, nc throughput, attach time vs the underlay and a local bridge',
  defaultRuns: 5,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    ctx.log('overlay: two hosts, etcd, busybox in each root');
    const cluster = await makeCluster(ctx.log);
    try {
      const [a, b] = cluster.hosts;
      await a.berth(['network', 'create', '-d', 'overlay', '--subnet', '10.74.0.0/24', OVERLAY]);
      await a.berth(['network', 'create', '--subnet', '10.75.0.0/24', BRIDGE]);
      await a.berth(['run', '-d', '--name', 'alpha', '--network', OVERLAY, BERTH_IMAGE, 'sleep', '1d']);
      await b.berth(['run', '-d', '--name', 'beta', '--network', OVERLAY, BERTH_IMAGE, 'sleep', '1d']);
      const ipB = (await b.berth(['inspect', '-f', `{{(index .NetworkSettings.Networks "${OVERLAY}").IPAddress}}`, 'beta'])).stdout.trim();
      const nsA = await netnsOf(a, 'alpha');
      const nsB = await netnsOf(b, 'beta');
      // The first packets of a path learn neighbours; one untimed ping each way keeps that out of the RTTs.
      await nsenter(nsA, ['busybox', 'ping', '-c', '1', '-W', '3', ipB], { timeout: 10_000 });
      await nsenter(a.netnsPath, ['busybox', 'ping', '-c', '1', '-W', '3', b.address], { timeout: 10_000 });

      // Each run is 20 pings 0.2 s apart (4 s), so fewer rounds than the other parts keep the bench short.
      ctx.log('overlay: ping');
      const pingRounds = Math.min(ctx.runs, 3);
      const rttUnderlay: number[] = [];
      const rttOverlay: number[] = [];
      const rtt = await measureInterleaved(report, [
        { label: 'underlay ping RTT host->host', role: 'reference', run: () => pingRtts(a.netnsPath, b.address).then((r) => { rttUnderlay.push(...r); return 0; }) },
        { label: 'overlay ping RTT container->container', role: 'berth', run: () => pingRtts(nsA, ipB).then((r) => { rttOverlay.push(...r); return 0; }) },
      ], { runs: pingRounds, unit: 'us' });
      // Rows hold every packet's RTT, not one figure per run: the median is of the packets.
      for (const [row, all] of [[rtt[0]!, rttUnderlay], [rtt[1]!, rttOverlay]] as const) if (!row.error) row.samples.splice(0, row.samples.length, ...all);

      ctx.log('overlay: nc throughput');
      // Pairs, back to back, the order alternating: a single run of either side moves by up to 3x with the
      // machine's state (busybox nc is CPU-bound), which both sides of a pair share. The target is the
      // median of the pairs' ratios; the medians of each side are shown beside it.
      const underlayNc = report.add({ label: 'underlay nc 200 MB host->host', role: 'reference', unit: 'MB/s', samples: [] });
      const overlayNc = report.add({ label: 'overlay nc 200 MB container->container', role: 'berth', unit: 'MB/s', samples: [], vs: underlayNc.label });
      const ncRatio = report.add({ label: 'overlay / underlay nc (pairwise)', role: 'info', unit: 'x', samples: [], vs: null });
      const ncPairs = Math.max(ctx.runs, 7);
      for (let i = 0; i <= ncPairs; i++) {
        try {
          const sides = [() => ncThroughput(a.netnsPath, b.netnsPath, b.address), () => ncThroughput(nsA, nsB, ipB)];
          const order = i % 2 ? [1, 0] : [0, 1];
          const got: number[] = [];
          for (const k of order) got[k] = await sides[k]!();
          if (i === 0) continue; // warm-up pair
          underlayNc.samples.push(got[0]!);
          overlayNc.samples.push(got[1]!);
          ncRatio.samples.push(got[1]! / got[0]!);
        } catch (err) {
          for (const row of [underlayNc, overlayNc, ncRatio]) row.error = errorText(err);
          break;
        }
      }
      report.target('overlay nc throughput vs underlay (median of pairwise ratios)', () => report.median(ncRatio.label), '>=', 0.8, 'x');

      ctx.log('overlay: run -d on the overlay vs a local bridge');
      const bridgeRun = report.add({ label: 'run -d --network (local bridge)', role: 'reference', unit: 'ms', samples: [] });
      const overlayRun = report.add({ label: 'run -d --network (overlay)', role: 'berth', unit: 'ms', samples: [], vs: bridgeRun.label });
      const delta = report.add({ label: 'attach cost overlay - bridge (pairwise)', role: 'info', unit: 'ms', samples: [], vs: null });
      for (let i = 0; i < ctx.runs + 1; i++) {
        try {
          const t: number[] = [];
          for (const [net, name] of [[BRIDGE, `br${i}`], [OVERLAY, `ov${i}`]]) {
            t.push(await timed(() => a.berth(['run', '-d', '--name', name!, '--network', net!, BERTH_IMAGE, 'sleep', '1d'])));
            await a.berth(['rm', '-f', name!], { timeout: 60_000 });
          }
          if (i === 0) continue; // warm-up: the first overlay endpoint on a host also makes its bridge and VXLAN device
          bridgeRun.samples.push(t[0]!);
          overlayRun.samples.push(t[1]!);
          delta.samples.push(t[1]! - t[0]!);
        } catch (err) {
          for (const row of [bridgeRun, overlayRun, delta]) row.error = errorText(err);
          break;
        }
      }

      for (const h of cluster.hosts) {
        const row = report.add({ label: `cluster agent RSS (${h.name})`, role: 'info', unit: 'MB', samples: [] });
        try {
          row.samples.push(await agentRss(h));
        } catch (err) {
          row.error = errorText(err);
        }
      }
      report.note(`ping ${PINGS.join(' ')} x ${pingRounds} rounds per side (medians of the packets); nc and ping run via nsenter in the host's or the container's netns`);
    } finally {
      await cluster.remove();
    }
    return report;
  },
};
