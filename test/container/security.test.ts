import { promises as fsp, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadStateError } from '../../src/api/index.js';
import { makeDockerArchive, type LayerEntry } from '../fixtures/images.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';

let t: TestEngine;
let tmp = '';
beforeAll(async () => {
  t = await testEngine(3300);
  tmp = await fsp.mkdtemp(path.join(tmpdir(), 'berth-sec-'));
  await t.engine.images.ensureDefault();
});
afterAll(async () => {
  await t?.cleanup();
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

const none = { networks: ['none'] };
const busybox: LayerEntry[] = [
  { type: 'file', path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'symlink', path: 'bin/true', target: 'busybox' },
  { type: 'symlink', path: 'bin/sleep', target: 'busybox' },
];

describe('removing an image a running container uses (issue 8, item 13)', () => {
  it('refuses even with force by ID, only untags by name, and removes once the container stopped', async () => {
    const file = path.join(tmp, 'inuse.tar');
    const img = await makeDockerArchive(file, [{ entries: busybox }], { tags: ['inuse:1'] });
    await t.engine.images.load(file);
    const { id } = await t.engine.containers.run({ image: 'inuse:1', network: none, command: ['sleep', '300'] }, { detach: true });
    const hard = `conflict: unable to delete ${img.id.slice(7, 19)} (cannot be forced) - image is being used by running container ${id.slice(0, 12)}`;

    for (const force of [true, false]) {
      const err = await t.engine.images.remove(img.id, { force }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadStateError);
      expect((err as Error).message).toBe(hard);
    }
    await t.engine.containers.pause(id);
    await expect(t.engine.images.remove(img.id.slice(7, 19), { force: true })).rejects.toThrow(hard);
    await t.engine.containers.unpause(id);
    expect((await t.engine.images.inspect(img.id)).RepoTags).toEqual(['inuse:1']);

    // Docker: by name, -f untags; the image stays, dangling, while the container runs.
    expect(await t.engine.images.remove('inuse:1', { force: true })).toEqual([{ untagged: 'inuse:1' }]);
    expect((await t.engine.images.inspect(img.id)).RepoTags).toEqual([]);
    expect((await t.engine.containers.inspect(id)).State.Status).toBe('running');

    await t.engine.containers.stop(id, { timeout: 0 });
    expect(await t.engine.images.remove(img.id, { force: true })).toEqual([{ deleted: img.id }]);
    await t.engine.containers.remove(id);
  });
});
