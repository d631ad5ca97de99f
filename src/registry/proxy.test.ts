import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeAgent, proxyFor } from './proxy.js';
import { isInsecureRegistry, isLoopback } from './transport.js';

describe('proxyFor (Go ProxyFromEnvironment rules)', () => {
  const env = { HTTPS_PROXY: 'http://proxy.example:3128', http_proxy: 'proxy.example:8080', NO_PROXY: 'internal.example,.corp.example,10.0.0.0/8,reg.example:5000' };
  it.each([
    ['https://registry.example/v2/', 'http://proxy.example:3128/'],
    ['http://registry.example/v2/', 'http://proxy.example:8080/'],
    ['https://127.0.0.1:5000/v2/', undefined],
    ['https://localhost/v2/', undefined],
    ['https://[::1]:5000/v2/', undefined],
    ['https://internal.example/v2/', undefined],
    ['https://a.internal.example/v2/', undefined],
    ['https://corp.example/v2/', 'http://proxy.example:3128/'], // a leading dot: subdomains only
    ['https://x.corp.example/v2/', undefined],
    ['https://10.1.2.3/v2/', undefined],
    ['https://reg.example:5000/v2/', undefined],
    ['https://reg.example/v2/', 'http://proxy.example:3128/'],
  ])('%s → %s', (target, proxy) => {
    expect(proxyFor(target, env)?.href).toBe(proxy);
  });

  it('uses lower-case names too, and NO_PROXY=* turns it off', () => {
    expect(proxyFor('https://r.example/', { https_proxy: 'http://p:1' })?.host).toBe('p:1');
    expect(proxyFor('https://r.example/', { https_proxy: 'http://p:1', no_proxy: '*' })).toBeUndefined();
    expect(proxyFor('https://r.example/', {})).toBeUndefined();
  });
});

describe('insecure and loopback registries', () => {
  it('loopback hosts may speak plain HTTP', () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('127.3.2.1')).toBe(true);
    expect(isLoopback('localhost')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('10.0.0.1')).toBe(false);
    expect(isLoopback('registry.example')).toBe(false);
  });

  it('insecure entries match host, host:port or a CIDR', () => {
    expect(isInsecureRegistry('reg.example:5000', ['reg.example:5000'])).toBe(true);
    expect(isInsecureRegistry('reg.example:5000', ['reg.example'])).toBe(true);
    expect(isInsecureRegistry('reg.example:5000', ['other.example'])).toBe(false);
    expect(isInsecureRegistry('192.168.5.6:5000', ['192.168.0.0/16'])).toBe(true);
    expect(isInsecureRegistry('192.169.5.6:5000', ['192.168.0.0/16'])).toBe(false);
  });
});

describe('CONNECT tunnel', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('reaches the target through the proxy', async () => {
    const target = http.createServer((_req, res) => res.end('through'));
    const seen: string[] = [];
    const proxy = http.createServer();
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket) => {
      seen.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    servers.push(target, proxy);
    await new Promise<void>((r) => target.listen(15130, '127.0.0.1', r));
    await new Promise<void>((r) => proxy.listen(15131, '127.0.0.1', r));
    const agent = makeAgent('http', new URL('http://127.0.0.1:15131'), 2000, {});
    const body = await new Promise<string>((resolve, reject) => {
      http.get('http://127.0.0.1:15130/x', { agent }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    agent.destroy();
    expect(body).toBe('through');
    expect(seen).toEqual(['127.0.0.1:15130']);
  });
});
