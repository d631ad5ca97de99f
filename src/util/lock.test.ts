import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockedError } from '../errors.js';
import { acquireLock } from './lock.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(path.join(tmpdir(), 'berth-lock-')); });
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('acquireLock', () => {
  it('excludes a second taker until release', async () => {
    const file = path.join(dir, 'a.lock');
    const first = await acquireLock(file);
    await expect(acquireLock(file, 100)).rejects.toBeInstanceOf(LockedError);
    await first.release();
    await (await acquireLock(file, 100)).release();
  });
  it('breaks a lock whose holder is dead', async () => {
    const file = path.join(dir, 'b.lock');
    await writeFile(file, '999999 12345'); // no such pid
    await (await acquireLock(file, 1000)).release();
  });
  it('breaks an empty lock left by a taker killed between open and write, once it is old', async () => {
    const file = path.join(dir, 'c.lock');
    await writeFile(file, '');
    await expect(acquireLock(file, 100)).rejects.toBeInstanceOf(LockedError); // fresh: maybe a live taker
    const old = new Date(Date.now() - 10_000);
    await utimes(file, old, old);
    await (await acquireLock(file, 1000)).release();
  });
});
