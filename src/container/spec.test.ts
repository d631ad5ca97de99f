import { describe, expect, it } from 'vitest';
import type { Spec } from './ports.js';
import { setConsoleSize } from './spec.js';

const terminal = { size: () => ({ rows: 33, columns: 101 }), onResize: () => () => {} };
const specWith = (process: Partial<NonNullable<Spec['process']>>) => ({ ociVersion: '1.0.2', process }) as unknown as Spec;

describe('setConsoleSize', () => {
  it("starts a tty container's terminal at the client's size", () => {
    const spec = specWith({ terminal: true });
    setConsoleSize(spec, terminal);
    expect(spec.process?.consoleSize).toEqual({ height: 33, width: 101 });
  });

  it('drops a size from an earlier start when no client terminal comes, and sizes no tty-less process', () => {
    const earlier = specWith({ terminal: true, consoleSize: { height: 10, width: 10 } });
    setConsoleSize(earlier, undefined);
    expect(earlier.process).not.toHaveProperty('consoleSize');
    const noTty = specWith({ terminal: false });
    setConsoleSize(noTty, terminal);
    expect(noTty.process).not.toHaveProperty('consoleSize');
  });
});
