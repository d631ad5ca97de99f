import { InvalidArgumentError } from '../errors.js';
import { LIVE } from './context.js';
import type { ListedView } from './health.js';
import type { ListedRecord } from './catalog.js';
import { HEALTH_FILTER_VALUES } from './healthconfig.js';
import { ZERO_TIME, type ContainerRecord } from './record.js';
import { dockerStatus } from './state.js';

/* `ps --filter KEY=VALUE`, as Docker's: values of one key are alternatives, different keys must all match. */
const KEYS = ['id', 'name', 'label', 'status', 'exited', 'ancestor', 'network', 'before', 'since', 'publish', 'expose', 'volume', 'health'] as const;
type Key = (typeof KEYS)[number];

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

export interface ContainerFilters {
  /** the values of each key given, checked */
  readonly values: ReadonlyMap<Key, readonly string[]>;
  /** name=: regular expressions (Docker's are Go's; the common subset reads the same here) */
  readonly names: readonly RegExp[];
  /** publish= and expose=: "80/tcp" forms, ranges expanded */
  readonly publish: ReadonlySet<string>;
  readonly expose: ReadonlySet<string>;
}

/** The other containers `before=`/`since=` name, resolved by the caller: their creation times. */
export interface FilterBounds {
  before?: readonly string[];
  since?: readonly string[];
}

export function parseFilters(list: readonly string[]): ContainerFilters {
  const values = new Map<Key, string[]>();
  const names: RegExp[] = [];
  const publish = new Set<string>();
  const expose = new Set<string>();
  for (const f of list) {
    const i = f.indexOf('=');
    if (i < 1) throw new InvalidArgumentError('--filter', `"${f}" is not KEY=VALUE`);
    const k = f.slice(0, i);
    const v = f.slice(i + 1);
    if (!(KEYS as readonly string[]).includes(k)) throw new InvalidArgumentError('--filter', `invalid filter '${k}'`, `use one of ${KEYS.join(', ')}`);
    const key = k as Key;
    switch (key) {
      case 'name': names.push(nameRegExp(v)); break;
      case 'status':
        if (!STATUSES.includes(v)) throw new InvalidArgumentError('--filter', `invalid filter 'status=${v}'`, `a status is one of ${STATUSES.join(', ')}`);
        break;
      case 'exited':
        if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError('--filter', `invalid filter 'exited=${v}'`, 'exited= takes an exit code, a number');
        break;
      case 'publish': case 'expose': for (const p of portSet(key, v)) (key === 'publish' ? publish : expose).add(p); break;
      case 'health':
        if (!(HEALTH_FILTER_VALUES as readonly string[]).includes(v)) {
          throw new InvalidArgumentError('--filter', `Unrecognised filter value for health: ${v}`, `use one of ${HEALTH_FILTER_VALUES.join(', ')}`);
        }
        break;
      case 'before': case 'since': case 'volume': case 'id': case 'ancestor': case 'network': case 'label':
        if (!v) throw new InvalidArgumentError('--filter', `${key}= needs a value`);
        break;
    }
    values.set(key, [...(values.get(key) ?? []), v]);
  }
  return { values, names, publish, expose };
}

/** Go's `(?i)` prefix is the one RE2 flag people write; JavaScript takes it as a flag. */
function nameRegExp(v: string): RegExp {
  const insensitive = v.startsWith('(?i)');
  try {
    return new RegExp(insensitive ? v.slice(4) : v, insensitive ? 'i' : '');
  } catch (err) {
    throw new InvalidArgumentError('--filter', `name=${v} is not a regular expression: ${(err as Error).message}`, 'name= takes a regular expression, e.g. name=^web$', { cause: err });
  }
}

/** "80", "80/udp", "8000-8010/tcp" → the ports it names, as "80/tcp" (Docker refuses a host address in them). */
function portSet(key: string, v: string): string[] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/.exec(v);
  const first = Number(m?.[1]);
  const last = m?.[2] !== undefined ? Number(m[2]) : first;
  if (!m || first < 1 || last > 65535 || first > last) {
    throw new InvalidArgumentError('--filter', `${key}=${v} is not a port or a port range`, `e.g. ${key}=80, ${key}=80/udp or ${key}=8000-8080/tcp`);
  }
  const out: string[] = [];
  for (let p = first; p <= last; p++) out.push(`${p}/${m[3] ?? 'tcp'}`);
  return out;
}

export function matchesFilters(r: ListedView, f: ContainerFilters, bounds: FilterBounds = {}): boolean {
  if (f.names.length && !f.names.some((re) => re.test(r.name) || re.test(`/${r.name}`))) return false;
  if (bounds.before?.some((t) => !(r.created < t))) return false;
  if (bounds.since?.some((t) => !(r.created > t))) return false;
  // Docker matches both against the ports a live container shows: published ones by their host port,
  // exposed ones (published or not) by the container's port.
  const live = LIVE.has(r.state);
  if (f.publish.size && !(live && r.ports.some((p) => f.publish.has(`${p.hostPort}/${p.protocol}`)))) return false;
  if (f.expose.size && !(live && exposedPorts(r).some((p) => f.expose.has(p)))) return false;
  for (const [k, values] of f.values) {
    // As Docker: several values of one key are alternatives, except labels, which must all match.
    const ok = (k === 'label' ? values.every.bind(values) : values.some.bind(values))((v) => {
      switch (k) {
        case 'id': return r.id.startsWith(v);
        case 'status': return dockerStatus(r.state, r.startedAt !== ZERO_TIME) === v;
        case 'exited': return r.state === 'exited' && r.exitCode === Number(v);
        case 'ancestor': return r.config.image === v || r.config.imageId === v || r.config.imageId.replace('sha256:', '').startsWith(v);
        case 'network': return r.networks.some((n) => n.network === v) || networkNames(r).includes(v);
        case 'volume': return mountsOf(r).some((m) => m.source === v || m.destination === v || m.name === v);
        case 'health': return (r.health?.Status ?? 'none') === v;
        case 'label': {
          const eq = v.indexOf('=');
          const [lk, lv] = eq < 0 ? [v, undefined] : [v.slice(0, eq), v.slice(eq + 1)];
          return lk in r.config.labels && (lv === undefined || r.config.labels[lk] === lv);
        }
        default: return true; // name, before, since, publish, expose: matched above
      }
    });
    if (!ok) return false;
  }
  return true;
}

/** The ports a container exposes: its image's ExposedPorts and every port it publishes (Docker adds those). */
export function exposedPorts(r: ListedRecord): string[] {
  return [
    ...Object.keys(r.config.imageConfig.ExposedPorts ?? {}).map((p) => (p.includes('/') ? p : `${p}/tcp`)),
    ...(r.config.exposedPorts ?? []),
    ...r.config.network.ports.map((p) => `${p.containerPort}/${p.protocol}`),
    ...r.ports.map((p) => `${p.containerPort}/${p.protocol}`),
  ];
}

/** Docker's volume filter matches a mount by its volume's name, its source or its destination. */
function mountsOf(r: ListedRecord): { source: string; destination: string; name?: string }[] {
  return r.config.mounts ?? r.config.spec.mounts.user.filter((m) => m.type === 'bind').map((m) => ({ source: m.source ?? '', destination: m.destination }));
}

/** The networks a container's config names (what `--filter network=` matches before it runs). */
function networkNames(r: ListedRecord): string[] {
  const mode = r.config.network.mode;
  return mode.kind === 'networks' ? mode.networks.flatMap((n) => [n.name, n.id]) : [mode.kind];
}
