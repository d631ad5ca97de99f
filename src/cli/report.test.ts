import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../errors.js';
import type { Context } from './command.js';
import { forEachRef } from './report.js';

function context() {
  const out: string[] = [];
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const ctx = { globals: { logLevel: 'info' }, print: (...l: string[]) => out.push(...l), stderr } as unknown as Context;
  return { ctx, out, err: () => err };
}

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('forEachRef', () => {
  it('prints results in the order of the arguments however the parallel operations finish', async () => {
    const { ctx, out, err } = context();
    const delays: Record<string, number> = { a: 40, b: 5, c: 20, d: 1 };
    let running = 0;
    let most = 0;
    const code = await forEachRef(ctx, ['a', 'b', 'c', 'd'], async (ref) => {
      running++;
      most = Math.max(most, running);
      await later(delays[ref]!);
      running--;
      if (ref === 'c') throw new NotFoundError('container', 'c');
      return ref.toUpperCase();
    }, { parallel: 3 });
    expect(code).toBe(1);
    expect(out).toEqual(['A', 'B', 'D']);
    expect(err()).toContain('no such container: c');
    expect(most).toBe(3);
  });

  it('runs one at a time unless asked', async () => {
    const { ctx, out } = context();
    let running = 0;
    let most = 0;
    expect(await forEachRef(ctx, ['x', 'y', 'z'], async () => {
      running++;
      most = Math.max(most, running);
      await later(2);
      running--;
    })).toBe(0);
    expect(out).toEqual(['x', 'y', 'z']);
    expect(most).toBe(1);
  });
});
