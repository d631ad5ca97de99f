/**
 * The container lifecycle endpoints driven by the real docker CLI (the machine's static 28.x client) and by
 * raw requests, against a service over a test engine; compared with Berth's own CLI where Docker's output
 * and exit codes are the contract.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';

const SLOT = 4100;
let t: TestEngine;
let svc: TestService;

beforeAll(async () => {
  t = await testEngine(SLOT + (process.pid % 20));
  svc = await startService(t);
}, 60_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t);
}, 120_000);

async function docker(...args: string[]): Promise<string> {
  const r = await svc.docker(args);
  expect(r.exitCode, `docker ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return String(r.stdout).trim();
}

describe('container lifecycle through the docker CLI', () => {
  it('create, start, ps, inspect, stop, rm', async () => {
    const id = await docker('create', '--network', 'none', '--name', 'c1', '-l', 'app=one', 'busybox', 'sleep', '100');
    expect(await docker('inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}', 'c1')).toBe('none');
    const format = '{{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.Ports}}|{{.State}}|{{.Labels}}|{{.Networks}}|{{.Mounts}}';
    expect(await docker('ps', '-a', '--no-trunc', '--format', format)).toBe(await t.ok('ps', '-a', '--no-trunc', '--format', format));
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(await docker('inspect', '-f', '{{.State.Status}}', 'c1')).toBe('created');
    expect(await docker('ps', '-q')).not.toContain(id.slice(0, 12));
    expect(await docker('ps', '-a', '-q')).toContain(id.slice(0, 12));
    await docker('start', 'c1');
    expect(await docker('inspect', '-f', '{{.State.Status}} {{.Config.Labels.app}} {{.HostConfig.NetworkMode}}', 'c1')).toBe('running one none');
    expect(await docker('ps', '--filter', 'label=app=one', '--format', '{{.Names}} {{.State}} {{.Command}}')).toBe('c1 running "sleep 100"');
    expect(await docker('ps', '--filter', 'label=app=two', '-q')).toBe('');
    // the same rows as berth ps (times left out: they move)
    expect(await docker('ps', '-a', '--no-trunc', '--format', format)).toBe(await t.ok('ps', '-a', '--no-trunc', '--format', format));
    // A second start of a running container is Docker's 304: the CLI says nothing and exits 0.
    expect(await docker('start', 'c1')).toBe('c1');
    await docker('stop', '-t', '1', 'c1');
    expect(await docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'c1')).toMatch(/^exited (137|143)$/);
    // stopping a stopped container: 304, exit 0, as Docker
    expect(await docker('stop', 'c1')).toBe('c1');
    await docker('rm', 'c1');
    const gone = await svc.docker(['inspect', 'c1']);
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain('No such object: c1');
  });

  it('run -d, kill, restart, pause/unpause, wait, rm -f', async () => {
    const id = await docker('run', '-d', '--network', 'none', '--name', 'c2', 'busybox', 'sleep', '100');
    expect(await docker('inspect', '-f', '{{.State.Running}}', id)).toBe('true');
    await docker('pause', 'c2');
    expect(await docker('inspect', '-f', '{{.State.Status}}', 'c2')).toBe('paused');
    expect(await docker('ps', '--format', '{{.Names}} {{.State}}')).toContain('c2 paused');
    await docker('unpause', 'c2');
    expect(await docker('inspect', '-f', '{{.State.Status}}', 'c2')).toBe('running');
    const pid = await docker('inspect', '-f', '{{.State.Pid}}', 'c2');
    await docker('restart', '-t', '0', 'c2');
    expect(await docker('inspect', '-f', '{{.State.Status}}', 'c2')).toBe('running');
    expect(await docker('inspect', '-f', '{{.State.Pid}}', 'c2')).not.toBe(pid);
    await docker('kill', 'c2');
    expect(await docker('wait', 'c2')).toBe('137');
    const killAgain = await svc.docker(['kill', 'c2']);
    expect(killAgain.exitCode).toBe(1);
    await docker('rm', '-f', 'c2');
    expect(await docker('ps', '-a', '-q')).not.toContain(id.slice(0, 12));
  });

  it('wait gives the exit code, as berth wait does', async () => {
    await docker('run', '-d', '--network', 'none', '--name', 'c3', 'busybox', 'sh', '-c', 'sleep 0.3; exit 3');
    expect(await docker('wait', 'c3')).toBe('3');
    expect(await t.ok('wait', 'c3')).toBe('3');
    await docker('rm', 'c3');
  });

  it('wait on a --rm container gives its code though it is removed when it ends', async () => {
    const id = await docker('run', '-d', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'sleep 0.5; exit 2');
    expect(await docker('wait', id)).toBe('2');
  });

  it('run -d -p 127.0.0.1::80 publishes a port docker port shows', async () => {
    await docker('run', '-d', '--name', 'web', '-p', '127.0.0.1::80', 'busybox', 'httpd', '-f', '-p', '80');
    const port = await docker('port', 'web');
    expect(port).toMatch(/^80\/tcp -> 127\.0\.0\.1:\d+$/);
    expect(port).toBe(await t.ok('port', 'web'));
    const row = (await svc.request('GET', '/containers/json')).json().find((c: any) => c.Names[0] === '/web');
    expect(row.Ports).toEqual([{ IP: '127.0.0.1', PrivatePort: 80, PublicPort: Number(port.split(':')[1]), Type: 'tcp' }]);
    expect(row.HostConfig).toEqual({ NetworkMode: 'bridge' });
    expect(row.NetworkSettings.Networks.bridge.IPAddress).toMatch(/^10\.\d+\.\d+\.\d+$/);
    await docker('rm', '-f', 'web');
  });

  it('container prune removes the stopped ones only', async () => {
    const keep = await docker('run', '-d', '--network', 'none', 'busybox', 'sleep', '100');
    const done = await docker('create', '--network', 'none', 'busybox', 'true');
    const out = await docker('container', 'prune', '-f');
    expect(out).toContain(done);
    expect(out).toContain('Total reclaimed space:');
    expect(await docker('ps', '-a', '-q', '--no-trunc')).toBe(keep);
    await docker('rm', '-f', keep);
  });

  it('a missing image is 404 with Docker words; a taken name is 409 with Docker words', async () => {
    const missing = await svc.request('POST', '/containers/create', { Image: 'nothere/img' });
    expect(missing.status).toBe(404);
    expect(missing.json().message).toBe('No such image: nothere/img:latest');
    const id = await docker('create', '--network', 'none', '--name', 'taken', 'busybox');
    // The docker client's own codes for a daemon error: 1 from create, 125 from run.
    const again = await svc.docker(['create', '--network', 'none', '--name', 'taken', 'busybox']);
    expect(again.exitCode, String(again.stderr)).toBe(1);
    const run = await svc.docker(['run', '-d', '--network', 'none', '--name', 'taken', 'busybox']);
    expect(run.exitCode, String(run.stderr)).toBe(125);
    expect(run.stderr).toContain('Conflict. The container name "/taken" is already in use');
    expect(again.stderr).toContain(`Conflict. The container name "/taken" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`);
    await docker('rm', 'taken');
  });
});

/** POST /containers/ID/wait: resolves once the headers are in, with the body still to come. */
function waitBody(id: string, condition: string): Promise<{ status: number; body: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: svc.socket, method: 'POST', path: `/containers/${id}/wait?condition=${condition}` }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      resolve({ status: res.statusCode!, body: new Promise((ok) => res.on('end', () => ok(Buffer.concat(chunks).toString()))) });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('raw requests', () => {
  it('create from a full Docker body; inspect shows what was asked', async () => {
    const res = await svc.request('POST', '/v1.41/containers/create?name=full', {
      Image: 'busybox', Cmd: ['sleep', '100'], Entrypoint: null, Env: ['A=1'], WorkingDir: '/tmp', User: '0:0', Labels: { x: 'y' },
      Hostname: 'h1', Domainname: 'example.org', Tty: false, OpenStdin: false, StdinOnce: false, AttachStdout: true, AttachStderr: true,
      ExposedPorts: { '8080/tcp': {} }, Volumes: { '/anon': {} }, StopSignal: 'SIGTERM', StopTimeout: 3,
      Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 30e9, Retries: 2 },
      HostConfig: {
        NetworkMode: 'none', Memory: 64 << 20, NanoCpus: 5e8, PidsLimit: 50, CapDrop: ['NET_RAW'], ReadonlyRootfs: true, Init: true,
        Tmpfs: { '/run': 'size=1m' }, RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 }, MemorySwappiness: -1, ShmSize: 8 << 20,
        Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }], Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
        Mounts: [{ Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1 << 20 } }],
      },
    });
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.json()).toEqual({ Id: expect.stringMatching(/^[0-9a-f]{64}$/), Warnings: expect.any(Array) });
    const i = (await svc.request('GET', '/containers/full/json')).json();
    expect(i.Name).toBe('/full');
    expect(i.Config).toMatchObject({ Cmd: ['sleep', '100'], WorkingDir: '/tmp', User: '0:0', Hostname: 'h1', Domainname: 'example.org', StopSignal: 'SIGTERM', StopTimeout: 3 });
    expect(i.Config.Env).toContain('A=1');
    expect(i.Config.Labels).toEqual({ x: 'y' });
    expect(i.Config.Healthcheck).toMatchObject({ Test: ['CMD-SHELL', 'true'], Retries: 2 });
    expect(i.NetworkSettings.Ports).toEqual({ '8080/tcp': null });
    expect(i.HostConfig).toMatchObject({ NetworkMode: 'none', Memory: 64 << 20, NanoCpus: 5e8, PidsLimit: 50, CapDrop: ['NET_RAW'], ReadonlyRootfs: true, Init: true, ShmSize: 8 << 20 });
    expect(i.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 2 });
    expect(i.Mounts.map((m: any) => m.Destination).sort()).toEqual(['/anon', '/scratch']);
    expect((await svc.request('DELETE', '/containers/full?v=1')).status).toBe(204);
  });

  it('the same request from the API and from berth create makes the same container', async () => {
    await svc.request('POST', '/containers/create?name=api', {
      Image: 'busybox', Cmd: ['sleep', '9'], Env: ['K=v'], Labels: { l: '1' },
      HostConfig: { NetworkMode: 'none', Memory: 32 << 20, CapAdd: ['SYS_TIME'], Dns: ['127.0.0.53'], ExtraHosts: ['a:127.0.0.2'] },
    });
    await t.ok('create', '--name', 'cli', '--network', 'none', '-e', 'K=v', '-l', 'l=1', '-m', '32m', '--cap-add', 'SYS_TIME',
      '--dns', '127.0.0.53', '--add-host', 'a:127.0.0.2', 'busybox', 'sleep', '9');
    // the hostname (and so HOSTNAME) is each container's short id
    const pick = (i: any) => ({ Config: { ...i.Config, Hostname: '', Env: i.Config.Env.filter((e: string) => !e.startsWith('HOSTNAME=')) }, HostConfig: i.HostConfig });
    const [a, b] = await Promise.all(['api', 'cli'].map(async (n) => pick((await svc.request('GET', `/containers/${n}/json`)).json())));
    expect(a).toEqual(b);
    await t.ok('rm', 'api', 'cli');
  });

  it('wait answers its headers at once and the body when the container ends', async () => {
    const id = await docker('run', '-d', '--network', 'none', 'busybox', 'sleep', '100');
    const { status, body } = await waitBody(id, 'not-running');
    // The headers came before the container stopped: it still runs.
    expect(status).toBe(200);
    expect(await docker('inspect', '-f', '{{.State.Running}}', id)).toBe('true');
    await docker('kill', id);
    expect(JSON.parse(await body)).toEqual({ StatusCode: 137, Error: null });
    await docker('rm', id);
  });

  it('next-exit and removed wait for the run that has not begun yet (docker run asks before it starts)', async () => {
    const next = await docker('create', '--network', 'none', 'busybox', 'sh', '-c', 'exit 5');
    const gone = await docker('create', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'exit 4');
    // both waits have their headers before their containers start
    const [a, b] = await Promise.all([waitBody(next, 'next-exit'), waitBody(gone, 'removed')]);
    await docker('start', next);
    await docker('start', gone);
    expect(JSON.parse(await a!.body)).toEqual({ StatusCode: 5, Error: null });
    expect(JSON.parse(await b!.body)).toEqual({ StatusCode: 4, Error: null });
    expect((await svc.request('GET', `/containers/${gone}/json`)).status).toBe(404);
    await docker('rm', next);
  });

  it('a wait whose client goes away is dropped (its exit watcher closed); the service keeps serving', async () => {
    const id = await docker('run', '-d', '--network', 'none', 'busybox', 'sleep', '100');
    const watchers = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
    const before = watchers();
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ socketPath: svc.socket, method: 'POST', path: `/containers/${id}/wait?condition=not-running` }, async () => {
        // leave once the wait is under way: it watches the exits folder
        for (let i = 0; i < 100 && watchers() <= before; i++) await new Promise((r) => setTimeout(r, 50));
        expect(watchers()).toBeGreaterThan(before);
        req.destroy();
        resolve();
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      setTimeout(() => reject(new Error('no headers from wait')), 10_000).unref();
      req.end();
    });
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
    // The service runs in this process: the wait's watch of the exits folder must be gone with its client
    // while the container still runs (polled: the close reaches the service a moment later).
    let left = watchers();
    for (let i = 0; i < 100 && left > before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = watchers();
    }
    expect(left).toBeLessThanOrEqual(before);
    expect(await docker('inspect', '-f', '{{.State.Running}}', id)).toBe('true');
    await docker('rm', '-f', id);
    expect((await svc.request('GET', `/containers/${id}/json`)).status).toBe(404);
  });

  it('wait?condition=removed on a container that exited and was removed before the wait came: its exit code', async () => {
    // docker run --rm sends the wait, then the start on another connection: the container may be gone first.
    const id = (await docker('run', '-d', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'exit 3')).trim();
    for (let i = 0; i < 200 && (await svc.request('GET', `/containers/${id}/json`)).status !== 404; i++) await new Promise((r) => setTimeout(r, 50));
    const late = await svc.request('POST', `/containers/${id}/wait?condition=removed`);
    expect(late.status).toBe(200);
    expect(late.json()).toEqual({ StatusCode: 3, Error: null });
    // Any other condition, and a container that never existed, stay 404 as Docker's.
    expect((await svc.request('POST', `/containers/${id}/wait?condition=not-running`)).status).toBe(404);
    expect((await svc.request('POST', '/containers/nope/wait?condition=removed')).status).toBe(404);
  });

  it('refuses bad condition, missing container, and unknown fields', async () => {
    expect((await svc.request('POST', '/containers/nope/wait')).status).toBe(404);
    const cond = await svc.request('POST', '/containers/nope/wait?condition=sometime');
    expect(cond.status).toBe(400);
    expect((await svc.request('POST', '/containers/nope/start')).json().message).toBe('No such container: nope');
    expect((await svc.request('DELETE', '/containers/nope')).status).toBe(404);
  });
});

describe('hostile create bodies', () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['malformed JSON', '{"Image": "busybox",', 400, /not valid JSON/],
    ['not an object', '[1,2]', 400, /JSON object/],
    ['Cmd as a number', { Image: 'busybox', Cmd: 5 }, 400, /invalid Cmd: it must be a string or an array of strings/],
    ['Env with a number', { Image: 'busybox', Env: ['A=1', 2] }, 400, /invalid Env/],
    ['HostConfig as a string', { Image: 'busybox', HostConfig: 'x' }, 400, /invalid HostConfig/],
    ['Memory as a string', { Image: 'busybox', HostConfig: { Memory: '64m' } }, 400, /invalid HostConfig\.Memory: it must be an integer/],
    ['an unknown HostConfig field with a value', { Image: 'busybox', HostConfig: { Frobnicate: 1 } }, 400, /HostConfig\.Frobnicate is not supported/],
    ['an unsupported field with a value', { Image: 'busybox', HostConfig: { CpuRealtimePeriod: 1000 } }, 400, /HostConfig\.CpuRealtimePeriod is not supported/],
    ['MemorySwappiness', { Image: 'busybox', HostConfig: { MemorySwappiness: 10 } }, 400, /HostConfig\.MemorySwappiness is not supported/],
    ['a log driver Berth lacks', { Image: 'busybox', HostConfig: { LogConfig: { Type: 'syslog' } } }, 400, /LogConfig\.Type "syslog" is not supported/],
    ['no image', { Cmd: ['true'] }, 400, /Config\.Image is empty/],
    ['aliases on a second network', { Image: 'busybox', HostConfig: { NetworkMode: 'none' }, NetworkingConfig: { EndpointsConfig: { other: { Aliases: ['a'] } } } }, 400, /EndpointsConfig\["other"\]\.Aliases is not supported/],
  ];
  for (const [what, body, status, message] of cases) {
    it(`${what} → ${status}`, async () => {
      const res = await svc.request('POST', '/containers/create', body);
      expect(res.status).toBe(status);
      expect(res.json().message).toMatch(message);
    });
  }

  it("the engine's refusals name the API field, not the CLI flag", async () => {
    const bad = async (body: Record<string, unknown>) => (await svc.request('POST', '/containers/create', { Image: 'busybox', ...body })).json().message;
    expect(await bad({ HostConfig: { CapAdd: ['NOT_A_CAP'] } })).toMatch(/^invalid HostConfig\.CapAdd: /);
    expect(await bad({ HostConfig: { RestartPolicy: { Name: 'sometimes' } } })).toMatch(/^invalid HostConfig\.RestartPolicy: /);
    expect(await bad({ HostConfig: { PortBindings: { '99999/tcp': [{ HostPort: '1' }] } } })).toMatch(/^invalid HostConfig\.PortBindings: /);
    expect((await svc.request('GET', '/containers/json?all=1')).json()).toEqual([]);
  });

  it('a platform other than this machine\'s is refused', async () => {
    const res = await svc.request('POST', '/containers/create?platform=linux%2Fs390x', { Image: 'busybox', HostConfig: { NetworkMode: 'none' } });
    expect(res.status).toBe(400);
    expect(res.json().message).toMatch(/platform "linux\/s390x" is not supported yet/);
  });

  it('a name with odd characters is refused and leaves nothing', async () => {
    for (const name of ['a b', '../x', 'x/y', '-lead', 'é']) {
      const res = await svc.request('POST', `/containers/create?name=${encodeURIComponent(name)}`, { Image: 'busybox', HostConfig: { NetworkMode: 'none' } });
      expect(res.status, name).toBe(400);
    }
    expect((await svc.request('GET', '/containers/json?all=1')).json()).toEqual([]);
  });

  it('a huge body is refused with 413, and the service keeps serving', async () => {
    const huge = JSON.stringify({ Image: 'busybox', Env: [`A=${'x'.repeat(5 << 20)}`] });
    const res = await svc.request('POST', '/containers/create', huge);
    expect(res.status).toBe(413);
    expect((await svc.request('GET', '/containers/json?all=1')).json()).toEqual([]);
  });

  it('list filters in both forms, limit, and a bad filter', async () => {
    const a = await docker('create', '--network', 'none', '-l', 'k=a', 'busybox');
    const b = await docker('create', '--network', 'none', '-l', 'k=b', 'busybox');
    const ids = async (q: string) => (await svc.request('GET', `/containers/json?${q}`)).json().map((c: any) => c.Id);
    expect(await ids(`all=1&filters=${encodeURIComponent('{"label":["k=a"]}')}`)).toEqual([a]);
    expect(await ids(`all=1&filters=${encodeURIComponent('{"label":{"k=b":true}}')}`)).toEqual([b]);
    expect(await ids('limit=1')).toEqual([b]);
    expect(await ids('')).toEqual([]);
    const bad = await svc.request('GET', `/containers/json?filters=${encodeURIComponent('{"colour":["red"]}')}`);
    expect(bad.status).toBe(400);
    const row = (await svc.request('GET', '/containers/json?all=1&size=1')).json()[0];
    expect(Object.keys(row).sort()).toEqual(['Command', 'Created', 'HostConfig', 'Id', 'Image', 'ImageID', 'Labels', 'Mounts', 'Names', 'NetworkSettings', 'Ports', 'SizeRootFs', 'SizeRw', 'State', 'Status']);
    expect(typeof row.Created).toBe('number');
    expect(row.ImageID).toMatch(/^sha256:[0-9a-f]{64}$/);
    const pruned = await svc.request('POST', '/containers/prune');
    expect(pruned.json()).toEqual({ ContainersDeleted: expect.arrayContaining([a, b]), SpaceReclaimed: expect.any(Number) });
  });
});

describe('what compose reads, and many clients at once', () => {
  it('a user network with aliases and an address, as compose creates them', async () => {
    const slot = (SLOT + (process.pid % 20)) & 255;
    await t.engine.networks.create({ name: 'proj_default', subnets: [`10.230.${slot}.0/24`] });
    try {
      const res = await svc.request('POST', '/containers/create?name=proj-web-1', {
        Image: 'busybox', Cmd: ['sleep', '100'], Labels: { 'com.docker.compose.service': 'web' },
        HostConfig: { NetworkMode: 'proj_default', PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
        NetworkingConfig: { EndpointsConfig: { proj_default: { Aliases: ['web', 'proj-web-1'], IPAMConfig: { IPv4Address: `10.230.${slot}.50` } } } },
      });
      expect(res.status, res.body.toString()).toBe(201);
      const { Id } = res.json();
      const created = (await svc.request('GET', `/containers/${Id}/json`)).json();
      expect(Object.keys(created.NetworkSettings.Networks)).toEqual(['proj_default']);
      expect((await svc.request('POST', `/containers/${Id}/start`)).status).toBe(204);
      expect((await svc.request('POST', `/containers/${Id}/start`)).status).toBe(304);
      const i = (await svc.request('GET', `/containers/${Id}/json`)).json();
      expect(i.Config.Labels['com.docker.compose.service']).toBe('web');
      expect(i.NetworkSettings.Networks.proj_default).toMatchObject({ IPAddress: `10.230.${slot}.50`, Aliases: expect.arrayContaining(['web', 'proj-web-1']) });
      expect(i.HostConfig.PortBindings['80/tcp'][0].HostIp).toBe('127.0.0.1');
      expect(i.NetworkSettings.Ports['80/tcp'][0].HostPort).toMatch(/^\d+$/);
      const row = (await svc.request('GET', `/containers/json?filters=${encodeURIComponent('{"label":["com.docker.compose.service=web"]}')}`)).json();
      expect(row.map((c: any) => [c.Names, c.HostConfig.NetworkMode, c.NetworkSettings.Networks.proj_default.IPAddress]))
        .toEqual([[['/proj-web-1'], 'proj_default', `10.230.${slot}.50`]]);
      expect((await svc.request('DELETE', `/containers/${Id}?force=1`)).status).toBe(204);
    } finally {
      await t.engine.networks.remove('proj_default');
    }
  });

  it('State.Health is there for a container with a healthcheck', async () => {
    const id = await docker('run', '-d', '--network', 'none', '--health-cmd', 'true', '--health-interval', '1s', 'busybox', 'sleep', '100');
    expect(await docker('inspect', '-f', '{{.State.Health.Status}}', id)).toMatch(/^(starting|healthy)$/);
    await docker('rm', '-f', id);
  });

  it('20 clients create, start and remove at once; nothing is lost', async () => {
    const one = async (n: number) => {
      const made = await svc.request('POST', `/containers/create?name=many-${n}`, { Image: 'busybox', Cmd: ['sleep', '100'], HostConfig: { NetworkMode: 'none' } });
      expect(made.status, made.body.toString()).toBe(201);
      const { Id } = made.json();
      expect((await svc.request('POST', `/containers/${Id}/start`)).status).toBe(204);
      return Id as string;
    };
    const ids = await Promise.all(Array.from({ length: 20 }, (_, n) => one(n)));
    const running = (await svc.request('GET', '/containers/json')).json().map((c: any) => c.Id);
    expect(running.sort()).toEqual([...ids].sort());
    const removed = await Promise.all(ids.map((id) => svc.request('DELETE', `/containers/${id}?force=true`)));
    expect(removed.map((r) => r.status)).toEqual(ids.map(() => 204));
    expect((await svc.request('GET', '/containers/json?all=1')).json()).toEqual([]);
  }, 120_000);
});
