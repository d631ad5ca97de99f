import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { isTarHeader } from './context.js';

async function firstBlock(header: Partial<tar.Header> & { name: string }): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry(header as tar.Header, '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks).subarray(0, 512);
}

describe('isTarHeader (tar on stdin, or a Dockerfile?)', () => {
  it('knows a ustar header by its checksum', async () => {
    const block = await firstBlock({ name: 'Dockerfile', size: 0 });
    expect(isTarHeader(block)).toBe(true);
    const damaged = Buffer.from(block);
    damaged[0] = 'X'.charCodeAt(0);
    expect(isTarHeader(damaged)).toBe(false);
  });

  it('takes Dockerfile text, however long, for what it is', () => {
    const text = Buffer.alloc(512, ' ');
    text.write('FROM busybox\nRUN echo "a tar has a checksum here -> 0000000 and this does not add up"\n');
    expect(isTarHeader(text)).toBe(false);
    expect(isTarHeader(Buffer.alloc(512))).toBe(false);
  });
});
