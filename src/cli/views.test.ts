import { describe, expect, it } from 'vitest';
import type { ContainerSummary, ImageSummary, NetworkSummary } from '../api/types.js';
import { renderRows } from './format.js';
import { CONTAINER_HEADERS, CONTAINER_TABLE, containerRow, IMAGE_HEADERS, IMAGE_TABLE, imageRows, NETWORK_HEADERS, NETWORK_TABLE, networkInspectView, networkRow, splitTag } from './views.js';

const NOW = Date.parse('2024-01-01T00:10:00Z');
const ID = 'a'.repeat(64);

const container: ContainerSummary = {
  id: ID, names: ['web'], image: 'localhost/busybox:latest', imageId: 'sha256:' + 'b'.repeat(64),
  command: 'httpd -f -p 80 -h /www', created: '2024-01-01T00:08:00Z', state: 'running', status: 'Up 2 minutes',
  ports: [{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }], labels: { app: 'x' }, networks: ['bridge'],
};

describe('ps rows', () => {
  it('prints docker ps columns', () => {
    const lines = renderRows([containerRow(container, { trunc: true, now: NOW })], undefined, CONTAINER_TABLE, CONTAINER_HEADERS);
    expect(lines[0]).toBe('CONTAINER ID   IMAGE                      COMMAND                  CREATED         STATUS         PORTS                    NAMES');
    expect(lines[1]).toBe('aaaaaaaaaaaa   localhost/busybox:latest   "httpd -f -p 80 -h /…"   2 minutes ago   Up 2 minutes   127.0.0.1:8080->80/tcp   web');
  });

  it('keeps everything with --no-trunc', () => {
    const row = containerRow(container, { trunc: false, now: NOW });
    expect(row.ID).toBe(ID);
    expect(row.Command).toBe('"httpd -f -p 80 -h /www"');
    expect(row.Labels).toBe('app=x');
    expect(row.CreatedAt).toBe('2024-01-01 00:08:00 +0000 UTC');
  });
});

describe('images rows', () => {
  const img: ImageSummary = { id: 'sha256:' + 'c'.repeat(64), repoTags: ['localhost/busybox:latest', 'x:1'], repoDigests: [], created: '2024-01-01T00:00:00Z', size: 4_260_000 };

  it('prints one row per tag', () => {
    const rows = imageRows(img, { trunc: true, now: NOW });
    expect(renderRows(rows, undefined, IMAGE_TABLE, IMAGE_HEADERS)).toEqual([
      'REPOSITORY          TAG       IMAGE ID       CREATED          SIZE',
      'localhost/busybox   latest    cccccccccccc   10 minutes ago   4.26MB',
      'x                   1         cccccccccccc   10 minutes ago   4.26MB',
    ]);
  });

  it("shows each row's own repository digest with --digests, <none> for a repository without one", () => {
    const dg = 'sha256:' + 'd'.repeat(64);
    const rows = imageRows({ ...img, repoTags: ['127.0.0.1:5000/app:v1', 'localhost/app:latest'], repoDigests: [`127.0.0.1:5000/app@${dg}`] }, { trunc: true, now: NOW });
    expect(rows.map((r) => [r.Repository, r.Tag, r.Digest])).toEqual([['127.0.0.1:5000/app', 'v1', dg], ['localhost/app', 'latest', '<none>']]);
  });

  it('shows untagged images as <none>', () => {
    expect(imageRows({ ...img, repoTags: [] }, { trunc: false })[0]).toMatchObject({ Repository: '<none>', Tag: '<none>', ID: img.id });
  });

  it('splits the tag after the last slash', () => {
    expect(splitTag('host:5000/a/b:tag')).toEqual({ Repository: 'host:5000/a/b', Tag: 'tag' });
    expect(splitTag('host:5000/a')).toEqual({ Repository: 'host:5000/a', Tag: '<none>' });
  });
});

describe('networks', () => {
  const net: NetworkSummary = {
    id: 'd'.repeat(64), name: 'bridge', driver: 'bridge', scope: 'local', created: '2024-01-01T00:00:00Z', internal: false, ipv6: false,
    subnets: [{ subnet: '10.88.0.0/16', gateway: '10.88.0.1' }], options: {}, labels: {},
    containers: { [ID]: { name: 'web', ipv4: '10.88.0.2/16', endpoint: 'e1' } },
  };

  it('prints network ls', () => {
    expect(renderRows([networkRow(net, { trunc: true })], undefined, NETWORK_TABLE, NETWORK_HEADERS)).toEqual([
      'NETWORK ID     NAME      DRIVER    SCOPE',
      'dddddddddddd   bridge    bridge    local',
    ]);
  });

  it("inspects in docker's shape", () => {
    expect(networkInspectView(net)).toMatchObject({
      Name: 'bridge', Id: net.id, IPAM: { Config: [{ Subnet: '10.88.0.0/16', Gateway: '10.88.0.1' }] },
      Containers: { [ID]: { Name: 'web', IPv4Address: '10.88.0.2/16', EndpointID: 'e1' } },
    });
  });
});
