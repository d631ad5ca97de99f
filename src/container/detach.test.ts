import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { escapeStdin, parseDetachKeys } from './detach.js';

describe('parseDetachKeys (docker --detach-keys)', () => {
  it('reads ctrl-X and single characters', () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([16, 17]);
    expect([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-_,a,Z')]).toEqual([0, 27, 31, 97, 90]);
  });

  it.each(['', 'ctrl-', 'ctrl-1', 'ab', 'ctrl-p,', 'é'])('refuses %j', (text) => {
    expect(() => parseDetachKeys(text)).toThrow(/invalid --detach-keys/);
  });
});

describe('escapeStdin', () => {
  const run = async (chunks: string[], keys = 'ctrl-p,ctrl-q') => {
    const input = new PassThrough();
    let detached = false;
    const out = escapeStdin(input, parseDetachKeys(keys), () => { detached = true; });
    const got: Buffer[] = [];
    out.on('data', (d: Buffer) => got.push(d));
    for (const c of chunks) input.write(Buffer.from(c, 'latin1'));
    await new Promise((r) => setImmediate(r));
    return { text: Buffer.concat(got).toString('latin1'), detached };
  };

  it('passes typing through and takes the sequence out, even split across reads', async () => {
    expect(await run(['ls\r', '\x10', '\x11', 'never seen'])).toEqual({ text: 'ls\r', detached: true });
  });

  it('gives back held bytes when the sequence breaks, and starts again on its first key', async () => {
    expect(await run(['a\x10b\x10\x10c'])).toEqual({ text: 'a\x10b\x10\x10c', detached: false });
    expect(await run(['\x10\x10\x11'])).toEqual({ text: '\x10', detached: true });
  });
});
