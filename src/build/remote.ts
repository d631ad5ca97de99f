import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { InvalidArgumentError, RuntimeError } from '../errors.js';

/** `ADD <URL>`: a download is refused beyond this size, so a wrong URL cannot fill the store's disk. */
export const MAX_URL_BYTES = 4 * 1024 ** 3;
/** No byte for this long (connecting included) ends the download. */
const IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 10;

export interface Fetched {
  /** the downloaded file on this host */
  file: string;
  /** its name in the image: Content-Disposition's filename, else the URL path's last part */
  name: string;
  size: number;
  /** `sha256:<hex>` of the content */
  digest: string;
}

/** `--checksum=sha256:<hex>`: checked when the instruction is read, before anything is fetched. */
export function parseChecksum(v: string): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(v)) throw new InvalidArgumentError('ADD --checksum', `"${v}" is not sha256:<64 hex digits>`, 'give the digest as sha256sum prints it, after "sha256:"');
  return v;
}

/**
 * Fetches `url` into the folder `dir` (redirects followed, a time-out without data, a size cap), its mtime
 * from Last-Modified as Docker sets it. Never extracted: Docker extracts only local archives.
 */
export async function fetchUrl(url: string, dir: string, field: string, signal?: AbortSignal): Promise<Fetched> {
  const file = path.join(dir, `download-${createHash('sha256').update(url).digest('hex').slice(0, 16)}`);
  let current = new URL(url);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await get(current, field, signal);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, current);
      if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new InvalidArgumentError(field, `${url} redirects to ${current.protocol} URL`, 'ADD fetches http and https URLs only');
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new RuntimeError(`${field}: GET ${url} answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, 'check the URL, or COPY the file from the context');
    }
    const length = Number(res.headers['content-length'] ?? NaN);
    if (length > MAX_URL_BYTES) {
      res.destroy();
      throw new InvalidArgumentError(field, `${url} is ${length} bytes, more than ADD fetches (${MAX_URL_BYTES})`, 'fetch it with RUN, or COPY it from the context');
    }
    const name = dispositionName(res.headers['content-disposition']) ?? path.posix.basename(decodeURIComponent(current.pathname));
    const hash = createHash('sha256');
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(file, { mode: 0o600 });
      const fail = (err: Error) => { res.destroy(); out.destroy(); reject(err); };
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_URL_BYTES) return fail(new InvalidArgumentError(field, `${url} sent more than ${MAX_URL_BYTES} bytes`, 'fetch it with RUN, or COPY it from the context'));
        hash.update(chunk);
      });
      res.on('error', fail);
      res.on('aborted', () => fail(new RuntimeError(`${field}: the download of ${url} was cut off`, 'try again')));
      out.on('error', fail);
      out.on('finish', () => resolve());
      res.pipe(out);
    });
    if (Number.isFinite(length) && size !== length) throw new RuntimeError(`${field}: ${url} sent ${size} of ${length} bytes`, 'try again');
    const modified = Date.parse(String(res.headers['last-modified'] ?? ''));
    if (Number.isFinite(modified)) await fsp.utimes(file, new Date(modified), new Date(modified));
    if (!name || name === '/' || name === '.' || name === '..') {
      throw new InvalidArgumentError(field, `cannot take a file name from ${url}`, 'give the destination a file name, e.g. ADD URL /dest/file');
    }
    return { file, name, size, digest: `sha256:${hash.digest('hex')}` };
  }
  throw new InvalidArgumentError(field, `${url} redirects more than ${MAX_REDIRECTS} times`);
}

function get(url: URL, field: string, signal?: AbortSignal): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, { timeout: IDLE_TIMEOUT_MS, signal, headers: { 'user-agent': 'berth-build' } }, resolve);
    req.on('timeout', () => req.destroy(new RuntimeError(`${field}: ${url.href} sent nothing for ${IDLE_TIMEOUT_MS / 1000} s`, 'check the server, then build again')));
    req.on('error', (err) => reject(err instanceof RuntimeError ? err : new RuntimeError(`${field}: GET ${url.href} failed: ${err.message}`, 'check the URL and that the server answers', { cause: err })));
  });
}

/** RFC 6266's filename (quoted or not; `filename*` of RFC 5987 preferred), its last path part only. */
function dispositionName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const ext = /filename\*\s*=\s*[^']*'[^']*'([^;]+)/i.exec(header);
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/i.exec(header);
  let name: string | undefined;
  try {
    name = ext ? decodeURIComponent(ext[1]!.trim()) : plain ? (plain[1]?.replace(/\\(.)/g, '$1') ?? plain[2]!.trim()) : undefined;
  } catch {
    name = undefined;
  }
  return name ? path.posix.basename(name.replace(/\\/g, '/')) || undefined : undefined;
}
