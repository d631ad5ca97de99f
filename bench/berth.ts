/**
 * Berth as the benchmarks see it: the CLI on a fresh temporary root, and the programmatic API loaded
 * from the build. Both fail soft: until the engine lands, a Berth side prints 'n/a: <error>'.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineApi, EngineOptions } from '../src/api/types.js';
import { hostNames, resolveLayout } from '../src/paths.js';
import type { CommandOptions, CommandResult } from '../src/util/exec.js';
import { type Argv, containerIdFrom, deferCleanup, errorText, forEachSoft, removeTree, scratch, sh, sleep } from './lib.js';

/** bin/berth.js, from dist/bench/ */
export const BERTH_BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
/** The embedded image `berth image default` builds (localhost/busybox:latest). */
export const BERTH_IMAGE = 'busybox';

export class BerthRoot {
  readonly runroot: string;
  readonly runcRoot: string;
  /** User-defined networks a benchmark created, removed before the root goes. */
  readonly networks: string[] = [];
  readonly cleanup: () => Promise<void>;
  /** The root's default bridge and iptables chain prefix (derived from its path: paths.ts hostNames). */
  private readonly host: { bridgeName: string; chainPrefix: string };

  private constructor(readonly root: string) {
    const layout = resolveLayout({ root });
    this.runroot = layout.runroot;
    this.runcRoot = layout.runc;
    this.host = hostNames(root);
    this.cleanup = deferCleanup(() => this.teardown());
  }

  /** A fresh root under /tmp (and its own runroot, derived from the root's path by the engine). */
  static async create(tag: string): Promise<BerthRoot> {
    const { dir } = await scratch(`berth-${tag}`);
    return new BerthRoot(dir);
  }

  cli(args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
    const cmd = this.argv(args);
    return sh(cmd.file, cmd.args, { timeout: 60_000, ...opts });
  }

  /** The command line `cli(args)` runs. */
  argv(args: readonly string[]): Argv {
    return { file: process.execPath, args: [BERTH_BIN, '--root', this.root, ...args] };
  }

  /** Builds the embedded busybox image into this root (untimed set-up of most benchmarks). */
  async ensureImage(): Promise<void> {
    await this.cli(['image', 'default'], { timeout: 120_000 });
  }

  /** `run -d ...`: the new container's id (docker prints it alone on stdout). */
  async runDetached(args: readonly string[], opts: CommandOptions = {}): Promise<string> {
    return containerIdFrom((await this.cli(['run', '-d', ...args], opts)).stdout);
  }

  /** `inspect ID` parsed (docker prints a one-element array). */
  async inspect(ref: string): Promise<Record<string, unknown>> {
    const { stdout } = await this.cli(['inspect', ref]);
    const parsed = JSON.parse(stdout) as unknown;
    const first = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!first || typeof first !== 'object') throw new Error(`berth inspect ${ref} printed no object`);
    return first as Record<string, unknown>;
  }

  /**
   * Removes everything the root made on the host: Berth's own way first (`rm -f`, `network rm`,
   * `system reset`), then fallbacks for what a failing engine left: runc containers, processes still
   * naming the root (monitors, name servers, late `container cleanup` runs), the root's bridge and
   * chains, mounts and folders.
   */
  private async teardown(): Promise<void> {
    const ids = await this.cli(['ps', '-aq'], { timeout: 30_000 }).then((r) => r.stdout.split('\n').map((l) => l.trim()).filter(Boolean), () => []);
    if (ids.length) await this.cli(['rm', '-f', ...ids], { timeout: 180_000 }).catch(() => undefined);
    await forEachSoft(this.networks, (n) => this.cli(['network', 'rm', n], { timeout: 30_000 }));
    await this.cli(['system', 'reset', '-f'], { timeout: 120_000 }).catch(() => undefined);
    await this.deleteLeftoverRunc();
    await stopProcessesNaming([this.root, this.runroot]);
    // The default root's names (berth0, BERTH-*) are shared with real use: never removed from here.
    if (this.host.chainPrefix !== 'BERTH') {
      if (existsSync(`/sys/class/net/${this.host.bridgeName}`)) await sh('ip', ['link', 'del', this.host.bridgeName], { timeout: 10_000 }).catch(() => undefined);
      await deleteChains(this.host.chainPrefix).catch(() => undefined);
    }
    await removeTree(this.root);
    await removeTree(this.runroot);
  }

  private async deleteLeftoverRunc(): Promise<void> {
    const { stdout } = await sh('runc', ['--root', this.runcRoot, 'list', '-q'], { timeout: 15_000 }).catch(() => ({ stdout: '' }));
    const ids = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    await forEachSoft(ids, (id) => sh('runc', ['--root', this.runcRoot, 'delete', '-f', id], { timeout: 15_000 }));
  }
}

/**
 * Waits up to 5 s for processes whose command line names one of `dirs` (monitors, name servers, the
 * `container cleanup` a monitor runs after its container died), then kills what is left: all were
 * started for this bench's temp root, and one still running would recreate folders after `rm -rf`.
 */
export async function stopProcessesNaming(dirs: readonly string[]): Promise<void> {
  const naming = async () => (await listProcesses()).filter((p) => p.pid !== process.pid
    && dirs.some((d) => p.cmdline.includes(d + '/') || p.cmdline.includes(d + ' ') || p.cmdline.endsWith(d)));
  for (let waited = 0; waited < 5_000 && (await naming()).length > 0; waited += 100) await sleep(100);
  for (const proc of await naming()) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/**
 * Flushes and deletes the iptables chains named `<prefix>-*` and the rules elsewhere that jump to them,
 * in one iptables-restore per table. Only for a bench root's own prefix, which no other root shares.
 */
export async function deleteChains(prefix: string): Promise<void> {
  const mine = (chain: string | undefined) => !!chain && chain.startsWith(`${prefix}-`);
  // raw too: Berth's firewall keeps a PREROUTING chain there (loopback traffic from its bridges dropped).
  for (const table of ['filter', 'nat', 'raw']) {
    const lines = (await sh('iptables-save', ['-t', table], { timeout: 20_000 })).stdout.split('\n');
    const chains = lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]).filter(mine) as string[];
    if (chains.length === 0) continue;
    const jumps = lines.filter((l) => {
      const words = l.split(' ');
      const target = words.findIndex((w) => w === '-j' || w === '-g');
      return words[0] === '-A' && !mine(words[1]) && target > 0 && mine(words[target + 1]);
    });
    const script = [`*${table}`, ...jumps.map((l) => `-D${l.slice(2)}`), ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''];
    await sh('iptables-restore', ['--noflush'], { input: script.join('\n'), timeout: 20_000 });
  }
}

export interface ProcessInfo {
  pid: number;
  cmdline: string;
}

/** What `pgrep -f` sees: every process with its command line, arguments joined by spaces. */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const out: ProcessInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const raw = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (raw) out.push({ pid: Number(entry), cmdline: raw.replace(/\0+$/, '').split('\0').join(' ') });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Files named `name` at most `depth` folders below `dir` whose path contains `needle`. */
export async function findFiles(dir: string, name: string, needle: string, depth = 4): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string, left: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isFile() && e.name === name && p.includes(needle)) found.push(p);
      else if (e.isDirectory() && left > 0 && !['diff', 'merged', 'rootfs', 'upper', 'work', 'blobs'].includes(e.name)) await walk(p, left - 1);
    }
  };
  await walk(dir, depth);
  return found;
}

type EngineCtor = new (opts: EngineOptions) => EngineApi;

/**
 * The Engine class from the build (dist/src/api/index.js). Loaded by a computed path on purpose, so the
 * benchmarks type-check and run while the engine is still being written; a missing engine makes only
 * the API side n/a.
 */
export async function loadEngine(): Promise<EngineCtor> {
  const url = new URL('../src/api/index.js', import.meta.url).href;
  try {
    const mod = (await import(url)) as { Engine?: EngineCtor };
    if (typeof mod.Engine !== 'function') throw new Error('dist/src/api/index.js exports no Engine');
    return mod.Engine;
  } catch (err) {
    throw new Error(`cannot load the Berth API: ${errorText(err)}`);
  }
}
