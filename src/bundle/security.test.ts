import { describe, expect, it } from 'vitest';
import { parseSecurityOpts } from './security.js';
import { buildSysctls } from './sysctls.js';

describe('parseSecurityOpts', () => {
  it('reads Docker\'s forms', () => {
    expect(parseSecurityOpts([])).toEqual({ noNewPrivileges: false, seccomp: 'default', ignored: [] });
    expect(parseSecurityOpts(['no-new-privileges']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(['no-new-privileges:true']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(['no-new-privileges=false']).noNewPrivileges).toBe(false);
    expect(parseSecurityOpts(['seccomp=unconfined']).seccomp).toBe('unconfined');
    expect(parseSecurityOpts(['seccomp:/etc/profile.json']).seccomp).toBe('file');
    expect(parseSecurityOpts(['apparmor=unconfined', 'label=disable']).ignored).toEqual(['apparmor=unconfined', 'label=disable']);
  });

  it('refuses what it does not know', () => {
    expect(() => parseSecurityOpts(['seccomp'])).toThrow('invalid --security-opt: "seccomp"');
    expect(() => parseSecurityOpts(['no-new-privileges=maybe'])).toThrow('--security-opt');
    expect(() => parseSecurityOpts(['selinux=on'])).toThrow('--security-opt');
  });
});

describe('buildSysctls', () => {
  const own = { privateNetwork: true, hostNetwork: false, hostIpc: false };

  it('lets anyone bind low ports and ping in a network namespace of its own', () => {
    expect(buildSysctls({}, own)).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' });
    expect(buildSysctls({}, { privateNetwork: false, hostNetwork: true, hostIpc: false })).toEqual({});
  });

  it('adds namespaced --sysctl values, and lets them override the defaults', () => {
    expect(buildSysctls({ 'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel.shmmax': '1000' }, own)).toMatchObject({
      'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel.shmmax': '1000',
    });
  });

  it('refuses sysctls that would change the host', () => {
    expect(() => buildSysctls({ 'kernel.hostname': 'x' }, own)).toThrow('kernel.hostname is not a namespaced sysctl');
    expect(() => buildSysctls({ 'net.core.somaxconn': '1' }, { ...own, hostNetwork: true })).toThrow('--network host');
    expect(() => buildSysctls({ 'fs.mqueue.msg_max': '1' }, { ...own, hostIpc: true })).toThrow('--ipc host');
  });
});
