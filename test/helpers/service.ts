/**
 * The Engine API service over a test engine's store, on a private socket, and the real clients that talk
 * to it: the docker CLI (the machine's static 28.x client, DOCKER_HOST at the socket) and raw requests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type Options } from 'execa';
import { serve, type RunningService } from '../../src/service/index.js';
import type { TestEngine } from './engine.js';

export interface TestService {
  socket: string;
  /** DOCKER_HOST for clients */
  host: string;
  service: RunningService;
  /** the docker CLI against the service; never rejects; 60 s bound unless `opts` says otherwise */
  docker(args: readonly string[], opts?: Options): ReturnType<typeof execa>;
  /** one request on the socket: status, headers and the whole body */
  request(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; json(): any }>;
  close(): Promise<void>;
}

export async function startService(t: TestEngine, opts: { idleSeconds?: number } = {}): Promise<TestService> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-service-'));
  const socket = path.join(dir, 'api.sock');
  const service = await serve(t.engine, { uris: [`unix://${socket}`], idleSeconds: opts.idleSeconds ?? 0 });
  const host = `unix://${socket}`;
  return {
    socket,
    host,
    service,
    docker: (args, o = {}) => execa('docker', args, { reject: false, timeout: 60_000, ...o, env: { DOCKER_HOST: host, DOCKER_CONFIG: path.join(dir, 'docker-config'), DOCKER_BUILDKIT: '0', ...(o.env ?? {}) } }),
    request: (method, p, body, headers = {}) => new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      const req = http.request({ socketPath: socket, method, path: p, headers: { ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}), ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolve({ status: res.statusCode!, headers: res.headers, body: buf, json: () => JSON.parse(buf.toString('utf8')) });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    }),
    close: async () => {
      await service.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
