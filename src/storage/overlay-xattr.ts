import { isRootless } from '../rootless/index.js';

/**
 * The xattr namespace overlayfs reads its own markers from (Documentation/filesystems/overlayfs.rst). As root
 * it is trusted.*; in a user namespace trusted.* cannot be written, and an overlay mounted there with
 * `userxattr` (Linux 5.11) reads user.overlay.* instead. Layers unpacked, uppers read and overlays mounted
 * by one store all use the same one: a rootless store is only ever used rootless.
 */
export interface OverlayXattrs {
  /** xattrs with this prefix are overlayfs' own: never taken from a layer, never written into one */
  readonly prefix: string;
  readonly opaque: string;
  /** extra mount options */
  readonly mountOptions: readonly string[];
}

const ROOTFUL: OverlayXattrs = { prefix: 'trusted.overlay.', opaque: 'trusted.overlay.opaque', mountOptions: [] };
const ROOTLESS: OverlayXattrs = { prefix: 'user.overlay.', opaque: 'user.overlay.opaque', mountOptions: ['userxattr'] };

export function overlayXattrs(rootless = isRootless()): OverlayXattrs {
  return rootless ? ROOTLESS : ROOTFUL;
}
