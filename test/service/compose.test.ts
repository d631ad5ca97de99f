/**
 * docker-compose 1.29 (Debian's, Python, docker-py underneath) against Berth's service: the issue's
 * two-service project with a user network, a named volume, a port published on 127.0.0.1 and a
 * depends_on that waits for a healthcheck.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';
import { linkExists, OCTET, SLOT } from './networks-helpers.js';

const k = OCTET;
const project = `nvc${process.pid}`;
const port = 18000 + (process.pid % 1000);

const COMPOSE_FILE = `
version: "2.4"
services:
  db:
    image: busybox
    command: ["sh", "-c", "echo db-ready > /data/ready; echo db is up; exec sleep 300"]
    volumes: ["data:/data"]
    networks: [appnet]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/ready"]
      interval: 1s
      retries: 30
  web:
    image: busybox
    command: ["sh", "-c", "ping -c1 -W2 db && echo web found db; exec httpd -f -p 80 -h /data"]
    volumes: ["data:/data"]
    networks: [appnet]
    ports: ["127.0.0.1:${port}:80"]
    depends_on:
      db:
        condition: service_healthy
networks:
  appnet:
    labels: { team: nv }
    ipam:
      config: [{ subnet: "10.239.${k}.0/26" }]
volumes:
  data:
    labels: { team: nv }
`;

describe('docker-compose through the Engine API', () => {
  let t: TestEngine;
  let svc: TestService;
  let dir: string;
  const compose = (args: string[], env: Record<string, string> = {}) => execa('docker-compose', ['-p', project, ...args], {
    cwd: dir, reject: false, timeout: 120_000, env: { DOCKER_HOST: svc.host, COMPOSE_INTERACTIVE_NO_CLI: '1', ...env },
  });
  beforeAll(async () => {
    t = await testEngine(SLOT);
    svc = await startService(t);
    dir = await mkdtemp(path.join(tmpdir(), 'berth-compose-'));
    await writeFile(path.join(dir, 'docker-compose.yml'), COMPOSE_FILE);
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    await cleanupAll(t, dir);
  }, 120_000);

  it('compose\'s own network and volume code makes, finds unchanged and removes the project\'s network and volume', async () => {
    // `up` needs /info and the container and image endpoints first; compose's Network and Volume classes
    // (what `up` and `down -v` run for networks and volumes) drive these endpoints on their own. Debian's
    // python3 is the one the package is installed for (PATH may lead to another).
    const script = `
import json, sys, docker
from compose.network import Network
from compose.volume import Volume
c = docker.APIClient(base_url=sys.argv[1], version='1.41')
net = Network(c, sys.argv[2], 'appnet', ipam={'config': [{'subnet': sys.argv[3]}]}, labels={'team': 'nv'})
vol = Volume(c, sys.argv[2], 'data', labels={'team': 'nv'})
if sys.argv[4] == 'up':
    net.ensure()
    if not vol.exists():
        vol.create()
    print(json.dumps({'network': net.inspect(), 'volume': vol.inspect()}))
else:
    net.remove()
    vol.remove()
`;
    const run = (step: 'up' | 'down') => execa('/usr/bin/python3', ['-c', script, svc.host, project, `10.239.${k}.0/26`, step], { reject: false, timeout: 60_000 });
    try {
      const up = await run('up');
      expect(up.exitCode, up.stderr as string).toBe(0);
      const { network, volume } = JSON.parse(up.stdout as string);
      expect(network.Labels).toMatchObject({ team: 'nv', 'com.docker.compose.project': project, 'com.docker.compose.network': 'appnet' });
      expect(network.IPAM.Config).toEqual([{ Subnet: `10.239.${k}.0/26`, Gateway: `10.239.${k}.1` }]);
      expect(volume.Labels).toMatchObject({ team: 'nv', 'com.docker.compose.project': project, 'com.docker.compose.volume': 'data' });
      // The next up compares what exists with the file (driver, options, IPAM, labels): nothing may differ.
      const again = await run('up');
      expect(again.exitCode, again.stderr as string).toBe(0);
      expect(again.stderr).toBe('');
      const down = await run('down');
      expect(down.exitCode, down.stderr as string).toBe(0);
      // Berth names a bridge it makes after the network's id.
      expect(linkExists(`berth${network.Id.slice(0, 10)}`)).toBe(false);
    } finally {
      await svc.docker(['network', 'rm', `${project}_appnet`]);
      await svc.docker(['volume', 'rm', `${project}_data`]);
    }
    expect((await svc.docker(['network', 'ls', '-q', '--filter', `name=${project}`])).stdout).toBe('');
    expect((await svc.docker(['volume', 'ls', '-q'])).stdout).toBe('');
  }, 120_000);

  it('up -d, ps, logs, down -v: two services, a user network, a named volume, a published port, depends_on a healthy service', async () => {
    try {
      const up = await compose(['up', '-d']);
      expect(up.exitCode, `${up.stdout}\n${up.stderr}`).toBe(0);
      const ps = await compose(['ps']);
      expect(ps.exitCode, ps.stderr as string).toBe(0);
      expect(ps.stdout).toMatch(new RegExp(`${project}_db_1 .*Up \\(healthy\\)`));
      expect(ps.stdout).toMatch(new RegExp(`${project}_web_1 .*Up .*127\\.0\\.0\\.1:${port}->80/tcp`));
      // web started after db was healthy, found it by name on the user network, and serves the shared volume.
      const logs = await compose(['logs', '--no-color']);
      expect(logs.stdout).toMatch(/db_1 +\| db is up/);
      expect(logs.stdout).toMatch(/web_1 +\| web found db/);
      const page = await execa('busybox', ['wget', '-q', '-O-', `http://127.0.0.1:${port}/ready`], { timeout: 10_000, reject: false });
      expect(page.stdout).toBe('db-ready');
    } finally {
      const down = await compose(['down', '-v']);
      expect(down.exitCode, `${down.stdout}\n${down.stderr}`).toBe(0);
    }
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
    expect((await svc.docker(['network', 'ls', '-q', '--filter', `name=${project}`])).stdout).toBe('');
    expect((await svc.docker(['volume', 'ls', '-q'])).stdout).toBe('');
  }, 240_000);

  it('up attached follows the project by its labels until its containers exit, then down removes them', async () => {
    const one = path.join(dir, 'oneshot');
    await mkdir(one, { recursive: true });
    await writeFile(path.join(one, 'docker-compose.yml'), 'version: "2.4"\nservices:\n  one:\n    image: busybox\n    network_mode: none\n    command: ["sh", "-c", "echo hello from one"]\n');
    const run = (args: string[]) => execa('docker-compose', ['-p', `${project}o`, ...args], { cwd: one, reject: false, timeout: 120_000, env: { DOCKER_HOST: svc.host, COMPOSE_INTERACTIVE_NO_CLI: '1' } });
    const up = await run(['--no-ansi', 'up']);
    expect(up.exitCode, `${up.stdout}\n${up.stderr}`).toBe(0);
    expect(up.stdout).toMatch(/one_1 +\| hello from one/);
    expect(`${up.stdout}\n${up.stderr}`).toMatch(/exited with code 0/);
    expect((await run(['down'])).exitCode).toBe(0);
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
  }, 120_000);
});
