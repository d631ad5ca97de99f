import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const found = new Map<string, boolean>();

/** Whether an optional host tool (zstd, setfattr) is on PATH; probed once per process. */
export function hasCommand(name: string): boolean {
  let ok = found.get(name);
  if (ok === undefined) {
    ok = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => isExecutable(path.join(dir, name)));
    found.set(name, ok);
  }
  return ok;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
