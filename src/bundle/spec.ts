import { InvalidArgumentError } from '../errors.js';
import type { CreateRequest, ResourceRequest } from '../options.js';
import { OCI_VERSION, type Linux, type LinuxDevice, type LinuxNamespace, type LinuxSeccomp, type Mount, type Process, type Spec } from '../../runtime-spec/types.js';
import { resolveCapabilities } from './capabilities.js';
import { DEFAULT_DEVICE_RULES, parseDevice, PRIVILEGED_DEVICE_RULES } from './devices.js';
import { envKey } from './env.js';
import { fileMounts, INIT_PATH, initMount, mergeMounts, parseShmSize, parseTmpfs, systemMounts } from './mounts.js';
import { buildEnv, resolveArgs, resolveWorkdir } from './process.js';
import { parseResources } from './resources.js';
import { DEFAULT_SECCOMP_PROFILE } from './seccomp.js';
import { parseSeccompProfile, resolveSeccomp } from './seccomp-profile.js';
import { parseSecurityOpts, type SecurityOptions } from './security.js';
import { parseSignal } from './signals.js';
import { buildSysctls, DEFAULT_PING_GROUPS, PING_GROUP_RANGE } from './sysctls.js';
import type { BuildResult, BundleInput, NamespaceChoice, PlanInput, PlanResult, SpecPlan, StartInput } from './types.js';
import { parseUlimits } from './ulimits.js';
import { checkGroupSpec, checkUserSpec, resolveGroup, resolveUser } from './user.js';

export const STOP_SIGNAL_ANNOTATION = 'org.opencontainers.image.stopSignal';

/** Docker's masked and read-only paths (moby oci/defaults.go): kernel interfaces a container must not see or change. */
export const MASKED_PATHS: readonly string[] = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'];
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$/;

/**
 * The runc config for one container, in two steps (runc's specconv lesson: one function returns the whole
 * spec from Docker's defaults adjusted by the request, and host facts come in rather than being probed):
 *
 * - `planSpec`, at create: every flag is parsed and checked here, once, so that a bad one fails before the
 *   container exists. The plan is the spec minus what exists only at start, and it is what the container
 *   record keeps (inspect reads it; `update` edits its resources).
 * - `finishSpec`, at each start: the rootfs path, the user resolved against the image's passwd, the paths
 *   of namespaces to join, the network files, and the host's devices for --privileged. It cannot fail on a
 *   flag, only on the image (a user name its passwd lacks, as Docker fails such a start).
 *
 * Both are pure: no disk, no host probing, so every default is testable without root.
 */
export function planSpec(input: PlanInput): PlanResult {
  const req = input.request;
  const warnings: string[] = [];
  const security = parseSecurityOpts(req.securityOpt ?? []);
  for (const opt of security.ignored) warnings.push(`--security-opt ${opt} is ignored: Berth applies no AppArmor or SELinux labels`);
  const caps = resolveCapabilities(req, input.hostCapabilities);
  const hostname = input.namespaces.uts === 'host' ? undefined : checkHostname('--hostname', req.hostname || input.id.slice(0, 12));
  // Checked now, though only the start resolves it against the image's passwd (Docker: a missing user fails the start).
  const user = checkUserSpec(req.user || input.imageConfig.User || '');
  const groupAdd = (req.groupAdd ?? []).map(checkGroupSpec);

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: planProcess(input, caps, security, hostname),
    root: { path: '', ...(req.readOnly ? { readonly: true } : {}) },
    ...(hostname ? { hostname } : {}),
    ...(hostname && req.domainname ? { domainname: checkHostname('--domainname', req.domainname) } : {}),
    ...annotationsOf(input),
    linux: planLinux(input, caps, security, warnings),
  };
  if (req.resources?.oomKillDisable && !req.resources.memory) {
    warnings.push('the OOM killer is disabled but no memory limit is set: the container can exhaust the host\'s memory');
  }
  return { plan: { spec, mounts: planMounts(input, warnings), user, ...(groupAdd.length ? { groupAdd } : {}), privileged: !!req.privileged }, warnings };
}

/** A range from 0 up, as buildSysctls plans for a rootless container (mappedGids). */
function isRootlessDefault(range: string): boolean {
  return /^0 \d+$/.test(range);
}

/** The plan completed with what exists only at start; see planSpec. */
export function finishSpec(plan: SpecPlan, start: StartInput): Spec {
  const { spec } = structuredClone(plan);
  const resolved = resolveUser(plan.user || undefined, start.userDb);
  const proc = spec.process!;
  const added = (plan.groupAdd ?? []).map((g) => resolveGroup(g, start.userDb));
  proc.user = { uid: resolved.uid, gid: resolved.gid, additionalGids: [...new Set([...resolved.additionalGids, ...added])] };
  const planned = new Set(proc.env!.map(envKey));
  proc.env!.push(...(start.extraEnv ?? []).filter((e) => !planned.has(envKey(e))));
  // HOME last, from the user's passwd entry, unless the image or the user set it (dockerd's order).
  if (!proc.env!.some((e) => envKey(e) === 'HOME')) proc.env!.push(`HOME=${resolved.home}`);
  const base = [...systemMountsAt(plan, start), ...fileMounts(start.files), ...(plan.mounts.init ? [plan.mounts.init] : [])];
  const linux = spec.linux!;
  linux.namespaces = joinNamespaces(linux.namespaces ?? [], start.namespaces);
  if (start.idmap && linux.namespaces.some((n) => n.type === 'user')) {
    linux.uidMappings = start.idmap.uid.map((m) => ({ ...m }));
    linux.gidMappings = start.idmap.gid.map((m) => ({ ...m }));
    // The kernel reads the range in the writer's namespace, where gids past the map do not exist (EINVAL).
    // The planned default (all gids; rootless: all of Berth's namespace) ends at the container's last gid.
    const top = Math.max(...start.idmap.gid.map((m) => m.containerID + m.size)) - 1;
    const planned = linux.sysctl?.[PING_GROUP_RANGE];
    if (planned === DEFAULT_PING_GROUPS || (planned !== undefined && isRootlessDefault(planned) && Number(planned.split(' ')[1]) > top)) {
      linux.sysctl![PING_GROUP_RANGE] = `0 ${top}`;
    }
  }
  if (plan.privileged && start.hostDevices) {
    const byPath = new Map([...hostDeviceNodes(start.hostDevices), ...(linux.devices ?? [])].map((n) => [n.path, n]));
    const { namespaces, devices: _planned, ...rest } = linux;
    spec.linux = { namespaces, ...(byPath.size ? { devices: [...byPath.values()] } : {}), ...rest };
  }
  // Rebuilt in the planned key order, so that a config.json reads the same whichever way it was made.
  const { ociVersion, process: proc2, root, hostname, domainname, annotations, linux: linux2 } = spec;
  return {
    ociVersion, process: proc2, root: { ...root!, path: start.rootfsPath },
    ...(hostname !== undefined ? { hostname } : {}), ...(domainname !== undefined ? { domainname } : {}),
    mounts: mergeMounts(base, plan.mounts.user),
    ...(annotations ? { annotations } : {}),
    linux: linux2,
  };
}

/**
 * sysfs may be mounted only by the owner of the network namespace: a user-namespaced container on the
 * host's network gets the host's /sys bound read-only instead, as runc's rootless spec and podman do.
 * (Berth's own netns for such a container is made inside its user namespace: network/hostnet.ts.)
 */
function systemMountsAt(plan: SpecPlan, start: StartInput): Mount[] {
  const userns = plan.spec.linux?.namespaces?.some((n) => n.type === 'user');
  if (!userns || start.namespaces.network !== 'host') return plan.mounts.system;
  return plan.mounts.system.map((m) => (m.type === 'sysfs'
    ? { destination: m.destination, type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
    : m));
}

/** Both steps at once, for callers that have everything (tests, one-shot bundles). */
export function buildSpec(input: BundleInput): BuildResult {
  const { plan, warnings } = planSpec(input);
  return { spec: finishSpec(plan, input), warnings };
}

function planProcess(input: PlanInput, caps: string[], security: SecurityOptions, hostname: string | undefined): Process {
  const req = input.request;
  let args = resolveArgs(input.imageConfig, req);
  if (req.init) {
    if (!input.initPath) throw new InvalidArgumentError('--init', 'no init binary (catatonit) was found on this host', 'install it: apt-get install catatonit');
    args = [INIT_PATH, '--', ...args];
  }
  const rlimits = parseUlimits(req.ulimits ?? [], input.host.rlimitHard);
  return {
    terminal: !!req.tty,
    user: { uid: 0, gid: 0 },
    args,
    env: buildEnv({ image: input.imageConfig, req, envFileText: input.envFileText ?? [], hostname }),
    cwd: resolveWorkdir(input.imageConfig, req),
    // Docker 25+ leaves inheritable and ambient empty, so exec'd programs cannot pick the set up again.
    capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
    ...(rlimits.length ? { rlimits } : {}),
    ...(security.noNewPrivileges ? { noNewPrivileges: true } : {}),
    ...(req.oomScoreAdj !== undefined ? { oomScoreAdj: checkOomScoreAdj(req.oomScoreAdj, input) } : {}),
  };
}

/**
 * Docker's range and message (daemon verifyPlatformContainerSettings). The kernel lets a process lower
 * its OOM score below its parent's only with CAP_SYS_RESOURCE; without it runc fails every start, so the
 * create is refused now (dockerd would only fail the start).
 */
function checkOomScoreAdj(n: number, input: PlanInput): number {
  if (!Number.isInteger(n) || n < -1000 || n > 1000) {
    throw new InvalidArgumentError('--oom-score-adj', `invalid value ${n}, range for oom score adj is [-1000, 1000]`);
  }
  const own = input.host.oomScoreAdj;
  if (own !== undefined && n < own && input.hostCapabilities && !input.hostCapabilities.includes('CAP_SYS_RESOURCE')) {
    throw new InvalidArgumentError('--oom-score-adj', `${n} is below the engine's own OOM score adjustment (${own}), and the engine lacks CAP_SYS_RESOURCE to lower it`,
      `give a value from ${own} to 1000, or run Berth with CAP_SYS_RESOURCE`);
  }
  return n;
}

function planMounts(input: PlanInput, warnings: string[]): SpecPlan['mounts'] {
  const req = input.request;
  const hostIpc = input.namespaces.ipc === 'host';
  if (typeof input.namespaces.ipc === 'object' || req.ipc?.startsWith('container:')) {
    warnings.push('--ipc container: the IPC namespace is shared, but /dev/shm is the container\'s own');
  }
  const bindSys = !!input.host.rootless && input.namespaces.network === 'host';
  const system = systemMounts({ privileged: !!req.privileged, shmSize: parseShmSize(req.shmSize), hostIpc, bindSys });
  const user = [...(req.tmpfs ?? []).map(parseTmpfs), ...input.extraMounts];
  // Checked now (duplicates, relative paths); finishSpec merges again with the network files in the base.
  mergeMounts(system, user);
  return { system, ...(req.init && input.initPath ? { init: initMount(input.initPath) } : {}), user };
}

/**
 * Image labels, then --label, then --annotation (Docker's HostConfig.Annotations, given to the runtime as
 * they are), then the stop signal (checked now, so a typo fails at create, not at stop).
 */
function annotationsOf(input: PlanInput): { annotations?: Record<string, string> } {
  const given = input.request.annotations ?? {};
  for (const key of Object.keys(given)) {
    if (!key || /\s/.test(key)) throw new InvalidArgumentError('--annotation', `"${key}" is not a valid annotation key`, 'write --annotation KEY=VALUE');
  }
  const out: Record<string, string> = { ...(input.imageConfig.Labels ?? {}), ...(input.request.labels ?? {}), ...given };
  const stop = input.request.stopSignal || input.imageConfig.StopSignal;
  if (stop) out[STOP_SIGNAL_ANNOTATION] = parseSignal('--stop-signal', stop).name;
  return Object.keys(out).length ? { annotations: out } : {};
}

function planLinux(input: PlanInput, caps: string[], security: SecurityOptions, warnings: string[]): Linux {
  const req = input.request;
  const ns = input.namespaces;
  const devices = (req.devices ?? []).map((d) => parseDevice(d, input.devices ?? {}));
  const rules = req.privileged ? PRIVILEGED_DEVICE_RULES : DEFAULT_DEVICE_RULES;
  const sysctl = buildSysctls(req.sysctls ?? {}, {
    privateNetwork: ns.network !== 'host' && !joinsContainerNetwork(req),
    hostNetwork: ns.network === 'host',
    hostIpc: ns.ipc === 'host',
    ...(input.host.rootless ? { mappedGids: input.host.rootless.gids } : {}),
  });
  const seccomp = planSeccomp(input, caps, security, warnings);
  const limits = parseResources(req.resources ?? {}, input.host, input.devices ?? {});
  if (input.host.rootless) refuseRootlessLimits(req.resources ?? {}, input.host.cgroupMode);
  return {
    namespaces: planNamespaces(input),
    ...(devices.length ? { devices: [...new Map(devices.map((d) => [d.device.path, d.device])).values()] } : {}),
    // Rootless: no cgroup of our own (runc's rootless manager skips one only when no path is given) and
    // no resources; runc bind-mounts the devices in a user namespace, so device rules have nothing to do.
    ...(input.host.rootless ? {} : {
      resources: {
        devices: [...rules.map((r) => ({ ...r })), ...devices.map((d) => d.rule)],
        ...limits,
      },
      cgroupsPath: input.cgroupsPath,
    }),
    ...(Object.keys(sysctl).length ? { sysctl } : {}),
    ...(seccomp ? { seccomp } : {}),
    ...(req.privileged ? {} : { maskedPaths: [...MASKED_PATHS], readonlyPaths: [...READONLY_PATHS] }),
  };
}

const LIMIT_FLAGS: Readonly<Record<keyof ResourceRequest, string>> = {
  memory: '--memory', memorySwap: '--memory-swap', memoryReservation: '--memory-reservation', oomKillDisable: '--oom-kill-disable',
  cpus: '--cpus', cpuShares: '--cpu-shares', cpuPeriod: '--cpu-period', cpuQuota: '--cpu-quota', cpusetCpus: '--cpuset-cpus',
  cpusetMems: '--cpuset-mems', pidsLimit: '--pids-limit', blkioWeight: '--blkio-weight', deviceReadBps: '--device-read-bps',
  deviceWriteBps: '--device-write-bps',
};

/**
 * A rootless process owns no cgroup it may write on a cgroup v1 host (nor on v2 without a delegated
 * subtree, which needs systemd): a limit asked for could only be ignored, so it is refused.
 */
function refuseRootlessLimits(res: ResourceRequest, mode: string): void {
  const asked = (Object.keys(LIMIT_FLAGS) as (keyof ResourceRequest)[]).filter((k) => {
    const v = res[k];
    return v !== undefined && v !== false && !(Array.isArray(v) && !v.length);
  });
  if (!asked.length) return;
  const where = mode === 'v2' ? 'this cgroup v2 host has no cgroup delegated to the user' : `this host uses cgroup ${mode === 'hybrid' ? 'v1 (hybrid)' : 'v1'}, where a non-root user cannot own a cgroup`;
  throw new InvalidArgumentError(LIMIT_FLAGS[asked[0]!], `rootless containers cannot have resource limits: ${where}, so ${asked.map((k) => LIMIT_FLAGS[k]).join(', ')} would be ignored`,
    'leave the limit out, or run the container as root');
}

/**
 * Docker's order. The cgroup namespace: --cgroupns private or host as asked, on v1 hosts too (dockerd adds
 * the namespace for an explicit "private" whatever the cgroup version); without the flag, Docker's default
 * mode, private on v2 and host on v1.
 */
function planNamespaces(input: PlanInput): LinuxNamespace[] {
  const out: LinuxNamespace[] = [{ type: 'mount' }];
  if (input.userns) out.push({ type: 'user' });
  const add = (type: LinuxNamespace['type'], choice: NamespaceChoice | undefined) => {
    if (choice !== 'host') out.push({ type });
  };
  add('network', input.namespaces.network);
  add('uts', input.namespaces.uts);
  add('pid', input.namespaces.pid);
  add('ipc', input.namespaces.ipc);
  const cgroupns = input.request.cgroupns;
  if (cgroupns !== undefined && cgroupns !== 'host' && cgroupns !== 'private') {
    throw new InvalidArgumentError('--cgroupns', `invalid cgroup namespace mode: ${cgroupns}`, 'use host or private');
  }
  if (cgroupns === 'private' || (cgroupns === undefined && input.host.cgroupMode === 'v2')) out.push({ type: 'cgroup' });
  return out;
}

/** The start's choices over the plan's: 'host' drops a namespace (container:X where X uses the host's), a path joins one. */
function joinNamespaces(planned: readonly LinuxNamespace[], start: StartInput['namespaces']): LinuxNamespace[] {
  const key = { network: 'network', uts: 'uts', pid: 'pid', ipc: 'ipc', user: 'user' } as const;
  return planned.flatMap((n) => {
    const choice = n.type in key ? start[key[n.type as keyof typeof key]] : undefined;
    if (choice === 'host') return [];
    return [typeof choice === 'object' ? { type: n.type, path: choice.path } : { type: n.type }];
  });
}

function planSeccomp(input: PlanInput, caps: string[], security: SecurityOptions, warnings: string[]): LinuxSeccomp | undefined {
  const arch = input.arch ?? process.arch;
  if (security.seccomp === 'file') {
    if (input.seccompProfileText === undefined) {
      throw new InvalidArgumentError('--security-opt seccomp', 'the profile file was not read', 'give a readable JSON file');
    }
    return resolveSeccomp(parseSeccompProfile(input.seccompProfileText), caps, arch);
  }
  if (security.seccomp === 'unconfined' || input.request.privileged) return undefined;
  if (input.seccompProfileText !== undefined) warnings.push('a seccomp profile was given without --security-opt seccomp=FILE; it is ignored');
  return resolveSeccomp(DEFAULT_SECCOMP_PROFILE, caps, arch);
}

/** --privileged sees the host's devices (a --device for the same path wins). */
function hostDeviceNodes(hostDevices: NonNullable<StartInput['hostDevices']>): LinuxDevice[] {
  return Object.entries(hostDevices)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([p, d]) => ({ path: p, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode & 0o777, uid: d.uid, gid: d.gid }));
}

function joinsContainerNetwork(req: CreateRequest): boolean {
  return !!req.network?.networks?.[0]?.startsWith('container:');
}

function checkHostname(field: string, name: string): string {
  if (!HOSTNAME.test(name)) throw new InvalidArgumentError(field, `"${name}" is not a valid host name`, 'use letters, digits, dots and dashes, at most 64 characters');
  return name;
}

export type { Mount };
