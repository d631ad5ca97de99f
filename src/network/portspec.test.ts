import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parseExposed, parsePublish, portRequests } from './portspec.js';

describe('parsePublish', () => {
  it('reads every Docker form', () => {
    expect(parsePublish('80')).toEqual([{ hostIp: '0.0.0.0', containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('8080:80/udp')).toEqual([{ hostIp: '0.0.0.0', hostPorts: { first: 8080, last: 8080 }, containerPort: 80, protocol: 'udp' }]);
    expect(parsePublish('127.0.0.1:8080:80')).toEqual([{ hostIp: '127.0.0.1', hostPorts: { first: 8080, last: 8080 }, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('127.0.0.1::80')).toEqual([{ hostIp: '127.0.0.1', containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('[::1]:8080:80')).toEqual([{ hostIp: '::1', hostPorts: { first: 8080, last: 8080 }, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('[FD00:0::5]::53/udp')).toEqual([{ hostIp: 'fd00::5', containerPort: 53, protocol: 'udp' }]);
  });

  it('expands ranges', () => {
    expect(parsePublish('8000-8001:80-81').map((r) => [r.hostPorts?.first, r.containerPort])).toEqual([[8000, 80], [8001, 81]]);
    expect(parsePublish('8000-8010:80')).toEqual([{ hostIp: '0.0.0.0', hostPorts: { first: 8000, last: 8010 }, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('90-92').map((r) => r.containerPort)).toEqual([90, 91, 92]);
  });

  it('refuses malformed specs', () => {
    for (const bad of ['', '0', '70000', 'a:80', '1.2.3:80:80', '80/sctp', '8000-8002:80-81', '81-80', '1:2:3:4', '[::1]:80', '[::g]:80:80', '[::1]80:80', '::1:80:80', '80/tcp/x']) {
      expect(() => parsePublish(bad), bad).toThrow(InvalidArgumentError);
    }
  });
});

describe('portRequests', () => {
  it('adds exposed ports for -P unless published explicitly', () => {
    const reqs = portRequests(['8080:80'], true, ['80/tcp', '53/udp', '8000-8001/tcp']);
    expect(reqs.map((r) => `${r.containerPort}/${r.protocol}:${r.hostPorts?.first ?? '*'}`)).toEqual(['80/tcp:8080', '53/udp:*', '8000/tcp:*', '8001/tcp:*']);
    expect(portRequests([], false, ['80/tcp'])).toEqual([]);
    expect(parseExposed('53/udp')).toEqual([{ containerPort: 53, protocol: 'udp' }]);
  });
});
