import { run } from '../util/exec.js';

export interface XattrSet {
  /** relative to the layer root; '' is the root */
  path: string;
  name: string;
  value: Buffer;
}

/**
 * One `setfattr --restore` call sets every xattr of a layer: spawning a process per file would cost more
 * than unpacking it. `-h` sets them on symlinks themselves, never on what they point to.
 */
export async function applyXattrs(root: string, items: readonly XattrSet[]): Promise<void> {
  if (!items.length) return;
  await run('setfattr', ['-h', '--restore=-'], { cwd: root, input: restoreScript(items), timeout: 300_000 });
}

/** getfattr's dump format, which `setfattr --restore` reads; values as base64 ("0s") so any bytes survive. */
export function restoreScript(items: readonly XattrSet[]): string {
  return items.map((x) => `# file: ${quote(x.path || '.')}\n${quote(x.name)}=0s${x.value.toString('base64')}\n`).join('\n');
}

/** attr's quote(): every byte but a safe few as \ooo, which its unquote() turns back into the byte. */
export function quote(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._/+:@-]/.test(c) ? c : '\\' + byte.toString(8).padStart(3, '0');
  }
  return out;
}
