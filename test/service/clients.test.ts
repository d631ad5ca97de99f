/**
 * Issue 16: the Node clients people drive Docker with, pointed at Berth's service: dockerode, and
 * testcontainers-node (11.x) with a GenericContainer, an exposed port and wait strategies. Ryuk, the reaper,
 * is an image from Docker Hub, which this machine cannot reach: it is disabled, as testcontainers allows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Docker from 'dockerode';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';

let t: TestEngine;
let svc: TestService;

beforeAll(async () => {
  t = await testEngine(4280 + (process.pid % 20));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
}, 60_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t);
}, 60_000);

describe('dockerode', () => {
  it('creates, starts, waits for, reads the logs of and removes a container', async () => {
    const docker = new Docker({ socketPath: svc.socket });
    expect((await docker.version()).ApiVersion).toBe('1.41');
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo from dockerode; exit 3'], HostConfig: { NetworkMode: 'none' } });
    await c.start();
    expect((await c.wait()).StatusCode).toBe(3);
    const logs = (await c.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    // Without a tty the log is framed: 8-byte header, then the line.
    expect(logs.subarray(8).toString()).toBe('from dockerode\n');
    await c.remove();
    expect(await docker.listContainers({ all: true })).toEqual([]);
  });
});

describe('testcontainers', () => {
  it('a GenericContainer with an exposed port starts with each wait strategy (log message, listening ports, healthcheck), answers on its mapped port, and stops', async () => {
    // The host override keeps testcontainers' own connections on loopback (its guess is the bridge's gateway).
    const env = { DOCKER_HOST: svc.host, TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const { GenericContainer, Wait } = await import('testcontainers');
      const strategies = [Wait.forLogMessage('serving'), Wait.forListeningPorts(), Wait.forHealthCheck()];
      for (const strategy of strategies) {
        const container = await new GenericContainer('busybox')
          .withCommand(['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && echo serving && exec httpd -f -p 80 -h /www'])
          .withExposedPorts(80)
          .withHealthCheck({ test: ['CMD', 'test', '-f', '/www/index.html'], interval: 500, retries: 20 })
          .withWaitStrategy(strategy)
          .start();
        try {
          const url = `http://127.0.0.1:${container.getMappedPort(80)}/`;
          let body = '';
          for (let i = 0; i < 50 && body !== 'hello\n'; i++) {
            body = await fetch(url).then((r) => r.text(), () => '');
            if (body !== 'hello\n') await new Promise((r) => setTimeout(r, 100));
          }
          expect(body).toBe('hello\n');
          expect(container.getHost()).toBe('127.0.0.1');
        } finally {
          await container.stop();
        }
        expect(await t.engine.containers.list({ all: true })).toEqual([]);
      }
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }, 120_000);
});
