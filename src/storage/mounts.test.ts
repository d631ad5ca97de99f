import { expect, test } from 'vitest';
import { RuntimeError } from '../errors.js';
import { fuseOverlayOptions, overlayOptions, parseMountPoints } from './mounts.js';

test('parseMountPoints reads field 5 and decodes escapes', () => {
  const text = [
    '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '99 22 0:50 / /var/lib/berth/snapshots/a\\040b/merged rw - overlay overlay rw,lowerdir=l/x',
  ].join('\n') + '\n';
  expect(parseMountPoints(text)).toEqual(['/', '/var/lib/berth/snapshots/a b/merged']);
});

test('overlayOptions keeps the given order and adds upper/work only when writable', () => {
  expect(overlayOptions({ lower: ['l/top', 'l/bottom'], cwd: '/x' })).toBe('lowerdir=l/top:l/bottom');
  expect(overlayOptions({ lower: ['l/a'], upper: '/s/upper', work: '/s/work', cwd: '/x' })).toBe('lowerdir=l/a,upperdir=/s/upper,workdir=/s/work');
});

test('overlayOptions names a layer that recurs (two empty steps) once, at its topmost place', () => {
  expect(overlayOptions({ lower: ['l/empty', 'l/b', 'l/empty', 'l/empty', 'l/base'], cwd: '/x' })).toBe('lowerdir=l/empty:l/b:l/base');
});

test('overlayOptions fits 70 short links in a page and refuses what does not fit', () => {
  const short = Array.from({ length: 70 }, (_, i) => `l/${i.toString(16).padStart(16, '0')}`);
  expect(overlayOptions({ lower: short, cwd: '/x' }).length).toBeLessThan(4096);
  const long = Array.from({ length: 70 }, (_, i) => `/var/lib/berth/layers/${i.toString(16).padStart(64, '0')}/diff`);
  expect(() => overlayOptions({ lower: long, cwd: '/x' })).toThrow(RuntimeError);
});

test('overlayOptions refuses paths overlayfs would split', () => {
  expect(() => overlayOptions({ lower: ['a:b'], cwd: '/' })).toThrow(/':' or ','/);
  expect(() => overlayOptions({ lower: ['a'], upper: '/u,x', work: '/w', cwd: '/' })).toThrow(RuntimeError);
});

test('fuseOverlayOptions lets the container\'s other uids in, and keeps suid and devices as root only', () => {
  expect(fuseOverlayOptions({ lower: ['l/a', 'l/b', 'l/a'], upper: '/s/upper', work: '/s/work', cwd: '/x' }, false))
    .toBe('lowerdir=l/a:l/b,upperdir=/s/upper,workdir=/s/work,allow_other,suid,dev');
  expect(fuseOverlayOptions({ lower: ['l/a'], cwd: '/x' }, true)).toBe('lowerdir=l/a,allow_other');
  expect(() => fuseOverlayOptions({ lower: ['a,b'], cwd: '/' }, true)).toThrow(/':' or ','/);
});
