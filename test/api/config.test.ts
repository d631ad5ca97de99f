/**
 * The engine configuration file, end to end: the CLI finds it (--config, $BERTH_CONFIG), a bad one stops
 * every command before anything is made, and the monitor's exit hook (another process) reads the same
 * settings as the engine that started the container.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/api/index.js';
import { unmountUnder } from '../helpers/engine.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-cfg-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function berth(args: string[], env: NodeJS.ProcessEnv = {}) {
  const { BERTH_ROOT: _r, BERTH_RUNROOT: _rr, BERTH_CONFIG: _c, ...base } = process.env;
  const res = spawnSync(BIN, args, { encoding: 'utf8', env: { ...base, ...env }, timeout: 30_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('the configuration file', () => {
  it('is read from --config and from $BERTH_CONFIG; a flag beats the file', () => {
    const root = path.join(dir, 'store-a');
    const cfg = path.join(dir, 'a.json');
    writeFileSync(cfg, JSON.stringify({ 'data-root': root, 'exec-root': path.join(dir, 'run-a') }));
    expect(berth(['--config', cfg, 'info']).stdout).toContain(`Root: ${root}\n`);
    expect(berth(['info'], { BERTH_CONFIG: cfg }).stdout).toContain(`RunRoot: ${path.join(dir, 'run-a')}\n`);
    const other = path.join(dir, 'store-b');
    expect(berth(['--config', cfg, '--root', other, 'info']).stdout).toContain(`Root: ${other}\n`);
  });

  it('refuses a bad file with exit 125 and a message naming the file and the key; nothing is made', () => {
    const root = path.join(dir, 'never');
    const cfg = path.join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ 'data-root': root, 'dns': ['1.1.1.1'] }));
    const res = berth(['--config', cfg, 'run', '--rm', 'busybox', 'true']);
    expect(res.code).toBe(125);
    expect(res.stderr).toContain(`${cfg}: "dns" is not supported by this version of Berth`);
    writeFileSync(cfg, '{"data-root": 7}');
    expect(berth(['--config', cfg, 'ps']).stderr).toContain(`${cfg} is not a valid Berth configuration: /data-root: must be string`);
    // Like docker, only run/create exit 125 for an engine error; other commands exit 1.
    expect(berth(['--config', path.join(dir, 'missing.json'), 'images'])).toMatchObject({ code: 1 });
    expect(existsSync(root)).toBe(false);
  });
});

describe('an Engine given its configuration as an object', () => {
  it("hands it to the container's exit hook, which tears down under the configured chain prefix", async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'berth-cfg-engine-'));
    const runroot = path.join('/run/berth', `g${path.basename(root).slice(-6)}`);
    const prefix = `BERTHCFG${path.basename(root).slice(-4).toUpperCase().replace(/[^A-Z0-9]/g, '0')}`;
    const engine = new Engine({ root, runroot, network: { subnet: '10.215.31.0/24' }, config: { 'iptables-chain-prefix': prefix, bridge: `berthc${path.basename(root).slice(-6)}`.slice(0, 15) } });
    const rules = () => execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`-A ${prefix}-DNAT`));
    try {
      // Detached and --rm: only the exit hook, a separate berth process, can remove it and its port rule.
      const { id } = await engine.containers.run({ image: 'busybox', command: ['sleep', '0.5'], autoRemove: true, network: { publish: ['127.0.0.1:18531:80'] } }, { detach: true });
      expect(rules().join('\n')).toContain(id);
      // Watched from outside: any engine call here would do the exit work itself (repair) and hide the hook.
      const record = path.join(root, 'containers', id);
      for (let i = 0; i < 100 && existsSync(record); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(record)).toBe(false);
      expect(rules()).toEqual([]);
    } finally {
      await engine.system.reset().catch(() => {});
      unmountUnder(root);
      unmountUnder(runroot);
      await rm(root, { recursive: true, force: true });
      await rm(runroot, { recursive: true, force: true });
    }
  });
});
