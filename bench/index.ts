/**
 * Berth's benchmarks: `npm run bench -- [--only NAME[,NAME]] [--runs N] [--no-peers] [--strict] [--containers N]`.
 * Each benchmark measures its reference in the same run and prints medians, p90, ratios and targets.
 * Exit code: 0, unless --strict and a target failed or could not be measured.
 */
import { parseArgs } from 'node:util';
import { build } from './build.js';
import { cliStartup } from './cli-startup.js';
import { commitChanged, copyBoth } from './copy-commit.js';
import { copyUp } from './copy-up.js';
import { busyboxFixture } from './fixtures.js';
import { importUnpack } from './import-unpack.js';
import { loadMemory } from './load-memory.js';
import { type BenchContext, type Benchmark, errorText, formatReport, interruptRun, type PeerCli, Report, runPendingCleanups } from './lib.js';
import { monitorMemory } from './monitor-memory.js';
import { mountDeep } from './mount-deep.js';
import { network } from './network.js';
import { overlay } from './overlay.js';
import { installedPeers, startPeers } from './peers.js';
import { registryPull, registryPush } from './registry.js';
import { remote } from './remote.js';
import { runNone } from './run-none.js';
import { scale } from './scale.js';
import { service } from './service.js';
import { run50Detached } from './run-50-detached.js';
import { userns } from './userns.js';

/** Every benchmark, in the order a full run takes them. */
const BENCHMARKS: readonly Benchmark[] = [cliStartup, importUnpack, loadMemory, mountDeep, runNone, run50Detached, monitorMemory, network, scale, overlay, copyBoth, commitChanged, copyUp, registryPull, registryPush, build, service, remote, userns];

const USAGE = `usage: npm run bench -- [options]
  --only NAME[,NAME]  run only these benchmarks (${BENCHMARKS.map((b) => b.name).join(', ')})
  --runs N            iterations per measurement (default: per benchmark, see --list)
  --no-peers          skip podman and docker (measured by default when installed; a temporary dockerd
                      is started if none runs); --peers asks for them even when neither is found
  --containers N      containers in network's and scale's many-container parts (default 100; scale fills 2N)
  --strict            exit 1 when a target fails or cannot be measured
  --list              list the benchmarks and exit`;

interface Cli {
  only?: string[];
  runs?: number;
  /** true: measure the peers; false: --no-peers; undefined: when podman or docker is installed */
  peers: boolean | undefined;
  strict: boolean;
  containers: number;
  list: boolean;
}

function positive(name: string, text: string | undefined, fallback?: number): number | undefined {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} wants a positive integer, not "${text}"`);
  return n;
}

function parseCli(argv: string[]): Cli {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string', multiple: true },
      runs: { type: 'string' },
      peers: { type: 'boolean' },
      'no-peers': { type: 'boolean' },
      strict: { type: 'boolean', default: false },
      containers: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = values.only?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const name of only ?? []) {
    if (!BENCHMARKS.some((b) => b.name === name)) throw new Error(`no benchmark "${name}"; there are: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  }
  if (values.peers && values['no-peers']) throw new Error('--peers and --no-peers contradict each other');
  return {
    only,
    runs: positive('runs', values.runs),
    peers: values['no-peers'] ? false : values.peers,
    strict: values.strict ?? false,
    containers: positive('containers', values.containers, 100) as number,
    list: values.list ?? false,
  };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main(): Promise<number> {
  let cli: Cli;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (err) {
    console.error(`${errorText(err)}\n${USAGE}`);
    return 2;
  }
  if (cli.list) {
    for (const b of BENCHMARKS) console.log(`${b.name.padEnd(18)} runs ${String(b.defaultRuns).padStart(2)}  ${b.title}`);
    return 0;
  }
  if (process.getuid?.() !== 0) log('not root: container, mount and network sides will fail (n/a)');

  // Issue 20: peers measured in the same run are the only reference a peer target may use, so they are
  // the normal mode wherever they are installed.
  const withPeers = cli.peers ?? (await installedPeers()).length > 0;
  log(withPeers ? 'peers: podman and docker measured where installed (--no-peers to skip)'
    : cli.peers === false ? 'peers: skipped (--no-peers); peer targets are n/a' : 'peers: neither podman nor docker installed (scripts/setup.sh --peers); peer targets are n/a');
  let peers: Promise<PeerCli[]> | undefined;
  const getPeers = (): Promise<readonly PeerCli[]> => {
    if (!withPeers) return Promise.resolve([]);
    peers ??= busyboxFixture().then((f) => startPeers(f.tarball, log));
    return peers;
  };

  const selected = BENCHMARKS.filter((b) => !cli.only || cli.only.includes(b.name));
  const reports: Report[] = [];
  const started = Date.now();
  for (const bench of selected) {
    const ctx: BenchContext = { runs: cli.runs ?? bench.defaultRuns, containers: cli.containers, peers: getPeers, log };
    log(`${bench.name}: ${bench.title} (${ctx.runs} runs)`);
    let report: Report;
    try {
      report = await bench.run(ctx);
    } catch (err) {
      // A benchmark that crashed still gets a report, so the run goes on to the next one.
      report = new Report(bench.name, bench.title);
      report.add({ label: 'benchmark', role: 'info', unit: 'ms', samples: [], error: errorText(err) });
      report.targets.push({ description: 'benchmark ran', actual: `n/a: ${errorText(err)}`, verdict: 'n/a' });
    }
    reports.push(report);
    console.log(`${formatReport(report)}\n`);
  }
  await runPendingCleanups(log);

  const targets = reports.flatMap((r) => r.targets.map((t) => ({ ...t, bench: r.name })));
  const count = (v: string) => targets.filter((t) => t.verdict === v).length;
  console.log(`== summary: ${count('PASS')} pass, ${count('FAIL')} fail, ${count('n/a')} n/a; ${((Date.now() - started) / 1000).toFixed(0)} s`);
  for (const t of targets.filter((x) => x.verdict !== 'PASS')) console.log(`  [${t.verdict.padEnd(4)}] ${t.bench}: ${t.description}`);
  return cli.strict && count('PASS') !== targets.length ? 1 : 0;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    interruptRun();
    log(`${signal}: cleaning up (again to quit at once)`);
    void runPendingCleanups(log).finally(() => process.exit(130));
  });
}

process.exitCode = await main();
