import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

/**
 * Who does a container's exit work. Its monitor's exit hook starts `berth container cleanup ID` (a node
 * process) unless a live process has claimed the work: an attached run, or a stop / rm -f / kill that
 * waits for the exit and does the work itself (issue 20: one node process less per stopped container).
 */
let t: TestEngine;
beforeAll(async () => {
  t = await testEngine();
  await t.engine.images.ensureDefault();
});
afterAll(async () => {
  await t?.cleanup();
});

/** Watches, until stopped, for a node process running `container cleanup ID`; says whether one ran. */
function watchHooks(id: string): { stop(): Promise<boolean> } {
  let seen = false;
  let done = false;
  const loop = (async () => {
    while (!done) {
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'node') continue;
          const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          const at = args.indexOf('cleanup');
          if (at > 0 && args[at - 1] === 'container' && args[at + 1] === id) seen = true;
        } catch { /* gone meanwhile */ }
      }
      await sleep(5);
    }
  })();
  return { stop: async () => { done = true; await loop; return seen; } };
}

describe('the exit work', () => {
  it('is done by the exit hook when a detached container ends by itself (the watch sees it)', async () => {
    const id = await t.ok('run', '-d', '--network', 'none', 'busybox', 'sleep', '0.3');
    const watch = watchHooks(id);
    await t.ok('wait', id);
    await sleep(1500);
    expect(await watch.stop()).toBe(true);
    expect(await t.ok('inspect', '--format', '{{.State.Status}}', id)).toBe('exited');
    await t.ok('rm', id);
  });

  it.each([
    ['stop', ['stop', '-t', '1']],
    ['kill', ['kill']],
    ['rm -f', ['rm', '-f']],
  ])('is done by %s itself: no exit hook starts node', async (_name, verb) => {
    const id = await t.ok('run', '-d', '--network', 'none', 'busybox', 'sleep', '1000');
    const watch = watchHooks(id);
    await t.ok(...verb, id);
    await sleep(1500);
    expect(await watch.stop()).toBe(false);
    if (verb[0] !== 'rm') {
      expect(await t.ok('inspect', '--format', '{{.State.Status}}', id)).toBe('exited');
      await t.ok('rm', id);
    }
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  });
});
