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
