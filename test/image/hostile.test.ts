/**
 * `berth load` of hostile and broken archives, through the built CLI (`npm run build` first): memory
 * stays bounded, truncation and bad names are reported as the input's fault, and nothing is left behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CorruptError } from '../../src/errors.js';
import { makeDockerArchive, multiLayerTestImage, unmountUnder } from '../fixtures/images.js';
import { writeHostileArchive, type HostileKind } from '../../bench/hostile.js';
import { destroyStore, makeStore, makeTar, streamOf, type TarEntry } from '../storage/helpers.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
/** Prints the process's peak RSS as it exits, so the figure is the real CLI's own, read at its very end. */
const HWM = fileURLToPath(new URL('../fixtures/print-hwm.mjs', import.meta.url));
/** The bound README states for `load`, whatever the archive holds. */
const LOAD_RSS_BOUND_MB = 160;
/** Each hostile archive expands to this much: before the fix, memory grew by 2-3× as much. */
const HOSTILE_SIZE = 256 << 20;

let work: string;
let root: string;
let runroot: string;

interface Result { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; hwmMb?: number }

function berth(args: readonly string[], opts: { stdin?: string; env?: Record<string, string>; onSpawn?: (pid: number) => void } = {}): Promise<Result> {
  const child = spawn(process.execPath, ['--import', HWM, BIN, '--root', root, '--runroot', runroot, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env },
  });
  opts.onSpawn?.(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  if (opts.stdin) createReadStream(opts.stdin).pipe(child.stdin!).on('error', () => {});
  else child.stdin!.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(timer);
    const hwm = /^berth-test-vmhwm-kb (\d+)$/m.exec(stderr);
    resolve({ code, signal, stdout, stderr: stderr.replace(/^berth-test-vmhwm-kb \d+\n/m, ''), hwmMb: hwm ? Number(hwm[1]) / 1024 : undefined });
  }));
}

/**
 * Every file under the root that is not an empty folder: what a failed command may not leave. The store's
 * format marker (store.json, written when any command first opens the store) is the store's own.
 */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.parentPath === dir && e.name === 'store.json') continue;
    if (!e.isDirectory()) out.push(path.relative(root, path.join(e.parentPath, e.name)));
    else if (e.name.startsWith('.tmp-') || e.name.startsWith('.trash-')) out.push(path.relative(root, path.join(e.parentPath, e.name)) + '/');
  }
  return out.sort();
}

beforeAll(async () => { work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-hostile-work-')); });
afterAll(async () => fsp.rm(work, { recursive: true, force: true }));
beforeEach(async () => {
  root = await fsp.mkdtemp(path.join(tmpdir(), 'berth-hostile-'));
  runroot = path.join('/run/berth', `h${path.basename(root).slice(-6)}`);
});
afterEach(async () => {
  await berth(['system', 'reset', '--force']);
  unmountUnder(root);
  unmountUnder(runroot);
  await fsp.rm(root, { recursive: true, force: true });
  await fsp.rm(runroot, { recursive: true, force: true });
});

describe('load of an archive that expands to far more than it holds', () => {
  it.each([
    ['zeros after the layer tar\'s end-of-archive marker', 'trailer', 0],
    ['text after the layer tar\'s end-of-archive marker', 'trailer', 0x78],
    ['a whiteout entry with a body of zeros', 'whiteout-body', 0],
    ['a whiteout entry with a body of text', 'whiteout-body', 0x78],
  ] as [string, HostileKind, number][])(`stays under ${LOAD_RSS_BOUND_MB} MB with %s, and saves the same layer back`, async (_what, kind, fill) => {
    const file = path.join(work, `${kind}-${fill}.tar.gz`);
    const diffId = await writeHostileArchive(file, kind, HOSTILE_SIZE, { tag: 'localhost/hostile:1', fill });
    const res = await berth(['load', '-i', file]);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('Loaded image: localhost/hostile:1\n');
    expect(res.hwmMb).toBeDefined();
    expect(res.hwmMb!).toBeLessThan(LOAD_RSS_BOUND_MB);
    // The layer is kept byte for byte (rebuilt from its record), and reading it back is bounded too.
    const saved = path.join(work, `${kind}-${fill}-saved.tar`);
    const save = await berth(['save', '-o', saved, 'localhost/hostile:1']);
    expect(save.stderr).toBe('');
    expect(save.hwmMb!).toBeLessThan(LOAD_RSS_BOUND_MB);
    const inspect = JSON.parse((await berth(['image', 'inspect', 'localhost/hostile:1'])).stdout);
    expect(inspect[0].RootFS.Layers).toEqual([diffId]);
    await fsp.rm(saved, { force: true });
  }, 120_000);
});

describe('load of a truncated archive', () => {
  let full: Buffer;
  beforeAll(async () => {
    await makeDockerArchive(path.join(work, 'full.tar'), multiLayerTestImage().layers, { tags: ['localhost/t:1'] });
    full = await fsp.readFile(path.join(work, 'full.tar'));
  });

  it.each([
    ['inside the first layer', 0.1, false],
    ['inside the big layer', 0.5, false],
    ['inside the last layer', 0.9, false],
    ['gzipped, inside a layer', 0.5, true],
    ['gzipped, near the end', 0.99, true],
  ] as const)('says "unexpected end of archive" %s, from a file and from stdin, exits 1 and leaves nothing', async (_what, at, gz) => {
    const data = gz ? gzipSync(full) : full;
    const file = path.join(work, `trunc-${at}${gz ? '.tar.gz' : '.tar'}`);
    await fsp.writeFile(file, data.subarray(0, Math.floor(data.length * at)));
    const fromFile = await berth(['load', '-i', file]);
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toContain(`Error: ${file}: unexpected end of archive`);
    const fromStdin = await berth(['load'], { stdin: file });
    expect(fromStdin.code).toBe(1);
    expect(fromStdin.stderr).toContain('unexpected end of archive');
    expect(await filesUnder(root)).toEqual([]);
  }, 60_000);
});

/** Files under root and runroot: leftovers are temp files, folders, leases and lock files. */
async function storeFiles(): Promise<string[]> {
  const run = await fsp.readdir(runroot, { recursive: true }).catch(() => [] as string[]);
  return [...(await filesUnder(root)), ...run.map((n) => `RUNROOT/${n}`)].sort();
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('a load interrupted part-way', () => {
  let archive: string;
  let before: string[];
  beforeEach(async () => {
    archive = path.join(work, 'interrupted.tar');
    await makeDockerArchive(archive, multiLayerTestImage().layers, { tags: ['localhost/second:1'] });
    await makeDockerArchive(path.join(work, 'first.tar'), [{ entries: [{ type: 'file', path: 'first', content: '1\n' }] }], { tags: ['localhost/first:1'] });
    expect((await berth(['load', '-i', path.join(work, 'first.tar')])).code).toBe(0);
    before = await storeFiles();
  });

  /** The next command, whatever it is, finds the store as it was before the load and nothing more. */
  async function expectReclaimedByNextCommand(): Promise<void> {
    const images = await berth(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stderr).toBe('');
    expect(images.stdout).toBe('localhost/first:1\n');
    expect(await storeFiles()).toEqual(before);
  }

  it.each([
    ['storage.ingest.mid-blob', /^blobs\/sha256\/\.tmp-ingest/],
    ['storage.unpack.mid-layer', /^layers\/\.tmp-[^/]+\/diff\//],
  ] as const)('killed (SIGKILL) at %s leaves what the next command reclaims', async (failpoint, leftover) => {
    const res = await berth(['load', '-i', archive], { env: { BERTH_FAILPOINT: failpoint } });
    expect(res.signal).toBe('SIGKILL');
    const left = await storeFiles();
    // The kill really happened mid-write: there is something to reclaim.
    expect(left.some((f) => leftover.test(f))).toBe(true);
    expect(left.some((f) => f.startsWith('images/leases/'))).toBe(true);
    await expectReclaimedByNextCommand();
  }, 60_000);

  it.each([['SIGINT', 130], ['SIGTERM', 143]] as const)('stopped by %s from stdin, cleans up itself and exits %i', async (signal, code) => {
    // A stdin that never ends: the load is surely mid-layer when the signal comes.
    const { PassThrough } = await import('node:stream');
    const data = await fsp.readFile(archive);
    let pid = 0;
    const child = spawn(process.execPath, [BIN, '--root', root, '--runroot', runroot, 'load'], { stdio: ['pipe', 'pipe', 'pipe'] });
    pid = child.pid!;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const feed = new PassThrough();
    feed.pipe(child.stdin!).on('error', () => {});
    feed.write(data.subarray(0, Math.floor(data.length / 2)));
    const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    await waitFor('the load to be mid-layer', async () => (await filesUnder(root)).some((f) => f.startsWith('layers/.tmp-')));
    process.kill(pid, signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    expect(await exited).toBe(code);
    clearTimeout(timer);
    feed.destroy();
    expect(stderr).toBe('');
    // No later command needed: the store is already as it was.
    expect(await storeFiles()).toEqual(before);
    await expectReclaimedByNextCommand();
  }, 60_000);
});

describe('load onto a full disk', () => {
  it.each([['plain', 'none'], ['gzipped', 'gzip']] as const)('says "no space left on device" and where, for %s layers, and leaves nothing', async (_what, compression) => {
    const archive = path.join(work, `full-disk-${compression}.tar`);
    await makeDockerArchive(archive, multiLayerTestImage().layers.map((l) => ({ ...l, compression })), { tags: ['localhost/big:1'] });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'berth-test-full', root]);
    const res = await berth(['load', '-i', archive]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`Error: no space left on device: the image store at ${root} is full`);
    expect(res.stderr).not.toContain('damaged');
    expect(await filesUnder(root)).toEqual([]);
  }, 60_000);
});

describe('layer entries the kernel would refuse are the layer\'s fault', () => {
  it.each([
    ['a 300-byte file name', [{ name: 'a'.repeat(300), data: 'x' }], /layer entry "a{40}…a{20} \(300 bytes\)" has a name component of 300 bytes; Linux allows 255/],
    ['a 300-byte folder name', [{ name: `${'d'.repeat(300)}/`, type: 'directory' }], /has a name component of 300 bytes/],
    ['a hard link to a 300-byte name', [{ name: 'h', type: 'link', linkname: 'c'.repeat(300) }], /layer entry "h" is a hard link whose target has a name component of 300 bytes/],
    ['a symlink to a 5200-byte target', [{ name: 'l', type: 'symlink', linkname: 'b/'.repeat(2600) }], /layer entry "l" is a symlink whose target is 5200 bytes; Linux allows 4095/],
    ['a 70000-byte xattr value', [{ name: 'f', data: 'x', pax: { 'SCHILY.xattr.user.big': 'v'.repeat(70000) } }], /layer entry "f" has extended attribute user.big whose value is 70000 bytes; Linux allows 65536/],
    ['a 300-byte xattr name', [{ name: 'f', data: 'x', pax: { [`SCHILY.xattr.user.${'n'.repeat(295)}`]: 'v' } }], /whose name is 300 bytes; Linux allows 255/],
  ] as [string, TarEntry[], RegExp][])('%s: CorruptError naming the entry, never our temp folder', async (_what, entries, message) => {
    const store = await makeStore();
    try {
      const err = await store.storage.layers.unpack(streamOf(await makeTar(entries), 65_536)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain(store.layout.layers);
      expect((await fsp.readdir(store.layout.layers)).filter((n) => n !== 'l')).toEqual([]);
    } finally {
      await destroyStore(store);
    }
  });

  it('skips an xattr in a namespace Linux lacks with a warning, as Docker does', async () => {
    const store = await makeStore();
    try {
      const layer = await store.storage.layers.unpack(streamOf(await makeTar([{ name: 'f', data: 'x', pax: { 'SCHILY.xattr.bogus.name': 'v' } }]), 65_536));
      expect(layer.warnings).toEqual([expect.stringContaining('skipped xattr bogus.name of "f": not in a namespace Linux knows')]);
    } finally {
      await destroyStore(store);
    }
  });
});
