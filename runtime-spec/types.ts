/**
 * The OCI runtime configuration (`config.json`) and state, spec version 1.0.2 as runc 1.1.5 implements it
 * ("spec: 1.0.2-dev"), Linux only. Field names and JSON shapes follow the spec exactly; the JSON Schema
 * beside this file (config.schema.json) checks the same shapes at run time.
 */

/** Version written into every config Berth generates: what runc 1.1.5 reports. */
export const OCI_VERSION = '1.0.2-dev';

export interface Spec {
  ociVersion: string;
  process?: Process;
  root?: Root;
  hostname?: string;
  domainname?: string;
  mounts?: Mount[];
  hooks?: Hooks;
  annotations?: Record<string, string>;
  linux?: Linux;
}

export interface Root {
  /** Absolute, or relative to the bundle directory. */
  path: string;
  readonly?: boolean;
}

export interface Process {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: User;
  args: string[];
  env?: string[];
  /** Absolute path inside the container. */
  cwd: string;
  capabilities?: LinuxCapabilities;
  rlimits?: POSIXRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

/** Capability names as runc takes them: `CAP_` followed by upper case. */
export interface LinuxCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface POSIXRlimit {
  /** RLIMIT_NOFILE, RLIMIT_NPROC, ... */
  type: string;
  hard: number;
  soft: number;
}

export interface Mount {
  /** Absolute path inside the container. */
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface Hooks {
  prestart?: Hook[];
  createRuntime?: Hook[];
  createContainer?: Hook[];
  startContainer?: Hook[];
  poststart?: Hook[];
  poststop?: Hook[];
}

export interface Linux {
  uidMappings?: LinuxIDMapping[];
  gidMappings?: LinuxIDMapping[];
  sysctl?: Record<string, string>;
  resources?: LinuxResources;
  cgroupsPath?: string;
  namespaces?: LinuxNamespace[];
  devices?: LinuxDevice[];
  seccomp?: LinuxSeccomp;
  rootfsPropagation?: 'private' | 'shared' | 'slave' | 'unbindable';
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  personality?: { domain: 'LINUX' | 'LINUX32'; flags?: string[] };
}

export interface LinuxIDMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export type LinuxNamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';

export interface LinuxNamespace {
  type: LinuxNamespaceType;
  /** Join this namespace (e.g. /proc/PID/ns/net) instead of creating one. */
  path?: string;
}

export interface LinuxDevice {
  path: string;
  type: 'c' | 'b' | 'u' | 'p';
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: LinuxMemory;
  cpu?: LinuxCPU;
  pids?: LinuxPids;
  blockIO?: LinuxBlockIO;
  hugepageLimits?: LinuxHugepageLimit[];
  network?: { classID?: number; priorities?: { name: string; priority: number }[] };
  unified?: Record<string, string>;
}

export interface LinuxDeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  /** Omitted means any (`*`). */
  major?: number;
  minor?: number;
  /** A combination of r, w and m. */
  access?: string;
}

export interface LinuxMemory {
  /** Bytes; -1 is unlimited. */
  limit?: number;
  reservation?: number;
  /** Memory plus swap, bytes (memsw on cgroup v1); -1 is unlimited. */
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
}

export interface LinuxCPU {
  shares?: number;
  quota?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
}

export interface LinuxPids {
  /** -1 is unlimited. */
  limit: number;
}

export interface LinuxBlockIO {
  weight?: number;
  leafWeight?: number;
  weightDevice?: LinuxWeightDevice[];
  throttleReadBpsDevice?: LinuxThrottleDevice[];
  throttleWriteBpsDevice?: LinuxThrottleDevice[];
  throttleReadIOPSDevice?: LinuxThrottleDevice[];
  throttleWriteIOPSDevice?: LinuxThrottleDevice[];
}

export interface LinuxWeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface LinuxThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface LinuxHugepageLimit {
  pageSize: string;
  limit: number;
}

export type SeccompAction =
  | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_KILL_THREAD' | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO' | 'SCMP_ACT_TRACE' | 'SCMP_ACT_ALLOW' | 'SCMP_ACT_LOG' | 'SCMP_ACT_NOTIFY';

export type SeccompArch =
  | 'SCMP_ARCH_X86' | 'SCMP_ARCH_X86_64' | 'SCMP_ARCH_X32' | 'SCMP_ARCH_ARM' | 'SCMP_ARCH_AARCH64'
  | 'SCMP_ARCH_MIPS' | 'SCMP_ARCH_MIPS64' | 'SCMP_ARCH_MIPS64N32' | 'SCMP_ARCH_MIPSEL' | 'SCMP_ARCH_MIPSEL64'
  | 'SCMP_ARCH_MIPSEL64N32' | 'SCMP_ARCH_PPC' | 'SCMP_ARCH_PPC64' | 'SCMP_ARCH_PPC64LE' | 'SCMP_ARCH_S390'
  | 'SCMP_ARCH_S390X' | 'SCMP_ARCH_PARISC' | 'SCMP_ARCH_PARISC64' | 'SCMP_ARCH_RISCV64';

export type SeccompOperator =
  | 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';

export interface LinuxSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: SeccompArch[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: LinuxSyscall[];
}

export interface LinuxSyscall {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

export interface LinuxSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOperator;
}

/** The state document `runc state` prints (spec "State"). */
export interface State {
  ociVersion: string;
  id: string;
  /** The spec's four states; runc also reports `paused`. */
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}
