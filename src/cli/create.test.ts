import { describe, expect, it } from 'vitest';
import { createRequest, RUN_OPTIONS } from './create.js';
import { parseArgv } from './parser.js';
import type { CreateOptions } from './create.js';

function request(argv: string[]) {
  const { options, args } = parseArgv(argv, RUN_OPTIONS, { stopAtPositional: true });
  return createRequest(options as unknown as CreateOptions, args);
}

describe('run flags → CreateRequest', () => {
  it('takes the image and the command after it', () => {
    expect(request(['busybox'])).toEqual({ image: 'busybox' });
    expect(request(['--rm', 'busybox', 'sh', '-c', 'echo -e --rm'])).toEqual({ image: 'busybox', command: ['sh', '-c', 'echo -e --rm'], autoRemove: true });
  });

  it('maps process, identity and security flags', () => {
    expect(request([
      '-it', '--name', 'web', '-e', 'A=1', '--env=B=2', '--env-file', './env', '-w', '/srv', '-u', '1000:1000',
      '-h', 'box', '--domainname', 'example.org', '-l', 'app=x', '--init', '--stop-signal', 'SIGINT', '--stop-timeout', '3',
      '--privileged', '--cap-add', 'NET_ADMIN', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--read-only',
      '--tmpfs', '/run', '--shm-size', '128m', '--ulimit', 'nofile=1024:2048', '--device', '/dev/null:/dev/xnull', '--pid', 'host',
      '--ipc', 'private', '--uts', 'host', '--sysctl', 'net.ipv4.ip_forward=1', '-v', '/tmp:/data:ro', '--volumes-from', 'other',
      '--restart', 'on-failure:3', 'busybox',
    ])).toEqual({
      image: 'busybox', name: 'web', env: ['A=1', 'B=2'], envFiles: ['./env'], workdir: '/srv', user: '1000:1000', tty: true, openStdin: true,
      init: true, stopSignal: 'SIGINT', stopTimeout: 3, labels: { app: 'x' }, hostname: 'box', domainname: 'example.org', pid: 'host',
      ipc: 'private', uts: 'host', privileged: true, capAdd: ['NET_ADMIN'], capDrop: ['ALL'], securityOpt: ['no-new-privileges'],
      readOnly: true, tmpfs: ['/run'], shmSize: '128m', ulimits: ['nofile=1024:2048'], devices: ['/dev/null:/dev/xnull'],
      sysctls: { 'net.ipv4.ip_forward': '1' }, volumes: ['/tmp:/data:ro'], volumesFrom: ['other'], restart: 'on-failure:3',
    });
  });

  it('maps resource flags', () => {
    expect(request([
      '-m', '64m', '--memory-swap', '128m', '--memory-reservation', '32m', '--oom-kill-disable', '--cpus', '0.5', '-c', '512',
      '--cpu-period', '100000', '--cpu-quota', '50000', '--cpuset-cpus', '0', '--cpuset-mems', '0', '--pids-limit', '50',
      '--blkio-weight', '300', '--device-read-bps', '/dev/sda:1mb', '--device-write-bps', '/dev/sda:2mb', 'busybox',
    ]).resources).toEqual({
      memory: '64m', memorySwap: '128m', memoryReservation: '32m', oomKillDisable: true, cpus: '0.5', cpuShares: 512, cpuPeriod: 100000,
      cpuQuota: 50000, cpusetCpus: '0', cpusetMems: '0', pidsLimit: 50, blkioWeight: 300, deviceReadBps: ['/dev/sda:1mb'], deviceWriteBps: ['/dev/sda:2mb'],
    });
  });

  it('maps network flags, --net included', () => {
    expect(request([
      '--net', 'a', '--network', 'b', '--ip', '10.0.0.5', '--ip6', 'fd00::5', '--mac-address', '02:42:ac:11:00:02', '--network-alias', 'web',
      '-p', '8080:80', '-p127.0.0.1:53:53/udp', '-P', '--dns', '1.1.1.1', '--dns-search', 'example.org', '--dns-option', 'ndots:2',
      '--add-host', 'db:10.0.0.9', '--link', 'other:alias', 'busybox',
    ]).network).toEqual({
      networks: ['a', 'b'], ip: '10.0.0.5', ip6: 'fd00::5', mac: '02:42:ac:11:00:02', aliases: ['web'], publish: ['8080:80', '127.0.0.1:53:53/udp'],
      publishAll: true, dns: ['1.1.1.1'], dnsSearch: ['example.org'], dnsOption: ['ndots:2'], addHost: ['db:10.0.0.9'], links: ['other:alias'],
    });
  });

  it("passes --entrypoint '' on as a cleared entrypoint", () => {
    expect(request(['--entrypoint', '', 'busybox']).entrypoint).toEqual(['']);
    expect(request(['--entrypoint=/bin/sh', 'busybox', '-c', 'true'])).toMatchObject({ entrypoint: ['/bin/sh'], command: ['-c', 'true'] });
  });
});

describe('clientEnv', () => {
  it('takes bare names from the client environment and drops unset ones, as docker', async () => {
    const { clientEnv } = await import('./create.js');
    expect(clientEnv(['A=1', 'HOME_X', 'UNSET_Y'], { HOME_X: '/h' })).toEqual(['A=1', 'HOME_X=/h']);
    expect(clientEnv(undefined)).toBeUndefined();
  });
});
