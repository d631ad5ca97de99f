import { InvalidArgumentError } from '../errors.js';
import type { CreateRequest } from '../options.js';
import { OCI_VERSION, type Linux, type LinuxDevice, type LinuxNamespace, type LinuxSeccomp, type Process, type Spec } from '../../runtime-spec/types.js';
import { resolveCapabilities } from './capabilities.js';
import { DEFAULT_DEVICE_RULES, parseDevice, PRIVILEGED_DEVICE_RULES } from './devices.js';
import { fileMounts, INIT_PATH, initMount, mergeMounts, parseShmSize, parseTmpfs, systemMounts } from './mounts.js';
import { buildEnv, resolveArgs, resolveWorkdir } from './process.js';
import { parseResources } from './resources.js';
import { DEFAULT_SECCOMP_PROFILE } from './seccomp.js';
import { parseSeccompProfile, resolveSeccomp } from './seccomp-profile.js';
import { parseSecurityOpts, type SecurityOptions } from './security.js';
import { parseSignal } from './signals.js';
import { buildSysctls } from './sysctls.js';
import type { BuildResult, BundleInput, NamespaceChoice } from './types.js';
import { parseUlimits } from './ulimits.js';
import { resolveUser } from './user.js';

export const STOP_SIGNAL_ANNOTATION = 'org.opencontainers.image.stopSignal';

/** Docker's masked and read-only paths (moby oci/defaults.go): kernel interfaces a container must not see or change. */
export const MASKED_PATHS: readonly string[] = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'];
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$/;

/**
 * The whole runc config for one container, from Docker's defaults adjusted by the request (runc's specconv
 * lesson: one function returns the whole spec, and host facts come in rather than being probed). Pure: no
 * disk, no host probing, so every default is testable without root.
 */
export function buildSpec(input: BundleInput): BuildResult {
  const req = input.request;
  const warnings: string[] = [];
  const security = parseSecurityOpts(req.securityOpt ?? []);
  for (const opt of security.ignored) warnings.push(`--security-opt ${opt} is ignored: Berth applies no AppArmor or SELinux labels`);
  const caps = resolveCapabilities(req, input.hostCapabilities);
  const hostname = input.namespaces.uts === 'host' ? undefined : checkHostname('--hostname', req.hostname || input.id.slice(0, 12));

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: buildProcess(input, caps, security, hostname),
    root: { path: input.rootfsPath, ...(req.readOnly ? { readonly: true } : {}) },
    ...(hostname ? { hostname } : {}),
    ...(hostname && req.domainname ? { domainname: checkHostname('--domainname', req.domainname) } : {}),
    mounts: buildMounts(input, warnings),
    ...annotationsOf(input),
    linux: buildLinux(input, caps, security, warnings),
  };
  if (req.resources?.oomKillDisable && !req.resources.memory) {
    warnings.push('the OOM killer is disabled but no memory limit is set: the container can exhaust the host\'s memory');
  }
  return { spec, warnings };
}

function buildProcess(input: BundleInput, caps: string[], security: SecurityOptions, hostname: string | undefined): Process {
  const req = input.request;
  const user = resolveUser(req.user || input.imageConfig.User, input.userDb);
  let args = resolveArgs(input.imageConfig, req);
  if (req.init) {
    if (!input.initPath) throw new InvalidArgumentError('--init', 'no init binary (catatonit) was found on this host', 'install it: apt-get install catatonit');
    args = [INIT_PATH, '--', ...args];
  }
  const rlimits = parseUlimits(req.ulimits ?? [], input.host.rlimitHard);
  return {
    terminal: !!req.tty,
    user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
    args,
    env: buildEnv({ image: input.imageConfig, req, envFileText: input.envFileText ?? [], hostname, home: user.home }),
    cwd: resolveWorkdir(input.imageConfig, req),
    // Docker 25+ leaves inheritable and ambient empty, so exec'd programs cannot pick the set up again.
    capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
    ...(rlimits.length ? { rlimits } : {}),
    ...(security.noNewPrivileges ? { noNewPrivileges: true } : {}),
  };
}

function buildMounts(input: BundleInput, warnings: string[]) {
  const req = input.request;
  const hostIpc = input.namespaces.ipc === 'host';
  if (typeof input.namespaces.ipc === 'object') {
    warnings.push('--ipc container: the IPC namespace is shared, but /dev/shm is the container\'s own');
  }
  const base = [
    ...systemMounts({ privileged: !!req.privileged, shmSize: parseShmSize(req.shmSize), hostIpc }),
    ...fileMounts(input.files),
    ...(req.init && input.initPath ? [initMount(input.initPath)] : []),
  ];
  return mergeMounts(base, [...(req.tmpfs ?? []).map(parseTmpfs), ...input.extraMounts]);
}

/** Image labels, then --label, then the stop signal (checked now, so a typo fails at create, not at stop). */
function annotationsOf(input: BundleInput): { annotations?: Record<string, string> } {
  const out: Record<string, string> = { ...(input.imageConfig.Labels ?? {}), ...(input.request.labels ?? {}) };
  const stop = input.request.stopSignal || input.imageConfig.StopSignal;
  if (stop) out[STOP_SIGNAL_ANNOTATION] = parseSignal('--stop-signal', stop).name;
  return Object.keys(out).length ? { annotations: out } : {};
}

function buildLinux(input: BundleInput, caps: string[], security: SecurityOptions, warnings: string[]): Linux {
  const req = input.request;
  const ns = input.namespaces;
  const devices = (req.devices ?? []).map((d) => parseDevice(d, input.devices ?? {}));
  const nodes = [...(req.privileged ? hostDeviceNodes(input) : []), ...devices.map((d) => d.device)];
  const byPath = new Map(nodes.map((n) => [n.path, n]));
  const rules = req.privileged ? PRIVILEGED_DEVICE_RULES : DEFAULT_DEVICE_RULES;
  const sysctl = buildSysctls(req.sysctls ?? {}, {
    privateNetwork: ns.network !== 'host' && !joinsContainerNetwork(req),
    hostNetwork: ns.network === 'host',
    hostIpc: ns.ipc === 'host',
  });
  const seccomp = buildSeccomp(input, caps, security, warnings);
  return {
    namespaces: buildNamespaces(input),
    ...(byPath.size ? { devices: [...byPath.values()] } : {}),
    resources: {
      devices: [...rules.map((r) => ({ ...r })), ...devices.map((d) => d.rule)],
      ...parseResources(req.resources ?? {}, input.host, input.devices ?? {}),
    },
    cgroupsPath: input.cgroupsPath,
    ...(Object.keys(sysctl).length ? { sysctl } : {}),
    ...(seccomp ? { seccomp } : {}),
    ...(req.privileged ? {} : { maskedPaths: [...MASKED_PATHS], readonlyPaths: [...READONLY_PATHS] }),
  };
}

/** Docker's order; the cgroup namespace only on v2 hosts, as Docker's default cgroupns mode "private" is v2-only. */
function buildNamespaces(input: BundleInput): LinuxNamespace[] {
  const out: LinuxNamespace[] = [{ type: 'mount' }];
  const add = (type: LinuxNamespace['type'], choice: NamespaceChoice | undefined) => {
    if (choice === 'host') return;
    out.push(choice ? { type, path: choice.path } : { type });
  };
  add('network', input.namespaces.network);
  add('uts', input.namespaces.uts);
  add('pid', input.namespaces.pid);
  add('ipc', input.namespaces.ipc);
  if (input.host.cgroupMode === 'v2') out.push({ type: 'cgroup' });
  return out;
}

function buildSeccomp(input: BundleInput, caps: string[], security: SecurityOptions, warnings: string[]): LinuxSeccomp | undefined {
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

/** --privileged sees the host's devices (a later --device for the same path wins). */
function hostDeviceNodes(input: BundleInput): LinuxDevice[] {
  return Object.entries(input.hostDevices ?? {})
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
