import { describe, expect, it } from 'vitest';
import { cgroupModeFromFsTypes, parseHardLimits, probeHost } from './host.js';

const TMPFS = 0x01021994;
const CGROUP2 = 0x63677270;

describe('host facts', () => {
  it('tells v1, hybrid and v2 apart', () => {
    expect(cgroupModeFromFsTypes(TMPFS, undefined)).toBe('v1');
    expect(cgroupModeFromFsTypes(TMPFS, CGROUP2)).toBe('hybrid');
    expect(cgroupModeFromFsTypes(CGROUP2, undefined)).toBe('v2');
    expect(cgroupModeFromFsTypes(undefined, undefined)).toBe('v2');
  });

  it('reads hard limits by OCI name, unlimited as Infinity', () => {
    const text = `Limit                     Soft Limit           Hard Limit           Units
Max file size             unlimited            unlimited            bytes
Max processes             96364                96364                processes
Max open files            1024                 20000                files
Max file locks            unlimited            unlimited            locks`;
    expect(parseHardLimits(text)).toEqual({
      RLIMIT_FSIZE: Number.POSITIVE_INFINITY, RLIMIT_NPROC: 96364, RLIMIT_NOFILE: 20000, RLIMIT_LOCKS: Number.POSITIVE_INFINITY,
    });
  });

  it('probes this machine', async () => {
    const h = await probeHost();
    expect(['v1', 'hybrid', 'v2']).toContain(h.cgroupMode);
    expect(h.rlimitHard.RLIMIT_NOFILE).toBeGreaterThan(0);
    expect(h.cpus).toBeGreaterThan(0);
  });
});
