import http from 'node:http';
import net from 'node:net';
import { BERTH_IMAGE, BerthRoot } from './berth.js';
import { type Benchmark, containerIdFrom, type BenchContext, errorText, now, type PeerCli, Report, type Role, sleep, timed } from './lib.js';

/** httpd needs a file to serve; the script writes one first. */
const HTTPD = ['sh', '-c', 'echo ok > /tmp/index.html; exec httpd -f -p 80 -h /tmp'];
const HTTP_DEADLINE_MS = 10_000;
const SCALE_DEADLINE_MS = 150_000;
const NETWORK = 'berth-bench-net';

interface Cli {
  label: string;
  role: Role;
  image: string;
  forceRemove: readonly string[];
  cli(args: readonly string[]): Promise<{ stdout: string }>;
}

// ---------------------------------------------------------------- bridge set-up and tear-down

/**
 * `run --rm IMG true` on the default bridge and with `--network none`, interleaved so drift hits both;
 * each pair's difference is the network's set-up plus tear-down.
 */
async function measureBridgeCost(report: Report, side: Cli, runs: number): Promise<void> {
  const none = report.add({ label: `${side.label} run --rm --network none`, role: side.role, unit: 'ms', samples: [], vs: null });
  const bridge = report.add({ label: `${side.label} run --rm (bridge)`, role: side.role, unit: 'ms', samples: [], vs: none.label });
  const delta = report.add({ label: `${side.label} bridge cost (pairwise)`, role: side.role, unit: 'ms', samples: [], vs: null });
  for (let i = 0; i < runs + 1; i++) {
    try {
      const a = await timed(() => side.cli(['run', '--rm', '--network', 'none', side.image, 'true']));
      const b = await timed(() => side.cli(['run', '--rm', side.image, 'true']));
      if (i === 0) continue; // warm-up: the first bridge run also creates the bridge
      none.samples.push(a);
      bridge.samples.push(b);
      delta.samples.push(b - a);
    } catch (err) {
      for (const row of [none, bridge, delta]) row.error = errorText(err);
      return;
    }
  }
}

// ---------------------------------------------------------------- published port to first answer

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One GET with short timeouts: true for a 200 whose body is the file httpd serves. */
function httpOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 250 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'ok'));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function waitForHttp(port: number): Promise<void> {
  const deadline = now() + HTTP_DEADLINE_MS;
  while (!(await httpOk(port))) {
    if (now() > deadline) throw new Error(`no good HTTP answer on 127.0.0.1:${port} within ${HTTP_DEADLINE_MS} ms`);
    await sleep(5);
  }
}

/** `run -d -p 127.0.0.1:P:80 IMG httpd` until the first good HTTP answer; the container goes untimed. */
async function measurePublish(report: Report, side: Cli, runs: number): Promise<void> {
  const row = report.add({ label: `${side.label} run -d -p ... to first answer`, role: side.role, unit: 'ms', samples: [], vs: null });
  for (let i = 0; i < runs; i++) {
    let id: string | undefined;
    try {
      const port = await freePort();
      const t0 = now();
      id = containerIdFrom((await side.cli(['run', '-d', '-p', `127.0.0.1:${port}:80`, side.image, ...HTTPD])).stdout);
      await waitForHttp(port);
      row.samples.push(now() - t0);
    } catch (err) {
      row.error = errorText(err);
      return;
    } finally {
      if (id) await side.cli([...side.forceRemove, id]).catch(() => undefined);
    }
  }
}

// ---------------------------------------------------------------- many containers on one network

/**
 * Each container pings three others by name. 'bad address' means the name did not resolve; a lost
 * ping after a resolved name still counts as resolved (the check is about names, not ICMP).
 */
const NAME_CHECK = 'for n in "$@"; do out=$(ping -c1 -W1 "$n" 2>&1); case "$out" in *"bad address"*) echo "unresolved $n";; *) echo "resolved $n";; esac; done';

async function measureScale(report: Report, berth: BerthRoot, count: number, log: (m: string) => void): Promise<void> {
  const startRow = report.add({ label: `start ${count} on one network`, role: 'berth', unit: 's', samples: [] });
  const each = report.add({ label: 'run -d --network NET (each)', role: 'berth', unit: 'ms', samples: [], vs: null });
  const check = report.add({ label: 'exec name check of 3 peers (each)', role: 'berth', unit: 'ms', samples: [], vs: null });
  const unresolved = report.add({ label: 'names not resolved', role: 'berth', unit: 'count', samples: [] });
  const names: string[] = [];
  const deadline = now() + SCALE_DEADLINE_MS;
  try {
    await berth.cli(['network', 'create', NETWORK]);
    berth.networks.push(NETWORK);
    const t0 = now();
    for (let i = 0; i < count && now() < deadline; i++) {
      const name = `bn${i}`;
      each.samples.push(await timed(() => berth.cli(['run', '-d', '--network', NETWORK, '--name', name, BERTH_IMAGE, 'sleep', '1000'])));
      names.push(name);
    }
    startRow.samples.push((now() - t0) / 1000);
    if (names.length < count) report.note(`only ${names.length} of ${count} containers started within ${SCALE_DEADLINE_MS / 1000} s`);
    log(`network: ${names.length} containers up, checking names`);
  } catch (err) {
    startRow.error = each.error = errorText(err);
  }
  let failures = 0;
  let checked = 0;
  const n = names.length;
  try {
    if (n < 4) throw new Error(`${n} containers running: too few to check names`);
    const checkDeadline = now() + SCALE_DEADLINE_MS;
    for (let i = 0; i < n && now() < checkDeadline; i++) {
      const others = [1, Math.floor(n / 3), Math.floor((2 * n) / 3)].map((k) => names[(i + k) % n] as string);
      const t = now();
      const { stdout } = await berth.cli(['exec', names[i] as string, 'sh', '-c', NAME_CHECK, 'sh', ...others], { timeout: 20_000 });
      check.samples.push(now() - t);
      checked += others.length;
      failures += stdout.split('\n').filter((l) => !l.startsWith('resolved ')).filter(Boolean).length;
    }
    unresolved.samples.push(failures);
    report.note(`name check: ${checked - failures} of ${checked} sampled names resolved (each container looks up 3 others)`);
  } catch (err) {
    check.error = unresolved.error = errorText(err);
  }
}

// ---------------------------------------------------------------- the benchmark

function peerCli(peer: PeerCli): Cli {
  return { label: peer.name, role: 'peer', image: peer.image, forceRemove: peer.forceRemove, cli: (args) => peer.cli(args) };
}

async function berthParts(ctx: BenchContext, tag: string, fn: (berth: BerthRoot, side: Cli) => Promise<void>): Promise<void> {
  const berth = await BerthRoot.create(tag);
  try {
    await berth.ensureImage().catch((err) => ctx.log(`network: image default failed: ${errorText(err)}`));
    await fn(berth, { label: 'berth', role: 'berth', image: BERTH_IMAGE, forceRemove: ['rm', '-f'], cli: (args) => berth.cli(args) });
  } finally {
    await berth.cleanup();
  }
}

/** Bridge set-up cost per container, published port to first answer, and many containers finding each other. */
export const network: Benchmark = {
  name: 'network',
  title: 'bridge cost per container, -p to first HTTP answer, N containers on one network',
  defaultRuns: 8,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const publishRuns = Math.max(1, Math.min(ctx.runs, 5));
    await berthParts(ctx, 'net', async (_berth, side) => {
      await measureBridgeCost(report, side, ctx.runs);
      await measurePublish(report, side, publishRuns);
    });
    for (const peer of await ctx.peers()) {
      await measureBridgeCost(report, peerCli(peer), ctx.runs);
      await measurePublish(report, peerCli(peer), publishRuns);
    }
    report.quote('podman run -d -p ... to first answer', 'ms', 197);
    report.quote('docker run -d -p ... to first answer', 'ms', 298);
    await berthParts(ctx, 'net-scale', (berth) => measureScale(report, berth, ctx.containers, ctx.log));

    report.target('bridge set-up + tear-down <= 15 ms per container', () => report.median('berth bridge cost (pairwise)'), '<=', 15, 'ms');
    const publishLabels = ['podman', 'docker'].map((p) => `${p} run -d -p ... to first answer`);
    report.target('-p first answer <= 0.8x the faster peer', () => {
      const fastest = report.fastestPeer(publishLabels);
      report.note(`-p target compared with ${fastest.label.split(' ')[0]} (the faster of ${fastest.measured} of ${publishLabels.length} peers measured in this run)`);
      return report.median('berth run -d -p ... to first answer') / fastest.median;
    }, '<=', 0.8, 'x');
    report.target('every sampled name resolves', () => report.figure('names not resolved', 'max'), '<=', 0, 'count');
    report.note('bridge cost = bridge run minus --network none run, paired; it includes the kernel\'s veth/netns work, so it bounds Berth\'s own share from above');
    report.note(`the ${ctx.containers}-container part runs for berth only (peers would double the time budget)`);
    return report;
  },
};
