import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resizeTerminal } from './attach.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('resizeTerminal (conmon\'s ctl fifo)', () => {
  it('many resizes asked at once land in order: the last line is the size last asked for', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'berth-ctl-'));
    execFileSync('mkfifo', [path.join(dir, 'ctl')]);
    // The reader stands in for conmon; it must be open before a non-blocking open for writing succeeds.
    // Read-write: opening a fifo that way neither blocks nor sees an end when a writer closes.
    const reader = createReadStream('', { fd: openSync(path.join(dir, 'ctl'), 'r+'), encoding: 'utf8' });
    let text = '';
    reader.on('data', (c) => { text += c; });
    const asked = Array.from({ length: 200 }, (_, i) => ({ rows: 10 + (i % 50), columns: 100 + i }));
    await Promise.all(asked.map((size) => resizeTerminal(dir!, size)));
    await new Promise((r) => setTimeout(r, 50));
    reader.destroy();
    const lines = text.trim().split('\n');
    expect(lines.at(-1)).toBe(`1 ${asked.at(-1)!.rows} ${asked.at(-1)!.columns}`);
    // Each write carries the size asked for last at its turn, so the sizes never go back.
    const widths = lines.map((l) => Number(l.split(' ')[2]));
    expect(widths).toEqual([...widths].sort((a, b) => a - b));
  });
});
