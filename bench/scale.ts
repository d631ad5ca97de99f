/**
 * Issue 20, "cost that does not grow with the work": one root, and the commands a user waits for timed
 * with no other container and again with 2N in the root; `rm -f` of N against podman's; N containers
 * started on one user-defined network against a single `run -d` on an empty one. Podman beside, on its
 * own store, for each part.
 */
import { BERTH_IMAGE, BerthRoot } from './berth.js';
import { type Benchmark, containerIdFrom, deferCleanup, errorText, now, type PeerCli, Report, type Role, type Row, timed } from './lib.js';

/** `run -d` calls in flight while the root is filled: enough to keep both cores busy, few enough not to time out. */
const FILL_BATCH = 8;
/** Subnets no other benchmark or default uses (MACHINE-NOTES: podman's and Berth's defaults overlap). */
const SUBNETS = { berth: '10.231.7.0/24', podman: '10.231.8.0/24' } as const;
const NETWORK = 'berth-bench-scale';
const SLEEP = ['sleep', '1000'];
const LONG = { timeout: 300_000 };

interface Engine {
  label: 'berth' | 'podman';
  role: Role;
  image: string;
  forceRemove: readonly string[];
  cli(args: readonly string[], opts?: { timeout?: number }): Promise<{ stdout: string }>;
  /** Every container this benchmark started and has not removed yet, for the clean-up. */
  live: Set<string>;
  /** Removes what is left (containers, the network); also runs on Ctrl-C. */
  dispose?: () => Promise<void>;
}

async function runDetached(e: Engine, args: readonly string[]): Promise<string> {
  const id = containerIdFrom((await e.cli(['run', '-d', ...args, e.image, ...SLEEP])).stdout);
  e.live.add(id);
  return id;
}

async function removeAll(e: Engine, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await e.cli([...e.forceRemove, ...ids], LONG);
  for (const id of ids) e.live.delete(id);
}

const OPS = ['run -d', 'ps -a', 'inspect', 'rm -f (one)'] as const;
type Op = (typeof OPS)[number];

function opLabel(e: Engine, op: Op, phase: string): string {
  return `${e.label} ${op} (${phase})`;
}

/** `runs` rounds of: `run -d` one container, `ps -a`, `inspect` it, `rm -f` it; each command its own row. */
async function measureOps(report: Report, e: Engine, phase: string, runs: number, vs?: (op: Op) => string): Promise<void> {
  const rows = Object.fromEntries(OPS.map((op) => [op, report.add({ label: opLabel(e, op, phase), role: e.role, unit: 'ms', samples: [], vs: vs ? vs(op) : null })])) as Record<Op, Row>;
  // One untimed round first: page cache, lazily loaded modules.
  for (let i = 0; i < runs + 1; i++) {
    const sample = (op: Op, ms: number) => { if (i > 0) rows[op].samples.push(ms); };
    let id: string | undefined;
    try {
      const t = now();
      id = await runDetached(e, ['--network', 'none']);
      sample('run -d', now() - t);
      sample('ps -a', await timed(() => e.cli(['ps', '-a'])));
      sample('inspect', await timed(() => e.cli(['inspect', id!])));
      sample('rm -f (one)', await timed(() => removeAll(e, [id!])));
    } catch (err) {
      for (const row of Object.values(rows)) row.error = errorText(err);
      if (id && e.live.has(id)) await removeAll(e, [id]).catch(() => undefined);
      return;
    }
  }
}

/** `count` detached `--network none` containers, FILL_BATCH at a time; untimed set-up, its time shown for context. */
async function fill(report: Report, e: Engine, count: number): Promise<string[]> {
  const row = report.add({ label: `${e.label} fill ${count} (batches of ${FILL_BATCH}, context)`, role: 'info', unit: 's', samples: [], vs: null });
  const ids: string[] = [];
  const t = now();
  for (let done = 0; done < count; done += FILL_BATCH) {
    const batch = Array.from({ length: Math.min(FILL_BATCH, count - done) }, () => runDetached(e, ['--network', 'none']));
    ids.push(...(await Promise.all(batch)));
  }
  row.samples.push((now() - t) / 1000);
  return ids;
}

/** The ops with none and with `2 * n` containers, then `rm -f` of `n` of them timed, the rest untimed. */
async function measureGrowth(report: Report, e: Engine, n: number, runs: number): Promise<void> {
  const full = `${2 * n} in root`;
  await measureOps(report, e, 'empty', runs);
  const rmRow = report.add({ label: `${e.label} rm -f of ${n}`, role: e.role, unit: 's', samples: [], vs: null });
  try {
    const ids = await fill(report, e, 2 * n);
    await measureOps(report, e, full, runs, (op) => opLabel(e, op, 'empty'));
    const t = now();
    await removeAll(e, ids.slice(0, n));
    rmRow.samples.push((now() - t) / 1000);
  } catch (err) {
    rmRow.error = errorText(err);
  } finally {
    await removeAll(e, [...e.live]).catch((err) => { rmRow.error ??= `clean-up: ${errorText(err)}`; });
    report.rows.push(...report.rows.splice(report.rows.indexOf(rmRow), 1)); // after the fill and the 2N rows
  }
}

/**
 * A single `run -d` on an empty user-defined network (`runs` times, each removed untimed), then `n`
 * containers started one after another on it: per-container start against the single one.
 */
async function measureNetwork(report: Report, e: Engine, n: number, runs: number): Promise<void> {
  const single = report.add({ label: `${e.label} run -d --network NET (empty network)`, role: e.role, unit: 'ms', samples: [], vs: null });
  const each = report.add({ label: `${e.label} run -d --network NET (each of ${n})`, role: e.role, unit: 'ms', samples: [], vs: single.label });
  let created = false;
  try {
    await e.cli(['network', 'create', '--subnet', SUBNETS[e.label], NETWORK]);
    created = true;
    for (let i = 0; i < runs + 1; i++) {
      const t = now();
      const id = await runDetached(e, ['--network', NETWORK]);
      if (i > 0) single.samples.push(now() - t);
      await removeAll(e, [id]);
    }
  } catch (err) {
    single.error = each.error = errorText(err);
  }
  try {
    if (!single.error) {
      for (let i = 0; i < n; i++) each.samples.push(await timed(() => runDetached(e, ['--network', NETWORK])));
    }
  } catch (err) {
    each.error = errorText(err);
  } finally {
    await removeAll(e, [...e.live]).catch((err) => { each.error ??= `clean-up: ${errorText(err)}`; });
    if (created) await e.cli(['network', 'rm', NETWORK]).catch((err) => { each.error ??= `network rm: ${errorText(err)}`; });
  }
}

function podmanEngine(peer: PeerCli): Engine {
  const e: Engine = { label: 'podman', role: 'peer', image: peer.image, forceRemove: peer.forceRemove, cli: (args, opts) => peer.cli(args, opts), live: new Set() };
  // The peer's own clean-up removes every container at exit; the network is this benchmark's.
  e.dispose = deferCleanup(async () => {
    await removeAll(e, [...e.live]).catch(() => undefined);
    await e.cli(['network', 'rm', '-f', NETWORK]).catch(() => undefined);
  });
  return e;
}

export const scale: Benchmark = {
  name: 'scale',
  title: 'run -d, ps -a, inspect, rm with none and with 2N containers in one root; rm -f of N; N on one network (and podman)',
  defaultRuns: 5,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const n = ctx.containers;
    const berth = await BerthRoot.create('scale');
    const engines: Engine[] = [];
    try {
      await berth.ensureImage().catch((err) => ctx.log(`${this.name}: image default failed: ${errorText(err)}`));
      engines.push({ label: 'berth', role: 'berth', image: BERTH_IMAGE, forceRemove: ['rm', '-f'], cli: (args, opts) => berth.cli(args, opts), live: new Set() });
      berth.networks.push(NETWORK); // for the root's clean-up, should the network part fail half-way
      const podman = (await ctx.peers()).find((p) => p.name === 'podman');
      if (podman) engines.push(podmanEngine(podman));
      for (const e of engines) {
        ctx.log(`${this.name}: ${e.label}: commands with none and with ${2 * n} containers, rm -f of ${n}`);
        await measureGrowth(report, e, n, ctx.runs);
      }
      for (const e of engines) {
        ctx.log(`${this.name}: ${e.label}: ${n} containers on one network`);
        await measureNetwork(report, e, n, ctx.runs);
      }

      for (const op of OPS) {
        report.target(`berth ${op} with ${2 * n} containers within 10% of none`,
          () => report.median(opLabel(engines[0]!, op, `${2 * n} in root`)) / report.median(opLabel(engines[0]!, op, 'empty')), '<=', 1.1, 'x');
      }
      report.target(`rm -f of ${n} <= 0.8x podman's (rm -f -t 0)`, () => report.median(`berth rm -f of ${n}`) / report.peerMedian(`podman rm -f of ${n}`), '<=', 0.8, 'x');
      report.target(`${n} on one network: each start no slower than a single run -d on an empty network`,
        () => report.median(`berth run -d --network NET (each of ${n})`) / report.median('berth run -d --network NET (empty network)'), '<=', 1, 'x');
      report.note(`each op row: ${ctx.runs} rounds of run -d --network none, ps -a, inspect, rm -f of that one container (one untimed round first); with ${2 * n} the ratio is to the same op with none`);
      report.note(`the root is filled with ${2 * n} detached --network none busybox sleep containers, ${FILL_BATCH} at a time (untimed); rm -f of ${n} is one command naming them`);
      report.note(`network part: ${n} run -d started one after another on a user-defined network (berth ${SUBNETS.berth}, podman ${SUBNETS.podman}); the ratio is to a single run -d on it while empty`);
    } finally {
      for (const e of engines) await e.dispose?.();
      await berth.cleanup();
    }
    return report;
  },
};
