import { describe, expect, it } from 'vitest';
import { factsOf, overlayInUsernsSupported } from './detect.js';
import { nestedAllocatorOptions, nestedUsernsFacts } from './nested.js';

const IDENTITY = '         0          0 4294967295\n';
const MAPPED = '         0       1001          1\n         1     100000      65536\n';

describe('factsOf', () => {
  it('root in the initial namespace is not rootless', () => {
    expect(factsOf(0, 0, IDENTITY, IDENTITY)).toMatchObject({ rootless: false, inNamespace: false, hostUid: 0 });
  });
  it('a non-root user is rootless, outside any namespace', () => {
    expect(factsOf(1001, 1001, IDENTITY, IDENTITY)).toMatchObject({ rootless: true, inNamespace: false, hostUid: 1001, hostGid: 1001 });
  });
  it('uid 0 inside the namespace is the user that it maps to', () => {
    const f = factsOf(0, 0, MAPPED, MAPPED);
    expect(f).toMatchObject({ rootless: true, inNamespace: true, hostUid: 1001, hostGid: 1001 });
    expect(f.uidMap).toEqual([{ containerID: 0, hostID: 1001, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }]);
  });
});

describe('overlayInUsernsSupported', () => {
  it('is Linux 5.11 and later', () => {
    expect(['5.11.0', '5.15.0-91-generic', '6.1.0-18-amd64', '6.18.44-fc-v669'].map(overlayInUsernsSupported)).toEqual([true, true, true, true]);
    expect(['5.10.0-28-amd64', '4.19.0', '3.10.0-1160.el7.x86_64', 'weird'].map(overlayInUsernsSupported)).toEqual([false, false, false, false]);
  });
});

describe('nested user namespaces', () => {
  const facts = factsOf(0, 0, '0 1001 1\n1 100000 65536\n', '0 1002 1\n1 200000 65536\n');
  it('stand for the user (its passwd entry by uid) in a namespace of all its ids', () => {
    expect(nestedUsernsFacts(facts, 'root:x:0:0:root:/root:/bin/sh\nal:x:1001:1002:Al:/home/al:/bin/sh\n', {}))
      .toEqual({ uid: 1001, gid: 1002, name: 'al', home: '/home/al', uids: 65537, gids: 65537 });
  });
  it('take auto ranges from ids 1.. (never the user\'s 0), recorded beside the user\'s store', () => {
    expect(nestedAllocatorOptions(facts, { HOME: '/home/al' }, 0)).toEqual({
      registry: '/home/al/.local/share/berth-userns/ranges.json',
      ranges: { uid: [{ owner: 'rootless', start: 1, count: 65536 }], gid: [{ owner: 'rootless', start: 1, count: 65536 }] },
    });
  });
});
