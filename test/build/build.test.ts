/**
 * Issue 15, builds: each RUN a real container, COPY from a context folder, multi-stage builds, the layer
 * cache, and failures that leave nothing behind. RUN steps use --network none.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildEvent, BuildOptions } from '../../src/build/index.js';
import { BuildStepError } from '../../src/errors.js';
import { cleanupAll, sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

let t: TestEngine;
let work: string;

beforeAll(async () => {
  t = await testEngine(3600 + (process.pid % 100));
  await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-build-'));
}, 120_000);

afterAll(() => cleanupAll(t, work));

let n = 0;
/** A context folder holding `files` (name → content) and the Dockerfile. */
async function contextDir(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = path.join(work, `ctx${n++}`);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'Dockerfile'), dockerfile);
  for (const [name, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fsp.writeFile(path.join(dir, name), content);
  }
  return dir;
}

async function build(context: string, opts: Partial<BuildOptions> = {}) {
  const events: BuildEvent[] = [];
  const res = await t.engine.images.build({ context, network: 'none', ...opts, onProgress: (e) => events.push(e) });
  return { ...res, events, cached: events.filter((e) => e.type === 'cached').map((e) => (e as { step: number }).step) };
}

async function runOut(image: string, ...cmd: string[]): Promise<string> {
  const out = sink();
  const res = await t.engine.run({ image, command: cmd.length ? cmd : undefined, autoRemove: true, network: { networks: ['none'] } }, { io: { stdout: out.stream, stderr: out.stream } });
  expect(res.exitCode, out.text()).toBe(0);
  return out.text();
}

async function noContainers(): Promise<void> {
  expect(await t.engine.containers.list({ all: true })).toEqual([]);
  expect(await findLeaks(t.root, t.runroot)).toEqual([]);
}

describe('build', () => {
  it('builds five instructions into an image that runs with their CMD, ENV, WORKDIR and USER', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'ENV GREETING=hello',
      'WORKDIR /app',
      'RUN echo "$GREETING world" > /app/msg && chown 1000 /app/msg',
      'USER 1000',
      'CMD ["sh", "-c", "cat msg; id -u; pwd; echo $GREETING"]',
    ].join('\n'));
    const res = await build(ctx, { tags: ['five:1'] });
    expect(res.tags).toEqual(['five:1']);
    expect(await runOut('five:1')).toBe('hello world\n1000\n/app\nhello\n');
    const img = await t.engine.images.inspect('five:1');
    expect(img.Id).toBe(res.id);
    expect(img.Config.Env).toContain('GREETING=hello');
    expect(img.Config.WorkingDir).toBe('/app');
    expect(img.Config.User).toBe('1000');
    expect(img.Config.Cmd).toEqual(['sh', '-c', 'cat msg; id -u; pwd; echo $GREETING']);
    const history = await t.engine.images.history('five:1');
    // newest first: CMD, USER, RUN, WORKDIR (a layer: /app was made), ENV, then busybox's own
    expect(history.slice(0, 5).map((h) => h.emptyLayer)).toEqual([true, true, false, false, true]);
    expect(history[2]!.createdBy).toContain('echo "$GREETING world"');
    expect(res.events.filter((e) => e.type === 'output').map((e) => (e as { line: string }).line)).toEqual([]);
    await noContainers();
  }, 120_000);
});
