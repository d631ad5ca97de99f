import { describe, expect, it } from 'vitest';
import { parseDevice } from './devices.js';

const devices = {
  '/dev/fuse': { type: 'c' as const, major: 10, minor: 229, uid: 0, gid: 0, fileMode: 0o20666 },
  '/dev/sda': { type: 'b' as const, major: 8, minor: 0, uid: 0, gid: 6, fileMode: 0o660 },
};

describe('parseDevice', () => {
  it('maps a host device to the same path with rwm by default', () => {
    expect(parseDevice('/dev/fuse', devices)).toEqual({
      device: { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
      rule: { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
    });
  });

  it('takes a container path and permissions; a second field of r/w/m only is permissions', () => {
    expect(parseDevice('/dev/sda:/dev/xvda:r', devices)).toMatchObject({ device: { path: '/dev/xvda', type: 'b' }, rule: { access: 'r' } });
    expect(parseDevice('/dev/sda:rw', devices)).toMatchObject({ device: { path: '/dev/sda' }, rule: { access: 'rw' } });
    expect(parseDevice('/dev/sda:/dev/disk', devices)).toMatchObject({ device: { path: '/dev/disk' }, rule: { access: 'rwm' } });
  });

  it('refuses bad permissions, relative paths and unknown devices', () => {
    expect(() => parseDevice('/dev/sda:/dev/x:rx', devices)).toThrow('bad permissions "rx"');
    expect(() => parseDevice('/dev/sda:disk', devices)).toThrow('device paths must be absolute');
    expect(() => parseDevice('/dev/nope', devices)).toThrow('invalid --device: /dev/nope: device numbers unknown');
  });
});
