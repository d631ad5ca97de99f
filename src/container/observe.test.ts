import { describe, expect, it } from 'vitest';
import { parseSystemCpu } from './observe.js';

describe('parseSystemCpu', () => {
  it('sums the first eight columns of the cpu line in ns (USER_HZ 100) and counts the CPUs', () => {
    const text = 'cpu  100 2 30 400 5 6 7 8 9 10\ncpu0 50 1 15 200 2 3 3 4 0 0\ncpu1 50 1 15 200 3 3 4 4 0 0\nintr 1 2 3\n';
    expect(parseSystemCpu(text)).toEqual({ ns: (100 + 2 + 30 + 400 + 5 + 6 + 7 + 8) * 1e7, cpus: 2 });
  });

  it('reads nothing from an unreadable /proc/stat as zero', () => {
    expect(parseSystemCpu('')).toEqual({ ns: 0, cpus: 0 });
  });
});
