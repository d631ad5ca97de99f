/**
 * What pull and push share: the session lookup, a bounded pool, retries of what a broken connection
 * interrupted, and the short ids progress events carry.
 */
import { RegistryError, isBerthError } from '../errors.js';
import { digestHex, type Digest } from '../ids.js';
import type { RemoteReference, RegistrySession, SessionOptions } from './index.js';

/** How pull and push reach registries: 14a's names.ts and client.ts, wired by the api layer. */
export interface RegistryAccess {
  /** A user's reference → where it lives (no default tag added); a short name → the first search registry. */
  parse(text: string): RemoteReference;
  /** Where a pull looks, in order: the reference itself, or a short name in each unqualified-search registry. */
  candidates(text: string): RemoteReference[];
  /** Sessions to pull through, in order: the registry's mirrors first, the registry itself last. */
  pullSessions(ref: RemoteReference, opts: SessionOptions): RegistrySession[] | Promise<RegistrySession[]>;
  /** The registry itself (push). */
  session(ref: RemoteReference, opts: SessionOptions): RegistrySession | Promise<RegistrySession>;
}

/** Docker pulls and pushes three layers at a time. */
export const POOL = 3;
/** Downloaded bytes are handed to the store in pieces of about this size. */
const HANDOFF = 1 << 20;
/** A blob download is resumed this many times before the pull fails. */
export const RESUMES = 4;

/** `docker pull` shows layers by their blob digest's first 12 hex digits. */
export function shortDigest(d: Digest): string {
  return digestHex(d).slice(0, 12);
}

/** Runs `fn` over `items`, at most `limit` at once; the first failure aborts `stop` and is thrown once all settled. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>, stop?: AbortController): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failure ??= { err };
        stop?.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}

/** A connection that broke or a registry that was briefly unable: worth another try. Refusals are not. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RegistryError) return err.reason === 'unreachable' || err.reason === 'timeout' || err.reason === 'unavailable';
  if (isBerthError(err)) return false;
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' ? /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_SOCKET|ECONNABORTED)$/.test(code)
    : (err as Error)?.message === 'aborted';
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

/**
 * A blob's bytes from `session`, resumed with a Range request from what was received when the
 * connection breaks or ends early. More bytes than `size` is refused at once; fewer after every resume
 * failed is a RegistryError naming the blob. The digest is the blob store's to check.
 */
export async function* resumableBlob(session: RegistrySession, digest: Digest, size: number, what: string,
  onBytes: (received: number) => void, onRetry: () => void, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  let received = 0;
  let failures = 0;
  let last: unknown;
  for (;;) {
    signal?.throwIfAborted();
    if (failures > RESUMES) {
      throw new RegistryError('protocol', session.registry, `${session.repository}@${digest}`,
        `${what} is truncated: got ${received} of ${size} bytes after ${RESUMES} resumed downloads${last ? ` (${(last as Error).message})` : ''}`,
        'the connection to the registry keeps breaking; pull again later', { cause: last });
    }
    if (failures > 0) {
      onRetry();
      await sleep(Math.min(100 * 2 ** (failures - 1), 2000), signal);
    }
    let stream: AsyncIterable<unknown>;
    try {
      stream = (await session.blob(digest, received ? { offset: received } : {})).stream;
    } catch (err) {
      if (!isTransient(err)) throw err;
      failures++;
      last = err;
      continue;
    }
    let broke: unknown;
    // Sockets deliver 16-64 KiB pieces; each piece yielded costs a blob write and an unpacker write (two
    // thread-pool trips), which made a pull spend twice a load's system time. Handed on in ~1 MiB pieces.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    try {
      for await (const chunk of stream) {
        const buf = chunk as Uint8Array;
        received += buf.length;
        if (received > size) {
          throw new RegistryError('protocol', session.registry, `${session.repository}@${digest}`, `${what} is larger than the ${size} bytes its manifest gives`, 'the registry sent more than the manifest says; the image is damaged there');
        }
        onBytes(received);
        pending.push(buf);
        pendingBytes += buf.length;
        if (pendingBytes >= HANDOFF) {
          yield Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
        }
      }
    } catch (err) {
      if (signal?.aborted || (isBerthError(err) && !isTransient(err))) throw err;
      broke = err;
    } finally {
      (stream as { destroy?: () => void }).destroy?.();
    }
    // What arrived before a break is good data: the resumed request asks from after it.
    if (pendingBytes) yield Buffer.concat(pending, pendingBytes);
    if (!broke && received === size) return;
    failures++;
    last = broke ?? new Error(`the connection closed after ${received} of ${size} bytes`);
  }
}

/** Reads a small blob (a config) whole, resuming as layers do. */
export async function fetchSmall(session: RegistrySession, digest: Digest, size: number, what: string, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of resumableBlob(session, digest, size, what, () => {}, () => {}, signal)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}
