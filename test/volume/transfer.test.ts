/**
 * Issue 13, volume export/import (podman's): a volume moves to another Berth root with owners, modes,
 * links and xattrs; import is all or nothing (a non-empty or running volume is refused, a hostile tar
 * leaves the volume empty and the host untouched, a command killed before the rename leaves an empty
 * volume whose temp folder the next command removes).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
let a: TestEngine;
let b: TestEngine;
let work: string;

beforeAll(async () => {
  a = await testEngine(3235 + (process.pid % 7));
  b = await testEngine(3242 + (process.pid % 7));
  await a.engine.images.ensureDefault();
  await b.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-volx-'));
}, 120_000);

afterAll(async () => {
  try {
    await cleanupAll(a, work);
  } finally {
    await b?.cleanup();
  }
});

const tempsIn = async (t: TestEngine, name: string) => (await fsp.readdir(path.join(t.root, 'volumes', name))).filter((n) => n.startsWith('.tmp-'));

describe('volume export and import', () => {
  it('moves a volume to another Berth root with owners, modes, links and xattrs', async () => {
    await a.ok('run', '--rm', '--network', 'none', '-v', 'src:/v', 'busybox', 'sh', '-c',
      'echo data >/v/f && mkdir /v/d && chown 1000:2000 /v/d && chmod 0710 /v/d && ln -s /etc/passwd /v/link');
    execFileSync('setfattr', ['-n', 'user.k', '-v', 'val', path.join(a.root, 'volumes/src/_data/f')]);
    const tarball = path.join(work, 'src.tar');
    await a.ok('volume', 'export', '-o', tarball, 'src');
    await b.ok('volume', 'create', 'dst');
    await b.ok('volume', 'import', 'dst', tarball);
    expect(await b.ok('run', '--rm', '--network', 'none', '-v', 'dst:/v', 'busybox', 'sh', '-c', 'cat /v/f; stat -c "%u:%g %a" /v/d; readlink /v/link'))
      .toBe('data\n1000:2000 710\n/etc/passwd');
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.k', path.join(b.root, 'volumes/dst/_data/f')], { encoding: 'utf8' })).toBe('val');
    // the same through stdin and stdout
    const streamed = await execa(BIN, ['--root', a.root, '--runroot', a.runroot, 'volume', 'export', 'src'], { encoding: 'buffer', timeout: 60_000 });
    await b.ok('volume', 'create', 'dst2');
    const imp = await execa(BIN, ['--root', b.root, '--runroot', b.runroot, 'volume', 'import', 'dst2', '-'], { input: streamed.stdout, reject: false, timeout: 60_000 });
    expect(imp.exitCode, imp.stderr).toBe(0);
    expect(await fsp.readFile(path.join(b.root, 'volumes/dst2/_data/f'), 'utf8')).toBe('data\n');
  }, 90_000);

  it('refuses a non-empty volume, a missing one, one a running container uses, and a missing file', async () => {
    const tarball = path.join(work, 'src.tar');
    const cases: [string[], string][] = [
      [['volume', 'import', 'dst', tarball], 'volume dst is not empty'],
      [['volume', 'import', 'nosuch', tarball], 'no such volume: nosuch'],
      [['volume', 'import', 'dst', path.join(work, 'nofile.tar')], 'cannot read'],
      [['volume', 'export', 'nosuch'], 'no such volume: nosuch'],
    ];
    for (const [args, message] of cases) {
      const res = await b.cli(...args);
      expect(res.exitCode, args.join(' ')).toBe(1);
      expect(res.stderr).toContain(message);
    }
    await b.ok('volume', 'create', 'busy');
    await b.ok('run', '-d', '--name', 'user', '--network', 'none', '-v', 'busy:/v', 'busybox', 'sleep', '60');
    const res = await b.cli('volume', 'import', 'busy', tarball);
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain('in use by running container user');
    await b.ok('rm', '-f', 'user');
  }, 60_000);

  it('leaves the volume empty and the host untouched when the tar is hostile', async () => {
    const hostile = path.join(work, 'hostile');
    await fsp.mkdir(path.join(hostile, 'link'), { recursive: true });
    await fsp.writeFile(path.join(hostile, 'link/pwned'), 'p');
    await fsp.writeFile(path.join(hostile, 'up'), 'u');
    await fsp.symlink(work, path.join(hostile, 'l2'));
    // a link to a host folder, then a file through it; a ../ entry
    const tarball = path.join(work, 'hostile.tar');
    execFileSync('tar', ['-c', '-f', tarball, '-C', hostile, 'l2', '--transform=s,^link,l2,', 'link/pwned', '--transform=s,^up$,../../../../../../tmp/berth-volx-up,', 'up']);
    await b.ok('volume', 'create', 'victim');
    const res = await b.cli('volume', 'import', 'victim', tarball);
    expect(res.exitCode).toBe(1);
    expect(existsSync(path.join(work, 'pwned'))).toBe(false);
    expect(existsSync('/tmp/berth-volx-up')).toBe(false);
    expect(await fsp.readdir(path.join(b.root, 'volumes/victim/_data'))).toEqual([]);
    expect(await tempsIn(b, 'victim')).toEqual([]);
  }, 60_000);

  it('a kill before the rename leaves an empty volume, repaired by the next command', async () => {
    await b.ok('volume', 'create', 'killed');
    const res = await execa(BIN, ['--root', b.root, '--runroot', b.runroot, 'volume', 'import', 'killed', path.join(work, 'src.tar')],
      { reject: false, timeout: 60_000, env: { BERTH_FAILPOINT: 'volume.import.before-rename' } });
    expect(res.signal).toBe('SIGKILL');
    expect(await fsp.readdir(path.join(b.root, 'volumes/killed/_data'))).toEqual([]);
    expect(await tempsIn(b, 'killed')).toHaveLength(1);
    await b.ok('volume', 'ls');
    expect(await tempsIn(b, 'killed')).toEqual([]);
    await b.ok('volume', 'import', 'killed', path.join(work, 'src.tar'));
    expect(await fsp.readFile(path.join(b.root, 'volumes/killed/_data/f'), 'utf8')).toBe('data\n');
    for (const t of [a, b]) expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 60_000);
});
