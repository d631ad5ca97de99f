import { InvalidArgumentError } from '../errors.js';

/** Linux capabilities by bit number (include/uapi/linux/capability.h), up to CAP_CHECKPOINT_RESTORE (40). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default set, in Docker's order (moby oci/caps/defaults.go): CapEff 00000000a80425fb. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export interface CapabilityRequest {
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
}

/**
 * The container's capability set, by Docker's TweakCapabilities rules: --privileged gives all; --cap-add ALL
 * gives all but the dropped ones; --cap-drop ALL keeps only the added ones; otherwise the defaults minus the
 * dropped plus the added. Names are accepted with or without CAP_, in any case.
 */
export function resolveCapabilities(req: CapabilityRequest, available: readonly string[] = ALL_CAPABILITIES): string[] {
  // "All" means all the engine holds (Podman's rule): runc cannot grant a capability outside its own bounding set.
  if (req.privileged) return ALL_CAPABILITIES.filter((c) => available.includes(c));
  const add = normalizeCapabilities('--cap-add', req.capAdd ?? []);
  const drop = normalizeCapabilities('--cap-drop', req.capDrop ?? []);
  const missing = add.find((c) => c !== 'ALL' && !available.includes(c));
  if (missing) {
    throw new InvalidArgumentError('--cap-add', `${missing} is not available: Berth itself does not hold it on this host`, 'drop it from --cap-add');
  }
  let caps: string[];
  if (add.includes('ALL')) caps = ALL_CAPABILITIES.filter((c) => available.includes(c) && !drop.includes(c));
  else if (drop.includes('ALL')) caps = add;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  return [...new Set(caps)];
}

/** The names of the capabilities set in a /proc/PID/status mask (e.g. CapBnd). */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

function normalizeCapabilities(field: string, names: string[]): string[] {
  return names.map((raw) => {
    const upper = raw.trim().toUpperCase();
    if (upper === 'ALL') return 'ALL';
    const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    if (!ALL_CAPABILITIES.includes(name)) {
      throw new InvalidArgumentError(field, `unknown capability: "${raw}"`, 'see capabilities(7) for the names, e.g. NET_ADMIN');
    }
    return name;
  });
}

/** The bitmask /proc/PID/status shows for a set (CapEff), as 16 hex digits. */
export function capabilityMask(caps: readonly string[]): string {
  let mask = 0n;
  for (const c of caps) {
    const bit = ALL_CAPABILITIES.indexOf(c);
    if (bit < 0) throw new InvalidArgumentError('capability', `unknown capability: "${c}"`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}
