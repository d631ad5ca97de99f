import path from 'node:path';
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

/** name → value, per path relative to the root that was read. */
export type Xattrs = Map<string, Record<string, Buffer>>;

/**
 * Every xattr under `root` (one `getfattr -R` call), or only those of `rels` (paths relative to it), links
 * never followed; `match` (getfattr's -m regular expression) picks the names. Keyed by relative path.
 */
export async function readXattrs(root: string, rels?: readonly string[], match = '-'): Promise<Xattrs> {
  const targets = rels ? rels.map((r) => path.join(root, r)) : [root];
  if (!targets.length) return new Map();
  const { stdout } = await run('getfattr', [...(rels ? [] : ['-R']), '-P', '-h', '--absolute-names', '-d', '-m', match, '-e', 'base64', '--', ...targets], { timeout: 300_000 });
  const out: Xattrs = new Map();
  let rel: string | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) rel = path.relative(root, unquote(line.slice(8)));
    else if (rel !== undefined && line.includes('=')) {
      const eq = line.indexOf('=');
      const name = unquote(line.slice(0, eq));
      const value = line.slice(eq + 1);
      const buf = value.startsWith('0s') ? Buffer.from(value.slice(2), 'base64') : Buffer.from(value.replace(/^"|"$/g, ''));
      const rec = out.get(rel) ?? {};
      rec[name] = buf;
      out.set(rel, rec);
    }
  }
  return out;
}

/** getfattr's quoting: \ooo for unsafe bytes. */
export function unquote(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 1 && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else bytes.push(raw[i]!);
  }
  return Buffer.from(bytes).toString('utf8');
}

