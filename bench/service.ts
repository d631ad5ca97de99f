/**
 * Issue 16: the Engine API as clients use it. `docker run --rm --network none busybox true` by the docker
 * CLI through `berth system service`, against the same CLI through dockerd and through `podman system
 * service` (peers, when installed); `GET /containers/json?all=1` with 100 containers in the root; the idle
 * service's memory. The services are started by the bench and stopped by PID.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BERTH_BIN, BERTH_IMAGE, BerthRoot } from './berth.js';
import { type Benchmark, deferCleanup, measure, Report, scratch, sh, sleep } from './lib.js';
import { stopByPid } from './peers.js';

const CONTAINERS = 100;

/** Waits for a unix socket to answer /_ping. */
async function waitForSocket(sock: string, what: string): Promise<void> {
  for (let waited = 0; ; waited += 100) {
    if (existsSync(sock) && (await get(sock, '/_ping').then((r) => r.status === 200, () => false))) return;
    if (waited > 30_000) throw new Error(`${what} did not answer on ${sock}`);
    await sleep(100);
  }
}

function get(sock: string, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, path: p, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A process's resident memory, MB (VmRSS). */
function rssMb(pid: number): number {
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}

export const service: Benchmark = {
  name: 'service',
  title: 'Engine API: docker run --rm via berth system service vs dockerd and podman system service; GET /containers/json with 100 containers; idle memory',
  defaultRuns: 10,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const berth = await BerthRoot.create('service');
    const work = await scratch('service');
    const sock = path.join(work.dir, 'berth.sock');
    let pid: number | undefined;
    const stopService = deferCleanup(async () => { if (pid) await stopByPid(pid); });
    try {
      await berth.ensureImage();
      const child = spawn(process.execPath, [BERTH_BIN, '--root', berth.root, 'system', 'service', '--time', '0', `unix://${sock}`], { stdio: 'ignore' });
      pid = child.pid;
      await waitForSocket(sock, 'berth system service');
      const docker = (host: string, args: readonly string[]) => sh('docker', args, { timeout: 60_000, env: { DOCKER_HOST: host } });
      const opts = { runs: ctx.runs, warmup: 2 };

      await measure(report, 'docker run --rm via berth system service', 'berth', opts, async () => {
        await docker(`unix://${sock}`, ['run', '--rm', '--network', 'none', BERTH_IMAGE, 'true']);
      });
      await measure(report, 'berth run --rm (its own CLI, for comparison)', 'info', opts, async () => {
        await berth.cli(['run', '--rm', '--network', 'none', BERTH_IMAGE, 'true']);
      });
      for (const peer of await ctx.peers()) {
        if (peer.name === 'docker') {
          await measure(report, 'docker run --rm via dockerd', 'peer', opts, async () => { await peer.cli(['run', '--rm', '--network', 'none', peer.image, 'true']); });
        } else {
          // podman's own service on its own store, the docker CLI pointed at it.
          const psock = path.join(work.dir, 'podman.sock');
          const serving = peer.cli(['system', 'service', '--time', '0', `unix://${psock}`], { timeout: 3_600_000 }).catch(() => undefined);
          await measure(report, 'docker run --rm via podman system service', 'peer', {
            ...opts,
            setup: async (i) => { if (i === 0) await waitForSocket(psock, 'podman system service'); },
          }, async () => { await docker(`unix://${psock}`, ['run', '--rm', '--network', 'none', peer.image, 'true']); });
          const ppid = (await sh('pgrep', ['-f', psock]).catch(() => ({ stdout: '' }))).stdout.split('\n').map(Number).find((n) => n > 0);
          if (ppid) {
            report.add({ label: 'podman system service RSS, idle', role: 'peer', unit: 'MB', samples: [rssMb(ppid)] });
            await stopByPid(ppid);
          }
          await serving;
        }
      }

      ctx.log(`${this.name}: creating ${CONTAINERS} containers`);
      for (let i = 0; i < CONTAINERS; i++) await berth.cli(['create', '--network', 'none', BERTH_IMAGE, 'true']);
      await measure(report, `GET /containers/json?all=1 (${CONTAINERS} containers)`, 'berth', { runs: 20, warmup: 2 }, async () => {
        const res = await get(sock, '/v1.41/containers/json?all=1');
        if (res.status !== 200 || (JSON.parse(res.body) as unknown[]).length !== CONTAINERS) throw new Error(`answer ${res.status}: ${res.body.slice(0, 200)}`);
      });
      await measure(report, `berth ps -a (${CONTAINERS} containers, its own CLI)`, 'info', { runs: 5, warmup: 1 }, async () => { await berth.cli(['ps', '-a']); });
      await sleep(2000);
      report.add({ label: 'berth system service RSS, idle', role: 'berth', unit: 'MB', samples: [rssMb(pid!)] });

      const via = () => report.median('docker run --rm via berth system service');
      report.target('docker run via berth faster than via dockerd', () => via() / report.median('docker run --rm via dockerd'), '<=', 1, 'x');
      report.target('docker run via berth faster than via podman system service', () => via() / report.median('docker run --rm via podman system service'), '<=', 1, 'x');
      report.target('idle service RSS <= podman system service\'s', () => report.median('berth system service RSS, idle') / report.median('podman system service RSS, idle'), '<=', 1, 'x');
      report.note('every run is the docker 28 CLI (negotiating API 1.41 with Berth and podman); peers on their own stores, the same busybox rootfs');
    } finally {
      await stopService();
      await berth.cleanup();
      await work.remove();
    }
    return report;
  },
};
