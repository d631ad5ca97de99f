import { describe, expect, it } from 'vitest';
import { fakeTerminal } from '../../test/helpers/terminal.js';
import type { TerminalSize } from '../types.js';
import { followResizes } from './terminal.js';

describe('followResizes', () => {
  it('applies the size at once and after each resize, one at a time, folding changes that come meanwhile', async () => {
    const term = fakeTerminal(24, 80);
    const applied: TerminalSize[] = [];
    let release: () => void = () => {};
    const stop = followResizes(term, (size) => {
      applied.push(size);
      return new Promise((resolve) => { release = resolve; });
    }, true);
    expect(applied).toEqual([{ rows: 24, columns: 80 }]);
    term.resize(30, 90);
    term.resize(33, 101);
    expect(applied).toHaveLength(1);
    release();
    await new Promise((r) => setImmediate(r));
    expect(applied).toEqual([{ rows: 24, columns: 80 }, { rows: 33, columns: 101 }]);
    release();
    stop();
    term.resize(40, 120);
    await new Promise((r) => setImmediate(r));
    expect(applied).toHaveLength(2);
    expect(term.listeners()).toBe(0);
  });

  it('reads the size again once a change is applied: a second change that came without its own event is not lost', async () => {
    // `stty rows 40 cols 120`: two changes; the event of the second folded into the first while it was applied.
    const term = fakeTerminal(33, 101);
    const applied: TerminalSize[] = [];
    let release: () => void = () => {};
    const stop = followResizes(term, (size) => {
      applied.push(size);
      return new Promise((resolve) => { release = resolve; });
    });
    term.resize(40, 101);
    term.resize(40, 120, { silent: true });
    release();
    await new Promise((r) => setImmediate(r));
    expect(applied).toEqual([{ rows: 40, columns: 101 }, { rows: 40, columns: 120 }]);
    release();
    await new Promise((r) => setImmediate(r));
    expect(applied).toHaveLength(2);
    stop();
  });

  it('keeps following after a failed resize, and skips a size the client cannot tell', async () => {
    const term = fakeTerminal(0, 0);
    const applied: TerminalSize[] = [];
    const stop = followResizes(term, async (size) => {
      applied.push(size);
      throw new Error('conmon is gone');
    }, true);
    expect(applied).toEqual([]);
    term.resize(33, 101);
    await new Promise((r) => setImmediate(r));
    term.resize(40, 120);
    await new Promise((r) => setImmediate(r));
    expect(applied).toEqual([{ rows: 33, columns: 101 }, { rows: 40, columns: 120 }]);
    stop();
  });
});
