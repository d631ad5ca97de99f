import { describe, expect, it } from 'vitest';
import type { LinuxSeccomp } from '../../runtime-spec/types.js';
import { DEFAULT_CAPABILITIES } from './capabilities.js';
import { DEFAULT_SECCOMP_PROFILE } from './seccomp.js';
import { parseSeccompProfile, resolveSeccomp } from './seccomp-profile.js';

const allowed = (s: LinuxSeccomp) => new Set(s.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));

describe('the default profile', () => {
  const dflt = resolveSeccomp(DEFAULT_SECCOMP_PROFILE, DEFAULT_CAPABILITIES, 'x64');

  it('denies with EPERM by default, for x86_64 and its 32-bit ABIs', () => {
    expect(dflt.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(dflt.defaultErrnoRet).toBe(1);
    expect(dflt.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(resolveSeccomp(DEFAULT_SECCOMP_PROFILE, [], 'arm64').architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });

  it('allows ordinary calls and the arch-specific ones of this arch only', () => {
    const names = allowed(dflt);
    for (const n of ['read', 'write', 'execve', 'openat', 'clock_gettime', 'socket', 'arch_prctl', 'ptrace']) expect(names).toContain(n);
    expect(names).not.toContain('cacheflush');
    expect(allowed(resolveSeccomp(DEFAULT_SECCOMP_PROFILE, [], 'arm64'))).toContain('cacheflush');
  });

  it('without CAP_SYS_ADMIN: no mount, unshare or setns; clone only without namespace flags; clone3 gets ENOSYS', () => {
    const names = allowed(dflt);
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'bpf', 'reboot', 'kcmp']) expect(names).not.toContain(n);
    expect(dflt.syscalls).toContainEqual({
      names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    expect(dflt.syscalls).toContainEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  it('limits personality to its harmless arguments', () => {
    const personality = dflt.syscalls!.filter((r) => r.names.includes('personality'));
    expect(personality.map((r) => r.args?.[0]?.value)).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff]);
  });

  it('adds the groups of the capabilities the container has', () => {
    const admin = allowed(resolveSeccomp(DEFAULT_SECCOMP_PROFILE, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'x64'));
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3']) expect(admin).toContain(n);
    const ptrace = allowed(resolveSeccomp(DEFAULT_SECCOMP_PROFILE, ['CAP_SYS_PTRACE'], 'x64'));
    for (const n of ['kcmp', 'process_vm_readv', 'pidfd_getfd']) expect(ptrace).toContain(n);
    expect(allowed(resolveSeccomp(DEFAULT_SECCOMP_PROFILE, ['CAP_SYS_TIME'], 'x64'))).toContain('settimeofday');
  });

  it('has no clone restriction left when CAP_SYS_ADMIN is held', () => {
    const admin = resolveSeccomp(DEFAULT_SECCOMP_PROFILE, ['CAP_SYS_ADMIN'], 'x64');
    expect(admin.syscalls!.some((r) => r.args && r.names.includes('clone'))).toBe(false);
    expect(admin.syscalls!.some((r) => r.action === 'SCMP_ACT_ERRNO')).toBe(false);
  });
});

describe('parseSeccompProfile', () => {
  it('reads an OCI-style profile and keeps its architectures', () => {
    const p = parseSeccompProfile(JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }, { name: 'chmod', action: 'SCMP_ACT_ERRNO' }],
    }));
    expect(resolveSeccomp(p, [], 'x64')).toEqual({
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }, { names: ['chmod'], action: 'SCMP_ACT_ERRNO' }],
    });
  });

  it('refuses text that is not a profile', () => {
    expect(() => parseSeccompProfile('{')).toThrow('invalid --security-opt seccomp: the profile is not valid JSON');
    expect(() => parseSeccompProfile('[]')).toThrow('no defaultAction');
    expect(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}')).toThrow('syscalls[0]');
  });
});
