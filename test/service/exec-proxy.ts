/**
 * Until the containers group lands (another branch), the docker CLI's `GET /containers/{id}/json` and
 * `POST /containers/{id}/wait` (which exec and attach call first / last) are answered here from the Engine,
 * in front of the real service; every other request, upgraded ones included, goes through to the service
 * byte for byte. Remove once registerContainers serves them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EngineApi } from '../../src/types.js';

export interface ExecProxy {
  host: string;
  close(): Promise<void>;
}

export async function containersProxy(engine: EngineApi, socket: string): Promise<ExecProxy> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-exec-proxy-'));
  const file = path.join(dir, 'p.sock');
  const server = http.createServer(async (req, res) => {
    const p = (req.url ?? '/').replace(/^\/v\d+\.\d+/, '');
    const inspect = req.method === 'GET' && /^\/containers\/([^/?]+)\/json(\?|$)/.exec(p);
    const wait = req.method === 'POST' && /^\/containers\/([^/?]+)\/wait(\?|$)/.exec(p);
    if (inspect || wait) {
      try {
        const ref = decodeURIComponent((inspect || wait)![1]!);
        if (inspect) {
          const body = JSON.stringify(await engine.containers.inspect(ref));
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
        } else {
          const condition = new URL(p, 'http://x').searchParams.get('condition') as 'next-exit' | null;
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.flushHeaders();
          res.end(JSON.stringify({ StatusCode: await engine.containers.wait(ref, condition ? { condition } : {}) }));
        }
      } catch (err) {
        if (!res.headersSent) res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ message: `No such container: ${(err as Error).message}` }));
      }
      return;
    }
    const fwd = http.request({ socketPath: socket, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  server.on('upgrade', (req, client: net.Socket, head: Buffer) => {
    const up = net.connect({ path: socket, allowHalfOpen: true });
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    up.write(lines.join('\r\n') + '\r\n\r\n');
    up.write(head);
    client.pipe(up);
    up.pipe(client);
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(file, resolve));
  return {
    host: `unix://${file}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
