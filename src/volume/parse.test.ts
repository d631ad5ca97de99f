import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parseMountFlag, parseVolumeFlag, parseVolumesFrom, planMounts } from './parse.js';

describe('-v', () => {
  it('tells anonymous, named and bind apart, with Docker\'s modes', () => {
    expect(parseVolumeFlag('/data/')).toMatchObject({ type: 'volume', destination: '/data', anonymous: true, copyUp: true });
    expect(parseVolumeFlag('vol:/data')).toMatchObject({ type: 'volume', name: 'vol', mode: 'z', rw: true, copyUp: true });
    expect(parseVolumeFlag('vol:/data:ro,nocopy')).toMatchObject({ name: 'vol', mode: 'ro,nocopy', rw: false, copyUp: false });
    expect(parseVolumeFlag('/h//x:/d:rshared,Z')).toMatchObject({ type: 'bind', source: '/h/x', propagation: 'rshared', rw: true, createSource: true });
  });

  it.each([
    ['..:/x', /invalid characters/], ['a/b:/x', /invalid characters/], ['x:/d', /invalid characters/], ['./r:/x', /invalid characters/],
    ['/h:rel', /absolute/], ['/h:/', /root/], ['/h:/proc/sys', /\/proc/], ['/h:/x:nocopy', /invalid mode/],
    ['v:/x:rshared', /invalid mode/], ['/h:/x:ro,rw', /both/], ['/h:/x:shared,slave', /more than one/], ['a:b:c:d', /SOURCE/], [':/x', /SOURCE/],
  ])('refuses %s', (spec, message) => {
    expect(() => parseVolumeFlag(spec)).toThrow(InvalidArgumentError);
    expect(() => parseVolumeFlag(spec)).toThrow(message);
  });
});

describe('--mount', () => {
  it('parses each type', () => {
    expect(parseMountFlag('type=bind,src=/h,dst=/c,readonly,bind-propagation=rslave')).toMatchObject({ type: 'bind', source: '/h', rw: false, propagation: 'rslave', mode: '' });
    expect(parseMountFlag('type=bind,src=/h,dst=/c').createSource).toBeUndefined();
    expect(parseMountFlag('source=v1,target=/c,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b')).toMatchObject({
      type: 'volume', name: 'v1', copyUp: false, create: { options: { type: 'tmpfs' }, labels: { a: 'b' } },
    });
    expect(parseMountFlag('type=volume,dst=/c')).toMatchObject({ anonymous: true });
    expect(parseMountFlag('type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1777')).toMatchObject({ type: 'tmpfs', tmpfsOptions: ['size=64m', 'mode=1777'] });
  });

  it.each([
    ['type=bind,dst=/c', /needs a source/], ['type=bind,src=rel,dst=/c', /absolute/], ['type=tmpfs,src=x,dst=/t', /source is not supported/],
    ['type=volume,dst=/c,bind-propagation=shared', /cannot mix/], ['type=nfs,dst=/c', /unknown mount type/], ['type=volume', /no target/],
    ['type=volume,dst=/c,colour=red', /unexpected key/], ['type=tmpfs,dst=/t,tmpfs-size=lots', /tmpfs-size/],
  ])('refuses %s', (spec, message) => {
    expect(() => parseMountFlag(spec)).toThrow(message);
  });
});

describe('planMounts', () => {
  const from = [{ mounts: [parseVolumeFlag('shared:/s'), parseVolumeFlag('/h:/b')], rw: false }];

  it('takes volumes-from first, lets -v replace them, and adds image VOLUMEs nothing covers', () => {
    const planned = planMounts({ volumes: ['mine:/b'], tmpfs: ['/t:size=1m'], volumesFrom: from, imageVolumes: ['/s', '/t', '/new', 'rel'] });
    expect(planned.map((m) => `${m.type} ${m.destination} ${m.name ?? m.source} ${m.rw}`)).toEqual([
      'volume /s shared false', 'volume /b mine true', 'volume /new  true', 'volume /rel  true',
    ]);
    // a shared volume is never filled again by the container that borrows it
    expect(planned[0]!.copyUp).toBeUndefined();
  });

  it('refuses two mounts at one place', () => {
    expect(() => planMounts({ volumes: ['/a:/x'], mounts: ['type=volume,dst=/x/'] })).toThrow(/duplicate mount point/);
    expect(() => planMounts({ volumes: ['/a:/x'], tmpfs: ['/x'] })).toThrow(/duplicate mount point/);
  });

  it('reads --volumes-from modes', () => {
    expect(parseVolumesFrom('c1')).toEqual({ container: 'c1' });
    expect(parseVolumesFrom('c1:ro')).toEqual({ container: 'c1', rw: false });
    expect(() => parseVolumesFrom('c1:z')).toThrow(/CONTAINER/);
  });
});

describe('-v :U and :idmap (podman)', () => {
  it('marks :U binds and volumes for a chown at start', () => {
    expect(parseVolumeFlag('/srv/d:/d:U')).toMatchObject({ type: 'bind', source: '/srv/d', chown: true, rw: true });
    expect(parseVolumeFlag('vol:/d:ro,U')).toMatchObject({ type: 'volume', name: 'vol', chown: true, rw: false });
    expect(parseVolumeFlag('/srv/d:/d').chown).toBeUndefined();
  });
  it('refuses :idmap, which runc 1.1 cannot do', () => {
    expect(() => parseVolumeFlag('/srv/d:/d:idmap')).toThrow(/idmap needs idmapped mounts/);
  });
});
