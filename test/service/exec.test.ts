/**
 * exec, attach and resize through the Engine API, driven by the real docker CLI (and raw requests where
 * the CLI cannot say what is wrong). Containers are made with the Engine directly: create and start are
 * another group's endpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';
import { containersProxy, type ExecProxy } from './exec-proxy.js';

const SLOT = 4160;
let t: TestEngine;
let svc: TestService;
let proxy: ExecProxy;
let c = '';

/** The docker CLI, through the proxy that stands in for the containers group's inspect and wait. */
const docker = (args: readonly string[], opts: Parameters<TestService['docker']>[1] = {}) => svc.docker(args, { ...opts, env: { DOCKER_HOST: proxy.host, ...(opts.env ?? {}) } });

beforeAll(async () => {
  t = await testEngine(SLOT + (process.pid % 20));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  proxy = await containersProxy(t.engine, svc.socket);
  ({ id: c } = await t.engine.containers.run({ image: 'busybox', name: 'exec1', command: ['sleep', '1000'], network: { networks: ['none'] } }, { detach: true }));
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await svc?.close();
  await cleanupAll(t);
});

describe('docker exec', () => {
  it('runs a command and shows its output', async () => {
    const r = await docker(['exec', 'exec1', 'echo', 'hi']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hi');
    expect(r.exitCode).toBe(0);
  });

  it('passes env, workdir and user; the exit code and stderr come back', async () => {
    const r = await docker(['exec', '-e', 'A=b', '-w', '/tmp', '-u', '1000', 'exec1', 'sh', '-c', 'echo $A $(pwd) $(id -u); echo oops >&2; exit 3']);
    expect(r.stdout).toBe('b /tmp 1000');
    expect(r.stderr).toBe('oops');
    expect(r.exitCode).toBe(3);
  });

  it('-i feeds stdin, and its end ends the process', async () => {
    const r = await docker(['exec', '-i', 'exec1', 'cat'], { input: 'line one\nline two\n' });
    expect(r.stdout).toBe('line one\nline two');
    expect(r.exitCode).toBe(0);
  });

  it('a command that is not there exits 127 with the runtime words', async () => {
    const r = await docker(['exec', 'exec1', 'nosuchcmd']);
    expect(r.exitCode).toBe(127);
    expect(r.stdout + r.stderr).toContain('executable file not found');
  });

  it('-it runs a shell in a terminal', async () => {
    const r = await execa('script', ['-q', '-e', '-c', 'docker exec -it exec1 sh', '/dev/null'], {
      reject: false, timeout: 60_000, input: 'echo $((6*7)); tty; exit 5\n',
      env: { DOCKER_HOST: proxy.host, DOCKER_CONFIG: '/nonexistent' },
    });
    expect(r.stdout).toContain('42');
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.exitCode).toBe(5);
  });
});
