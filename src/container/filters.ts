import { InvalidArgumentError } from '../errors.js';
import type { RecordView } from './health.js';
import { HEALTH_FILTER_VALUES } from './healthconfig.js';
import { ZERO_TIME } from './record.js';
import { dockerStatus } from './state.js';

/** `ps --filter KEY=VALUE`: values of one key are alternatives, different keys must all match (docker). */
export function parseFilters(list: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const f of list) {
    const i = f.indexOf('=');
    if (i < 1) throw new InvalidArgumentError('--filter', `"${f}" is not KEY=VALUE`);
    const k = f.slice(0, i);
    if (!['id', 'name', 'label', 'status', 'exited', 'ancestor', 'network', 'health'].includes(k)) throw new InvalidArgumentError('--filter', `invalid filter '${k}'`);
    if (k === 'health' && !(HEALTH_FILTER_VALUES as readonly string[]).includes(f.slice(i + 1))) {
      throw new InvalidArgumentError('--filter', `Unrecognised filter value for health: ${f.slice(i + 1)}`, `use one of ${HEALTH_FILTER_VALUES.join(', ')}`);
    }
    m.set(k, [...(m.get(k) ?? []), f.slice(i + 1)]);
  }
  return m;
}

export function matchesFilters(r: RecordView, filters: Map<string, string[]>): boolean {
  for (const [k, values] of filters) {
    const ok = values.some((v) => {
      switch (k) {
        case 'id': return r.id.startsWith(v);
        case 'name': return r.name.includes(v);
        case 'status': return dockerStatus(r.state, r.startedAt !== ZERO_TIME) === v;
        case 'health': return (r.health?.Status ?? 'none') === v;
        case 'exited': return r.state === 'exited' && String(r.exitCode) === v;
        case 'ancestor': return r.config.image === v || r.config.imageId === v || r.config.imageId.replace('sha256:', '').startsWith(v);
        case 'network': return r.networks.some((n) => n.network === v) || networkNames(r).includes(v);
        case 'label': {
          const [lk, lv] = v.split('=');
          return lk! in r.config.labels && (lv === undefined || r.config.labels[lk!] === lv);
        }
        default: return false;
      }
    });
    if (!ok) return false;
  }
  return true;
}

/** The networks a container's config names (what `--filter network=` matches before it runs). */
function networkNames(r: RecordView): string[] {
  const mode = r.config.network.mode;
  return mode.kind === 'networks' ? mode.networks.flatMap((n) => [n.name, n.id]) : [mode.kind];
}
