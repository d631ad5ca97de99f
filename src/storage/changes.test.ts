import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listChanges, packTree } from './changes.js';

let dir: string;
let lower: string;
let upper: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'berth-changes-'));
  lower = path.join(dir, 'lower');
  upper = path.join(dir, 'upper');
  for (const d of ['lower/etc', 'lower/opq/old', 'lower/keep', 'upper/etc', 'upper/opq', 'upper/keep', 'upper/new', 'upper/dev']) await fsp.mkdir(path.join(dir, d), { recursive: true });
  await fsp.writeFile(path.join(lower, 'etc/passwd'), 'root\n');
  await fsp.writeFile(path.join(lower, 'etc/gone'), 'x');
  await fsp.writeFile(path.join(upper, 'etc/passwd'), 'root\nann\n');
  // overlayfs' forms: a 0:0 char device deletes, trusted.overlay.opaque=y hides the lower dir's content
  execFileSync('mknod', [path.join(upper, 'etc/gone'), 'c', '0', '0']);
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(upper, 'opq')]);
  await fsp.writeFile(path.join(upper, 'opq/fresh'), 'f');
  await fsp.writeFile(path.join(upper, 'new/file'), 'n');
  await fsp.writeFile(path.join(upper, 'dev/console'), '');
  await fsp.writeFile(path.join(upper, 'big'), 'a');
  await fsp.link(path.join(upper, 'big'), path.join(upper, 'big2'));
  // a container's absolute link names a path of its own root, not the host's: never followed here
  await fsp.symlink('/no/such/host/path', path.join(upper, 'new/dangling'));
});

afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('listChanges', () => {
  it('reports whiteouts as D, lower paths as C, new ones as A, and skips excluded and untouched copied-up dirs', async () => {
    const changes = await listChanges(upper, [lower], ['/dev']);
    expect(changes.map((c) => `${c.kind} ${c.path}`)).toEqual([
      'A /big', 'A /big2', 'C /etc', 'D /etc/gone', 'C /etc/passwd', 'A /new', 'A /new/dangling', 'A /new/file', 'C /opq', 'A /opq/fresh',
    ]);
  });
});

describe('packTree', () => {
  it('writes OCI whiteouts and opaque markers, keeps hard links, and never writes overlay xattrs', async () => {
    const entries: { name: string; type: string; linkname?: string | null; pax?: Record<string, string> | null }[] = [];
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      entries.push({ name: h.name, type: h.type ?? 'file', linkname: h.linkname, pax: h.pax as Record<string, string> | undefined });
      stream.resume();
      stream.on('end', next);
    });
    packTree(upper, { overlay: true, exclude: ['dev'] }).pipe(extract);
    await new Promise<void>((resolve, reject) => { extract.on('finish', () => resolve()); extract.on('error', reject); });
    const names = entries.map((e) => e.name);
    expect(names).toContain('etc/.wh.gone');
    expect(names).toContain('opq/.wh..wh..opq');
    expect(names).not.toContain('etc/gone');
    expect(names.some((n) => n.startsWith('dev'))).toBe(false);
    expect(entries.find((e) => e.name === 'big2')).toMatchObject({ type: 'link', linkname: 'big' });
    expect(entries.some((e) => Object.keys(e.pax ?? {}).some((k) => k.includes('overlay')))).toBe(false);
  });
});

/**
 * fuse-overlayfs 1.10's upper dirs, made by hand in the forms it was seen to write: as root, 0:0 devices
 * and trusted.overlay.opaque plus a .wh..wh..opq file; without mknod, .wh.NAME files; in a user namespace,
 * user.fuseoverlayfs.opaque; and its own 0:0 devices named .wh.* that stand for nothing of the container's.
 */
describe('fuse-overlayfs upper dirs', () => {
  let fuse: string;
  beforeEach(async () => {
    fuse = path.join(dir, 'fuse');
    for (const d of ['etc', 'opq', 'uopq', 'keep']) await fsp.mkdir(path.join(fuse, d), { recursive: true });
    for (const d of ['lower/uopq/old', 'lower/bin']) await fsp.mkdir(path.join(dir, d), { recursive: true });
    await fsp.writeFile(path.join(lower, 'etc/hosts'), 'h');
    await fsp.writeFile(path.join(lower, 'bin/mt'), 'busybox');
    await fsp.mkdir(path.join(fuse, 'bin'));
    // a file copied up untouched (fuse-overlayfs does so for the other names of a hard link): same size, times, owner
    execFileSync('cp', ['-p', path.join(lower, 'bin/mt'), path.join(fuse, 'bin/mt')]);
    execFileSync('mknod', [path.join(fuse, 'bin/ls'), 'c', '0', '0']);
    await fsp.writeFile(path.join(fuse, 'etc/.wh.passwd'), '');
    await fsp.writeFile(path.join(fuse, 'etc/.wh.gone'), '');
    await fsp.writeFile(path.join(fuse, 'etc/zz'), 'z');
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(fuse, 'opq')]);
    await fsp.writeFile(path.join(fuse, 'opq/.wh..wh..opq'), '');
    execFileSync('mknod', [path.join(fuse, 'opq/.wh..opq'), 'c', '0', '0']);
    await fsp.writeFile(path.join(fuse, 'opq/fresh'), 'f');
    execFileSync('setfattr', ['-n', 'user.fuseoverlayfs.opaque', '-v', 'y', path.join(fuse, 'uopq')]);
    await fsp.writeFile(path.join(fuse, 'uopq/new'), 'n');
    // opaque by the marker file alone (where xattrs are refused)
    await fsp.writeFile(path.join(fuse, 'keep/.wh..wh..opq'), '');
  });

  it('lists .wh.NAME files as deleted NAMEs, in path order, knows every opaque form, and skips its bookkeeping', async () => {
    const changes = await listChanges(fuse, [lower], [], 'fuse-overlayfs');
    expect(changes.map((c) => `${c.kind} ${c.path}`)).toEqual([
      'C /bin', 'D /bin/ls', 'C /etc', 'D /etc/gone', 'D /etc/passwd', 'A /etc/zz', 'C /keep', 'C /opq', 'A /opq/fresh', 'C /uopq', 'A /uopq/new',
    ]);
  });

  it('reads .wh. names as the container\'s own files in a native overlay upper', async () => {
    const changes = await listChanges(fuse, [lower], [], 'overlay');
    expect(changes.map((c) => c.path)).toContain('/etc/.wh.passwd');
  });

  it('packs one OCI marker per whiteout and opaque folder, and none of its xattrs', async () => {
    const entries: { name: string; pax?: Record<string, string> | null }[] = [];
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      entries.push({ name: h.name, pax: h.pax as Record<string, string> | undefined });
      stream.resume();
      stream.on('end', next);
    });
    packTree(fuse, { overlay: 'fuse-overlayfs' }).pipe(extract);
    await new Promise<void>((resolve, reject) => { extract.on('finish', () => resolve()); extract.on('error', reject); });
    const names = entries.map((e) => e.name);
    expect(names.filter((n) => n.includes('.wh.')).sort()).toEqual([
      'bin/.wh.ls', 'etc/.wh.gone', 'etc/.wh.passwd', 'keep/.wh..wh..opq', 'opq/.wh..wh..opq', 'uopq/.wh..wh..opq',
    ]);
    expect(entries.some((e) => Object.keys(e.pax ?? {}).some((k) => k.includes('overlay')))).toBe(false);
  });
});
