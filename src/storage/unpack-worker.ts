/**
 * The worker thread's side of unpack-thread.ts: one layer, then the thread is ended by its parent.
 * Bytes arrive as messages into a stream that `unpackLayer` reads; each is acknowledged once the stream
 * took it, which is the parent's backpressure.
 */
import { PassThrough } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import type { Digest } from '../ids.js';
import { unpackLayer } from './unpack.js';
import { encodeError, type FromWorker, type ToWorker, type WorkerInput } from './unpack-thread.js';

const port = parentPort!;
const input = workerData as WorkerInput;
const send = (m: FromWorker) => port.postMessage(m);

const feed = new PassThrough({ highWaterMark: 1 << 20 });
let digestSettle!: { resolve(d: Digest): void; reject(e: Error): void };
const srcDigest = input.srcDigest ? new Promise<Digest>((resolve, reject) => { digestSettle = { resolve, reject }; }) : undefined;
// Awaited only at the end of a plain tar; a failure before then must not be an unhandled rejection.
srcDigest?.catch(() => {});

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'chunk': {
      const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      feed.write(data, () => send({ type: 'ack', bytes: data.length }));
      break;
    }
    case 'end':
      feed.end();
      break;
    case 'abort':
      feed.destroy(new Error(m.message));
      break;
    case 'srcDigest':
      digestSettle.resolve(m.digest);
      break;
    case 'srcDigestFailed':
      digestSettle.reject(new Error(m.message));
      break;
  }
});

let seen = false;
unpackLayer(feed, input.root, {
  splitDir: input.splitDir,
  srcDigest,
  onTarEntry() {
    if (seen) return;
    seen = true;
    send({ type: 'tarEntry' });
  },
}).then(
  (result) => send({ type: 'done', result }),
  (err: unknown) => send({ type: 'failed', error: encodeError(err) }),
);
