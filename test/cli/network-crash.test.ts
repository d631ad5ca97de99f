/**
 * `network create` and `network rm` SIGKILLed half way (BERTH_FAILPOINT), then one later command: no
 * bridge, rule, chain, name server or lock of the killed command may be left, and `network ls` shows what
 * existed before plus only completed work. Runs the built bin/berth.js (`npm run build` first).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { hostNames } from '../../src/paths.js';
import { run } from '../../src/util/exec.js';
import { unmountUnder } from '../helpers/engine.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

interface Root { root: string; runroot: string; prefix: string }
const roots: Root[] = [];
const bridges: string[] = [];

afterEach(async () => {
  for (const r of roots.splice(0)) {
    await berth(r, {}, 'system', 'reset', '--force');
    unmountUnder(r.root);
    unmountUnder(r.runroot);
    await rm(r.root, { recursive: true, force: true });
    await rm(r.runroot, { recursive: true, force: true });
  }
  for (const b of bridges.splice(0)) await run('ip', ['link', 'del', b]).catch(() => {});
});

async function newRoot(): Promise<Root> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-ncrash-'));
  const r = { root, runroot: path.join('/run/berth', `n${path.basename(root).slice(-6)}`), prefix: hostNames(root).chainPrefix };
  roots.push(r);
  return r;
}

function berth(r: Root, env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--root', r.root, '--runroot', r.runroot, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

const names = (ls: string) => ls.split('\n').slice(1).filter(Boolean).map((l) => l.trim().split(/\s+/)[1]).sort();

async function ourRules(r: Root): Promise<string[]> {
  const out: string[] = [];
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    out.push(...(await run(tool, [])).stdout.split('\n').filter((l) => l.includes(`${r.prefix}-`) || l.includes(`berth:${r.prefix}"`)).map((l) => `${tool} ${l}`));
  }
  return out.sort();
}

async function leftoverState(r: Root): Promise<string[]> {
  const found: string[] = [];
  for (const f of await readdir(path.join(r.runroot, 'locks')).catch(() => [] as string[])) found.push(`lock ${f}`);
  const ps = (await run('ps', ['-eo', 'args'])).stdout.split('\n').filter((l) => l.includes('dnsmasq') && (l.includes(r.runroot) || l.includes(r.root)));
  found.push(...ps.map((p) => `process ${p}`));
  if (readFileSync('/proc/self/mountinfo', 'utf8').includes(r.runroot)) found.push('mount under runroot');
  return found;
}

describe('network commands killed half way', () => {
  it('network create: the next command removes the half-made network and everything it made', async () => {
    const r = await newRoot();
    bridges.push('berthA46k', 'berthA46d');
    const keep = await berth(r, {}, 'network', 'create', '--subnet', '10.241.46.0/24', '-o', 'com.docker.network.bridge.name=berthA46k', 'keep');
    expect(keep.stderr).toBe('');
    const before = { rules: await ourRules(r), ls: names((await berth(r, {}, 'network', 'ls')).stdout) };
    expect(before.ls).toEqual(['bridge', 'host', 'keep', 'none']);

    const killed = await berth(r, { BERTH_FAILPOINT: 'network.create.mid' },
      'network', 'create', '--subnet', '10.241.47.0/24', '-o', 'com.docker.network.bridge.name=berthA46d', 'doomed');
    expect(killed.signal).toBe('SIGKILL');
    // The failpoint sits where it hurts: the bridge and the network's rules exist, the record is unfinished.
    expect(existsSync('/sys/class/net/berthA46d')).toBe(true);
    expect((await ourRules(r)).some((l) => l.includes('berthA46d'))).toBe(true);

    const ls = await berth(r, {}, 'network', 'ls');
    expect(ls.code).toBe(0);
    expect(names(ls.stdout)).toEqual(before.ls);
    expect(existsSync('/sys/class/net/berthA46d')).toBe(false);
    expect(existsSync('/sys/class/net/berthA46k')).toBe(true);
    expect(await ourRules(r)).toEqual(before.rules);
    expect(await leftoverState(r)).toEqual([]);

    // The same name can be created afterwards, and removing the last network leaves no chain behind.
    expect((await berth(r, {}, 'network', 'create', '--subnet', '10.241.47.0/24', '-o', 'com.docker.network.bridge.name=berthA46d', 'doomed')).code).toBe(0);
    expect((await berth(r, {}, 'network', 'rm', 'doomed', 'keep')).code).toBe(0);
    expect(existsSync('/sys/class/net/berthA46d') || existsSync('/sys/class/net/berthA46k')).toBe(false);
    expect(await ourRules(r)).toEqual([]);
  });

  it('network rm: the next command finishes the removal', async () => {
    const r = await newRoot();
    bridges.push('berthA48g', 'berthA48s');
    for (const [name, sub, br] of [['stay', '10.241.48.0/24', 'berthA48s'], ['gone', '10.241.49.0/24', 'berthA48g']]) {
      expect((await berth(r, {}, 'network', 'create', '--subnet', sub!, '-o', `com.docker.network.bridge.name=${br}`, name!)).code).toBe(0);
    }
    expect((await ourRules(r)).some((l) => l.includes('berthA48g'))).toBe(true);

    const killed = await berth(r, { BERTH_FAILPOINT: 'network.rm.mid' }, 'network', 'rm', 'gone');
    expect(killed.signal).toBe('SIGKILL');
    // Killed with part of the network gone and part (its rules, its record) still there.
    expect((await ourRules(r)).some((l) => l.includes('berthA48g'))).toBe(true);

    const ls = await berth(r, {}, 'network', 'ls');
    expect(ls.code).toBe(0);
    expect(names(ls.stdout)).toEqual(['bridge', 'host', 'none', 'stay']);
    expect(existsSync('/sys/class/net/berthA48g')).toBe(false);
    expect(existsSync('/sys/class/net/berthA48s')).toBe(true);
    expect((await ourRules(r)).filter((l) => l.includes('berthA48g'))).toEqual([]);
    expect(await leftoverState(r)).toEqual([]);

    expect((await berth(r, {}, 'network', 'rm', 'stay')).code).toBe(0);
    expect(await ourRules(r)).toEqual([]);
  });
});
