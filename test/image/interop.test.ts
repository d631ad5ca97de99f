import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../src/storage/index.js';
import { openTestImages, withTempRoot, type TempRoot, type TestImages } from '../fixtures/images.js';

const podman = ['/usr/bin/podman', '/usr/local/bin/podman'].find((p) => existsSync(p));

let t: TempRoot;
let images: TestImages;
let id: string;

beforeAll(async () => {
  t = await withTempRoot('berth-img-interop-');
  images = openTestImages(t.layout, openStorage(t.layout));
  id = await images.ensureDefault();
});
afterAll(async () => {
  if (podman && t) {
    // podman's own store under our root: let it unmount and forget what it made before the folder goes.
    try { execFileSync(podman, podmanArgs(['system', 'reset', '--force']), { stdio: 'ignore', timeout: 60_000 }); } catch { /* nothing made */ }
  }
  await t?.cleanup();
});

function podmanArgs(args: string[]): string[] {
  return ['--root', path.join(t.root, 'podman'), '--runroot', path.join(t.runroot, 'podman'), '--storage-driver', 'vfs', ...args];
}

describe.skipIf(!podman)('archives other engines read', () => {
  it.each(['docker-archive', 'oci-archive'] as const)('podman load accepts a %s with the same image ID', async (format) => {
    const file = path.join(t.root, `busybox-${format}.tar`);
    await images.save(['busybox'], file, { format });
    const out = execFileSync(podman!, podmanArgs(['load', '-i', file]), { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toContain('localhost/busybox:latest');
    const podmanId = execFileSync(podman!, podmanArgs(['image', 'inspect', '--format', '{{.Id}}', 'localhost/busybox:latest']), { encoding: 'utf8', timeout: 60_000 }).trim();
    expect(`sha256:${podmanId}`).toBe(id);
    execFileSync(podman!, podmanArgs(['rmi', '-f', 'localhost/busybox:latest']), { stdio: 'ignore', timeout: 60_000 });
  });

  it('loads what podman save writes', async () => {
    const file = path.join(t.root, 'from-podman.tar');
    const src = path.join(t.root, 'mine.tar');
    await images.save(['busybox'], src);
    execFileSync(podman!, podmanArgs(['load', '-i', src]), { stdio: 'ignore', timeout: 120_000 });
    execFileSync(podman!, podmanArgs(['tag', 'localhost/busybox:latest', 'localhost/frompodman:1']), { stdio: 'ignore', timeout: 60_000 });
    execFileSync(podman!, podmanArgs(['save', '-o', file, 'localhost/frompodman:1']), { stdio: 'ignore', timeout: 120_000 });
    expect((await images.load(file)).loaded).toEqual(['localhost/frompodman:1']);
    expect((await images.resolve('frompodman:1')).id).toBe(id);
  });
});
