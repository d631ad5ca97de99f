/**
 * A build's step images in the store, as Docker's classic builder keeps them: each records its parent;
 * intermediates (untagged parents) are hidden from `images` without -a, kept by `image prune` while the
 * tagged image above them lives, and go with it (`rmi`, or a prune of the dangling image a rebuild left);
 * the build cache's entries of images that are gone are removed by the prune. RUN steps use --network none.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildEvent, BuildOptions } from '../../src/build/index.js';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

let t: TestEngine;
let work: string;
let busyboxId: string;

beforeAll(async () => {
  t = await testEngine(3750 + (process.pid % 25));
  busyboxId = await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-build-store-'));
}, 120_000);

afterAll(() => cleanupAll(t, work));

async function build(dockerfile: string, opts: Partial<BuildOptions> = {}) {
  const dir = await fsp.mkdtemp(path.join(work, 'ctx-'));
  await fsp.writeFile(path.join(dir, 'Dockerfile'), dockerfile);
  const events: BuildEvent[] = [];
  const res = await t.engine.images.build({ context: dir, network: 'none', ...opts, onProgress: (e) => events.push(e) });
  const steps = events.filter((e): e is Extract<BuildEvent, { type: 'stepDone' }> => e.type === 'stepDone').map((e) => e.id as string);
  return { ...res, steps, cached: events.filter((e) => e.type === 'cached').length };
}

const ids = async (all: boolean) => (await t.engine.images.list({ all })).map((i) => i.id).sort();
const cacheEntries = async () => (await fsp.readdir(path.join(t.root, 'build-cache')).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));

describe('build intermediates', () => {
  it('records parents, hides intermediates, keeps them on prune and removes them with their image', async () => {
    const df = 'FROM busybox\nENV A=1\nRUN echo x > /x\nCMD ["cat", "/x"]\n';
    const first = await build(df, { tags: ['chain:1'] });
    // Step results: busybox, ENV, RUN, CMD; each records the one before it as parent (Docker's Parent).
    expect(first.steps[0]).toBe(busyboxId);
    for (let i = 1; i < first.steps.length; i++) expect((await t.engine.images.inspect(first.steps[i]!)).Parent).toBe(first.steps[i - 1]);
    const intermediates = first.steps.slice(1, -1);
    expect(await ids(false)).toEqual([busyboxId, first.id].sort());
    expect(await ids(true)).toEqual([busyboxId, ...first.steps.slice(1)].sort());
    expect(await t.ok('images', '-q', '--no-trunc', '--filter', 'dangling=true')).toBe('');

    // A prune of dangling images leaves a tagged image's intermediates: the cache still serves every step.
    expect((await t.engine.images.prune()).deleted).toEqual([]);
    expect((await build(df, { tags: ['chain:1'] })).cached).toBe(3);

    // A rebuild with another CMD moves the tag: the old image is dangling (shown), its parent is shared.
    const second = await build(df.replace('cat', 'head'), { tags: ['chain:1'] });
    expect(second.steps.slice(0, 3)).toEqual(first.steps.slice(0, 3));
    expect(await ids(false)).toEqual([busyboxId, first.id, second.id].sort());
    expect(await t.ok('images', '-q', '--no-trunc', '--filter', 'dangling=true')).toBe(first.id);
    expect(await cacheEntries()).toHaveLength(4);
    expect((await t.engine.images.prune()).deleted).toEqual([first.id]);
    // Its cache entry went with it; the rest still hit.
    expect(await cacheEntries()).toHaveLength(3);
    expect(await ids(true)).toEqual([busyboxId, ...second.steps.slice(1)].sort());

    // An intermediate cannot be deleted by ID (Docker's hard conflict), force or not.
    const byId = await t.cli('rmi', '-f', intermediates[0]!);
    expect(byId.exitCode).toBe(1);
    expect(byId.stderr).toMatch(/image has dependent child images/);

    // rmi of the tagged image deletes its untagged parents up to the tagged base, as Docker's rmi.
    const rmi = await t.ok('rmi', 'chain:1');
    expect(rmi.split('\n')).toEqual(['Untagged: chain:1', ...[...second.steps.slice(1)].reverse().map((id) => `Deleted: ${id}`)]);
    expect(await ids(true)).toEqual([busyboxId]);
    expect(await cacheEntries()).toHaveLength(3);
    await t.engine.images.prune();
    expect(await cacheEntries()).toEqual([]);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 180_000);

  it('rmi --no-prune keeps the parents; a failed build leaves a dangling image that prune removes', async () => {
    const ok = await build('FROM busybox\nENV B=1\nENV C=2\n', { tags: ['keep:1'] });
    await t.ok('rmi', '--no-prune', 'keep:1');
    // The ENV B image is now a dangling leaf (shown), its own parent busybox is tagged.
    expect(await ids(false)).toEqual([busyboxId, ok.steps[1]!].sort());
    expect((await t.engine.images.prune()).deleted).toEqual([ok.steps[1]]);

    const failed = await build('FROM busybox\nENV D=1\nRUN exit 4\n', { tags: ['never:1'] }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Error);
    expect(await ids(false)).toHaveLength(2);
    const pruned = await t.engine.images.prune();
    expect(pruned.deleted).toHaveLength(1);
    expect(await ids(true)).toEqual([busyboxId]);
    expect(await cacheEntries()).toEqual([]);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 180_000);
});

describe('build output', () => {
  it('prints the classic builder\'s lines: Running in / Removing intermediate container around a RUN', async () => {
    const dir = await fsp.mkdtemp(path.join(work, 'ctx-'));
    await fsp.writeFile(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo hello\nENV E=1\n');
    const out = (await t.ok('build', '--network', 'none', '-t', 'out', dir)).split('\n');
    const m = /^ ---> Running in ([0-9a-f]{12})$/.exec(out[3]!);
    expect(m, out.join('\n')).not.toBeNull();
    const [id, top] = [(await t.engine.images.inspect('out')).Id.slice(7, 19), busyboxId.slice(7, 19)];
    expect(out).toEqual([
      'Step 1/3 : FROM busybox', ` ---> ${top}`,
      'Step 2/3 : RUN echo hello', ` ---> Running in ${m![1]}`, 'hello', `Removing intermediate container ${m![1]}`, expect.stringMatching(/^ ---> [0-9a-f]{12}$/),
      'Step 3/3 : ENV E=1', ` ---> ${id}`,
      `Successfully built ${id}`, 'Successfully tagged out:latest',
    ]);
    // Cached: no container at all.
    const again = (await t.ok('build', '--network', 'none', '-t', 'out', dir)).split('\n');
    expect(again.slice(2, 5)).toEqual(['Step 2/3 : RUN echo hello', ' ---> Using cache', expect.stringMatching(/^ ---> [0-9a-f]{12}$/)]);
    await t.ok('rmi', 'out');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 120_000);
});
