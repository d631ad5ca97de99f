import { InvalidArgumentError } from '../errors.js';
import type { HostFacts } from '../host.js';
import type { ResourceRequest } from '../options.js';
import type { LinuxCPU, LinuxMemory, LinuxResources, LinuxThrottleDevice } from '../../runtime-spec/types.js';
import type { DeviceInfo } from './types.js';
import { parseBytes, parseInteger } from './units.js';

/** Docker refuses smaller memory limits: the kernel needs some room to even start the container. */
const MIN_MEMORY = 6 * 1024 * 1024;
const CFS_PERIOD = 100_000;

/**
 * The cgroup limits of --memory, --cpus, --pids-limit and friends, with Docker's rules and messages. Used at
 * create and by `berth update` (whose request is the stored one merged with the changes). `devices` holds
 * the device numbers the --device-*-bps flags need, read by the caller.
 */
export function parseResources(req: ResourceRequest, host: HostFacts, devices: Record<string, DeviceInfo> = {}): LinuxResources {
  const out: LinuxResources = {};
  const memory = parseMemory(req);
  if (Object.keys(memory).length) out.memory = memory;
  const cpu = parseCpu(req, host);
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (req.pidsLimit !== undefined && req.pidsLimit !== 0) {
    const limit = parseInteger('--pids-limit', req.pidsLimit, -Infinity, Number.MAX_SAFE_INTEGER);
    out.pids = { limit: limit < 0 ? -1 : limit };
  }
  const blockIO = parseBlockIO(req, devices);
  if (Object.keys(blockIO).length) out.blockIO = blockIO;
  return out;
}

function parseMemory(req: ResourceRequest): LinuxMemory {
  const out: LinuxMemory = {};
  const limit = optionalBytes('--memory', req.memory);
  if (limit !== undefined) {
    if (limit < MIN_MEMORY) throw new InvalidArgumentError('--memory', `${req.memory}: the minimum memory limit allowed is 6MB`);
    out.limit = limit;
  }
  const swapText = req.memorySwap;
  if (swapText === -1 || swapText === '-1') {
    out.swap = -1;
  } else {
    const swap = optionalBytes('--memory-swap', swapText);
    if (swap !== undefined) {
      if (limit === undefined) throw new InvalidArgumentError('--memory-swap', `${swapText}: set --memory too when setting --memory-swap`);
      if (swap < limit) throw new InvalidArgumentError('--memory-swap', `${swapText}: the memory+swap limit must not be below the memory limit (${req.memory})`);
      out.swap = swap;
    } else if (limit !== undefined) {
      // Docker's default: as much swap as memory, i.e. memory+swap = 2 x memory.
      out.swap = limit * 2;
    }
  }
  const reservation = optionalBytes('--memory-reservation', req.memoryReservation);
  if (reservation !== undefined) {
    if (limit !== undefined && reservation > limit) {
      throw new InvalidArgumentError('--memory-reservation', `${req.memoryReservation}: the memory reservation must not be above the memory limit (${req.memory})`);
    }
    out.reservation = reservation;
  }
  if (req.oomKillDisable) out.disableOOMKiller = true;
  return out;
}

function parseCpu(req: ResourceRequest, host: HostFacts): LinuxCPU {
  const out: LinuxCPU = {};
  if (req.cpus !== undefined && Number(req.cpus) !== 0) {
    const text = String(req.cpus).trim();
    const cpus = /^\d+(\.\d+)?$|^\.\d+$/.test(text) ? Number(text) : NaN;
    if (!(cpus > 0)) throw new InvalidArgumentError('--cpus', `"${req.cpus}" is not a number of CPUs`, 'e.g. --cpus 0.5');
    if (cpus > host.cpus || cpus < 0.01) {
      throw new InvalidArgumentError('--cpus', `${text}: range of CPUs is from 0.01 to ${host.cpus.toFixed(2)}, as there are only ${host.cpus} CPUs available`);
    }
    if (req.cpuPeriod !== undefined || req.cpuQuota !== undefined) {
      throw new InvalidArgumentError('--cpus', 'conflicting options: --cpus cannot be combined with --cpu-period or --cpu-quota');
    }
    out.quota = Math.round(cpus * CFS_PERIOD);
    out.period = CFS_PERIOD;
  }
  if (req.cpuShares !== undefined && req.cpuShares !== 0) out.shares = parseInteger('--cpu-shares', req.cpuShares, 2, 262_144);
  if (req.cpuPeriod !== undefined && req.cpuPeriod !== 0) out.period = parseInteger('--cpu-period', req.cpuPeriod, 1000, 1_000_000);
  if (req.cpuQuota !== undefined && req.cpuQuota !== 0) {
    const quota = parseInteger('--cpu-quota', req.cpuQuota, -1, Number.MAX_SAFE_INTEGER);
    if (quota >= 0 && quota < 1000) throw new InvalidArgumentError('--cpu-quota', `${quota} is below 1000 (1ms)`, 'give at least 1000, or -1 for no limit');
    out.quota = quota;
  }
  if (req.cpusetCpus) out.cpus = parseCpuSet('--cpuset-cpus', req.cpusetCpus, host.cpus);
  if (req.cpusetMems) out.mems = parseCpuSet('--cpuset-mems', req.cpusetMems);
  return out;
}

/** "0-3,5": the list syntax of cpuset.cpus; CPUs beyond the host's are refused as Docker does. */
function parseCpuSet(field: string, text: string, available?: number): string {
  const set = text.trim();
  const ranges = /^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(set) ? set.split(',').map((r) => r.split('-').map(Number)) : undefined;
  if (!ranges || ranges.some(([a = 0, b = a]) => b < a)) {
    throw new InvalidArgumentError(field, `"${text}" is not a list like 0-3,5`);
  }
  const highest = Math.max(...ranges.map((r) => r[r.length - 1]!));
  if (available !== undefined && highest >= available) {
    throw new InvalidArgumentError(field, `requested CPUs are not available - requested ${set}, available: 0-${available - 1}`);
  }
  return set;
}

function parseBlockIO(req: ResourceRequest, devices: Record<string, DeviceInfo>): NonNullable<LinuxResources['blockIO']> {
  const out: NonNullable<LinuxResources['blockIO']> = {};
  if (req.blkioWeight !== undefined && req.blkioWeight !== 0) out.weight = parseInteger('--blkio-weight', req.blkioWeight, 10, 1000);
  if (req.deviceReadBps?.length) out.throttleReadBpsDevice = req.deviceReadBps.map((t) => parseThrottle('--device-read-bps', t, devices));
  if (req.deviceWriteBps?.length) out.throttleWriteBpsDevice = req.deviceWriteBps.map((t) => parseThrottle('--device-write-bps', t, devices));
  return out;
}

function parseThrottle(field: string, text: string, devices: Record<string, DeviceInfo>): LinuxThrottleDevice {
  const at = text.lastIndexOf(':');
  const dev = text.slice(0, at);
  if (at <= 0 || !dev.startsWith('/')) throw new InvalidArgumentError(field, `"${text}" is not DEVICE:RATE`, 'e.g. /dev/sda:1mb');
  const info = devices[dev];
  if (!info) throw new InvalidArgumentError(field, `${dev}: device numbers unknown`, 'give the path of a block device that exists on the host');
  if (info.type !== 'b') throw new InvalidArgumentError(field, `${dev} is not a block device`);
  return { major: info.major, minor: info.minor, rate: parseBytes(field, text.slice(at + 1)) };
}

function optionalBytes(field: string, value: string | number | undefined): number | undefined {
  if (value === undefined || value === '' || value === 0 || value === '0') return undefined;
  return parseBytes(field, value);
}
