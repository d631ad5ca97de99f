import { describe, expect, it } from 'vitest';
import { cgroupModeFromMountinfo, parseHardLimits, probeHost } from './host.js';

const line = (mp: string, fs: string, opts: string) => `40 31 0:37 / ${mp} rw,relatime - ${fs} ${fs} ${opts}`;

describe('host facts', () => {
  it('tells v1, hybrid and v2 apart', () => {
    const v1 = line('/sys/fs/cgroup/memory', 'cgroup', 'rw,memory');
    expect(cgroupModeFromMountinfo(v1)).toBe('v1');
    expect(cgroupModeFromMountinfo([v1, line('/sys/fs/cgroup/unified', 'cgroup2', 'rw')].join('\n'))).toBe('hybrid');
    expect(cgroupModeFromMountinfo(line('/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate'))).toBe('v2');
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
