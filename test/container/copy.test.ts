/**
 * Issue 13, `berth cp`: both ways, with `-` tar streams, on running and stopped containers, into and out
 * of volumes and binds, -a and -L, Docker's landing rules and errors; links are resolved inside the
 * container and a hostile tar or link never reads or writes on the host outside what the user named.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';
import { makeTar } from '../storage/helpers.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
let t: TestEngine;
let work: string;
const ok = (...args: string[]) => t.ok(...args);
const berth = (args: string[], opts: { input?: Buffer; cwd?: string } = {}) =>
  execa(BIN, ['--root', t.root, '--runroot', t.runroot, ...args], { reject: false, timeout: 60_000, encoding: 'buffer', ...opts });
const snapshotMounts = () => execFileSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`${t.root}/snapshots/`));

beforeAll(async () => {
  t = await testEngine(3220 + (process.pid % 15));
  await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-cp-'));
  // links that climb out of the root or name host paths: resolved inside the container, always
  await ok('run', '-d', '--name', 'run1', '--network', 'none', '-v', 'cpvol:/vol', '-v', `${work}/bind:/srv/bind`, 'busybox', 'sh', '-c',
    'mkdir -p /d/sub && echo one >/d/f && echo two >/d/sub/g && chown 1234:2345 /d/f && ln -s ../../../../../etc /evil && ln -s /etc /d/abs && ln -s /d/f /flink && exec sleep 300');
  for (let i = 0; i < 100 && !(await ok('diff', 'run1')).includes('/flink'); i++) await new Promise((r) => setTimeout(r, 100));
}, 120_000);

afterAll(() => cleanupAll(t, work));

describe('out of a container', () => {
  it('copies a file, a folder, a folder\'s contents and a link by Docker\'s rules, owned by root unless -a', async () => {
    const out = path.join(work, 'out1');
    await fsp.mkdir(out);
    await ok('cp', 'run1:/d/f', path.join(out, 'renamed'));
    expect(await fsp.readFile(path.join(out, 'renamed'), 'utf8')).toBe('one\n');
    expect((await fsp.stat(path.join(out, 'renamed'))).uid).toBe(0);
    await ok('cp', '-a', 'run1:/d/f', out);
    expect((await fsp.stat(path.join(out, 'f'))).uid).toBe(1234);
    await ok('cp', 'run1:/d', path.join(out, 'newdir'));
    expect(await fsp.readFile(path.join(out, 'newdir/sub/g'), 'utf8')).toBe('two\n');
    await ok('cp', 'run1:/d', out);
    expect(existsSync(path.join(out, 'd/sub/g'))).toBe(true);
    await fsp.mkdir(path.join(out, 'only'));
    await ok('cp', 'run1:/d/.', path.join(out, 'only'));
    expect((await fsp.readdir(path.join(out, 'only'))).sort()).toEqual(['abs', 'f', 'sub']);
    // a link is copied as a link; -L copies what it names
    await ok('cp', 'run1:/flink', path.join(out, 'l1'));
    expect(await fsp.readlink(path.join(out, 'l1'))).toBe('/d/f');
    await ok('cp', '-L', 'run1:/flink', path.join(out, 'l2'));
    expect(await fsp.readFile(path.join(out, 'l2'), 'utf8')).toBe('one\n');
    // the container kept running (it was paused for the copy only)
    expect(await ok('inspect', '-f', '{{.State.Status}}', 'run1')).toBe('running');
  }, 60_000);

  it('writes a tar stream to stdout, and reads volumes and binds the container mounts', async () => {
    await ok('exec', 'run1', 'sh', '-c', 'echo vol >/vol/v && echo bind >/srv/bind/b');
    const res = await berth(['cp', 'run1:/vol/v', '-']);
    expect(res.exitCode).toBe(0);
    const listing = execFileSync('tar', ['-tv'], { input: res.stdout, encoding: 'utf8' });
    expect(listing).toMatch(/ v\n$/);
    const out = path.join(work, 'out2');
    await fsp.mkdir(out);
    await ok('cp', 'run1:/srv/bind/b', out);
    expect(await fsp.readFile(path.join(out, 'b'), 'utf8')).toBe('bind\n');
  }, 60_000);

  it('resolves links inside the container: ../ above the root and absolute targets never reach the host', async () => {
    const out = path.join(work, 'out3');
    await fsp.mkdir(out);
    await ok('cp', 'run1:/evil/passwd', path.join(out, 'p1'));
    await ok('cp', 'run1:/d/abs/passwd', path.join(out, 'p2'));
    const image = await ok('exec', 'run1', 'cat', '/etc/passwd');
    expect((await fsp.readFile(path.join(out, 'p1'), 'utf8')).trim()).toBe(image);
    expect((await fsp.readFile(path.join(out, 'p2'), 'utf8')).trim()).toBe(image);
    // the host's /etc/debian_version exists; the container's image has none
    const missing = await t.cli('cp', 'run1:/evil/debian_version', path.join(out, 'h'));
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no such file: /evil/debian_version in container run1');
    expect(existsSync(path.join(out, 'h'))).toBe(false);
  }, 60_000);

  it('refuses missing paths, a folder onto a file, and copies between containers, with exit 1', async () => {
    const cases: [string[], string][] = [
      [['cp', 'run1:/nope', work], 'no such file: /nope in container run1'],
      [['cp', 'run1:/d/f/x', work], 'no such file: /d/f/x in container run1'],
      [['cp', 'run1:/d', path.join(work, 'out1/renamed')], 'cannot copy a directory to a file'],
      [['cp', 'run1:/d/f', path.join(work, 'nodir/x')], 'no such file'],
      [['cp', 'run1:/d/f', 'run1:/tmp'], 'copying between containers is not supported'],
      [['cp', path.join(work, 'a'), path.join(work, 'b')], 'must specify at least one container source'],
      [['cp', 'nosuch:/x', work], 'no such container: nosuch'],
    ];
    for (const [args, message] of cases) {
      const res = await t.cli(...args);
      expect(res.exitCode, args.join(' ')).toBe(1);
      expect(res.stderr).toContain(message);
    }
    expect(snapshotMounts()).toHaveLength(1);
  }, 60_000);
});

describe('into a container', () => {
  it('copies a file and a folder, into volumes and binds, owned by root unless -a', async () => {
    const src = path.join(work, 'src');
    await fsp.mkdir(path.join(src, 'tree/deep'), { recursive: true });
    await fsp.writeFile(path.join(src, 'tree/deep/x'), 'x');
    await fsp.writeFile(path.join(src, 'file'), 'file');
    await fsp.chown(path.join(src, 'file'), 4321, 4321);
    await ok('cp', path.join(src, 'file'), 'run1:/tmp/');
    expect(await ok('exec', 'run1', 'stat', '-c', '%u %s', '/tmp/file')).toBe('0 4');
    await ok('cp', '-a', path.join(src, 'file'), 'run1:/tmp/kept');
    expect(await ok('exec', 'run1', 'stat', '-c', '%u', '/tmp/kept')).toBe('4321');
    await ok('cp', path.join(src, 'tree'), 'run1:/tmp/newtree');
    expect(await ok('exec', 'run1', 'cat', '/tmp/newtree/deep/x')).toBe('x');
    await ok('cp', path.join(src, 'tree'), 'run1:/vol');
    expect(await ok('exec', 'run1', 'cat', '/vol/tree/deep/x')).toBe('x');
    await ok('cp', path.join(src, 'file'), 'run1:/srv/bind/fromhost');
    expect(await fsp.readFile(path.join(work, 'bind/fromhost'), 'utf8')).toBe('file');
    // through the container's links: the container's /etc, not the host's
    await ok('cp', path.join(src, 'file'), 'run1:/evil/berth-cp-test');
    expect(existsSync('/etc/berth-cp-test')).toBe(false);
    expect(await ok('exec', 'run1', 'cat', '/etc/berth-cp-test')).toBe('file');
  }, 60_000);

  it('extracts a tar from stdin into a folder, and refuses ../ entries and writes through links', async () => {
    const good = execFileSync('tar', ['-c', '-f', '-', '-C', path.join(work, 'src'), 'tree']);
    const res = await berth(['cp', '-', 'run1:/tmp/'], { input: good });
    expect(res.exitCode, Buffer.from(res.stderr).toString()).toBe(0);
    expect(await ok('exec', 'run1', 'cat', '/tmp/tree/deep/x')).toBe('x');
    const notDir = await berth(['cp', '-', 'run1:/d/f'], { input: good });
    expect(notDir.exitCode).toBe(1);
    expect(Buffer.from(notDir.stderr).toString()).toContain('must be a directory');
    // ../ climbing out of the destination, and an entry through the container's link to /etc
    const hostile = path.join(work, 'hostile');
    await fsp.mkdir(path.join(hostile, 'abs'), { recursive: true });
    await fsp.writeFile(path.join(hostile, 'abs/pwned'), 'p');
    await fsp.writeFile(path.join(hostile, 'up'), 'u');
    const tarball = execFileSync('tar', ['-c', '-f', '-', '-C', hostile, '--transform=s,^up$,../../../../../tmp/berth-cp-up,', 'abs/pwned', 'up']);
    const bad = await berth(['cp', '-', 'run1:/d'], { input: tarball });
    expect(bad.exitCode).toBe(1);
    expect(Buffer.from(bad.stderr).toString()).toMatch(/\.\.|symbolic links/);
    expect(existsSync('/etc/pwned')).toBe(false);
    expect(existsSync('/tmp/berth-cp-up')).toBe(false);
    expect(await ok('exec', 'run1', 'sh', '-c', 'test -e /etc/pwned && echo bad || echo fine')).toBe('fine');
  }, 60_000);
});

describe('extended attributes', () => {
  const xattrs = (file: string) => execFileSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', file], { encoding: 'utf8' });

  it('keeps user.* and file capabilities both ways, and takes no other namespace even from a tar stream', async () => {
    const src = path.join(work, 'xsrc');
    await fsp.mkdir(src);
    const file = path.join(src, 'capped');
    await fsp.copyFile('/bin/true', file);
    execFileSync('setcap', ['cap_net_raw+ep', file]);
    execFileSync('setfattr', ['-n', 'user.berth', '-v', 'kept', file]);
    execFileSync('setfattr', ['-n', 'trusted.berth', '-v', 'dropped', file]);
    const merged = path.join(t.root, 'snapshots', await ok('inspect', '-f', '{{.Id}}', 'run1'), 'merged');

    await ok('cp', file, 'run1:/tmp/capped');
    const inside = xattrs(path.join(merged, 'tmp/capped'));
    expect(inside).toContain('user.berth="kept"');
    expect(inside).toContain('security.capability=');
    expect(inside).not.toContain('trusted.berth');

    const out = path.join(work, 'xout');
    await fsp.mkdir(out);
    await ok('cp', 'run1:/tmp/capped', out);
    expect(xattrs(path.join(out, 'capped'))).toContain('user.berth="kept"');
    expect(execFileSync('getcap', [path.join(out, 'capped')], { encoding: 'utf8' })).toContain('cap_net_raw=ep');

    // a stream that carries trusted.* (overlayfs's own namespace; GNU tar never writes it, so tar-stream does)
    const pax = { 'SCHILY.xattr.user.berth': 'kept', 'SCHILY.xattr.trusted.berth': 'dropped', 'SCHILY.xattr.trusted.overlay.opaque': 'y' };
    const stream = await makeTar([{ name: 'capped', data: 'body', pax }]);
    await ok('exec', 'run1', 'mkdir', '/tmp/xstream');
    const res = await berth(['cp', '-', 'run1:/tmp/xstream'], { input: stream });
    expect(res.exitCode, Buffer.from(res.stderr).toString()).toBe(0);
    const streamed = xattrs(path.join(merged, 'tmp/xstream/capped'));
    expect(streamed).toContain('user.berth="kept"');
    expect(streamed).not.toContain('trusted.');
  }, 60_000);
});

describe('a cp killed while its container is paused', () => {
  it('leaves a container that the next command looking at it thaws', async () => {
    const id = (await ok('inspect', '-f', '{{.Id}}', 'run1')).trim();
    const freezer = `/sys/fs/cgroup/freezer/berth/${id}/freezer.state`;
    const killed = await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'cp', 'run1:/d/f', work], {
      reject: false, timeout: 60_000, env: { BERTH_FAILPOINT: 'container.freeze.paused' },
    });
    expect(killed.signal).toBe('SIGKILL');
    // What the kill left: a frozen container whose record says running.
    expect((await fsp.readFile(freezer, 'utf8')).trim()).toBe('FROZEN');
    expect(await ok('inspect', '-f', '{{.State.Status}}', 'run1')).toBe('running');
    expect((await fsp.readFile(freezer, 'utf8')).trim()).toBe('THAWED');
    expect(await ok('exec', 'run1', 'echo', 'alive')).toBe('alive');
  }, 60_000);
});

describe('stopped containers', () => {
  it('copies both ways, mounting the snapshot only for the copy', async () => {
    await ok('run', '--name', 'stopped1', '--network', 'none', 'busybox', 'sh', '-c', 'echo s >/s');
    const before = snapshotMounts().length;
    const out = path.join(work, 'out4');
    await fsp.mkdir(out);
    await ok('cp', 'stopped1:/s', out);
    expect(await fsp.readFile(path.join(out, 's'), 'utf8')).toBe('s\n');
    await ok('cp', path.join(out, 's'), 'stopped1:/s2');
    expect(snapshotMounts()).toHaveLength(before);
    await ok('start', '-a', 'stopped1');
    expect(await ok('diff', 'stopped1')).toContain('A /s2');
    await ok('rm', 'stopped1');
    await ok('rm', '-f', 'run1');
    await ok('volume', 'rm', 'cpvol');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 60_000);
});
