import tar from 'tar-stream';

export type TarPack = ReturnType<typeof tar.pack>;

/** A small tar built in memory: `fill` adds entries (with their bodies) and the result is the whole archive. */
export async function packTar(fill: (pack: TarPack) => void): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c) => { chunks.push(c as Buffer); });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  fill(pack);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
