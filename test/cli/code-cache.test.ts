/**
 * bin/load-cli.js: the CLI bundle's V8 code cache. Each test runs a private copy of bin/ and the bundle, so
 * the other tests' commands (which share the real dist/cli cache) cannot write its cache meanwhile.
 */
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commandWord } from '../../bin/load-cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
let cacheFile: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-codecache-'));
  mkdirSync(path.join(dir, 'bin'));
  mkdirSync(path.join(dir, 'dist/cli'), { recursive: true });
  for (const f of ['bin/berth.js', 'bin/load-cli.js', 'dist/cli/main.cjs']) copyFileSync(path.join(ROOT, f), path.join(dir, f));
  chmodSync(path.join(dir, 'bin/berth.js'), 0o755);
  cacheFile = path.join(dir, 'dist/cli/main.cjs.cache');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The copy's CLI on a root of its own inside the copy. */
function berth(...args: string[]) {
  return execa(path.join(dir, 'bin/berth.js'), ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), ...args], { reject: false, timeout: 60_000 });
}

function cachedCommands(): string[] {
  const buf = readFileSync(cacheFile);
  return JSON.parse(buf.subarray(0, buf.indexOf(10)).toString()).commands;
}

describe('the CLI code cache', () => {
  it('is made by the first command, extended by a new command, and left alone by a known one', async () => {
    expect(existsSync(cacheFile)).toBe(false);
    expect((await berth('version')).exitCode).toBe(0);
    expect(cachedCommands()).toEqual(['version']);

    const ps = await berth('ps', '-a');
    expect(ps.exitCode).toBe(0);
    expect(ps.stdout).toContain('CONTAINER ID');
    expect(cachedCommands()).toEqual(['version', 'ps']);
    // The new cache holds more compiled code than one made after `version` alone.
    const size = statSync(cacheFile).size;
    const mtime = statSync(cacheFile).mtimeMs;

    expect((await berth('ps')).exitCode).toBe(0);
    expect(statSync(cacheFile).mtimeMs).toBe(mtime);
    expect(statSync(cacheFile).size).toBe(size);
  });

  it('replaces a cache V8 rejects, and the command still runs', async () => {
    writeFileSync(cacheFile, Buffer.concat([Buffer.from('{"commands":["ps"]}\n'), Buffer.from('not a code cache'.repeat(100))]), { mode: 0o644 });
    const ps = await berth('ps');
    expect(ps.exitCode).toBe(0);
    expect(ps.stdout).toContain('CONTAINER ID');
    expect(cachedCommands()).toEqual(['ps']);
    expect(statSync(cacheFile).size).toBeGreaterThan(10_000);
  });

  it('ignores a cache that others could have written, and one the bundle\'s owner did not write', async () => {
    await berth('ps');
    const good = readFileSync(cacheFile);
    // A cache the bundle's owner would reuse as is (its list has the command) is made again when unsafe.
    chmodSync(cacheFile, 0o666);
    await berth('ps');
    expect(statSync(cacheFile).mode & 0o777).toBe(0o644);

    chownSync(cacheFile, 4242, 4242);
    expect((await berth('ps')).exitCode).toBe(0);
    expect(statSync(cacheFile).uid).toBe(process.getuid!());
    expect(readFileSync(cacheFile).length).toBeGreaterThan(good.length / 2);
  });

  it('a broken header is no cache', async () => {
    writeFileSync(cacheFile, 'garbage without a newline', { mode: 0o644 });
    expect((await berth('ps')).exitCode).toBe(0);
    expect(cachedCommands()).toEqual(['ps']);
  });
});

describe('commandWord', () => {
  it('is the first word that is not a global option\'s value', () => {
    expect(commandWord(['--root', '/tmp/x', 'run', '--rm', 'busybox'])).toBe('run');
    expect(commandWord(['-H', 'ssh://root@h', 'ps'])).toBe('ps');
    expect(commandWord(['--version'])).toBe('');
    expect(commandWord([])).toBe('');
  });
});
