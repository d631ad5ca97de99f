import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import type { CreateRequest } from '../options.js';
import { checkUsernsCombination, hostIds, planUserns } from './userns.js';

const req = (r: Partial<CreateRequest>): CreateRequest => ({ image: 'busybox', ...r });

describe('planUserns', () => {
  const user = { uid: 1000, gid: 1001, name: 'al', home: '/home/al', uids: 65537, gids: 65537 };
  it('rootless: the user\'s own namespace by default; keep-id, auto and --uidmap nest in it; userns-remap is refused', () => {
    expect(planUserns(req({}), undefined, user)).toBeUndefined();
    expect(planUserns(req({ userns: 'host' }), undefined, user)).toBeUndefined();
    expect(planUserns(req({ userns: 'keep-id' }), undefined, user)).toEqual({
      mode: 'keep-id', source: 'fixed', keepId: { uid: 1000, gid: 1001, name: 'al', home: '/home/al' },
      idmap: {
        uid: [{ containerID: 0, hostID: 1, size: 1000 }, { containerID: 1000, hostID: 0, size: 1 }, { containerID: 1001, hostID: 1001, size: 64536 }],
        gid: [{ containerID: 0, hostID: 1, size: 1001 }, { containerID: 1001, hostID: 0, size: 1 }, { containerID: 1002, hostID: 1002, size: 64535 }],
      },
    });
    expect(planUserns(req({ userns: 'auto:size=100' }), undefined, user)).toEqual({ mode: 'auto:size=100', source: 'auto', size: 100 });
    expect(planUserns(req({ uidmap: ['0:1:100'] }), undefined, user)!.idmap!.uid).toEqual([{ containerID: 0, hostID: 1, size: 100 }]);
    expect(() => planUserns(req({ uidmap: ['0:65000:1000'] }), undefined, user)).toThrow(/goes past the 65537 ids of your user namespace/);
    expect(() => planUserns(req({ userns: 'keep-id', uidmap: ['0:1:1'] }), undefined, user)).toThrow(/cannot be combined with --userns keep-id/);
    expect(() => planUserns(req({}), { kind: 'auto', size: 65536 }, user)).toThrow(/userns-remap/);
    expect(planUserns(req({ userns: 'auto' }), { kind: 'auto', size: 65536 }, user)).toEqual({ mode: 'auto', source: 'auto', size: 65536 });
  });

  it('takes --userns over the engine default, and host means none', () => {
    expect(planUserns(req({}), undefined)).toBeUndefined();
    expect(planUserns(req({ userns: 'host' }), { kind: 'auto', size: 65536 })).toBeUndefined();
    expect(planUserns(req({}), { kind: 'auto', size: 65536 })).toEqual({ mode: 'auto', source: 'auto', size: 65536 });
    expect(planUserns(req({ userns: 'auto:size=2000' }), undefined)).toEqual({ mode: 'auto:size=2000', source: 'auto', size: 2000 });
    expect(planUserns(req({ userns: 'private' }), undefined)).toEqual({ mode: 'private', source: 'auto', size: 65536 });
  });

  it('uses --uidmap for gids too unless --gidmap is given', () => {
    expect(planUserns(req({ uidmap: ['0:100000:1000', '1000:300000:10'] }), undefined)!.idmap).toEqual({
      uid: [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 1000, hostID: 300000, size: 10 }],
      gid: [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 1000, hostID: 300000, size: 10 }],
    });
    expect(planUserns(req({ uidmap: ['0:100000:1000'], gidmap: ['0:200000:10'] }), undefined)).toEqual({
      mode: 'private', source: 'fixed', idmap: { uid: [{ containerID: 0, hostID: 100000, size: 1000 }], gid: [{ containerID: 0, hostID: 200000, size: 10 }] },
    });
  });

  it.each([
    [{ userns: 'keep-id' }, /keep-id .* only to rootless Berth/],
    [{ userns: 'auto', uidmap: ['0:1:1'] }, /cannot be combined with --userns auto/],
    [{ gidmap: ['0:1:1'] }, /--gidmap was given without --uidmap/],
    [{ uidmap: ['0:1:0'] }, /size must be at least 1/],
    [{ uidmap: ['0:100000:10', '5:200000:10'] }, /overlap on the container side/],
    [{ uidmap: ['1:100000:10'] }, /leaves container id 0 \(root\) unmapped/],
    [{ userns: 'auto:size=0' }, /size "0"/],
  ] as [Partial<CreateRequest>, RegExp][])('refuses %j', (r, message) => {
    expect(() => planUserns(req(r), undefined)).toThrow(message);
    expect(() => planUserns(req(r), undefined)).toThrow(InvalidArgumentError);
  });
});

describe('checkUsernsCombination', () => {
  const userns = { mode: 'auto', source: 'auto' as const, size: 65536 };
  it.each([
    [{ privileged: true }, /privileged mode is incompatible with user namespaces/],
    [{ pid: 'host' }, /--pid host cannot be used with a user namespace/],
    [{ devices: ['/dev/null:/dev/mynull'] }, /renames the device/],
    [{ network: { networks: ['container:web'] } }, /--network container:web cannot be used with a user namespace/],
  ] as [Partial<CreateRequest>, RegExp][])('refuses %j in a user namespace, not without one', (r, message) => {
    expect(() => checkUsernsCombination(req(r), userns)).toThrow(message);
    expect(() => checkUsernsCombination(req(r), undefined)).not.toThrow();
  });
  it('lets the same device path through', () => {
    expect(() => checkUsernsCombination(req({ devices: ['/dev/null', '/dev/zero:/dev/zero:r'] }), userns)).not.toThrow();
  });
});

describe('hostIds', () => {
  it('maps, falls back to the mapped nobody, and is the identity without a namespace', () => {
    const idmap = { uid: [{ containerID: 0, hostID: 100000, size: 65536 }], gid: [{ containerID: 0, hostID: 200000, size: 65536 }] };
    expect(hostIds(idmap, 1000, 10)).toEqual({ uid: 101000, gid: 200010 });
    expect(hostIds(idmap, 70000, 0)).toEqual({ uid: 165534, gid: 200000 });
    expect(hostIds(undefined, 5, 6)).toEqual({ uid: 5, gid: 6 });
  });
});
