import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { packFile } from './tar.js';

describe('packFile', () => {
  it('packs a small file (read whole) and a large one (streamed) byte for byte', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-packfile-'));
    try {
      const files = { small: Buffer.from('small\n'), empty: Buffer.alloc(0), large: Buffer.alloc(300_000, 7) };
      for (const [name, body] of Object.entries(files)) writeFileSync(path.join(dir, name), body);
      const pack = tarStream.pack();
      const extract = tarStream.extract();
      const got: Record<string, Buffer> = {};
      extract.on('entry', (h, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c) => { chunks.push(c as Buffer); });
        stream.on('end', () => { got[h.name] = Buffer.concat(chunks); next(); });
      });
      const finished = new Promise<void>((resolve) => { extract.on('finish', () => resolve()); });
      pack.pipe(extract);
      for (const [name, body] of Object.entries(files)) await packFile(pack, { name, size: body.length, mode: 0o644 }, path.join(dir, name));
      pack.finalize();
      await finished;
      expect(got).toEqual(files);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
