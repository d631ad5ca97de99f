import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';
import type { FailpointName } from '../../src/util/failpoint.js';

/**
 * Issue 20, costs that must not grow with the number of containers. `ps` reads `containers/.catalog.json` (src/container/catalog.ts) instead of every record, and
 * starts no process per container. The records stay the truth: after every kind of change, and after the
 * catalog was deleted, corrupted, or its writer killed, `ps` shows what a listing rebuilt from the records
 * shows, and a listing where nothing changed reads no record at all.
 */
const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
let t: TestEngine;
let scratch: string;
beforeAll(async () => {
  t = await testEngine(3600 + (process.pid % 50));
  await t.engine.images.ensureDefault();
  scratch = await mkdtemp(path.join(tmpdir(), 'berth-catalog-'));
}, 120_000);
afterAll(async () => {
  await t?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const none = ['--network', 'none'];
const FORMAT = '{{.ID}} {{.Names}} {{.State}} {{.Labels}} {{.Image}} {{.Command}}';
const catalogFile = () => path.join(t.root, 'containers', '.catalog.json');
const recordFiles = () => readdirSync(path.join(t.root, 'containers')).filter((d) => /^[0-9a-f]{64}$/.test(d))
  .map((d) => path.join(t.root, 'containers', d, 'container.json')).filter((f) => existsSync(f));

async function berth(args: string[], failpoint?: FailpointName) {
  const { BERTH_FAILPOINT: _unset, ...rest } = process.env;
  const env = failpoint ? { ...rest, BERTH_FAILPOINT: failpoint } : rest;
  return execa(process.execPath, [BIN, '--root', t.root, '--runroot', t.runroot, ...args], { env, extendEnv: false, reject: false, timeout: 60_000 });
}

async function ps(...extra: string[]): Promise<string[]> {
  return (await t.ok('ps', '-a', '--no-trunc', '--format', FORMAT, ...extra)).split('\n').filter(Boolean).sort();
}

/**
 * Records just written are too new for the catalog to trust (its racy-timestamp rule) and are read
 * every time; aged by an hour, as most records are, they are taken from the catalog while unchanged.
 * Only records written in the last minute are aged, so the others keep the stamp the catalog holds.
 */
function ageNewRecords(): void {
  const old = new Date(Date.now() - 3_600_000);
  for (const f of recordFiles()) if (Date.now() - statSync(f).mtimeMs < 60_000) utimesSync(f, old, old);
}

/** The listing as the catalog gives it, then as the records alone give it (catalog deleted): both must be `expected`. */
async function expectListing(expected: string[]): Promise<void> {
  ageNewRecords();
  expect(await ps()).toEqual([...expected].sort());
  rmSync(catalogFile(), { force: true });
  expect(await ps()).toEqual([...expected].sort());
}

/**
 * Runs a berth command under strace: the processes it started, the records it opened, and how often
 * Berth's own process (its threads included: pids that never exec'd anything else) opened the mount table.
 */
function traced(...args: string[]): { execs: string[]; recordOpens: string[]; ownMountinfoReads: number } {
  const log = path.join(scratch, `strace-${Date.now()}`);
  execFileSync('strace', ['-f', '-qq', '-o', log, '-e', 'trace=execve,openat', process.execPath, BIN, '--root', t.root, '--runroot', t.runroot, ...args], { stdio: 'ignore', timeout: 60_000 });
  const lines = readFileSync(log, 'utf8').split('\n');
  rmSync(log, { force: true });
  const execs = lines.filter((l) => /execve\(/.test(l) && !/= -1 /.test(l));
  const exe = new Map(execs.map((l) => [l.split(' ')[0], /execve\("([^"]*)"/.exec(l)?.[1]]));
  return {
    execs,
    recordOpens: lines.filter((l) => l.includes('/container.json')),
    ownMountinfoReads: lines.filter((l) => l.includes('/proc/self/mountinfo') && [undefined, process.execPath].includes(exe.get(l.split(' ')[0]))).length,
  };
}

const hasStrace = (() => {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

async function removeAll(): Promise<void> {
  const ids = (await t.ok('ps', '-aq')).split('\n').filter(Boolean);
  if (ids.length) await t.ok('rm', '-f', ...ids);
}

describe('costs that do not grow with the containers', () => {
  afterEach(removeAll);

  it('stays right across create, start, exit by itself, rename, stop and rm', async () => {
    const a = await t.ok('create', ...none, '--name', 'cat-a', '--label', 'k=v', 'busybox', 'sleep', '1000');
    await expectListing([`${a} cat-a created k=v busybox "sleep 1000"`]);

    await t.ok('start', 'cat-a');
    await expectListing([`${a} cat-a running k=v busybox "sleep 1000"`]);

    const b = await t.ok('run', '-d', ...none, '--name', 'cat-b', 'busybox', 'sh', '-c', 'exit 3');
    expect(await t.ok('wait', b)).toBe('3');
    await expectListing([`${a} cat-a running k=v busybox "sleep 1000"`, `${b} cat-b exited  busybox "sh -c exit 3"`]);
    expect(await t.ok('ps', '-aq', '--no-trunc', '--filter', 'exited=3')).toBe(b);

    await t.ok('rename', 'cat-a', 'cat-a2');
    await expectListing([`${a} cat-a2 running k=v busybox "sleep 1000"`, `${b} cat-b exited  busybox "sh -c exit 3"`]);

    await t.ok('stop', '-t', '0', 'cat-a2');
    await expectListing([`${a} cat-a2 exited k=v busybox "sleep 1000"`, `${b} cat-b exited  busybox "sh -c exit 3"`]);

    await t.ok('rm', 'cat-b');
    await expectListing([`${a} cat-a2 exited k=v busybox "sleep 1000"`]);

    // Nothing changed since the last listing: every entry is taken from the catalog.
    ageNewRecords();
    await ps();
    const cat = JSON.parse(readFileSync(catalogFile(), 'utf8')) as { entries: Record<string, { stamp: string }> };
    expect(Object.keys(cat.entries)).toEqual([a]);
    expect(cat.entries[a]!.stamp).not.toBe('');
    await removeAll();
    await expectListing([]);
  }, 120_000);

  it('is rebuilt when deleted, corrupted, of another version, or naming containers that are gone', async () => {
    const ids = [await t.ok('create', ...none, '--name', 'cat-c', 'busybox', 'true'), await t.ok('run', '-d', ...none, '--name', 'cat-d', 'busybox', 'sleep', '1000')];
    const want = [`${ids[0]} cat-c created  busybox "true"`, `${ids[1]} cat-d running  busybox "sleep 1000"`];
    await expectListing(want);
    const good = readFileSync(catalogFile(), 'utf8');
    for (const bad of ['', '{', 'null', '[]', good.slice(0, good.length / 2), JSON.stringify({ version: 999, entries: {} }), '{"version":1,"entries":{"x":null}}']) {
      writeFileSync(catalogFile(), bad);
      expect(await ps(), `catalog ${JSON.stringify(bad.slice(0, 40))}`).toEqual([...want].sort());
    }
    // A catalog of an earlier moment: a container since removed, another since renamed and stopped.
    await ps();
    const earlier = readFileSync(catalogFile(), 'utf8');
    await t.ok('rm', 'cat-c');
    await t.ok('rename', 'cat-d', 'cat-d2');
    await t.ok('stop', '-t', '0', 'cat-d2');
    ageNewRecords();
    writeFileSync(catalogFile(), earlier);
    expect(await ps()).toEqual([`${ids[1]} cat-d2 exited  busybox "sleep 1000"`]);
  }, 120_000);

  it('a listing killed while writing it, or a command killed mid-update, leaves ps right and nothing behind', async () => {
    const ids = [await t.ok('create', ...none, '--name', 'cat-e', 'busybox', 'true'), await t.ok('create', ...none, '--name', 'cat-f', 'busybox', 'true')];
    ageNewRecords();
    rmSync(catalogFile(), { force: true });
    const killed = await berth(['ps', '-a'], 'container.catalog.before-rename');
    expect(killed.signal).toBe('SIGKILL');
    expect(readdirSync(path.join(t.root, 'containers')).filter((n) => n.startsWith('.tmp-'))).toHaveLength(1);
    await expectListing([`${ids[0]} cat-e created  busybox "true"`, `${ids[1]} cat-f created  busybox "true"`]);
    expect(readdirSync(path.join(t.root, 'containers')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    // The catalog trusts cat-f's entry; then an rm is killed after its folder was moved away.
    await ps();
    const rmKilled = await berth(['rm', 'cat-f'], 'container.rm.mid-folder');
    expect(rmKilled.signal).toBe('SIGKILL');
    expect(await ps()).toEqual([`${ids[0]} cat-e created  busybox "true"`]);
    // A create killed before its record was complete is repaired away, whatever the catalog holds.
    const createKilled = await berth(['create', ...none, '--name', 'cat-g', 'busybox', 'true'], 'container.create.after-snapshot');
    expect(createKilled.signal).toBe('SIGKILL');
    await expectListing([`${ids[0]} cat-e created  busybox "true"`]);
    await t.ok('rm', 'cat-e');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 120_000);

  it.skipIf(!hasStrace)('ps of exited and running containers starts no process and, when nothing changed, reads no record', async () => {
    for (let i = 0; i < 4; i++) await t.ok('run', ...none, 'busybox', 'true');
    for (let i = 0; i < 2; i++) await t.ok('run', '-d', ...none, 'busybox', 'sleep', '1000');
    ageNewRecords();
    expect(await ps('--filter', 'status=exited')).toHaveLength(4);
    const { execs, recordOpens } = traced('ps', '-a');
    expect(execs).toHaveLength(1); // node itself
    expect(recordOpens).toEqual([]);
  }, 120_000);

  it.skipIf(!hasStrace)('create, ps, inspect and rm read no mount table in Berth\'s own process', async () => {
    // The kernel writes /proc/self/mountinfo out whole at each read, a line per mount: with every
    // container's overlay in it, each read grows with the containers (runc's and umount's own reads remain).
    const created = traced('create', ...none, '--name', 'scale-m', 'busybox', 'true');
    expect(created.ownMountinfoReads).toBe(0);
    expect(traced('ps', '-a').ownMountinfoReads).toBe(0);
    expect(traced('inspect', 'scale-m').ownMountinfoReads).toBe(0);
    expect(await ps()).toHaveLength(1);
    expect(existsSync(path.join(t.root, 'snapshots', (await t.ok('inspect', '-f', '{{.Id}}', 'scale-m')), 'merged', 'bin'))).toBe(true);
    await t.ok('rm', 'scale-m');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 120_000);
});
