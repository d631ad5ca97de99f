import { InvalidArgumentError } from '../errors.js';
import type { POSIXRlimit } from '../../runtime-spec/types.js';

const NAMES = ['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc',
  'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/**
 * --ulimit NAME=SOFT[:HARD]. Only what the user asks for goes into the spec (Docker writes no rlimits by
 * default), and never more than `ceilings` (the hard limits of the process that starts runc), because
 * runc's setrlimit fails with EPERM above them (MACHINE-NOTES.md).
 */
export function parseUlimits(specs: readonly string[], ceilings: Record<string, number>): POSIXRlimit[] {
  const byType = new Map<string, POSIXRlimit>();
  for (const text of specs) {
    const limit = parseUlimit(text);
    const ceiling = ceilings[limit.type];
    if (ceiling !== undefined && limit.hard > ceiling) {
      throw new InvalidArgumentError('--ulimit', `${text}: the hard limit ${limit.hard} is above this host's ceiling of ${ceiling} for ${limit.type}`,
        `ask for at most ${ceiling}; raising the ceiling needs CAP_SYS_RESOURCE`);
    }
    byType.set(limit.type, limit);
  }
  return [...byType.values()];
}

function parseUlimit(text: string): POSIXRlimit {
  const m = /^([a-z]+)=(\d+)(?::(\d+))?$/.exec(text.trim());
  if (!m) {
    throw new InvalidArgumentError('--ulimit', `"${text}" is not NAME=SOFT[:HARD]`, 'e.g. nofile=1024:2048; "unlimited" and -1 are not supported');
  }
  const [, name = '', softText = '', hardText] = m;
  if (!NAMES.includes(name)) throw new InvalidArgumentError('--ulimit', `unknown ulimit "${name}" in "${text}"`, `use one of ${NAMES.join(', ')}`);
  const soft = Number(softText);
  const hard = hardText === undefined ? soft : Number(hardText);
  if (!Number.isSafeInteger(soft) || !Number.isSafeInteger(hard)) throw new InvalidArgumentError('--ulimit', `"${text}" is too large`);
  if (soft > hard) throw new InvalidArgumentError('--ulimit', `${text}: the soft limit ${soft} is above the hard limit ${hard}`);
  return { type: `RLIMIT_${name.toUpperCase()}`, soft, hard };
}
