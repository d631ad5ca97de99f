import { mkdtempSync, mkdirSync, rmSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensurePrivateDir, rootlessDirs } from './dirs.js';
import { mapArgs, subIdRanges, MissingSubIdsError } from './namespace.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-rldirs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('rootlessDirs', () => {
  it('follows XDG, else the home folder, and falls back to /tmp/berth-run-UID', () => {
    expect(rootlessDirs({ HOME: '/home/a' }, 1000, 1000)).toEqual({ root: '/home/a/.local/share/berth', runroot: '/tmp/berth-run-1000', config: '/home/a/.config/berth' });
    expect(rootlessDirs({ HOME: '/home/a', XDG_DATA_HOME: '/d', XDG_CONFIG_HOME: '/c', XDG_RUNTIME_DIR: '/nonexistent' }, 1000, 1000))
      .toEqual({ root: '/d/berth', runroot: '/tmp/berth-run-1000', config: '/c/berth' });
  });
  it('takes XDG_RUNTIME_DIR only when it is a private folder of the user', () => {
    const run = path.join(tmp, 'xdg');
    mkdirSync(run, { mode: 0o700 });
    const uid = process.geteuid!();
    expect(rootlessDirs({ HOME: '/h', XDG_RUNTIME_DIR: run }, uid, 7).runroot).toBe(path.join(run, 'berth'));
    expect(rootlessDirs({ HOME: '/h', XDG_RUNTIME_DIR: run }, uid + 1, 7).runroot).toBe('/tmp/berth-run-7');
    chmodSync(run, 0o755);
    expect(rootlessDirs({ HOME: '/h', XDG_RUNTIME_DIR: run }, uid, 7).runroot).toBe('/tmp/berth-run-7');
  });
});

describe('ensurePrivateDir', () => {
  it('makes a 0700 folder, and refuses one that is another user\'s or writable by others', () => {
    const uid = process.geteuid!();
    const mine = path.join(tmp, 'mine');
    ensurePrivateDir(mine, uid);
    ensurePrivateDir(mine, uid);
    expect(() => ensurePrivateDir(mine, uid + 1)).toThrow(/is owned by uid/);
    const open = path.join(tmp, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => ensurePrivateDir(open, uid)).toThrow(/writable by others/);
  });
});

describe('subIdRanges', () => {
  it('names the exact lines to add when a file lacks the user', () => {
    const err = (() => { try { subIdRanges({ name: 'al', uid: 1000 }, { subuid: 'bo:100000:65536\n', subgid: 'al:100000:65536\n' }); } catch (e) { return e as MissingSubIdsError; } })();
    expect(err).toBeInstanceOf(MissingSubIdsError);
    expect(err!.hint).toContain('"al:165536:65536" to /etc/subuid');
    expect(err!.hint).not.toContain('/etc/subgid');
  });
  it('maps the user to 0 and its ranges from 1, in order', () => {
    expect(mapArgs(42, 1000, [{ start: 100000, count: 10 }, { start: 200000, count: 5 }])).toEqual(['42', '0', '1000', '1', '1', '100000', '10', '11', '200000', '5']);
  });
});
