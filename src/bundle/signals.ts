import { InvalidArgumentError } from '../errors.js';

/** Linux signal numbers (x86 and arm share them; signal(7)). */
const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21,
  TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};
const RTMIN = 34;
const RTMAX = 64;

export interface Signal {
  /** Canonical name: SIGTERM, SIGRTMIN+3 */
  name: string;
  number: number;
}

/** A signal as Docker accepts it: SIGTERM, TERM, term, 15, RTMIN+3, SIGRTMAX-1. */
export function parseSignal(field: string, text: string): Signal {
  const s = text.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > RTMAX) throw new InvalidArgumentError(field, `invalid signal: ${text}`, `signal numbers go from 1 to ${RTMAX}`);
    return { name: signalName(n), number: n };
  }
  const bare = s.toUpperCase().replace(/^SIG/, '');
  const number = SIGNALS[bare] ?? realtime(bare);
  if (number === undefined) throw new InvalidArgumentError(field, `invalid signal: ${text}`, 'use a name like SIGTERM or a number');
  return { name: signalName(number), number };
}

function realtime(bare: string): number | undefined {
  const m = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(bare);
  if (!m) return undefined;
  const offset = m[3] ? Number(m[3]) * (m[2] === '+' ? 1 : -1) : 0;
  const n = (m[1] === 'MIN' ? RTMIN : RTMAX) + offset;
  return n >= RTMIN && n <= RTMAX ? n : undefined;
}

function signalName(n: number): string {
  const named = Object.entries(SIGNALS).find(([k, v]) => v === n && k !== 'IOT' && k !== 'POLL');
  if (named) return `SIG${named[0]}`;
  if (n >= RTMIN && n <= RTMAX) return n === RTMIN ? 'SIGRTMIN' : `SIGRTMIN+${n - RTMIN}`;
  return String(n);
}
