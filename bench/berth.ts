/**
 * Berth as the benchmarks see it: the CLI on a fresh temporary root, and the programmatic API loaded
 * from the build. Both fail soft: until the engine lands, a Berth side prints 'n/a: <error>'.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineApi, EngineOptions } from '../src/api/types.js';
import { resolveLayout } from '../src/paths.js';
import type { RunOptions, RunResult } from '../src/util/exec.js';
import { containerIdFrom, deferCleanup, errorText, forEachSoft, removeTree, scratch, sh } from './lib.js';

/** bin/berth.js, from dist/bench/ */
export const BERTH_BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
/** The embedded image `berth image default` builds (localhost/busybox:latest). */
export const BERTH_IMAGE = 'busybox';

export class BerthRoot {
  readonly runroot: string;
  readonly runcRoot: string;
  /** User-defined networks a benchmark created, removed before the root goes. */
  readonly networks: string[] = [];
  private bridgeName?: string;
  readonly cleanup: () => Promise<void>;

  private constructor(readonly root: string) {
    const layout = resolveLayout({ root });
    this.runroot = layout.runroot;
    this.runcRoot = layout.runc;
    this.cleanup = deferCleanup(() => this.teardown());
  }

  /** A fresh root under /tmp (and its own runroot, derived from the root's path by the engine). */
  static async create(tag: string): Promise<BerthRoot> {
    const { dir } = await scratch(`berth-${tag}`);
    return new BerthRoot(dir);
  }

  cli(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return sh(process.execPath, [BERTH_BIN, '--root', this.root, ...args], { timeout: 60_000, ...opts });
  }

  /** Builds the embedded busybox image into this root (untimed set-up of most benchmarks). */
  async ensureImage(): Promise<void> {
    await this.cli(['image', 'default'], { timeout: 120_000 });
  }

  /** `run -d ...`: the new container's id (docker prints it alone on stdout). */
  async runDetached(args: readonly string[], opts: RunOptions = {}): Promise<string> {
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
   * Removes everything the root made on the host: containers (through Berth, then runc and any process
   * still naming the root, as a fallback), networks, the root's default bridge, mounts and folders.
   */
  private async teardown(): Promise<void> {
    await this.rememberBridge();
    const ids = await this.cli(['ps', '-aq'], { timeout: 30_000 }).then((r) => r.stdout.split('\n').map((l) => l.trim()).filter(Boolean), () => []);
    if (ids.length) await this.cli(['rm', '-f', ...ids], { timeout: 180_000 }).catch(() => undefined);
    await forEachSoft(this.networks, (n) => this.cli(['network', 'rm', n], { timeout: 30_000 }));
    await this.cli(['system', 'prune', '-a', '-f'], { timeout: 60_000 }).catch(() => undefined);
    await this.deleteLeftoverRunc();
    await killProcessesNaming([this.root, this.runroot]);
    if (this.bridgeName) await sh('ip', ['link', 'del', this.bridgeName], { timeout: 10_000 }).catch(() => undefined);
    await removeTree(this.root);
    await removeTree(this.runroot);
  }

  /** The root's default bridge, read while the store still exists (its name derives from the root). */
  private async rememberBridge(): Promise<void> {
    try {
      const { stdout } = await this.cli(['network', 'inspect', 'bridge'], { timeout: 15_000 });
      const parsed = JSON.parse(stdout) as unknown;
      const net = (Array.isArray(parsed) ? parsed[0] : parsed) as Record<string, unknown> | undefined;
      const options = (net?.Options ?? net?.options ?? {}) as Record<string, string>;
      const name = options['com.docker.network.bridge.name'];
      // Only a bridge Berth names as its own; never docker0 or a bridge of another engine.
      if (name && /^berth[\w-]{0,10}$/.test(name)) this.bridgeName = name;
    } catch {
      // no network layer yet, or no bridge made
    }
  }

  private async deleteLeftoverRunc(): Promise<void> {
    const { stdout } = await sh('runc', ['--root', this.runcRoot, 'list', '-q'], { timeout: 15_000 }).catch(() => ({ stdout: '' }));
    const ids = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    await forEachSoft(ids, (id) => sh('runc', ['--root', this.runcRoot, 'delete', '-f', id], { timeout: 15_000 }));
  }
}

/**
 * Kills monitors and helpers (conmon, dnsmasq) whose command line names one of `dirs`: they were started
 * for this bench's temp root and would otherwise outlive it when a Berth clean-up failed.
 */
async function killProcessesNaming(dirs: readonly string[]): Promise<void> {
  for (const proc of await listProcesses()) {
    if (proc.pid === process.pid) continue;
    if (dirs.some((d) => proc.cmdline.includes(d + '/') || proc.cmdline.endsWith(d))) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
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
