/**
 * mount(2) and umount2(2) called in this process, through libc.
 *
 * Every container run mounts its rootfs and unmounts it again, and a networked one unmounts its netns file.
 * Run as mount(8)/umount(8), each is a fork of the engine's process plus a program's start, on the path a
 * user waits for (issue #20: about 12 ms a pair on a busy machine, against 0.1 ms for the two system calls).
 * Node has no binding for these calls, so they go through koffi, a maintained FFI package with prebuilt
 * binaries; only its native module is used (`load`, `func`, `errno`), loaded on first use.
 *
 * Where that module cannot be loaded (another architecture, a copied tree without it) or BERTH_MOUNT_HELPER=1
 * asks for it, `syscalls()` says so with undefined and callers run mount(8) and umount(8) as before: the
 * two paths do the same thing, and the tests run both.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './exec.js';

/** umount2(2) flags. */
export const MNT_DETACH = 2;
/** mount(2) flags. */
export const MS_BIND = 4096;

export interface Syscalls {
  /** Rejects with a SyscallError naming the call, its target and errno. */
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): Promise<void>;
  umount(target: string, flags: number): Promise<void>;
}

/** A failed system call: `code` is errno's name (EBUSY, EINVAL, ...), as Node's own errors carry it. */
export class SyscallError extends Error {
  constructor(readonly syscall: string, readonly target: string, readonly errno: number, readonly code: string) {
    super(`${syscall} ${target}: ${code}`);
  }
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

type Native = ((...args: unknown[]) => number) & { async(...argsAndCallback: unknown[]): void };

interface Koffi {
  load(lib: string): { func(decl: string): Native };
  errno(): number;
}

let loaded: Syscalls | null | undefined;

export function syscalls(): Syscalls | undefined {
  if (loaded === undefined) loaded = process.env.BERTH_MOUNT_HELPER === '1' ? null : load();
  return loaded ?? undefined;
}

function load(): Syscalls | null {
  const koffi = nativeModule();
  if (!koffi) return null;
  try {
    const libc = koffi.load('libc.so.6');
    const mount = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
    const umount2 = libc.func('int umount2(const char *target, int flags)');
    // On koffi's worker threads: unmounting an overlay waits for the kernel (an RCU grace period, 10-60 ms
    // here), which must not stall the event loop of a service serving other requests meanwhile. errno
    // belongs to the thread that made the call, so a failed call is made again on this one to read it
    // (failing again at once: a failed mount or umount changes nothing).
    const call = (fn: Native, name: string, target: string, args: unknown[]) => new Promise<void>((resolve, reject) => {
      fn.async(...args, (err: unknown, rc: number) => {
        if (!err && rc === 0) return resolve();
        if (fn(...args) === 0) return resolve();
        const errno = koffi.errno();
        reject(new SyscallError(name, target, errno, ERRNO_NAMES.get(errno) ?? `errno ${errno}`));
      });
    });
    return {
      mount: (source, target, fstype, flags, data) => call(mount, 'mount', target, [source, target, fstype, flags, data]),
      umount: (target, flags) => call(umount2, 'umount2', target, [target, flags]),
    };
  } catch {
    return null;
  }
}

/**
 * koffi's native module: beside the bundle (scripts/bundle-cli.mjs copies it to dist/cli/koffi.node), or
 * from its platform package in node_modules when Berth runs unbundled (tests, the API from dist/src).
 */
function nativeModule(): Koffi | undefined {
  const here = fileURLToPath(import.meta.url);
  const require = createRequire(here);
  const triple = `${process.platform}_${process.arch}`;
  const candidates = [
    path.join(path.dirname(here), 'koffi.node'),
    () => require.resolve(`@koromix/koffi-${process.platform}-${process.arch}/${triple}/koffi.node`),
  ];
  for (const candidate of candidates) {
    try {
      const file = typeof candidate === 'string' ? candidate : candidate();
      if (existsSync(file)) return require(file) as Koffi;
    } catch {
      // not installed for this platform, or not loadable here: try the next, then the helpers
    }
  }
  return undefined;
}

/** umount2(2) in-process, or umount(8) where the module is not there; `lazy` detaches a busy mount. */
export async function umountOnce(target: string, lazy: boolean): Promise<void> {
  const sys = syscalls();
  if (sys) await sys.umount(target, lazy ? MNT_DETACH : 0);
  else await run('umount', lazy ? ['-l', target] : [target]);
}

/** `mount --bind source target`, in-process where it can be. */
export async function bindMount(source: string, target: string): Promise<void> {
  const sys = syscalls();
  if (sys) await sys.mount(source, target, null, MS_BIND, null);
  else await run('mount', ['--bind', source, target]);
}
