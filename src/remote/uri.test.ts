import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { sshArgs, sshFailure } from './dial.js';
import { parseHost } from './uri.js';

describe('parseHost', () => {
  it('reads Docker\'s three forms', () => {
    expect(parseHost('unix:///run/berth/berth.sock')).toEqual({ kind: 'unix', uri: 'unix:///run/berth/berth.sock', path: '/run/berth/berth.sock' });
    expect(parseHost('tcp://127.0.0.1:2375')).toMatchObject({ kind: 'tcp', host: '127.0.0.1', port: 2375 });
    expect(parseHost('tcp://[::1]:2375')).toMatchObject({ kind: 'tcp', host: '::1', port: 2375 });
    expect(parseHost('ssh://root@10.0.0.2:2222')).toMatchObject({ kind: 'ssh', user: 'root', host: '10.0.0.2', port: 2222 });
    expect(parseHost('ssh://host.example')).toEqual({ kind: 'ssh', uri: 'ssh://host.example', host: 'host.example' });
  });

  it('refuses what it cannot dial, naming the URI', () => {
    for (const bad of ['', '/run/x.sock', 'unix://relative.sock', 'tcp://host', 'tcp://h:0', 'ssh://h:70000', 'ssh://u@h/path', 'http://h:80', 'ssh://-oProxyCommand=x']) {
      const err = (() => { try { parseHost(bad); } catch (e) { return e; } })();
      expect(err, bad).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toContain(`"${bad}"`);
    }
  });
});

describe('ssh', () => {
  it('puts the user\'s options first (ssh keeps the first value) and the host after --', () => {
    const args = sshArgs(parseHost('ssh://me@h:2200') as never, { BERTH_SSH_OPTS: '-i /k  -o ConnectTimeout=2' });
    expect(args).toEqual(['-i', '/k', '-o', 'ConnectTimeout=2', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-p', '2200', '-l', 'me', '--', 'h', 'berth', 'system', 'dial-stdio']);
  });

  it('tells ssh\'s failures apart', () => {
    expect(sshFailure('ssh://h', 'h', 255, 'Host key verification failed.\n').reason).toBe('host-key');
    expect(sshFailure('ssh://h', 'h', 255, 'root@h: Permission denied (publickey).\n').reason).toBe('auth');
    expect(sshFailure('ssh://h', 'h', 255, 'ssh: connect to host h port 22: Connection timed out\n').reason).toBe('timeout');
    expect(sshFailure('ssh://h', 'h', 255, 'ssh: connect to host h port 22: Connection refused\n').reason).toBe('unreachable');
    const none = sshFailure('ssh://h', 'h', 127, 'bash: line 1: berth: command not found\n');
    expect(none.reason).toBe('no-berth');
    expect(none.hint).toContain('setup.sh');
  });
});
