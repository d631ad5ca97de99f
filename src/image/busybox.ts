import { promises as fsp } from 'node:fs';
import { BadStateError, NotFoundError } from '../errors.js';
import { BUSYBOX_PATH } from '../host.js';
import { run } from '../util/exec.js';
import { ociArchitecture, type OciImageConfig } from './oci.js';
import { packTar, type TarPack } from './tarball.js';
import type { Digest } from '../ids.js';

/**
 * The embedded default image: the host's busybox-static as a one-layer image, so that `berth run
 * busybox` works with no registry. Every timestamp is fixed, so the same busybox binary always gives
 * the same layer, config and image ID.
 */
export const DEFAULT_IMAGE = 'localhost/busybox:latest';

/** The names that mean the embedded default image, built on first use (as docker pulls on first use). */
export function isDefaultImageRef(ref: string): boolean {
  return /^(localhost\/)?busybox(:latest)?$/.test(ref);
}
const PACKAGE_HINT = 'install the Debian package busybox-static: apt-get install -y busybox-static';
const BUILT = new Date('2024-01-01T00:00:00Z');

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'bin:x:2:2:bin:/bin:/bin/false',
  'sys:x:3:3:sys:/dev:/bin/false',
  'www-data:x:33:33:www-data:/var/www:/bin/false',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
];
const GROUP = [
  'root:x:0:', 'daemon:x:1:', 'bin:x:2:', 'sys:x:3:', 'adm:x:4:', 'tty:x:5:', 'disk:x:6:', 'wheel:x:10:root',
  'www-data:x:33:', 'staff:x:50:', 'users:x:100:', 'nogroup:x:65534:',
];
const DIRS: [string, number][] = [
  ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['proc', 0o555], ['root', 0o700], ['run', 0o755],
  ['sbin', 0o755], ['sys', 0o555], ['tmp', 0o1777], ['usr', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755],
  ['var', 0o755], ['var/tmp', 0o1777], ['var/www', 0o755],
];

/** The layer as an uncompressed tar, built in memory (busybox is ~2 MB). */
export async function buildBusyboxLayer(binary = BUSYBOX_PATH): Promise<Buffer> {
  const bin = await readStaticBinary(binary);
  const applets = (await run(binary, ['--list-full'], { timeout: 10_000 })).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  return packTar((pack) => {
    const base = { uid: 0, gid: 0, mtime: BUILT };
    const taken = new Set<string>();
    const add = (header: Parameters<TarPack['entry']>[0], body?: Buffer | string) => {
      taken.add(header.name);
      pack.entry({ ...base, ...header }, body ?? '');
    };
    for (const [name, mode] of DIRS) add({ name, type: 'directory', mode });
    add({ name: 'bin/busybox', type: 'file', mode: 0o755 }, bin);
    add({ name: 'etc/passwd', type: 'file', mode: 0o644 }, PASSWD.join('\n') + '\n');
    add({ name: 'etc/group', type: 'file', mode: 0o644 }, GROUP.join('\n') + '\n');
    // Hard links, as Docker's busybox image has them; an applet path that is already taken is skipped.
    for (const applet of applets) {
      if (taken.has(applet) || !/^(bin|sbin|usr\/bin|usr\/sbin)\/[^/]+$/.test(applet)) continue;
      add({ name: applet, type: 'link', linkname: 'bin/busybox', mode: 0o755 });
    }
  });
}

export function busyboxConfig(diffId: Digest): OciImageConfig {
  const created = BUILT.toISOString();
  return {
    created,
    architecture: ociArchitecture(),
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: `berth: ${BUSYBOX_PATH} of the host (busybox-static) with its applet links, /etc/passwd, /etc/group` }],
  };
}

async function readStaticBinary(file: string): Promise<Buffer> {
  let bin: Buffer;
  try {
    bin = await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('file', `${file} (from the Debian package busybox-static)`, PACKAGE_HINT, { cause: err });
    throw err;
  }
  if (hasInterpreter(bin)) throw new BadStateError(`${file} is dynamically linked and would not run inside a container`, PACKAGE_HINT);
  return bin;
}

/** A PT_INTERP program header means the binary needs a dynamic loader (64-bit little-endian ELF). */
function hasInterpreter(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 <= elf.length && elf.readUInt32LE(off) === 3) return true;
  }
  return false;
}
