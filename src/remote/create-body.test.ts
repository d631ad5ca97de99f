import { describe, expect, it } from 'vitest';
import type { CreateRequest } from '../types.js';
import { createRequestOf } from '../service/containers-create.js';
import { InvalidArgumentError } from '../errors.js';
import { createBodyOf } from './create-body.js';

/** What the service makes of the body: the request must come back as it was sent (the service never pulls). */
function roundTrip(req: CreateRequest): CreateRequest {
  const { name, body } = createBodyOf(req);
  return createRequestOf(JSON.parse(JSON.stringify(body)), name);
}

describe('createBodyOf', () => {
  it('a request with most fields comes back the same through the service\'s reading of the body', () => {
    const req: CreateRequest = {
      image: 'busybox', pull: 'never', name: 'web', command: ['sh', '-c', 'echo hi'], entrypoint: ['/bin/env'],
      env: ['A=1', 'B=2'], workdir: '/tmp', user: '1000:1000', tty: true, openStdin: true, attach: ['stdin', 'stdout'],
      init: true, stopSignal: 'SIGINT', stopTimeout: 3, labels: { a: 'b' }, annotations: { x: 'y' }, logOpts: { 'max-size': '1m' },
      runtime: 'runc', hostname: 'h', domainname: 'd.example', pid: 'host', ipc: 'private', uts: 'host', cgroupns: 'private',
      privileged: true, capAdd: ['NET_ADMIN'], capDrop: ['MKNOD'], securityOpt: ['no-new-privileges'], readOnly: true,
      tmpfs: ['/run:size=64k', '/scratch'], shmSize: 1048576, ulimits: ['nofile=100:200'], devices: ['/dev/null:/dev/nul:rwm'],
      sysctls: { 'net.ipv4.ip_forward': '1' }, groupAdd: ['audio'], oomScoreAdj: 100, cgroupParent: '/custom',
      resources: { memory: 67108864, memorySwap: -1, memoryReservation: 1048576, cpus: '0.5', cpuShares: 512, pidsLimit: 50, cpusetCpus: '0', blkioWeight: 300, deviceReadBps: ['/dev/sda:1048576'] },
      volumes: ['data:/data', '/host:/h:ro'], volumesFrom: ['other:ro'], mounts: ['type=bind,source=/src,target=/dst,readonly'],
      restart: 'on-failure:3', autoRemove: true,
      health: { test: ['CMD', 'true'], interval: 2_000_000_000, retries: 4 },
      network: { networks: ['mynet', 'other'], aliases: ['w'], ip: '10.1.0.5', publish: ['8080:80/tcp', '127.0.0.1::53/udp'], publishAll: true, dns: ['1.1.1.1'], dnsSearch: ['x'], dnsOption: ['ndots:1'], addHost: ['h:1.2.3.4'], expose: ['9000/tcp'], links: ['db:db'] },
    };
    expect(roundTrip(req)).toEqual(req);
  });

  it('a plain run is a plain body: no field a client would leave unset', () => {
    expect(createBodyOf({ image: 'busybox', command: ['true'] })).toEqual({ body: { Image: 'busybox', Cmd: ['true'] } });
    expect(roundTrip({ image: 'busybox', command: ['true'], autoRemove: true, network: { networks: ['none'] } })).toEqual({ image: 'busybox', pull: 'never', command: ['true'], autoRemove: true, network: { networks: ['none'] } });
  });

  it('units and Go durations become the bytes and nanoseconds the API takes', () => {
    const { body } = createBodyOf({ image: 'b', shmSize: '64m', resources: { memory: '1g' }, health: { cmd: 'true', interval: '1m30s' } });
    expect(body).toMatchObject({ HostConfig: { ShmSize: 64 << 20, Memory: 1 << 30 }, Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 90e9 } });
  });

  it('carries port ranges as Docker\'s bindings, one a port; a host range for one port as FIRST-LAST', () => {
    const { body } = createBodyOf({ image: 'b', network: { publish: ['8000-8001:80-81', '127.0.0.1:9000-9010:90/udp', '[::1]::70', '60'] } });
    expect((body.HostConfig as Record<string, unknown>).PortBindings).toEqual({
      '80/tcp': [{ HostIp: '', HostPort: '8000' }], '81/tcp': [{ HostIp: '', HostPort: '8001' }],
      '90/udp': [{ HostIp: '127.0.0.1', HostPort: '9000-9010' }], '70/tcp': [{ HostIp: '::1', HostPort: '' }], '60/tcp': [{ HostIp: '', HostPort: '' }],
    });
    // Refused as locally, with the local words.
    expect(() => createBodyOf({ image: 'b', network: { publish: ['8000-8001:80-82'] } })).toThrow(/invalid ranges specified for container and host Ports/);
  });

  it('refuses what the body cannot carry, naming the flag', () => {
    for (const [req, flag] of [
      [{ image: 'b', envFiles: ['/x'] }, '--env-file'], [{ image: 'b', labelFiles: ['/x'] }, '--label-file'],
      [{ image: 'b', mounts: ['type=volume,target=/x,volume-opt=a=b'] }, '--mount'],
    ] as [CreateRequest, string][]) {
      const err = (() => { try { createBodyOf(req); } catch (e) { return e; } })();
      expect(err, flag).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(flag);
      expect((err as Error).message).toContain('not supported on a remote host yet');
    }
  });
});
