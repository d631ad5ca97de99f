import { describe, expect, it } from 'vitest';
import { parseUlimits } from './ulimits.js';

const ceilings = { RLIMIT_NOFILE: 20000, RLIMIT_NPROC: 96364 };

describe('parseUlimits', () => {
  it('writes nothing by default', () => {
    expect(parseUlimits([], ceilings)).toEqual([]);
  });

  it('reads NAME=SOFT[:HARD]; a later flag for the same limit wins', () => {
    expect(parseUlimits(['nofile=1024:2048', 'core=0', 'nofile=512:1024'], ceilings)).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 512, hard: 1024 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
    ]);
  });

  it('refuses a hard limit above the host\'s ceiling, naming the ceiling', () => {
    expect(() => parseUlimits(['nofile=1024:65536'], ceilings)).toThrow('above this host\'s ceiling of 20000 for RLIMIT_NOFILE');
    expect(() => parseUlimits(['nofile=30000'], ceilings)).toThrow('20000');
  });

  it('refuses malformed, unknown, and soft-above-hard limits', () => {
    expect(() => parseUlimits(['nofile'], ceilings)).toThrow('is not NAME=SOFT[:HARD]');
    expect(() => parseUlimits(['nofile=-1'], ceilings)).toThrow('--ulimit');
    expect(() => parseUlimits(['files=10'], ceilings)).toThrow('unknown ulimit "files"');
    expect(() => parseUlimits(['nofile=2048:1024'], ceilings)).toThrow('the soft limit 2048 is above the hard limit 1024');
  });
});
