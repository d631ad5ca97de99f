import { describe, expect, it } from 'vitest';
import { BUSYBOX_USERDB, inputFor } from '../../test/bundle/fixtures.js';
import { ALL_CAPABILITIES } from './capabilities.js';
import { execProcess } from './exec.js';
import { buildSpec } from './spec.js';

const current = buildSpec(inputFor({ env: ['A=1', 'B=2'], workdir: '/srv' })).spec.process!;

describe('execProcess', () => {
  it("keeps the container's process but for the command, and merges -e over its env", () => {
    const p = execProcess(current, { command: ['env'], env: ['B=3', 'A'] }, BUSYBOX_USERDB);
    expect(p.args).toEqual(['env']);
    expect(p.env).toContain('B=3');
    expect(p.env!.some((e) => e.startsWith('A='))).toBe(false);
    expect(p.cwd).toBe('/srv');
    expect(p.user).toEqual(current.user);
    expect(p.capabilities).toEqual(current.capabilities);
    expect(p.terminal).toBe(false);
  });

  it('resolves -u against the passwd, takes -w, and sets TERM with -t', () => {
    const p = execProcess(current, { command: ['id'], user: 'app', workdir: '/tmp', tty: true }, BUSYBOX_USERDB);
    expect(p.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
    expect(p.cwd).toBe('/tmp');
    expect(p.env).toContain('TERM=xterm');
    expect(p.terminal).toBe(true);
  });

  it('gives every capability with --privileged', () => {
    expect(execProcess(current, { command: ['true'], privileged: true }, BUSYBOX_USERDB).capabilities!.effective).toEqual(ALL_CAPABILITIES);
  });

  it.each([
    [{ command: [] }, 'exec needs a command'],
    [{ command: ['x'], user: 'ghost' }, 'unable to find user ghost'],
    [{ command: ['x'], workdir: 'rel' }, 'needs to be an absolute path'],
    [{ command: ['x'], env: ['=v'] }, 'invalid environment variable'],
  ])('refuses %j', (over, message) => {
    expect(() => execProcess(current, over, BUSYBOX_USERDB)).toThrow(message);
  });
});
