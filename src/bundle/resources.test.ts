import { describe, expect, it } from 'vitest';
import type { HostFacts } from '../host.js';
import { InvalidArgumentError } from '../errors.js';
import { parseResources } from './resources.js';
import { parseBytes } from './units.js';

const host = { cpus: 2 } as HostFacts;

describe('parseBytes', () => {
  it('reads Docker\'s sizes', () => {
    expect(parseBytes('--memory', '64m')).toBe(67108864);
    expect(parseBytes('--memory', '1g')).toBe(1073741824);
    expect(parseBytes('--memory', '512k')).toBe(524288);
    expect(parseBytes('--memory', '1024b')).toBe(1024);
    expect(parseBytes('--memory', '1024')).toBe(1024);
    expect(parseBytes('--memory', '64MB')).toBe(67108864);
    expect(parseBytes('--memory', '1.5GiB')).toBe(1610612736);
    expect(parseBytes('--memory', 4096)).toBe(4096);
  });

  it('names the flag and the value when it cannot', () => {
    expect(() => parseBytes('--memory', '64x')).toThrow('invalid --memory: "64x" is not a size');
    expect(() => parseBytes('--memory', '-1')).toThrow(InvalidArgumentError);
    expect(() => parseBytes('--shm-size', 1.5)).toThrow('--shm-size');
  });
});

describe('parseResources', () => {
  it('is empty for an empty request', () => {
    expect(parseResources({}, host)).toEqual({});
  });

  it('--memory sets memory+swap to twice the memory, as Docker does', () => {
    expect(parseResources({ memory: '64m' }, host)).toEqual({ memory: { limit: 67108864, swap: 134217728 } });
  });

  it('--memory-swap: -1 is unlimited; a value must not be below --memory and needs it', () => {
    expect(parseResources({ memory: '64m', memorySwap: -1 }, host).memory).toEqual({ limit: 67108864, swap: -1 });
    expect(parseResources({ memory: '64m', memorySwap: '100m' }, host).memory?.swap).toBe(104857600);
    expect(() => parseResources({ memory: '64m', memorySwap: '32m' }, host)).toThrow('--memory-swap');
    expect(() => parseResources({ memorySwap: '32m' }, host)).toThrow('set --memory too');
  });

  it('refuses memory limits under 6MB', () => {
    expect(() => parseResources({ memory: '4m' }, host)).toThrow('invalid --memory: 4m: the minimum memory limit allowed is 6MB');
  });

  it('--memory-reservation must not exceed --memory; --oom-kill-disable', () => {
    expect(parseResources({ memoryReservation: '32m', oomKillDisable: true }, host).memory).toEqual({ reservation: 33554432, disableOOMKiller: true });
    expect(() => parseResources({ memory: '64m', memoryReservation: '128m' }, host)).toThrow('--memory-reservation');
  });

  it('--cpus becomes a CFS quota over a 100ms period', () => {
    expect(parseResources({ cpus: '0.5' }, host).cpu).toEqual({ quota: 50000, period: 100000 });
    expect(parseResources({ cpus: 1.25 }, host).cpu).toEqual({ quota: 125000, period: 100000 });
  });

  it('--cpus beyond the host\'s CPUs names the range', () => {
    expect(() => parseResources({ cpus: '3' }, host)).toThrow('range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available');
    expect(() => parseResources({ cpus: 'half' }, host)).toThrow('invalid --cpus: "half"');
    expect(() => parseResources({ cpus: '0.5', cpuQuota: 20000 }, host)).toThrow('conflicting options');
  });

  it('--cpu-shares, --cpu-period, --cpu-quota are checked against the kernel\'s ranges', () => {
    expect(parseResources({ cpuShares: 512, cpuPeriod: 50000, cpuQuota: 25000 }, host).cpu).toEqual({ shares: 512, period: 50000, quota: 25000 });
    expect(parseResources({ cpuQuota: -1 }, host).cpu).toEqual({ quota: -1 });
    expect(() => parseResources({ cpuShares: 1 }, host)).toThrow('--cpu-shares');
    expect(() => parseResources({ cpuPeriod: 500 }, host)).toThrow('--cpu-period');
    expect(() => parseResources({ cpuQuota: 999 }, host)).toThrow('--cpu-quota');
  });

  it('--cpuset-cpus and --cpuset-mems take list syntax; CPUs must exist', () => {
    expect(parseResources({ cpusetCpus: '0-1', cpusetMems: '0,2-3' }, host).cpu).toEqual({ cpus: '0-1', mems: '0,2-3' });
    expect(() => parseResources({ cpusetCpus: '0-3' }, host)).toThrow('requested CPUs are not available - requested 0-3, available: 0-1');
    expect(() => parseResources({ cpusetCpus: '1-0' }, host)).toThrow('invalid --cpuset-cpus');
    expect(() => parseResources({ cpusetMems: 'a' }, host)).toThrow('invalid --cpuset-mems: "a"');
  });

  it('--pids-limit: positive is a limit, negative unlimited, 0 unset', () => {
    expect(parseResources({ pidsLimit: 50 }, host).pids).toEqual({ limit: 50 });
    expect(parseResources({ pidsLimit: -1 }, host).pids).toEqual({ limit: -1 });
    expect(parseResources({ pidsLimit: 0 }, host).pids).toBeUndefined();
  });

  it('--blkio-weight is 10 to 1000', () => {
    expect(parseResources({ blkioWeight: 300 }, host).blockIO).toEqual({ weight: 300 });
    expect(() => parseResources({ blkioWeight: 5 }, host)).toThrow('invalid --blkio-weight: 5 is out of range');
  });

  it('--device-read-bps and --device-write-bps use the device numbers given', () => {
    const devices = { '/dev/sda': { type: 'b' as const, major: 8, minor: 0, uid: 0, gid: 6, fileMode: 0o660 } };
    expect(parseResources({ deviceReadBps: ['/dev/sda:1mb'], deviceWriteBps: ['/dev/sda:512k'] }, host, devices).blockIO).toEqual({
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
      throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 524288 }],
    });
    expect(() => parseResources({ deviceReadBps: ['/dev/sdz:1mb'] }, host, devices)).toThrow('device numbers unknown');
    expect(() => parseResources({ deviceReadBps: ['sda'] }, host, devices)).toThrow('is not DEVICE:RATE');
    expect(() => parseResources({ deviceReadBps: ['/dev/sda:fast'] }, host, devices)).toThrow('"fast" is not a size');
  });
});
