/**
 * The container data endpoints (logs, top, stats, rename, update, changes, export) driven by the real
 * docker CLI against the service, compared with Berth's own CLI, plus the hostile requests a client can
 * send by hand. Containers are made through the Engine directly: create/start are another group's.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestEngine } from '../helpers/engine.js';
import type { TestService } from '../helpers/service.js';
import { useDataService } from './containers-data.fixture.js';
import { parseUpdate, goFileMode } from '../../src/service/containers-data.js';

const SLOT = 4130;
let t: TestEngine;
let svc: TestService;
let dir: string;

const f = useDataService(SLOT + (process.pid % 20), 'berth-cdata-');
const docker = f.docker;
beforeAll(() => {
  ({ t, svc, dir } = f);
});

const none = { networks: ['none'] };

async function runDetached(command: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const { id } = await t.engine.containers.run({ image: 'busybox', network: none, command, ...extra }, { detach: true });
  return id;
}

/** Splits Docker's 8-byte framed stream into [stream, text] pairs. */
function deframe(buf: Buffer): [number, string][] {
  const out: [number, string][] = [];
  for (let i = 0; i < buf.length;) {
    const size = buf.readUInt32BE(i + 4);
    out.push([buf[i]!, buf.subarray(i + 8, i + 8 + size).toString('utf8')]);
    i += 8 + size;
  }
  return out;
}

/** Descriptors this process holds open on `file` (the service runs in it). */
function openFds(file: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try { return readlinkSync(`/proc/self/fd/${fd}`) === file; } catch { return false; }
  }).length;
}

describe('logs', () => {
  let id: string;
  const dockerLogs = (args: string[]) => docker(['logs', ...args]);
  beforeAll(async () => {
    id = await runDetached(['sh', '-c', 'for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done']);
    await t.engine.containers.wait(id);
  });

  it('frames stdout and stderr in 8-byte headers, raw-stream for 1.41', async () => {
    const r = await svc.request('GET', `/v1.41/containers/${id}/logs?stdout=1&stderr=1`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/vnd.docker.raw-stream');
    const frames = deframe(r.body);
    expect(frames.filter(([k]) => k === 1).map(([, s]) => s).join('')).toBe('out1\nout2\nout3\nout4\nout5\n');
    expect(frames.filter(([k]) => k === 2).map(([, s]) => s).join('')).toBe('err1\nerr2\nerr3\nerr4\nerr5\n');
    // As Docker's daemon: the tail is of the log (both streams, in the order they were written, which the
    // two pipes do not fix), and the stream filter applies to what the tail kept.
    const last2 = deframe((await svc.request('GET', `/containers/${id}/logs?stdout=1&stderr=1&tail=2`)).body);
    expect(last2).toHaveLength(2);
    const only = deframe((await svc.request('GET', `/containers/${id}/logs?stderr=1&tail=2`)).body);
    expect(only).toEqual(last2.filter(([k]) => k === 2));
  });

  it('refuses a request for no stream, a bad tail, and an unknown container', async () => {
    const none = await svc.request('GET', `/containers/${id}/logs`);
    expect(none.status).toBe(400);
    expect(none.json().message).toMatch(/at least one stream/);
    expect((await svc.request('GET', `/containers/${id}/logs?stdout=1&tail=lots`)).status).toBe(400);
    expect((await svc.request('GET', `/containers/${id}/logs?stdout=1&since=yesterday`)).status).toBe(400);
    const missing = await svc.request('GET', '/containers/nosuch/logs?stdout=1');
    expect(missing.status).toBe(404);
    expect(missing.json().message).toBe('No such container: nosuch');
    const odd = await svc.request('GET', `/containers/${encodeURIComponent('../../etc')}/logs?stdout=1`);
    expect(odd.status).toBe(404);
    expect(odd.json().message).toBe('No such container: ../../etc');
  });

  it('sends a tty container\'s log raw', async () => {
    const tid = await runDetached(['sh', '-c', 'echo hello'], { tty: true });
    await t.engine.containers.wait(tid);
    const r = await svc.request('GET', `/containers/${tid}/logs?stdout=1&stderr=1`);
    // The terminal's own line ends, unframed, as Docker sends a tty's log.
    expect(r.body.toString()).toBe('hello\r\n');
    const d = await dockerLogs([tid]);
    expect(d.stdout).toBe((await t.cli('logs', tid)).stdout);
    await t.engine.containers.remove(tid);
  });

  it('docker logs, --tail and --timestamps print what berth logs prints', async () => {
    for (const args of [[], ['--tail', '3'], ['--timestamps'], ['--tail', '2', '--timestamps'], ['--since', '1h'], ['--until', '1h'], ['--since', '2020-01-01T00:00:00Z', '--tail', '1']]) {
      const d = await dockerLogs([...args, id]);
      const b = await t.cli('logs', ...args, id);
      expect(d.exitCode, d.stderr).toBe(0);
      expect(d.stdout).toBe(b.stdout);
      expect(d.stderr).toBe(b.stderr);
    }
    const missing = await dockerLogs(['nosuch']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/No such container: nosuch/);
  });

  it('docker logs -f ends when the container stops', async () => {
    const fid = await runDetached(['sh', '-c', 'echo first; sleep 1; echo second']);
    const d = await dockerLogs(['-f', fid]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout).toBe('first\nsecond');
    await t.engine.containers.remove(fid, { force: true });
  });

  it('a follow whose client goes away stops reading the log (no reader left open)', async () => {
    const fid = await runDetached(['sh', '-c', 'echo ready; exec sleep 1000']);
    const logPath = String((await t.engine.containers.inspect(fid)).LogPath);
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ socketPath: svc.socket, path: `/containers/${fid}/logs?stdout=1&follow=1` }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.setTimeout(30_000, () => reject(new Error('no log line came')));
      req.end();
    });
    await vi.waitFor(() => expect(openFds(logPath)).toBe(0), { timeout: 20_000, interval: 100 });
    // The service still answers.
    expect((await svc.request('GET', `/containers/${fid}/logs?stdout=1`)).status).toBe(200);
    await t.engine.containers.remove(fid, { force: true });
  });
});

describe('top, stats', () => {
  let id: string;
  beforeAll(async () => {
    id = await runDetached(['sh', '-c', 'while :; do :; done'], { name: 'busy' });
  });
  afterAll(async () => {
    await t.engine.containers.remove(id, { force: true });
  });

  it('docker top lists the container\'s processes as berth top does', async () => {
    const r = await svc.request('GET', `/containers/${id}/top`);
    expect(r.json().Titles).toContain('PID');
    expect(r.json().Processes.some((p: string[]) => p.join(' ').includes('while'))).toBe(true);
    const d = await docker(['top', 'busy']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/PID/);
    expect(d.stdout).toMatch(/sh -c while/);
    const withArgs = await docker(['top', 'busy', '-o', 'pid,comm']);
    expect(withArgs.stdout.split('\n')[0]).toMatch(/^PID\s+COMMAND$/);
    const stopped = await runDetached(['true']);
    await t.engine.containers.wait(stopped);
    const r2 = await svc.request('GET', `/containers/${stopped}/top`);
    expect(r2.status).toBe(409);
    await t.engine.containers.remove(stopped);
  });

  it('stats gives Docker\'s shape with counters the CLI turns into numbers', async () => {
    const r = await svc.request('GET', `/containers/${id}/stats?stream=false`);
    expect(r.status).toBe(200);
    const s = r.json();
    expect(s.id).toBe(id);
    expect(s.name).toBe('/busy');
    expect(s.cpu_stats.online_cpus).toBeGreaterThan(0);
    const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
    const sysDelta = s.cpu_stats.system_cpu_usage - s.precpu_stats.system_cpu_usage;
    expect(cpuDelta).toBeGreaterThan(0);
    expect(sysDelta).toBeGreaterThan(0);
    expect(s.memory_stats.usage).toBeGreaterThan(0);
    expect(s.memory_stats.limit).toBeGreaterThan(s.memory_stats.usage);
    expect(s.pids_stats.current).toBeGreaterThan(0);
    const one = (await svc.request('GET', `/containers/${id}/stats?stream=false&one-shot=true`)).json();
    expect(one.preread).toBe('0001-01-01T00:00:00Z');
    expect((await svc.request('GET', `/containers/${id}/stats?stream=true&one-shot=true`)).status).toBe(400);
    expect((await svc.request('GET', '/containers/nosuch/stats?stream=false')).status).toBe(404);
  });

  it('docker stats --no-stream prints a busy container\'s CPU, memory and pids', async () => {
    const d = await docker(['stats', '--no-stream', '--format', '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}', 'busy']);
    expect(d.exitCode, d.stderr).toBe(0);
    const [name, cpu, used, , limit, pids] = d.stdout.trim().split(/\s+/);
    expect(name).toBe('busy');
    // One shell spinning: some CPU (how much depends on the machine's load), never the 0% that a
    // missing previous sample gives.
    expect(cpu).toMatch(/^\d+\.\d\d%$/);
    expect(parseFloat(cpu!)).toBeGreaterThan(0);
    expect(used).toMatch(/^[\d.]+(B|KiB|MiB)$/);
    expect(limit).toMatch(/^[\d.]+(MiB|GiB)$/);
    expect(Number(pids)).toBeGreaterThan(0);
    const b = await t.ok('stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}', 'busy');
    expect(b.split(/\s+/)[3]).toBe(limit);
  });

  it('a stats stream sends objects until the client goes away, and the service keeps serving', async () => {
    const got: unknown[] = [];
    await new Promise<void>((resolve) => {
      const req = http.request({ socketPath: svc.socket, path: `/containers/${id}/stats` }, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const l of lines) got.push(JSON.parse(l));
          if (got.length >= 2) req.destroy();
        });
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.end();
    });
    expect(got.length).toBeGreaterThanOrEqual(2);
    expect((await svc.request('GET', `/containers/${id}/top`)).status).toBe(200);
  });
});

describe('rename, update', () => {
  it('docker rename renames; a taken name is 409, a bad one 400', async () => {
    const a = await runDetached(['true'], { name: 'first' });
    const b = await runDetached(['true'], { name: 'other' });
    const d = await docker(['rename', 'first', 'second']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect((await t.engine.containers.inspect(a)).Name).toBe('/second');
    const taken = await docker(['rename', 'second', 'other']);
    const bTaken = await t.cli('rename', 'second', 'other');
    expect(taken.exitCode).toBe(1);
    expect(bTaken.exitCode).toBe(1);
    expect((await svc.request('POST', `/containers/${a}/rename?name=other`)).status).toBe(409);
    expect((await svc.request('POST', `/containers/${a}/rename?name=${encodeURIComponent('bad/name')}`)).status).toBe(400);
    expect((await svc.request('POST', `/containers/${a}/rename`)).status).toBe(400);
    expect((await svc.request('POST', '/containers/nosuch/rename?name=x')).status).toBe(404);
    await t.engine.containers.remove(a, { force: true });
    await t.engine.containers.remove(b, { force: true });
  });

  it('docker update --memory changes the running container\'s cgroup', async () => {
    const id = await runDetached(['sleep', '1000'], { resources: { memory: '64m' } });
    const d = await docker(['update', '--memory', '96m', '--memory-swap', '192m', '--pids-limit', '40', id]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout.trim()).toBe(id);
    const cg = (ctrl: string, file: string) => readFile(`/sys/fs/cgroup/${ctrl}/berth/${id}/${file}`, 'utf8').then((s) => s.trim());
    expect(await cg('memory', 'memory.limit_in_bytes')).toBe(String(96 * 1024 * 1024));
    expect(await cg('pids', 'pids.max')).toBe('40');
    const info = await t.engine.containers.inspect(id);
    expect(info.HostConfig.Memory).toBe(96 * 1024 * 1024);
    const r = await svc.request('POST', `/containers/${id}/update`, { RestartPolicy: { Name: 'unless-stopped' } });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ Warnings: [] });
    expect(((await t.engine.containers.inspect(id)).HostConfig.RestartPolicy as { Name: string }).Name).toBe('unless-stopped');
    await t.engine.containers.remove(id, { force: true });
  });

  it('refuses fields it cannot apply, wrong types and bad JSON with 400', async () => {
    const id = await runDetached(['true']);
    const bad = await svc.request('POST', `/containers/${id}/update`, { CpuRealtimePeriod: 1000, KernelMemory: 1 << 20 });
    expect(bad.status).toBe(400);
    expect(bad.json().message).toBe('CpuRealtimePeriod, KernelMemory are not supported yet');
    const wrong = await svc.request('POST', `/containers/${id}/update`, { Memory: '64m' });
    expect(wrong.status).toBe(400);
    expect(wrong.json().message).toMatch(/invalid type for Memory/);
    expect((await svc.request('POST', `/containers/${id}/update`, '{"Memory": ')).status).toBe(400);
    expect((await svc.request('POST', '/containers/nosuch/update', { Memory: 1 << 26 })).status).toBe(404);
    const cli = await docker(['update', '--kernel-memory', '10m', id]);
    expect(cli.exitCode).toBe(1);
    expect(cli.stderr).toMatch(/KernelMemory is not supported yet/);
    await t.engine.containers.remove(id, { force: true });
  });

  it('reads the docker CLI\'s zero-valued fields as unset', () => {
    const body = {
      CpuShares: 0, Memory: 67108864, CgroupParent: '', BlkioWeight: 0, BlkioWeightDevice: null, BlkioDeviceReadBps: null, BlkioDeviceWriteBps: null,
      BlkioDeviceReadIOps: null, BlkioDeviceWriteIOps: null, CpuPeriod: 0, CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '',
      CpusetMems: '', Devices: null, DeviceCgroupRules: null, DeviceRequests: null, KernelMemory: 0, KernelMemoryTCP: 0, MemoryReservation: 0,
      MemorySwap: 0, MemorySwappiness: null, NanoCpus: 500000000, OomKillDisable: null, PidsLimit: null, Ulimits: null, CpuCount: 0, CpuPercent: 0,
      IOMaximumIOps: 0, IOMaximumBandwidth: 0, RestartPolicy: { Name: '', MaximumRetryCount: 0 },
    };
    expect(parseUpdate(body)).toEqual({ memory: 67108864, cpus: '0.5' });
    expect(parseUpdate({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } })).toEqual({ restart: 'on-failure:3' });
  });
});

describe('changes, export', () => {
  it('docker diff shows what berth diff shows; the API gives Docker\'s kinds', async () => {
    const id = await runDetached(['sh', '-c', 'echo x > /new; rm /bin/true; echo y >> /etc/passwd'], { name: 'changer' });
    await t.engine.containers.wait(id);
    const r = await svc.request('GET', `/containers/${id}/changes`);
    const kinds = Object.fromEntries(r.json().map((c: { Path: string; Kind: number }) => [c.Path, c.Kind]));
    expect(kinds).toMatchObject({ '/new': 1, '/bin/true': 2, '/etc/passwd': 0 });
    const d = await docker(['diff', 'changer']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout.split('\n').sort()).toEqual((await t.ok('diff', 'changer')).split('\n').sort());
    await t.engine.containers.remove(id);
  });

  it('docker export -o writes the root filesystem as berth export does', async () => {
    const id = await runDetached(['sh', '-c', 'echo exported > /marker'], { name: 'exp' });
    await t.engine.containers.wait(id);
    const out = path.join(dir, 'exp.tar');
    const d = await docker(['export', '-o', out, 'exp']);
    expect(d.exitCode, d.stderr).toBe(0);
    const list = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n');
    expect(list.some((l) => l.replace(/^\.?\//, '') === 'marker')).toBe(true);
    expect(execFileSync('tar', ['-xOf', out, list.find((l) => l.replace(/^\.?\//, '') === 'marker')!], { encoding: 'utf8' })).toBe('exported\n');
    const mine = path.join(dir, 'mine.tar');
    await t.ok('export', '-o', mine, 'exp');
    expect((await stat(out)).size).toBe((await stat(mine)).size);
    const missing = await docker(['export', '-o', path.join(dir, 'none.tar'), 'nosuch']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/No such container: nosuch/);
    await rm(out);
    await rm(mine);
    await t.engine.containers.remove(id);
  });

  it('an export whose client goes away leaves the service serving', async () => {
    const id = await runDetached(['true']);
    await t.engine.containers.wait(id);
    await new Promise<void>((resolve) => {
      const req = http.request({ socketPath: svc.socket, path: `/containers/${id}/export` }, (res) => {
        res.once('data', () => req.destroy());
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.end();
    });
    expect((await svc.request('GET', `/containers/${id}/changes`)).status).toBe(200);
    await t.engine.containers.remove(id);
  });
});

describe('goFileMode', () => {
  it('sets Go\'s type bits unsigned', () => {
    expect(goFileMode(0o040755)).toBe(2147483648 + 0o755);
    expect(goFileMode(0o120777)).toBe((1 << 27) + 0o777);
    expect(goFileMode(0o100644)).toBe(0o644);
  });
});
