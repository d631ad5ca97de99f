import { describe, expect, it } from 'vitest';
import { blkioV1, hierarchiesFromMountinfo, ioV2, keyedValues } from './cgroups.js';
import { formatNs } from './exits.js';

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;

describe('cgroup files', () => {
  it('finds v1 controllers (joined mounts too) and the cgroup2 mount', () => {
    const h = hierarchiesFromMountinfo(HYBRID);
    expect(h.v1.get('cpuacct')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(h.v1.get('memory')).toBe('/sys/fs/cgroup/memory');
    expect(h.v1.get('name=systemd')).toBe('/sys/fs/cgroup/systemd');
    expect(h.v2).toBe('/sys/fs/cgroup/unified');
  });

  it('parses stat formats', () => {
    expect(keyedValues('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n').get('oom_kill')).toBe(2);
    expect(blkioV1('8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n')).toEqual({ read: 4096, write: 512 });
    expect(ioV2('8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=1 wbytes=2\n')).toEqual({ read: 101, write: 22 });
  });

  it('formats exit times with nanoseconds', () => {
    expect(formatNs(1_700_000_000_123_456_789n)).toBe('2023-11-14T22:13:20.123456789Z');
  });
});
