import { describe, expect, it } from 'vitest';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { chooseDriver, parseStorageDriver, type DriverFacts } from './driver.js';

const facts = (over: Partial<DriverFacts> & { native?: boolean }): DriverFacts & { probes: number } => {
  const f = { rootless: false, fuseInstalled: true, probes: 0, nativeMounts: async () => { f.probes++; return over.native ?? true; }, ...over };
  return f;
};

describe('parseStorageDriver', () => {
  it('takes overlay, fuse-overlayfs and auto, and overlay2 as overlay', () => {
    expect(['overlay', 'overlay2', 'fuse-overlayfs', 'auto'].map((v) => parseStorageDriver(v, '--storage-driver'))).toEqual(['overlay', 'overlay', 'fuse-overlayfs', 'auto']);
  });
  it('refuses anything else, naming the flag and the drivers', () => {
    expect(() => parseStorageDriver('vfs', '--storage-driver')).toThrow(InvalidArgumentError);
    expect(() => parseStorageDriver('vfs', '--storage-driver')).toThrow(/invalid --storage-driver: "vfs" is not a storage driver: Berth has overlay .* and fuse-overlayfs/);
  });
});

describe('chooseDriver', () => {
  it('as root, auto is the kernel overlay without probing', async () => {
    const f = facts({ rootless: false });
    expect(await chooseDriver('auto', f)).toBe('overlay');
    expect(f.probes).toBe(0);
  });
  it('rootless, auto is overlay where it mounts, else fuse-overlayfs', async () => {
    expect(await chooseDriver('auto', facts({ rootless: true, native: true }))).toBe('overlay');
    expect(await chooseDriver('auto', facts({ rootless: true, native: false }))).toBe('fuse-overlayfs');
  });
  it('refuses, naming the package, when the fallback is needed and missing', async () => {
    const err = await chooseDriver('auto', facts({ rootless: true, native: false, fuseInstalled: false })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadStateError);
    expect((err as BadStateError).message).toMatch(/cannot mount overlayfs in a user namespace, and fuse-overlayfs is not installed/);
    expect((err as BadStateError).hint).toContain('apt-get install fuse-overlayfs');
  });
  it('takes an explicit choice as given, as root too, and never probes for it', async () => {
    const f = facts({ rootless: true, native: false });
    expect(await chooseDriver('overlay', f)).toBe('overlay');
    expect(await chooseDriver('fuse-overlayfs', facts({ rootless: false }))).toBe('fuse-overlayfs');
    expect(f.probes).toBe(0);
    await expect(chooseDriver('fuse-overlayfs', facts({ fuseInstalled: false }))).rejects.toThrow(/fuse-overlayfs was chosen, and fuse-overlayfs is not installed/);
  });
});
