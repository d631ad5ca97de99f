import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { NotFoundError } from '../../src/errors.js';
import { findLeaks } from '../helpers/leaks.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
let t: TestEngine;

beforeAll(async () => {
  t = await testEngine(3450 + (process.pid % 50));
  await t.engine.images.ensureDefault();
  // The default bridge gets the test's subnet: the CLI reads the network records this writes.
  await t.engine.networks.list();
});
afterAll(async () => {
  await t?.cleanup();
  if (t) expect(await findLeaks(t.root, t.runroot, { final: true, known: killedIds })).toEqual([]);
});

/** Starts `berth run` and SIGKILLs it after `ms` milliseconds, wherever it is. */
function runAndKill(ms: number, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--root', t.root, '--runroot', t.runroot, 'run', ...args], { stdio: 'ignore' });
    setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', () => resolve());
  });
}

const killedIds = new Set<string>();

describe('a berth run killed at any point', () => {
  it('leaves nothing that the next commands do not repair', async () => {
    for (const ms of [60, 120, 180, 240, 300, 400, 600]) {
      await runAndKill(ms, ['--rm', 'busybox', 'sh', '-c', 'sleep 0.2']);
      await runAndKill(ms, ['-d', '-p', `127.0.0.1:${18740 + ms / 20}:80`, 'busybox', 'sleep', '300']);
    }
    // Read from the store, not listed: listing repairs, and a killed create's id must be known before that.
    const dir = path.join(t.root, 'containers');
    for (const id of existsSync(dir) ? readdirSync(dir) : []) if (/^[0-9a-f]{64}$/.test(id)) killedIds.add(id);
    // The next commands: what a user would run to see and clean up.
    await t.engine.containers.list({ all: true });
    for (const c of await t.engine.containers.list({ all: true })) {
      // A --rm container's exit hook may remove it between the list and this rm: gone is what rm wanted.
      await t.engine.containers.remove(c.id, { force: true }).catch((err: unknown) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
    }
    await t.engine.system.prune();
    // --rm containers whose exit came after the kill are cleaned by their monitors' exit hooks.
    for (let i = 0; i < 50 && (await t.engine.containers.list({ all: true })).length; i++) await new Promise((r) => setTimeout(r, 100));
    await t.engine.system.prune();
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
    expect(await findLeaks(t.root, t.runroot, { known: killedIds })).toEqual([]);
  });
});
