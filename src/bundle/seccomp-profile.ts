import { InvalidArgumentError } from '../errors.js';
import type { LinuxSeccomp, LinuxSyscall, SeccompArch } from '../../runtime-spec/types.js';
import type { DockerSeccompProfile, DockerSyscall } from './seccomp.js';

/** Node's process.arch → the Go arch name Docker profiles use in includes/excludes, and the native SCMP arch. */
const ARCHES: Record<string, { go: string; native: SeccompArch }> = {
  x64: { go: 'amd64', native: 'SCMP_ARCH_X86_64' },
  ia32: { go: '386', native: 'SCMP_ARCH_X86' },
  arm64: { go: 'arm64', native: 'SCMP_ARCH_AARCH64' },
  arm: { go: 'arm', native: 'SCMP_ARCH_ARM' },
  s390x: { go: 's390x', native: 'SCMP_ARCH_S390X' },
  ppc64: { go: 'ppc64le', native: 'SCMP_ARCH_PPC64LE' },
  riscv64: { go: 'riscv64', native: 'SCMP_ARCH_RISCV64' },
};

const FIELD = '--security-opt seccomp';

/**
 * A Docker-format profile resolved for one container, as dockerd does before handing it to runc: rules are
 * kept or dropped by the container's capabilities and the host's architecture, and archMap becomes the flat
 * architecture list of the native arch. minKernel is taken as met: Berth needs a kernel newer than any
 * minimum the default profile names (4.8).
 */
export function resolveSeccomp(profile: DockerSeccompProfile, caps: readonly string[], nodeArch: string): LinuxSeccomp {
  const arch = ARCHES[nodeArch];
  if (!arch) throw new InvalidArgumentError(FIELD, `no seccomp architecture known for ${nodeArch}`, 'use --security-opt seccomp=unconfined');
  const out: LinuxSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  const architectures = profile.architectures?.length
    ? profile.architectures
    : (profile.archMap ?? []).filter((a) => a.architecture === arch.native).flatMap((a) => [a.architecture, ...(a.subArchitectures ?? [])]);
  if (architectures.length) out.architectures = [...new Set(architectures)];
  if (profile.flags?.length) out.flags = [...profile.flags];
  if (profile.listenerPath) out.listenerPath = profile.listenerPath;
  if (profile.listenerMetadata) out.listenerMetadata = profile.listenerMetadata;
  out.syscalls = (profile.syscalls ?? []).filter((s) => applies(s, caps, arch.go)).map(toOci);
  return out;
}

function applies(rule: DockerSyscall, caps: readonly string[], goArch: string): boolean {
  const inc = rule.includes ?? {};
  const exc = rule.excludes ?? {};
  if (inc.caps?.length && !inc.caps.every((c) => caps.includes(c))) return false;
  if (inc.arches?.length && !inc.arches.includes(goArch)) return false;
  if (exc.caps?.some((c) => caps.includes(c))) return false;
  if (exc.arches?.includes(goArch)) return false;
  return true;
}

function toOci(rule: DockerSyscall): LinuxSyscall {
  const out: LinuxSyscall = { names: rule.names?.length ? [...rule.names] : [rule.name!], action: rule.action };
  if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
  if (rule.args?.length) out.args = rule.args.map((a) => ({ ...a }));
  return out;
}

/** The text of a --security-opt seccomp=FILE profile (Docker's format, or the OCI one, which is a subset). */
export function parseSeccompProfile(text: string): DockerSeccompProfile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(FIELD, `the profile is not valid JSON: ${(err as Error).message}`);
  }
  const p = doc as DockerSeccompProfile;
  if (!p || typeof p !== 'object' || Array.isArray(p) || typeof p.defaultAction !== 'string') {
    throw new InvalidArgumentError(FIELD, 'the profile has no defaultAction', 'see Docker\'s default.json for the format');
  }
  if (p.syscalls != null && !Array.isArray(p.syscalls)) throw new InvalidArgumentError(FIELD, 'syscalls must be a list');
  (p.syscalls ?? []).forEach((s, i) => {
    const named = (Array.isArray(s?.names) && s.names.length > 0) || typeof s?.name === 'string';
    if (!named || typeof s.action !== 'string') {
      throw new InvalidArgumentError(FIELD, `syscalls[${i}] needs names and an action`);
    }
  });
  return p;
}
