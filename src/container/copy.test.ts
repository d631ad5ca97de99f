import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renameTransform } from './copy.js';

describe('renameTransform', () => {
  it('renames only the top entry, whatever characters the names hold', async () => {
    const dir = await fsp.mkdtemp(path.join(tmpdir(), 'berth-rename-'));
    try {
      const odd = 'a.b,c&[x]*\\y';
      await fsp.mkdir(path.join(dir, odd, `${odd}x`), { recursive: true });
      await fsp.writeFile(path.join(dir, odd, 'f'), '');
      await fsp.link(path.join(dir, odd, 'f'), path.join(dir, odd, 'g'));
      const list = execFileSync('tar', ['-c', '-f', '-', '-C', dir, renameTransform(odd, 'new & ,name'), '--', odd]);
      const names = execFileSync('tar', ['-t', '-v'], { input: list, encoding: 'utf8' }).trim().split('\n').map((l) => l.replace(/^.* \d\d:\d\d /, '')).sort();
      expect(names).toEqual(['new & ,name/', 'new & ,name/a.b,c&[x]*\\\\yx/', 'new & ,name/f', 'new & ,name/g link to new & ,name/f']);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
