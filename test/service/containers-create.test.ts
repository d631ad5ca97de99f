/**
 * Docker's create body → Berth's CreateRequest, field by field, against what `berth create` flags make
 * (createRequest in src/cli/create.ts), so both sides make the same container.
 */
import { describe, expect, it } from 'vitest';
import { createRequest } from '../../src/cli/create.js';
import { createRequestOf } from '../../src/service/containers-create.js';
import { ApiError } from '../../src/service/errors.js';

/** The body the docker 28 CLI sends for `docker create busybox` (captured), every field at its zero. */
const DOCKER_DEFAULTS = {
  Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, OpenStdin: false,
  StdinOnce: false, Env: null, Cmd: null, Image: 'busybox', Volumes: {}, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: {},
  HostConfig: {
    Binds: null, ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: 'default', PortBindings: {},
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: false, VolumeDriver: '', VolumesFrom: null, ConsoleSize: [0, 0],
    CapAdd: null, CapDrop: null, CgroupnsMode: '', Dns: [], DnsOptions: [], DnsSearch: [], ExtraHosts: null, GroupAdd: null, IpcMode: '',
    Cgroup: '', Links: null, OomScoreAdj: 0, PidMode: '', Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null,
    UTSMode: '', UsernsMode: '', ShmSize: 0, Isolation: '', CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '', BlkioWeight: 0,
    BlkioWeightDevice: [], BlkioDeviceReadBps: [], BlkioDeviceWriteBps: [], BlkioDeviceReadIOps: [], BlkioDeviceWriteIOps: [], CpuPeriod: 0,
    CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '', CpusetMems: '', Devices: [], DeviceCgroupRules: null,
    DeviceRequests: null, MemoryReservation: 0, MemorySwap: 0, MemorySwappiness: -1, OomKillDisable: false, PidsLimit: 0, Ulimits: [],
    CpuCount: 0, CpuPercent: 0, IOMaximumIOps: 0, IOMaximumBandwidth: 0, MaskedPaths: null, ReadonlyPaths: null,
  },
  NetworkingConfig: {
    EndpointsConfig: {
      default: {
        IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', DriverOpts: null, GwPriority: 0, NetworkID: '', EndpointID: '',
        Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null,
      },
    },
  },
};

function withHost(host: Record<string, unknown>, config: Record<string, unknown> = {}) {
  return { ...DOCKER_DEFAULTS, ...config, HostConfig: { ...DOCKER_DEFAULTS.HostConfig, ...host } };
}

function refusal(body: unknown): string {
  try {
    createRequestOf(body as Record<string, unknown>, undefined);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('createRequestOf', () => {
  it("the docker CLI's all-zero body is `berth create busybox`, with attach and pull as the API's", () => {
    const { attach, pull, ...rest } = createRequestOf(DOCKER_DEFAULTS, 'x');
    expect(rest).toEqual(createRequest({ name: 'x' } as never, ['busybox']));
    expect(attach).toEqual(['stdout', 'stderr']);
    expect(pull).toBe('never');
  });

  it('Config fields as their flags', () => {
    const req = createRequestOf({
      ...DOCKER_DEFAULTS, Cmd: 'echo', Entrypoint: [''], Env: ['A=1'], WorkingDir: '/w', User: 'nobody', Labels: { a: 'b' }, Tty: true,
      OpenStdin: true, StdinOnce: true, AttachStdin: true, ExposedPorts: { '80/tcp': {} }, Volumes: { '/data': {} }, StopSignal: 'SIGINT',
      StopTimeout: 0, Hostname: 'h', Domainname: 'd.org', Healthcheck: { Test: ['CMD', 'true'], Interval: 1e9, Timeout: 0, Retries: 3 },
    }, '/named');
    expect(req).toMatchObject({
      name: 'named', command: ['echo'], entrypoint: [''], env: ['A=1'], workdir: '/w', user: 'nobody', labels: { a: 'b' }, tty: true,
      openStdin: true, attach: ['stdin', 'stdout', 'stderr'], volumes: ['/data'], stopSignal: 'SIGINT', stopTimeout: 0, hostname: 'h',
      domainname: 'd.org', health: { test: ['CMD', 'true'], interval: 1e9, retries: 3 }, network: { expose: ['80/tcp'] },
    });
    expect(createRequestOf({ Image: 'busybox', Healthcheck: { Test: ['NONE'] } }, undefined).noHealthcheck).toBe(true);
    expect(createRequestOf({ ...DOCKER_DEFAULTS, AttachStdout: false, AttachStderr: false }, undefined).attach).toEqual([]);
  });

  it('HostConfig fields as their flags', () => {
    const req = createRequestOf(withHost({
      Binds: ['/h:/c:ro'], Tmpfs: { '/run': 'size=1m', '/t': '' }, VolumesFrom: ['other:ro'], PublishAllPorts: true, AutoRemove: true,
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 }, Memory: 1 << 26, MemorySwap: -1, NanoCpus: 1.5e9, CpuShares: 512,
      CpusetCpus: '0', PidsLimit: -1, CapAdd: ['NET_ADMIN'], CapDrop: ['ALL'], Privileged: true, ReadonlyRootfs: true,
      ExtraHosts: ['a:1.2.3.4'], Dns: ['1.1.1.1'], DnsSearch: ['x.org'], DnsOptions: ['ndots:2'], Init: true,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } }, SecurityOpt: ['no-new-privileges'], Sysctls: { 'net.core.somaxconn': '1024' },
      Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 20 }], Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/n', CgroupPermissions: 'rw' }],
      ShmSize: 1 << 20, GroupAdd: ['audio'], IpcMode: 'shareable', PidMode: 'host', UTSMode: 'host',
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }], '53/udp': [{ HostIp: '::1', HostPort: '5353' }], '81/tcp': [{ HostIp: '', HostPort: '8081' }], '82/tcp': [{ HostIp: '', HostPort: '0' }] },
      Mounts: [
        { Type: 'bind', Source: '/a,b', Target: '/m', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
        { Type: 'volume', Source: 'v', Target: '/v', VolumeOptions: { NoCopy: true, Labels: { k: 'v' } } },
        { Type: 'tmpfs', Target: '/tm', TmpfsOptions: { SizeBytes: 4096, Mode: 0o1777 } },
      ],
    }), undefined);
    expect(req).toMatchObject({
      volumes: ['/h:/c:ro'], tmpfs: ['/run:size=1m', '/t'], volumesFrom: ['other:ro'], autoRemove: true, restart: 'on-failure:3',
      resources: { memory: 1 << 26, memorySwap: -1, cpus: '1.5', cpuShares: 512, cpusetCpus: '0', pidsLimit: -1 },
      capAdd: ['NET_ADMIN'], capDrop: ['ALL'], privileged: true, readOnly: true, init: true, logOpts: { 'max-size': '1m' },
      securityOpt: ['no-new-privileges'], sysctls: { 'net.core.somaxconn': '1024' }, ulimits: ['nofile=10:20'], devices: ['/dev/null:/dev/n:rw'],
      shmSize: 1 << 20, groupAdd: ['audio'], ipc: 'shareable', pid: 'host', uts: 'host',
      mounts: ['type=bind,"source=/a,b",target=/m,readonly,bind-propagation=rslave', 'type=volume,source=v,target=/v,volume-nocopy,"volume-label=k=v"', 'type=tmpfs,target=/tm,tmpfs-size=4096,tmpfs-mode=1777'],
      network: {
        publishAll: true, addHost: ['a:1.2.3.4'], dns: ['1.1.1.1'], dnsSearch: ['x.org'], dnsOption: ['ndots:2'],
        publish: ['127.0.0.1::80/tcp', '[::1]:5353:53/udp', '8081:81/tcp', '82/tcp'],
      },
    });
    expect(createRequestOf(withHost({ RestartPolicy: { Name: 'always' } }), undefined).restart).toBe('always');
  });

  it('UsernsMode as --userns: Docker\'s "" is the engine default, "host" and podman\'s words go through', () => {
    expect(createRequestOf(withHost({ UsernsMode: '' }), undefined).userns).toBeUndefined();
    expect(createRequestOf(withHost({ UsernsMode: 'host' }), undefined).userns).toBe('host');
    expect(createRequestOf(withHost({ UsernsMode: 'auto:size=1000' }), undefined).userns).toBe('auto:size=1000');
  });

  it('network modes and endpoints', () => {
    const net = (mode: string, endpoints: Record<string, unknown> = {}) =>
      createRequestOf({ Image: 'busybox', HostConfig: { NetworkMode: mode }, NetworkingConfig: { EndpointsConfig: endpoints } }, undefined).network;
    expect(net('default')).toBeUndefined();
    expect(net('bridge')).toBeUndefined();
    expect(net('none')).toEqual({ networks: ['none'] });
    expect(net('host')).toEqual({ networks: ['host'] });
    expect(net('container:abc')).toEqual({ networks: ['container:abc'] });
    expect(net('app_default', { app_default: { Aliases: ['web', 'app-web-1'], IPAMConfig: { IPv4Address: '10.9.0.5' }, MacAddress: '02:42:ac:11:00:02' }, other: {} }))
      .toEqual({ networks: ['app_default', 'other'], aliases: ['web', 'app-web-1'], ip: '10.9.0.5', mac: '02:42:ac:11:00:02' });
  });

  it('refuses what Berth cannot honour, naming the field', () => {
    expect(refusal(withHost({ CpuRealtimeRuntime: 5 }))).toBe('HostConfig.CpuRealtimeRuntime is not supported yet by Berth; leave it unset');
    expect(refusal(withHost({ DeviceRequests: [{ Driver: 'nvidia' }] }))).toMatch(/^HostConfig\.DeviceRequests is not supported/);
    expect(refusal(withHost({ Isolation: 'hyperv' }))).toMatch(/^HostConfig\.Isolation is not supported/);
    expect(refusal({ ...DOCKER_DEFAULTS, Shell: ['/bin/bash'] })).toMatch(/^Shell is not supported/);
    expect(refusal({ ...DOCKER_DEFAULTS, NetworkDisabled: true })).toMatch(/^NetworkDisabled is not supported/);
    expect(refusal({ ...DOCKER_DEFAULTS, Healthcheck: { Test: ['CMD', 'true'], Frequency: 3 } })).toMatch(/^Healthcheck\.Frequency is not supported/);
    expect(refusal(withHost({ Mounts: [{ Type: 'bind', Source: '/a', Target: '/b', BindOptions: { CreateMountpoint: true } }] }))).toMatch(/Mounts\[0\]\.BindOptions\.CreateMountpoint is not supported/);
    expect(refusal(withHost({ Mounts: [{ Type: 'bind', Source: 'a"b', Target: '/b' }] }))).toMatch(/Mounts\[0\]\.Source: a double quote/);
    expect(refusal(withHost({ RestartPolicy: { Name: 'no', MaximumRetryCount: 3 } }))).toMatch(/MaximumRetryCount needs the on-failure policy/);
    expect(refusal({ Image: 'busybox', NetworkingConfig: { EndpointsConfig: { default: { DriverOpts: { a: 'b' } } } } })).toMatch(/EndpointsConfig\["default"\]\.DriverOpts is not supported/);
    expect(refusal({ Image: 'busybox', NetworkingConfig: { EndpointsConfig: { default: { IPAMConfig: { LinkLocalIPs: ['169.254.0.1'] } } } } })).toMatch(/IPAMConfig\.LinkLocalIPs is not supported/);
  });

  it('refuses wrong types, naming the field', () => {
    expect(refusal({ Image: 'busybox', Cmd: 1 })).toBe('invalid Cmd: it must be a string or an array of strings');
    expect(refusal({ Image: 7 })).toBe('invalid Image: it must be a string');
    expect(refusal({ Image: 'busybox', Labels: { a: 1 } })).toBe('invalid Labels["a"]: it must be a string');
    expect(refusal({ Image: 'busybox', Tty: 'yes' })).toBe('invalid Tty: it must be true or false');
    expect(refusal(withHost({ NanoCpus: 0.5 }))).toBe('invalid HostConfig.NanoCpus: it must be an integer');
    expect(refusal(withHost({ Ulimits: ['nofile=1:2'] }))).toBe('invalid HostConfig.Ulimits: it must be an array of JSON objects');
    expect(refusal(withHost({ PortBindings: { '80/tcp': { HostPort: '1' } } }))).toMatch(/PortBindings\["80\/tcp"\]: it must be an array/);
    expect(refusal({ Image: 'busybox', NetworkingConfig: { EndpointsConfig: { n: 'x' } } })).toMatch(/EndpointsConfig\["n"\]: it must be a JSON object/);
  });
});
