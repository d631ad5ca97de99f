import { describe, expect, it } from 'vitest';
import { DEFAULT_PATH } from './env.js';
import { buildEnv, resolveArgs, resolveWorkdir } from './process.js';

const image = { Entrypoint: ['/entry.sh'], Cmd: ['serve', '--port', '80'] };

describe('resolveArgs (Docker entrypoint/cmd semantics)', () => {
  it('runs the image\'s Entrypoint with its Cmd', () => {
    expect(resolveArgs(image, {})).toEqual(['/entry.sh', 'serve', '--port', '80']);
  });

  it('replaces Cmd with the command and keeps the Entrypoint', () => {
    expect(resolveArgs(image, { command: ['debug'] })).toEqual(['/entry.sh', 'debug']);
  });

  it('--entrypoint drops the image\'s Cmd', () => {
    expect(resolveArgs(image, { entrypoint: ['/bin/sh'] })).toEqual(['/bin/sh']);
    expect(resolveArgs(image, { entrypoint: ['/bin/sh'], command: ['-c', 'true'] })).toEqual(['/bin/sh', '-c', 'true']);
  });

  it('an empty --entrypoint clears it, and then only the command runs', () => {
    expect(resolveArgs(image, { entrypoint: [''], command: ['ls'] })).toEqual(['ls']);
    expect(resolveArgs(image, { entrypoint: [], command: ['ls'] })).toEqual(['ls']);
  });

  it('refuses to run nothing', () => {
    expect(() => resolveArgs({}, {})).toThrow('no command specified');
    expect(() => resolveArgs(image, { entrypoint: [''] })).toThrow('no command specified');
    expect(() => resolveArgs({ Entrypoint: null, Cmd: null }, { command: [] })).toThrow('no command specified');
  });
});

describe('resolveWorkdir', () => {
  it('prefers -w, then the image, then /', () => {
    expect(resolveWorkdir({ WorkingDir: '/srv' }, { workdir: '/tmp/../data/' })).toBe('/data');
    expect(resolveWorkdir({ WorkingDir: '/srv' }, {})).toBe('/srv');
    expect(resolveWorkdir({ WorkingDir: 'app' }, {})).toBe('/app');
    expect(resolveWorkdir({}, {})).toBe('/');
  });

  it('refuses a relative -w', () => {
    expect(() => resolveWorkdir({}, { workdir: 'data' })).toThrow('needs to be an absolute path');
  });
});

describe('buildEnv', () => {
  const base = { image: {}, req: {}, envFileText: [], hostname: 'abc123' };

  it('sets PATH and HOSTNAME by default (HOME comes at start, from passwd)', () => {
    expect(buildEnv(base)).toEqual([`PATH=${DEFAULT_PATH}`, 'HOSTNAME=abc123']);
  });

  it('adds TERM=xterm with -t', () => {
    expect(buildEnv({ ...base, req: { tty: true } })).toContain('TERM=xterm');
  });

  it('merges image Env < env files < -e, and lets the image set PATH and HOME', () => {
    const env = buildEnv({
      ...base,
      image: { Env: ['PATH=/opt/bin', 'A=image', 'B=image', 'HOME=/home/img'] },
      envFileText: ['A=file\nC=file\n'],
      req: { env: ['C=flag', 'B'] },
    });
    expect(env).toEqual(['PATH=/opt/bin', 'HOSTNAME=abc123', 'A=file', 'HOME=/home/img', 'C=flag']);
  });

  it('leaves HOSTNAME out when the UTS namespace is the host\'s', () => {
    expect(buildEnv({ ...base, hostname: undefined }).some((e) => e.startsWith('HOSTNAME='))).toBe(false);
  });
});
