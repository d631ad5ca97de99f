import { describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, FAKE_ROOTFS, inputFor } from '../../test/bundle/fixtures.js';
import { InvalidArgumentError } from '../errors.js';
import { capabilityMask } from './capabilities.js';
import { buildSpec, finishSpec, MASKED_PATHS, planSpec, READONLY_PATHS, STOP_SIGNAL_ANNOTATION } from './spec.js';
import { validateSpec } from './validate.js';
import type { CreateRequest } from '../options.js';
import type { BundleInput, StartInput } from './types.js';

const build = (req: Partial<CreateRequest>, over: Partial<BundleInput> = {}) => {
  const { spec, warnings } = buildSpec(inputFor(req, over));
  validateSpec(spec);
  return { spec, warnings, linux: spec.linux!, proc: spec.process!, mount: (d: string) => spec.mounts!.find((m) => m.destination === d) };
};

describe('buildSpec defaults (Docker\'s)', () => {
  const { spec, linux, proc, mount, warnings } = build({});

  it('runs the image command as root in / with the default capabilities', () => {
    expect(spec.ociVersion).toBe('1.0.2-dev');
    expect(proc.args).toEqual(['sh']);
    expect(proc.cwd).toBe('/');
    expect(proc.user).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
    expect(capabilityMask(proc.capabilities!.effective!)).toBe('00000000a80425fb');
    expect(proc.capabilities!.bounding).toEqual(proc.capabilities!.effective);
    expect(proc.capabilities!.permitted).toEqual(proc.capabilities!.effective);
    expect(proc.capabilities!.inheritable).toBeUndefined();
    expect(proc.capabilities!.ambient).toBeUndefined();
    expect(proc.rlimits).toBeUndefined();
    expect(proc.noNewPrivileges).toBeUndefined();
    expect(proc.terminal).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('names the host after the short ID and sets HOSTNAME and HOME', () => {
    expect(spec.hostname).toBe('0123456789ab');
    expect(proc.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=0123456789ab', 'HOME=/root']);
  });

  it('makes mount, network, uts, pid and ipc namespaces, and no cgroup namespace on cgroup v1', () => {
    expect(linux.namespaces).toEqual([
      { type: 'mount' }, { type: 'network', path: '/run/berth/netns/0123456789ab' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' },
    ]);
  });

  it('mounts the kernel filesystems and binds the network files', () => {
    expect(spec.mounts!.map((m) => m.destination)).toEqual([
      '/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm', '/etc/resolv.conf', '/etc/hostname', '/etc/hosts',
    ]);
    expect(mount('/dev')!.options).toEqual(['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
    expect(mount('/dev/pts')!.options).toEqual(['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
    expect(mount('/dev/shm')!.options).toContain('size=67108864');
    expect(mount('/sys')!.options).toEqual(['nosuid', 'noexec', 'nodev', 'ro']);
    expect(mount('/sys/fs/cgroup')).toMatchObject({ type: 'cgroup', options: expect.arrayContaining(['ro']) });
    expect(mount('/etc/hosts')).toEqual({ destination: '/etc/hosts', type: 'bind', source: '/var/lib/berth/containers/0123456789ab/hosts', options: ['rbind', 'rprivate'] });
  });

  it('masks and write-protects Docker\'s kernel paths', () => {
    expect(linux.maskedPaths).toEqual(MASKED_PATHS);
    expect(linux.readonlyPaths).toEqual(READONLY_PATHS);
    expect(linux.maskedPaths).toContain('/sys/devices/virtual/powercap');
  });

  it('allows the standard devices only', () => {
    const rules = linux.resources!.devices!;
    expect(rules[0]).toEqual({ allow: false, access: 'rwm' });
    expect(rules).toContainEqual({ allow: true, type: 'c', access: 'm' });
    expect(rules).toContainEqual({ allow: true, type: 'c', major: 136, access: 'rwm' });
    expect(rules).toContainEqual({ allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' });
    expect(rules).toContainEqual({ allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' });
    expect(linux.devices).toBeUndefined();
  });

  it('sets the unprivileged port and ping sysctls, the cgroup path, and the default seccomp profile', () => {
    expect(linux.sysctl).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' });
    expect(linux.cgroupsPath).toBe('/berth/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
    expect(linux.seccomp).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1 });
  });

  it('adds a cgroup namespace on cgroup v2 hosts', () => {
    const v2 = build({}, { host: { ...inputFor({}).host, cgroupMode: 'v2' } });
    expect(v2.linux.namespaces).toContainEqual({ type: 'cgroup' });
  });
});

describe('buildSpec options', () => {
  it('--privileged: all caps and devices, nothing masked, no seccomp, /sys writable', () => {
    const { linux, proc, mount } = build({ privileged: true });
    expect(capabilityMask(proc.capabilities!.effective!)).toBe('000001ffffffffff');
    expect(linux.resources!.devices).toEqual([{ allow: true, access: 'rwm' }]);
    expect(linux.maskedPaths).toBeUndefined();
    expect(linux.readonlyPaths).toBeUndefined();
    expect(linux.seccomp).toBeUndefined();
    expect(mount('/sys')!.options).toContain('rw');
  });

  it('--security-opt: no-new-privileges, seccomp=unconfined, seccomp=FILE', () => {
    expect(build({ securityOpt: ['no-new-privileges'] }).proc.noNewPrivileges).toBe(true);
    expect(build({ securityOpt: ['seccomp=unconfined'] }).linux.seccomp).toBeUndefined();
    const custom = build({ securityOpt: ['seccomp=/p.json'] }, { seccompProfileText: '{"defaultAction":"SCMP_ACT_LOG"}' });
    expect(custom.linux.seccomp).toEqual({ defaultAction: 'SCMP_ACT_LOG', syscalls: [] });
    expect(() => build({ securityOpt: ['seccomp=/p.json'] })).toThrow('profile file was not read');
    expect(build({ securityOpt: ['apparmor=foo'] }).warnings[0]).toContain('apparmor=foo');
  });

  it('the seccomp profile follows the capabilities', () => {
    const names = build({ capAdd: ['SYS_ADMIN'] }).linux.seccomp!.syscalls!.flatMap((s) => s.names);
    expect(names).toContain('mount');
  });

  it('--user with supplementary groups, and HOME from passwd', () => {
    const { proc } = build({ user: 'app' });
    expect(proc.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
    expect(proc.env).toContain('HOME=/home/app');
    expect(() => build({ user: 'ghost' })).toThrow('unable to find user ghost: no matching entries in passwd file');
  });

  it('takes the image\'s User, WorkingDir and Entrypoint', () => {
    const { proc } = build({}, { imageConfig: { ...BUSYBOX_IMAGE, User: 'nobody', WorkingDir: '/srv', Entrypoint: ['/bin/entry'] } });
    expect(proc.user.uid).toBe(65534);
    expect(proc.cwd).toBe('/srv');
    expect(proc.args).toEqual(['/bin/entry', 'sh']);
  });

  it('-e, --env-file, -t, -w, command and --entrypoint', () => {
    const { proc } = build(
      { env: ['A=flag'], tty: true, workdir: '/data', entrypoint: ['/bin/echo'], command: ['hi'] },
      { envFileText: ['A=file\nB=file\n'] },
    );
    expect(proc.env).toEqual(expect.arrayContaining(['A=flag', 'B=file', 'TERM=xterm']));
    expect(proc.terminal).toBe(true);
    expect(proc.cwd).toBe('/data');
    expect(proc.args).toEqual(['/bin/echo', 'hi']);
    expect(() => build({}, { imageConfig: {} })).toThrow('no command specified');
  });

  it('--init runs the command under the bound init', () => {
    const { proc, mount } = build({ init: true, command: ['top'] }, { initPath: '/usr/bin/catatonit' });
    expect(proc.args).toEqual(['/sbin/docker-init', '--', 'top']);
    expect(mount('/sbin/docker-init')).toEqual({ destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/catatonit', options: ['rbind', 'ro', 'rprivate'] });
    expect(() => build({ init: true })).toThrow('invalid --init');
  });

  it('--hostname, --domainname; none with the host\'s UTS namespace', () => {
    const { spec, proc } = build({ hostname: 'web', domainname: 'example.com' });
    expect(spec.hostname).toBe('web');
    expect(spec.domainname).toBe('example.com');
    expect(proc.env).toContain('HOSTNAME=web');
    const hostUts = build({ hostname: 'web' }, { namespaces: { uts: 'host' } });
    expect(hostUts.spec.hostname).toBeUndefined();
    expect(hostUts.linux.namespaces!.some((n) => n.type === 'uts')).toBe(false);
    expect(() => build({ hostname: 'bad name' })).toThrow('invalid --hostname');
  });

  it('--pid/--ipc/--network host leave the namespace out; a path joins it', () => {
    const { linux, mount } = build({}, { namespaces: { network: 'host', pid: 'host', ipc: 'host' } });
    expect(linux.namespaces).toEqual([{ type: 'mount' }, { type: 'uts' }]);
    expect(linux.sysctl).toBeUndefined();
    expect(mount('/dev/shm')).toMatchObject({ type: 'bind', source: '/dev/shm' });
    const joined = build({}, { namespaces: { pid: { path: '/proc/42/ns/pid' }, ipc: { path: '/proc/42/ns/ipc' } } });
    expect(joined.linux.namespaces).toContainEqual({ type: 'pid', path: '/proc/42/ns/pid' });
    expect(joined.warnings[0]).toContain('/dev/shm');
  });

  it('a fresh network namespace when none is given', () => {
    expect(build({}, { namespaces: {} }).linux.namespaces).toContainEqual({ type: 'network' });
  });

  it('no default sysctls in another container\'s network namespace; --sysctl checked', () => {
    const shared = build({ network: { networks: ['container:db'] } }, { namespaces: { network: { path: '/proc/7/ns/net' } } });
    expect(shared.linux.sysctl).toBeUndefined();
    expect(build({ sysctls: { 'net.core.somaxconn': '1024' } }).linux.sysctl!['net.core.somaxconn']).toBe('1024');
    expect(() => build({ sysctls: { 'vm.swappiness': '1' } })).toThrow(InvalidArgumentError);
  });

  it('--read-only, --tmpfs, --shm-size and volumes', () => {
    const { spec, mount } = build(
      { readOnly: true, tmpfs: ['/run:size=1m'], shmSize: '128m' },
      { extraMounts: [{ destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind', 'rw', 'rprivate'] }] },
    );
    expect(spec.root).toEqual({ path: '/var/lib/berth/snapshots/0123456789ab/merged', readonly: true });
    expect(mount('/run')!.options).toContain('size=1m');
    expect(mount('/dev/shm')!.options).toContain('size=134217728');
    expect(mount('/data')!.source).toBe('/srv/data');
  });

  it('--ulimit within the host\'s ceiling only', () => {
    expect(build({ ulimits: ['nofile=1024:2048'] }).proc.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 }]);
    expect(() => build({ ulimits: ['nofile=1024:1048576'] })).toThrow('ceiling of 20000');
  });

  it('--device adds the node and its cgroup rule', () => {
    const devices = { '/dev/fuse': { type: 'c' as const, major: 10, minor: 229, uid: 0, gid: 0, fileMode: 0o666 } };
    const { linux } = build({ devices: ['/dev/fuse:/dev/fuse:rw'] }, { devices });
    expect(linux.devices).toEqual([{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }]);
    expect(linux.resources!.devices!.at(-1)).toEqual({ allow: true, type: 'c', major: 10, minor: 229, access: 'rw' });
  });

  it('resources', () => {
    const { linux } = build({ resources: { memory: '64m', cpus: '0.5', pidsLimit: 50 } });
    expect(linux.resources).toMatchObject({ memory: { limit: 67108864, swap: 134217728 }, cpu: { quota: 50000, period: 100000 }, pids: { limit: 50 } });
  });

  it('labels and the stop signal become annotations', () => {
    const { spec } = build({ labels: { tier: 'web' }, stopSignal: 'quit' }, { imageConfig: { ...BUSYBOX_IMAGE, Labels: { tier: 'base', maintainer: 'me' } } });
    expect(spec.annotations).toEqual({ tier: 'web', maintainer: 'me', [STOP_SIGNAL_ANNOTATION]: 'SIGQUIT' });
    expect(build({}, { imageConfig: { ...BUSYBOX_IMAGE, StopSignal: '9' } }).spec.annotations![STOP_SIGNAL_ANNOTATION]).toBe('SIGKILL');
    expect(() => build({ stopSignal: 'SIGNOPE' })).toThrow('invalid --stop-signal');
  });

  it('warns about --oom-kill-disable without a memory limit', () => {
    expect(build({ resources: { oomKillDisable: true } }).warnings[0]).toContain('OOM killer');
  });
});

describe('buildSpec --privileged devices', () => {
  it('gives the host\'s device nodes, sorted, with --device overriding the same path', () => {
    const hostDevices = {
      '/dev/sda': { type: 'b' as const, major: 8, minor: 0, uid: 0, gid: 6, fileMode: 0o660 },
      '/dev/fuse': { type: 'c' as const, major: 10, minor: 229, uid: 0, gid: 0, fileMode: 0o666 },
    };
    const { linux } = build({ privileged: true, devices: ['/dev/fuse:/dev/sda'] }, { hostDevices, devices: hostDevices });
    expect(linux.devices!.map((d) => [d.path, d.major, d.minor])).toEqual([['/dev/fuse', 10, 229], ['/dev/sda', 10, 229]]);
    expect(build({}, { hostDevices }).linux.devices).toBeUndefined();
  });
});

describe('planSpec and finishSpec: parsed once at create, completed at start', () => {
  const planned = (req: Partial<CreateRequest>, over: Partial<BundleInput> = {}) => planSpec(inputFor(req, over)).plan;
  const start = (over: Partial<StartInput> = {}): StartInput => ({ ...inputFor({}), ...over });

  it('checks every flag without the rootfs, but leaves user names to the start (as Docker does)', () => {
    expect(() => planned({ resources: { memory: 'lots' } })).toThrow('invalid --memory');
    expect(() => planned({ tmpfs: ['relative'] })).toThrow('is not an absolute path');
    expect(() => planned({ user: ':grp' })).toThrow('names no user');
    expect(() => planned({ user: '99999999999' })).toThrow('user ID 99999999999 is out of range');
    const plan = planned({ user: 'ghost' });
    expect(plan.user).toBe('ghost');
    expect(() => finishSpec(plan, start())).toThrow('unable to find user ghost');
  });

  it('keeps no rootfs, user, HOME or network files in the plan; finishSpec adds them', () => {
    const plan = planned({ user: 'app' });
    expect(plan.spec.root!.path).toBe('');
    expect(plan.spec.process!.env!.some((e) => e.startsWith('HOME='))).toBe(false);
    expect(plan.spec.mounts).toBeUndefined();
    const spec = finishSpec(plan, start());
    expect(spec.root!.path).toBe(FAKE_ROOTFS);
    expect(spec.process!.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
    expect(spec.process!.env).toContain('HOME=/home/app');
    expect(spec.mounts!.map((m) => m.destination)).toContain('/etc/hosts');
    expect(spec).toEqual(buildSpec(inputFor({ user: 'app' })).spec);
  });

  it('joins namespaces named at start, and drops one that turns out to be the host\'s', () => {
    const plan = planned({});
    expect(plan.spec.linux!.namespaces).toContainEqual({ type: 'network' });
    const joined = finishSpec(plan, start({ namespaces: { network: { path: '/proc/9/ns/net' }, pid: { path: '/proc/9/ns/pid' } } }));
    expect(joined.linux!.namespaces).toContainEqual({ type: 'network', path: '/proc/9/ns/net' });
    expect(joined.linux!.namespaces).toContainEqual({ type: 'pid', path: '/proc/9/ns/pid' });
    const hostNet = finishSpec(plan, start({ namespaces: { network: 'host' } }));
    expect(hostNet.linux!.namespaces!.some((n) => n.type === 'network')).toBe(false);
  });

  it('is JSON: a plan read back from a record finishes to the same spec', () => {
    const plan = planned({ env: ['A=1'], resources: { memory: '64m' }, tmpfs: ['/run'] });
    expect(finishSpec(JSON.parse(JSON.stringify(plan)), start())).toEqual(finishSpec(plan, start()));
    expect(plan.spec.linux!.resources!.memory!.limit).toBe(64 * 1024 * 1024);
  });
});

describe('issue 10 flags in the spec', () => {
  it('--cgroupns: private adds the namespace on v1 too, host leaves it out on v2; other words are refused', () => {
    const v2 = (req: Partial<CreateRequest>) => build(req, { host: { ...inputFor({}).host, cgroupMode: 'v2' } }).linux.namespaces!.map((n) => n.type);
    expect(build({ cgroupns: 'private' }).linux.namespaces!.map((n) => n.type)).toContain('cgroup');
    expect(v2({})).toContain('cgroup');
    expect(v2({ cgroupns: 'host' })).not.toContain('cgroup');
    expect(() => build({ cgroupns: 'container:x' })).toThrow(/invalid cgroup namespace mode: container:x/);
  });

  it('--group-add: numbers as they are, names from the image\'s group file, after the user\'s own groups', () => {
    const { plan } = planSpec(inputFor({ groupAdd: ['4000', 'wheel'] }));
    const spec = finishSpec(plan, { ...inputFor({}), userDb: { passwd: 'root:x:0:0::/root:/bin/sh\n', group: 'root:x:0:\nwheel:x:10:root\n' } });
    expect(spec.process!.user.additionalGids).toEqual([0, 10, 4000]);
    expect(() => finishSpec(plan, { ...inputFor({}), userDb: { passwd: '', group: '' } })).toThrow(/unable to find group wheel/);
    expect(() => build({ groupAdd: ['a:b'] })).toThrow(InvalidArgumentError);
  });

  it('--oom-score-adj: Docker\'s range; below the engine\'s own only with CAP_SYS_RESOURCE', () => {
    expect(build({ oomScoreAdj: -1000 }).proc.oomScoreAdj).toBe(-1000);
    expect(() => build({ oomScoreAdj: 1001 })).toThrow(/range for oom score adj is \[-1000, 1000\]/);
    const host = { ...inputFor({}).host, oomScoreAdj: 0 };
    expect(() => build({ oomScoreAdj: -1 }, { host, hostCapabilities: ['CAP_CHOWN'] })).toThrow(/CAP_SYS_RESOURCE/);
    expect(build({ oomScoreAdj: -1 }, { host, hostCapabilities: ['CAP_SYS_RESOURCE'] }).proc.oomScoreAdj).toBe(-1);
  });

  it('--annotation lands in the annotations, after the labels', () => {
    expect(build({ labels: { a: 'label' }, annotations: { a: 'annotation', b: '' } }).spec.annotations).toEqual({ a: 'annotation', b: '' });
    expect(() => build({ annotations: { '': 'v' } })).toThrow(/annotation/);
  });
});

describe('rootless (issue 18)', () => {
  const rootless = (req: Partial<CreateRequest>) => build(req, { host: { ...inputFor({}).host, rootless: { uids: 65537, gids: 65537 } } });

  it('asks runc for no cgroup and no resources, and a ping range of mapped gids only', () => {
    const { linux } = rootless({});
    expect(linux.cgroupsPath).toBeUndefined();
    expect(linux.resources).toBeUndefined();
    expect(linux.sysctl!['net.ipv4.ping_group_range']).toBe('0 65536');
  });

  it('binds the host\'s /sys read-only with the host\'s netns, whose sysfs it may not mount', () => {
    const host = { ...inputFor({}).host, rootless: { uids: 65537, gids: 65537 } };
    const sys = (over: Partial<BundleInput>) => build({}, { host, ...over }).mount('/sys');
    expect(sys({ namespaces: { network: 'host' } })).toEqual({ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
    expect(sys({})).toMatchObject({ type: 'sysfs' });
    expect(build({}, { namespaces: { network: 'host' } }).mount('/sys')).toMatchObject({ type: 'sysfs' });
  });

  it('refuses resource limits, naming the flags and why', () => {
    for (const [req, flag] of [[{ resources: { memory: '10m' } }, '--memory'], [{ resources: { cpus: '0.5', pidsLimit: 5 } }, '--cpus, --pids-limit']] as const) {
      const err = (() => { try { rootless(req); } catch (e) { return e as InvalidArgumentError; } })();
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err!.message).toContain(flag);
      expect(err!.message).toContain('cgroup v1');
    }
  });
});

describe('user namespaces', () => {
  const idmap = { uid: [{ containerID: 0, hostID: 1000000000, size: 65536 }], gid: [{ containerID: 0, hostID: 1000065536, size: 1000 }] };

  it('adds the user namespace and its maps, and the spec still validates', () => {
    const { linux } = build({}, { userns: true, idmap });
    expect(linux.namespaces!.map((n) => n.type)).toEqual(['mount', 'user', 'network', 'uts', 'pid', 'ipc']);
    expect(linux.uidMappings).toEqual(idmap.uid);
    expect(linux.gidMappings).toEqual(idmap.gid);
  });

  it('joins the user namespace that owns the sandbox\'s netns, and narrows ping_group_range to mapped gids', () => {
    const { mount, linux } = build({}, { userns: true, idmap, namespaces: { network: { path: '/run/berth/netns/x' }, user: { path: '/run/berth/netns/.userns/x' } } });
    expect(linux.namespaces).toContainEqual({ type: 'user', path: '/run/berth/netns/.userns/x' });
    expect(mount('/sys')!.type).toBe('sysfs');
    expect(linux.sysctl!['net.ipv4.ping_group_range']).toBe('0 999');
  });

  it('binds the host\'s /sys read-only on the host\'s network, where sysfs cannot be mounted', () => {
    const { mount } = build({ network: { networks: ['host'] } }, { userns: true, idmap, namespaces: { network: 'host' } });
    expect(mount('/sys')).toEqual({ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  });

  it('leaves a spec without a user namespace as it was', () => {
    const { linux, mount } = build({}, { idmap });
    expect(linux.namespaces!.some((n) => n.type === 'user')).toBe(false);
    expect(linux.uidMappings).toBeUndefined();
    expect(mount('/sys')!.type).toBe('sysfs');
  });
});
