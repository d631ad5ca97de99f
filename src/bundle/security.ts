import { InvalidArgumentError } from '../errors.js';

export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** default: Berth's profile; unconfined: none; file: the profile text given in the input */
  seccomp: 'default' | 'unconfined' | 'file';
  /** Options accepted for Docker compatibility that Berth does not apply (AppArmor, SELinux labels). */
  ignored: string[];
}

/**
 * --security-opt, in Docker's forms: KEY=VALUE or the legacy KEY:VALUE; no-new-privileges with an optional
 * boolean. Values are checked here, so a typo fails at create, not inside runc.
 */
export function parseSecurityOpts(opts: readonly string[]): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: false, seccomp: 'default', ignored: [] };
  for (const opt of opts) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(opt.trim());
    const key = m?.[1];
    const value = m?.[2];
    if (key === 'no-new-privileges') {
      out.noNewPrivileges = parseBool(opt, value ?? 'true');
    } else if (key === 'seccomp' && value) {
      out.seccomp = value === 'unconfined' ? 'unconfined' : value === 'builtin' ? 'default' : 'file';
    } else if ((key === 'apparmor' || key === 'label') && value) {
      out.ignored.push(opt);
    } else {
      throw new InvalidArgumentError('--security-opt', `invalid --security-opt: "${opt}"`,
        'use no-new-privileges[:true|false], seccomp=unconfined|PATH, apparmor=..., label=...');
    }
  }
  return out;
}

function parseBool(opt: string, value: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new InvalidArgumentError('--security-opt', `invalid --security-opt: "${opt}"`, 'no-new-privileges takes true or false');
}
