/**
 * A layer unpacked on a worker thread. unpack.ts makes its files with synchronous calls, which is right
 * for one layer (see LayerWriter) but puts every layer of a process on one core: on ext4 a file's
 * creation costs the kernel up to a millisecond, so a pull of several big layers waits for the main
 * thread's system calls while the second core idles. A worker per big layer lets layers that download
 * in parallel also unpack in parallel; the main thread keeps the network, the blob's hash and its write.
 *
 * The worker runs the same `unpackLayer`: only the bytes, the stream's digest, the first-entry signal and
 * the outcome cross the thread boundary (wire.ts-style plain messages, errors rebuilt into their class).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BerthError, CorruptError, RuntimeError } from '../errors.js';
import type { Digest } from '../ids.js';
import { unpackLayer, type Unpacked, type UnpackLayerOptions } from './unpack.js';

/** A stream expected to be at least this big is worth a thread (~30 ms to start one). */
export const THREAD_THRESHOLD = 8 << 20;
/**
 * Worker threads at once in this process; a layer beyond them unpacks on this thread. This thread and its
 * workers make one per core: more buys nothing, and each worker's heap holds tens of MB of buffers.
 */
const MAX_THREADS = Math.max(1, availableParallelism() - 1);
/** Bytes posted to the worker and not yet taken by its unpack: beyond this the source waits. */
const IN_FLIGHT = 2 << 20;

/** Messages to the worker. */
export type ToWorker =
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'end' }
  | { type: 'abort'; message: string }
  | { type: 'srcDigest'; digest: Digest }
  | { type: 'srcDigestFailed'; message: string };

/** Messages from the worker. */
export type FromWorker =
  | { type: 'ack'; bytes: number }
  | { type: 'tarEntry' }
  | { type: 'done'; result: Unpacked }
  | { type: 'failed'; error: WireError };

export interface WorkerInput {
  root: string;
  splitDir?: string;
  /** whether `srcDigest` messages will come (the caller gave a digest or a promise of one) */
  srcDigest: boolean;
}

/** An error as it crosses threads: its class by name, and what the CLI and the disk-full check read. */
export type WireError =
  | { kind: 'corrupt' | 'runtime'; message: string; hint: string }
  | { kind: 'errno'; message: string; code?: string; errno?: number; syscall?: string; path?: string }
  | { kind: 'other'; message: string };

export function encodeError(err: unknown): WireError {
  if (err instanceof CorruptError) return { kind: 'corrupt', message: err.message, hint: err.hint };
  // unpackLayer throws only these classes, errno errors and plain ones; any other BerthError keeps its words.
  if (err instanceof BerthError) return { kind: 'runtime', message: err.message, hint: err.hint };
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && e.syscall) return { kind: 'errno', message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path };
  return { kind: 'other', message: e instanceof Error ? e.message : String(err) };
}

export function decodeError(w: WireError): Error {
  switch (w.kind) {
    case 'corrupt': return new CorruptError(w.message, w.hint);
    case 'runtime': return new RuntimeError(w.message, w.hint);
    case 'errno': return Object.assign(new Error(w.message), { code: w.code, errno: w.errno, syscall: w.syscall, path: w.path });
    default: return new Error(w.message);
  }
}

let script: string | null | undefined;

/**
 * The worker's entry: beside this module once built (dist/src/storage, or dist/cli in the bundle). Run
 * from TypeScript sources (vitest), a worker cannot load `.ts`: the build's copy serves, since the tests
 * build dist/ first. Without either, layers unpack in-process, as before: slower, never different.
 */
function workerScript(): string | null {
  if (script !== undefined) return script;
  const built = import.meta.url.endsWith('.ts')
    ? new URL('../../dist/src/storage/unpack-worker.js', import.meta.url)
    : new URL('./unpack-worker.js', import.meta.url);
  script = existsSync(fileURLToPath(built)) ? fileURLToPath(built) : null;
  return script;
}

/** Unpacks running on this thread, and on workers, now; and how many went to a worker so far. */
let here = 0;
let threads = 0;
let started = 0;

/** For tests and benchmarks: layers this process gave to worker threads, and those still running. */
export function unpackThreadStats(): { started: number; running: number } {
  return { started, running: threads };
}

/**
 * `unpackLayer`, on a worker thread when this thread is already unpacking a layer, a worker is free and
 * the stream is big (`sizeHint` at least THREAD_THRESHOLD). One layer at a time (a load, a build) stays
 * on this thread: a worker would only add a copy of every byte and a second heap. Same result, same
 * errors; when it fails, `src` is destroyed, as a failed pipeline would.
 */
export async function unpackLayerThreaded(src: Readable, root: string, opts: UnpackLayerOptions & { sizeHint?: number } = {}): Promise<Unpacked> {
  const file = here > 0 && threads < MAX_THREADS && (opts.sizeHint ?? 0) >= THREAD_THRESHOLD ? workerScript() : null;
  if (!file) {
    here++;
    try {
      return await unpackLayer(src, root, opts);
    } finally {
      here--;
    }
  }
  threads++;
  started++;
  try {
    return await unpackOnThread(file, src, root, opts);
  } finally {
    threads--;
  }
}

async function unpackOnThread(file: string, src: Readable, root: string, opts: UnpackLayerOptions): Promise<Unpacked> {
  const input: WorkerInput = { root, splitDir: opts.splitDir, srcDigest: opts.srcDigest !== undefined };
  const worker = new Worker(file, { workerData: input, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
  let inFlight = 0;
  let wake: (() => void) | undefined;
  let settled = false;
  const outcome = new Promise<Unpacked>((resolve, reject) => {
    const finish = (err: Error | undefined, result?: Unpacked) => {
      if (settled) return;
      settled = true;
      wake?.();
      if (err) {
        src.destroy();
        reject(err);
      } else resolve(result!);
    };
    worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'ack':
          inFlight -= m.bytes;
          if (inFlight <= IN_FLIGHT) wake?.();
          break;
        case 'tarEntry':
          opts.onTarEntry?.();
          break;
        case 'done':
          finish(undefined, m.result);
          break;
        case 'failed':
          finish(decodeError(m.error));
          break;
      }
    });
    worker.on('error', (err) => finish(new RuntimeError(`the layer unpack thread failed: ${err.message}`, 'this is a bug in berth; run the command again', { cause: err })));
    worker.on('exit', (code) => finish(new RuntimeError(`the layer unpack thread exited (code ${code}) before it finished`, 'this is a bug in berth; run the command again')));
  });
  const post = (m: ToWorker) => { if (!settled) worker.postMessage(m); };
  if (opts.srcDigest !== undefined) {
    Promise.resolve(opts.srcDigest).then((digest) => post({ type: 'srcDigest', digest }), (err: unknown) => post({ type: 'srcDigestFailed', message: (err as Error)?.message ?? String(err) }));
  }
  const pump = async () => {
    try {
      for await (const chunk of src) {
        if (settled) return;
        post({ type: 'chunk', data: chunk as Uint8Array });
        inFlight += (chunk as Uint8Array).length;
        while (inFlight > IN_FLIGHT && !settled) await new Promise<void>((resolve) => { wake = resolve; });
      }
      post({ type: 'end' });
    } catch (err) {
      post({ type: 'abort', message: (err as Error)?.message ?? String(err) });
    }
  };
  void pump();
  try {
    return await outcome;
  } finally {
    await worker.terminate();
  }
}
