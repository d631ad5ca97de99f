import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlreadyExistsError, BadStateError, InvalidArgumentError } from '../errors.js';
import { ContextStore, resolveEngineHost } from '../remote/contexts.js';
import { sshArgs } from '../remote/dial.js';
import { Machines, parseOsRelease } from './machines.js';
import { linkOf } from './ssh.js';
import { MachineStore, type MachineRecord } from './store.js';
import { builtTree, packageRoot } from './tree.js';

let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-mach-'));
  env = { XDG_CONFIG_HOME: dir };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const record = (name: string, extra: Partial<MachineRecord['Remote']> = {}): MachineRecord => ({
  Name: name, DriverName: 'generic', Url: 'ssh://root@10.0.0.9:2222', Created: '2026-11-28T00:00:00.000Z',
  Ssh: { Host: '10.0.0.9', User: 'root', Port: 2222, KeyPath: '/keys/my key' },
  Remote: { Prefix: '/opt/b', InstallDir: '/opt/b/lib/berth', Berth: '/opt/b/bin/berth', MadeInstallDir: true, ...extra },
});

describe('parseOsRelease', () => {
  it('reads quoted and bare values', () => {
    expect(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n# comment\n')).toEqual({ PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', ID: 'debian', VERSION_ID: '12' });
  });
});

describe('machine records', () => {
  it('are 0600 files in a 0700 folder beside the contexts; a second add of a name is refused', async () => {
    const s = new MachineStore(env);
    await s.add(record('m1'));
    expect((await stat(path.join(dir, 'berth', 'machines'))).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, 'berth', 'machines', 'm1.json'))).mode & 0o777).toBe(0o600);
    await expect(s.add(record('m1'))).rejects.toBeInstanceOf(AlreadyExistsError);
    expect((await s.list()).map((r) => r.Name)).toEqual(['m1']);
    await expect(s.get('../x')).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('Machines.create checks its request before anything is stored', () => {
  it('refuses another driver by name, a bad port, an unreadable key and a name a context has', async () => {
    const m = new Machines(env);
    const base = { name: 'm1', driver: 'generic', sshHost: '10.0.0.9' };
    await expect(m.create({ ...base, driver: 'virtualbox' })).rejects.toThrow('"virtualbox" is not a driver Berth has (it has: generic)');
    await expect(m.create({ ...base, sshPort: 70000 })).rejects.toThrow('70000 is not a port');
    await expect(m.create({ ...base, sshKey: path.join(dir, 'nokey') })).rejects.toThrow('cannot read the key file');
    await expect(m.create({ ...base, prefix: 'rel/path' })).rejects.toThrow('not an absolute path');
    await new ContextStore(env).create('m1', { host: 'ssh://root@10.0.0.9' });
    await expect(m.create(base)).rejects.toThrow('context m1 already exists');
    expect(await m.store.list()).toEqual([]);
  });
});

describe('machine env', () => {
  it('exports the host and the ssh settings, unsets what the machine lacks, and quotes for bash', async () => {
    const m = new Machines(env);
    await m.store.add(record('m1'));
    const lines = await m.envLines('m1');
    expect(lines.slice(0, 5)).toEqual([
      'export BERTH_HOST="ssh://root@10.0.0.9:2222";', 'export BERTH_SSH_IDENTITY="/keys/my key";', 'export BERTH_SSH_BERTH="/opt/b/bin/berth";',
      'unset BERTH_SSH_ROOT;', 'export BERTH_MACHINE_NAME="m1";',
    ]);
    // As the user runs it: unquoted $(...), its lines joined into one.
    const res = await execa('bash', ['-c', `BERTH_SSH_ROOT=/stale; eval $(cat); echo "$BERTH_SSH_IDENTITY|\${BERTH_SSH_ROOT-unset}"`], { input: lines.join('\n') });
    expect(res.stdout).toBe('/keys/my key|unset');
    expect(await m.envLines('', { unset: true })).toEqual(['unset BERTH_HOST BERTH_SSH_IDENTITY BERTH_SSH_BERTH BERTH_SSH_ROOT BERTH_MACHINE_NAME;']);
    await m.store.add({ ...record('half'), Incomplete: true });
    await expect(m.envLines('half')).rejects.toBeInstanceOf(BadStateError);
  });
});

describe('a machine over ssh', () => {
  it('dials with its key, its berth and its root: from the record, and from its context', async () => {
    const rec = record('m1', { Root: '/srv/berth root' });
    const link = linkOf(rec, { BERTH_SSH_OPTS: '-F /dev/null' });
    expect(sshArgs(link.target, link.env)).toEqual([
      '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-i', '/keys/my key', '-p', '2222', '-l', 'root',
      '--', '10.0.0.9', '/opt/b/bin/berth', '--root', `'/srv/berth root'`, 'system', 'dial-stdio',
    ]);
    await new ContextStore(env).create('m1', { host: rec.Url, ssh: { Identity: '/k', Berth: '/b/berth' } });
    // The context's settings replace those a `machine env` left in the environment.
    const chosen = await resolveEngineHost({ context: 'm1' }, { ...env, BERTH_SSH_ROOT: '/other' });
    expect(chosen.sshEnv).toEqual({ BERTH_SSH_IDENTITY: '/k', BERTH_SSH_BERTH: '/b/berth', BERTH_SSH_ROOT: undefined });
    expect(sshArgs({ kind: 'ssh', uri: 'ssh://h', host: 'h' }, {}).slice(-3)).toEqual(['berth', 'system', 'dial-stdio']);
  });
});

describe('the built tree', () => {
  it('holds the CLI bundle (which carries its packages) and setup.sh, no node_modules', () => {
    const root = packageRoot();
    const paths = builtTree(root).paths;
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'bin/berth.js', 'bin/load-cli.js', 'dist/cli/main.cjs', 'scripts/setup.sh']));
    expect(paths.some((p) => p.includes('node_modules'))).toBe(false);
    // The code cache is this machine's, and rewritten by berth commands while tar reads the folder.
    expect(paths.some((p) => p.includes('main.cjs.cache'))).toBe(false);
  });
});
