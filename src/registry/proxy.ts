/**
 * Proxies from the environment, decided as Go's net/http ProxyFromEnvironment decides (what Docker and
 * Podman do): HTTPS_PROXY for https URLs, HTTP_PROXY for http ones (upper case first, then lower case),
 * NO_PROXY entries skip it, and localhost or a loopback address is never proxied.
 * Both schemes are tunnelled with CONNECT.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

export type ProxyEnv = Readonly<Record<string, string | undefined>>;

function env(e: ProxyEnv, name: string): string | undefined {
  return e[name] || e[name.toLowerCase()] || undefined;
}

/** The proxy for `target`, or undefined to connect directly. */
export function proxyFor(target: string, e: ProxyEnv): URL | undefined {
  const url = new URL(target);
  const raw = url.protocol === 'https:' ? env(e, 'HTTPS_PROXY') : env(e, 'HTTP_PROXY');
  if (!raw) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  if (host === 'localhost' || host.endsWith('.localhost') || (net.isIPv4(host) && host.startsWith('127.')) || host === '::1') return undefined;
  if (bypassed(host, port, env(e, 'NO_PROXY') ?? '')) return undefined;
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    return undefined;
  }
}

function bypassed(host: string, port: string, noProxy: string): boolean {
  for (let entry of noProxy.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (entry === '*') return true;
    if (entry.includes('/') && net.isIP(host)) {
      const [base, bits] = entry.split('/') as [string, string];
      const list = new net.BlockList();
      try {
        list.addSubnet(base, Number(bits), net.isIPv6(base) ? 'ipv6' : 'ipv4');
        if (list.check(host, net.isIPv6(host) ? 'ipv6' : 'ipv4')) return true;
      } catch { /* not a CIDR: ignored, as Go ignores it */ }
      continue;
    }
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (!m) continue;
    if (m[2] !== undefined && m[2] !== port) continue;
    entry = m[1]!.replace(/^\[|\]$/g, '');
    if (net.isIP(entry)) {
      if (entry === host) return true;
    } else if (entry.startsWith('.')) {
      if (host.endsWith(entry)) return true; // a leading dot: subdomains only
    } else if (host === entry || host.endsWith(`.${entry}`)) {
      return true;
    }
  }
  return false;
}

type Callback = (err: Error | null, socket?: net.Socket) => void;
type AgentCallback = ((err: Error | null, stream: import('node:stream').Duplex) => void) | undefined;

/** Opens a CONNECT tunnel to `options.host:port` through `proxy`, then TLS over it when `secure`. */
function tunnel(proxy: URL, options: tls.ConnectionOptions & { host?: string; port?: number | string }, secure: boolean, connectMs: number, cb: Callback): void {
  const target = `${options.host}:${options.port}`;
  const headers: Record<string, string> = { host: target };
  if (proxy.username) {
    headers['proxy-authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  }
  const mod = proxy.protocol === 'https:' ? https : http;
  const req = mod.request({ host: proxy.hostname, port: proxy.port || (proxy.protocol === 'https:' ? 443 : 80), method: 'CONNECT', path: target, headers, timeout: connectMs });
  let done = false;
  const finish = (err: Error | null, socket?: net.Socket) => {
    if (done) return;
    done = true;
    cb(err, socket);
  };
  req.on('timeout', () => req.destroy(Object.assign(new Error(`proxy ${proxy.host} did not answer in ${connectMs} ms`), { code: 'ETIMEDOUT' })));
  req.on('error', (err) => finish(err));
  req.on('connect', (res, socket) => {
    if (res.statusCode !== 200) {
      socket.destroy();
      finish(Object.assign(new Error(`proxy ${proxy.host} refused to connect to ${target}: ${res.statusCode}`), { code: 'ECONNREFUSED' }));
      return;
    }
    if (!secure) return finish(null, socket);
    const servername = net.isIP(String(options.host)) ? undefined : String(options.host);
    const secured = tls.connect({ ...options, socket, ...(servername && { servername }) });
    finish(null, secured);
  });
  req.end();
}

/** An agent for `kind` URLs, tunnelling through `proxy` when there is one. */
export function makeAgent(kind: 'http' | 'https', proxy: URL | undefined, connectMs: number, opts: https.AgentOptions): http.Agent {
  const agent = kind === 'https' ? new https.Agent(opts) : new http.Agent(opts);
  if (proxy) {
    // http.Agent waits for the callback when createConnection returns nothing: room for the CONNECT.
    agent.createConnection = (options: http.ClientRequestArgs, cb: AgentCallback) => {
      tunnel(proxy, options as tls.ConnectionOptions, kind === 'https', connectMs, cb as Callback);
      return undefined;
    };
  }
  return agent;
}
