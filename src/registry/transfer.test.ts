import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../errors.js';
import type { Digest } from '../ids.js';
import type { RegistrySession } from './index.js';
import { RESUMES, pool, resumableBlob } from './transfer.js';

const DATA = Buffer.from('0123456789'.repeat(1000));
const DIGEST = `sha256:${createHash('sha256').update(DATA).digest('hex')}` as Digest;

/**
 * A session whose connections break: each answer sends `cut(attempt)` bytes from the offset asked for,
 * then fails as a reset socket does (or ends early with `end`). Records the offsets asked for.
 */
function flaky(cut: (attempt: number) => number | undefined, how: 'reset' | 'end' = 'reset'): { session: RegistrySession; offsets: number[] } {
  const offsets: number[] = [];
  const session = {
    registry: '127.0.0.1:1', repository: 'r',
    async blob(_d: Digest, opts: { offset?: number } = {}) {
      const offset = opts.offset ?? 0;
      const n = cut(offsets.length);
      offsets.push(offset);
      const part = DATA.subarray(offset, n === undefined ? undefined : offset + n);
      const stream = Readable.from((async function* () {
        yield part;
        if (n !== undefined && how === 'reset') throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      })());
      return { stream, size: DATA.length - offset };
    },
  } as unknown as RegistrySession;
  return { session, offsets };
}

async function collect(src: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of src) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

describe('resumableBlob', () => {
  it('resumes a broken download from the bytes received, with a range request each time', async () => {
    const { session, offsets } = flaky((i) => (i < 3 ? 1500 : undefined));
    let retries = 0;
    const got = await collect(resumableBlob(session, DIGEST, DATA.length, 'layer x', () => {}, () => { retries++; }));
    expect(got.equals(DATA)).toBe(true);
    expect(offsets).toEqual([0, 1500, 3000, 4500]);
    expect(retries).toBe(3);
  });

  it('resumes a connection that ended early, and names the blob when it cannot be completed', async () => {
    const { session, offsets } = flaky(() => 100, 'end');
    const err = await collect(resumableBlob(session, DIGEST, DATA.length, 'layer sha256:abc', () => {}, () => {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toMatch(/^r@sha256:[0-9a-f]{64}: layer sha256:abc is truncated: got 500 of 10000 bytes after 4 resumed downloads/);
    expect(offsets.length).toBe(RESUMES + 1);
  }, 20_000);

  it('refuses more bytes than the manifest gives at once', async () => {
    const { session } = flaky(() => undefined);
    await expect(collect(resumableBlob(session, DIGEST, DATA.length - 1, 'layer y', () => {}, () => {}))).rejects.toThrow(/larger than the 9999 bytes/);
  });
});

describe('pool', () => {
  it('runs at most `limit` at once and throws the first failure after the others settle', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    const err = await pool([1, 2, 3, 4, 5, 6], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      if (n === 2) throw new Error('two');
      done.push(n);
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('two');
    expect(most).toBe(3);
    expect(running).toBe(0);
    expect(done).not.toContain(6);
  });
});
