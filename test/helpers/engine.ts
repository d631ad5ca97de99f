import { mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { expect } from 'vitest';
import { Engine } from '../../src/api/index.js';
import type { EngineOptions } from '../../src/types.js';
import { findLeaks } from './leaks.js';

export interface TestEngine {
  engine: Engine;
  root: string;
  runroot: string;
  /** Removes every container, mount, runc state and folder the engine made, even after a failure. */
  cleanup(): Promise<void>;
  /** The real CLI (bin/berth.js, shebang included) on this engine's root; never rejects, 60 s bound. */
  cli(...args: string[]): ReturnType<typeof runCli>;
  /** `cli` that must exit 0 (the assertion names the command and its stderr); its trimmed stdout. */
  ok(...args: string[]): Promise<string>;
}

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

function runCli(root: string, runroot: string, args: readonly string[]) {
  return execa(BIN, ['--root', root, '--runroot', runroot, ...args], { reject: false, timeout: 60_000 });
}

let counter = 0;

/** Live claims of subnet slots, machine-wide: one file per slot holding the claiming process's pid. */
const SLOT_DIR = '/run/berth/test-slots';
const SLOTS = 4096;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims `preferred`, or the next slot no live test process holds. Test files pick slots by hand (often
 * `BASE + pid % N`), and two files of one run, or of two runs at once, could land on one slot, so on one
 * subnet: the second bridge over it is refused, or the two engines' containers meet. Released at cleanup;
 * a killed test's claims are taken over once its pid is gone.
 */
export function claimSlot(preferred: number): { slot: number; release(): void } {
  mkdirSync(SLOT_DIR, { recursive: true });
  for (let i = 0; i < SLOTS; i++) {
    const slot = (preferred + i) % SLOTS;
    const file = path.join(SLOT_DIR, String(slot));
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return {
        slot,
        release() {
          rmSync(file, { force: true });
          // The folder goes with the last claim; another process may claim in between, which is fine.
          try { rmdirSync(SLOT_DIR); } catch { /* not empty, or gone */ }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // The last other claim was released and took the folder with it.
        mkdirSync(SLOT_DIR, { recursive: true });
        i--;
        continue;
      }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(file, 'utf8'));
      if (holder && alive(holder)) continue;
      rmSync(file, { force: true });
      i--;
    }
  }
  throw new Error(`test engine: every one of the ${SLOTS} subnet slots is held by a live test process`);
}

/**
 * A fresh engine on its own root and runroot; the root's path gives it its own bridge name and iptables
 * chains, and `slot` its own subnet, so test files running at the same time never share host objects.
 */
export async function testEngine(slot = (process.pid * 7 + counter++) % 4096, extra: Pick<EngineOptions, 'config'> = {}): Promise<TestEngine> {
  const claim = claimSlot(slot);
  slot = claim.slot;
  const root = await mkdtemp(path.join(tmpdir(), 'berth-test-'));
  const runroot = path.join('/run/berth', `t${path.basename(root).slice(-6)}`);
  const engine = new Engine({ root, runroot, network: { subnet: `10.${200 + ((slot >> 8) & 15)}.${slot & 255}.0/24` }, ...extra });
  return {
    engine, root, runroot,
    cli: (...args: string[]) => runCli(root, runroot, args),
    async ok(...args: string[]) {
      const res = await runCli(root, runroot, args);
      expect(res.exitCode, `${args.join(' ')}: ${res.stderr}`).toBe(0);
      return res.stdout.trim();
    },
    async cleanup() {
      const reset = await engine.system.reset().then(() => undefined, (err: unknown) => err);
      // What the engine's own reset left behind is a leak of the engine, whichever test made it.
      const leaks = reset ? [] : await findLeaks(root, runroot, { final: true });
      unmountUnder(root);
      unmountUnder(runroot);
      await rm(root, { recursive: true, force: true });
      await rm(runroot, { recursive: true, force: true });
      claim.release();
      if (reset) throw new Error('test cleanup: system reset failed', { cause: reset });
      if (leaks.length) throw new Error(`test cleanup: the engine left these behind after system reset:\n${leaks.join('\n')}`);
    },
  };
}

/** `cleanup` of the engine, then the test's own folders, even when the cleanup throws. */
export async function cleanupAll(t: TestEngine | undefined, ...dirs: (string | undefined)[]): Promise<void> {
  try {
    await t?.cleanup();
  } finally {
    for (const dir of dirs) if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** Lazily unmounts anything still mounted below `dir`, deepest first. */
export function unmountUnder(dir: string): void {
  const mounts = execFileSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' })
    .split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    try { execFileSync('umount', ['-l', m]); } catch { /* already gone */ }
  }
}

/** Collects a stream's text. */
export function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { chunks.push(Buffer.from(chunk)); cb(); } });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}
