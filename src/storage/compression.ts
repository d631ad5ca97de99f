import { Readable, type Duplex } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CorruptError } from '../errors.js';
import type { Compression } from './index.js';
import { hasCommand } from './hosttools.js';

/** Bigger than zlib's 16 KiB default so that file data reaches the disk in fewer, larger writes. */
const CHUNK = 256 * 1024;
/** zstd is fed by the caller's stream (a download), so this only bounds a stuck child. */
const ZSTD_TIMEOUT_MS = 60 * 60_000;

export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * Sniffs the magic bytes. Returns the whole stream again plus the decoder to put after it in a pipeline,
 * so that an error anywhere (a broken download, a bad frame) tears down every stage.
 */
export async function sniff(src: Readable): Promise<{ compression: Compression; stream: Readable; decoders: Duplex[] }> {
  const { head, stream } = await peek(src, 4);
  const compression = detectCompression(head);
  switch (compression) {
    case 'none':
      return { compression, stream, decoders: [] };
    case 'gzip':
      return { compression, stream, decoders: [createGunzip({ chunkSize: CHUNK })] };
    case 'zstd':
      if (!hasCommand('zstd')) {
        stream.destroy();
        throw new CorruptError('layer is zstd-compressed and zstd is not installed', 'install zstd (apt-get install zstd) or use a gzip image');
      }
      return { compression, stream, decoders: [await zstdDecoder()] };
  }
}

/**
 * execa's duplex fails when the child exits non-zero, so a corrupt frame cannot pass for a short tar.
 * Imported here only: loading execa costs every berth command ~55 ms (util/exec.ts).
 */
async function zstdDecoder(): Promise<Duplex> {
  const { execa } = await import('execa');
  return execa('zstd', ['-d', '-c', '-q'], { timeout: ZSTD_TIMEOUT_MS }).duplex();
}

/** Reads the first `n` bytes without losing them: the returned stream yields everything from the start. */
async function peek(src: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = src[Symbol.asyncIterator]();
  const first: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const r = await it.next();
    if (r.done) break;
    first.push(r.value);
    len += (r.value as Buffer).length;
  }
  async function* all(): AsyncGenerator<Buffer> {
    yield* first;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { head: Buffer.concat(first).subarray(0, n), stream: Readable.from(all(), { objectMode: false }) };
}
