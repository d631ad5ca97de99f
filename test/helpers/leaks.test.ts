import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostNames } from '../../src/paths.js';
import { findLeaks } from './leaks.js';

/** The leak check must be able to fail: each kind of leftover, planted by hand, is reported. */
describe('findLeaks', () => {
  const made: (() => void)[] = [];
  afterEach(async () => {
    for (const undo of made.splice(0).reverse()) {
      try { undo(); } catch { /* already gone */ }
    }
  });

  async function emptyRoot() {
    const root = await mkdtemp(path.join(tmpdir(), 'berth-leaks-'));
    const runroot = path.join('/run/berth', `l${path.basename(root).slice(-6)}`);
    made.push(() => execFileSync('rm', ['-rf', root, runroot]));
    return { root, runroot };
  }

  it('finds nothing in an empty store', async () => {
    const { root, runroot } = await emptyRoot();
    expect(await findLeaks(root, runroot, { final: true })).toEqual([]);
  });

  it('reports rules of removed containers, stranded files, locks and netns', async () => {
    const { root, runroot } = await emptyRoot();
    const gone = randomBytes(32).toString('hex');
    const alive = randomBytes(32).toString('hex');
    // a running container, whose objects are not leaks
    mkdirSync(path.join(root, 'containers', alive), { recursive: true });
    writeFileSync(path.join(root, 'containers', alive, 'container.json'), JSON.stringify({ id: alive, name: 'up', state: 'running' }));
    mkdirSync(path.join(runroot, 'locks'), { recursive: true });
    writeFileSync(path.join(runroot, 'locks', `ctr-${gone}.lock`), '999999998 1');
    writeFileSync(path.join(runroot, 'locks', `ctr-${alive}.lock`), '999999999 1');
    mkdirSync(path.join(runroot, 'netns'), { recursive: true });
    writeFileSync(path.join(runroot, 'netns', gone), '');
    writeFileSync(path.join(runroot, 'netns', alive), '');
    writeFileSync(path.join(root, 'containers', alive, '.tmp-container.json-0a0b'), '');
    mkdirSync(path.join(root, 'containers', '.names'));
    writeFileSync(path.join(root, 'containers', '.names', 'old'), gone);

    const prefix = hostNames(root).chainPrefix;
    const chain = `${prefix}-FORWARD`;
    execFileSync('iptables', ['-N', chain]);
    made.push(() => execFileSync('iptables', ['-X', chain]));
    for (const owner of [gone, alive]) {
      execFileSync('iptables', ['-A', chain, '-m', 'comment', '--comment', `berth:${owner}`, '-j', 'ACCEPT']);
      made.push(() => execFileSync('iptables', ['-D', chain, '-m', 'comment', '--comment', `berth:${owner}`, '-j', 'ACCEPT']));
    }

    const leaks = await findLeaks(root, runroot);
    expect(leaks).toEqual(expect.arrayContaining([
      `name old of missing container ${gone.slice(0, 12)}`,
      `lock of a removed object ctr-${gone}.lock`,
      `lock of a dead process ctr-${alive}.lock`,
      `temp file containers/${alive}/.tmp-container.json-0a0b`,
      `netns ${gone.slice(0, 12)}`,
      expect.stringMatching(new RegExp(`^iptables-save rule of ${gone.slice(0, 12)}: -A ${chain} `)),
    ]));
    expect(leaks.join('\n')).not.toContain(`rule of ${alive.slice(0, 12)}`);
    expect(leaks).not.toContain(`netns ${alive.slice(0, 12)}`);
    // After a reset nothing of ours may remain, the chain included.
    expect(await findLeaks(root, runroot, { final: true })).toContain(`iptables-save chain ${chain}`);
  }, 30_000);

  it('reports a healthcheck timer loop and its file of a container that is not running', async () => {
    const { root, runroot } = await emptyRoot();
    const gone = randomBytes(32).toString('hex');
    mkdirSync(path.join(runroot, 'exits'), { recursive: true });
    writeFileSync(path.join(runroot, 'exits', `${gone}.health`), '999999997 1');
    // A loop shaped as runtime/healthtimer.ts starts it, left running for a container that is gone.
    const loop = spawn('/bin/sh', ['-c', 'sleep 60; :', 'berth-health', '1.000', 'node', 'berth.js', '--root', root, 'healthcheck', 'tick', gone], { stdio: 'ignore' });
    made.push(() => loop.kill('SIGKILL'));
    const leaks = await findLeaks(root, runroot);
    expect(leaks).toEqual(expect.arrayContaining([`healthcheck timer of ${gone.slice(0, 12)}`, `healthcheck timer file ${gone}.health`]));
    // Transient leftovers are waited out for up to 300 rounds of ps first: slow on a busy machine.
  }, 120_000);

  it('reports a fuse-overlayfs daemon of a snapshot no container owns', async () => {
    const { root, runroot } = await emptyRoot();
    const gone = randomBytes(32).toString('hex');
    const snap = path.join(root, 'snapshots', gone);
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(path.join(snap, d), { recursive: true });
    execFileSync('fuse-overlayfs', ['-o', `lowerdir=${snap}/lower,upperdir=${snap}/upper,workdir=${snap}/work`, `${snap}/merged`]);
    made.push(() => execFileSync('umount', [`${snap}/merged`]));
    const leaks = await findLeaks(root, runroot);
    expect(leaks).toEqual(expect.arrayContaining([`fuse-overlayfs daemon of ${gone.slice(0, 12)}`, `mount ${snap}/merged`]));
  }, 120_000);
});
