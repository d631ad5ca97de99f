import { promises as fsp, watch } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from './errors.js';
import type { StoreLayout } from './paths.js';

/** One thing that happened, as `docker events` shows it. */
export interface EngineEvent {
  time: string; // RFC 3339 nano
  type: 'container' | 'image' | 'network' | 'volume';
  action: string; // create, start, die, stop, kill, destroy, pause, unpause, rename, update, pull, tag, untag, delete, load, save, connect, disconnect
  id: string;
  attributes: Record<string, string>;
}

/**
 * The event log: one JSON line per event appended to <root>/events.jsonl. Small O_APPEND writes are
 * atomic, so concurrent berth processes interleave whole lines. `docker events` reads and follows it.
 */
export class EventLog {
  readonly file: string;
  constructor(layout: StoreLayout) {
    this.file = path.join(layout.root, 'events.jsonl');
  }

  async emit(type: EngineEvent['type'], action: string, id: string, attributes: Record<string, string> = {}): Promise<void> {
    const ev: EngineEvent = { time: nowNano(), type, action, id, attributes };
    await fsp.appendFile(this.file, JSON.stringify(ev) + '\n', { mode: 0o600 }).catch(() => {});
  }

  async *read(opts: { since?: number; until?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncIterable<EngineEvent> {
    let offset = 0;
    let pending = '';
    for (;;) {
      const fh = await fsp.open(this.file, 'r').catch(() => undefined);
      if (fh) {
        try {
          const { size } = await fh.stat();
          if (size > offset) {
            const buf = Buffer.alloc(size - offset);
            await fh.read(buf, 0, buf.length, offset);
            offset = size;
            pending += buf.toString('utf8');
          }
        } finally {
          await fh.close();
        }
      }
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        const ev = JSON.parse(line) as EngineEvent;
        const t = Date.parse(ev.time);
        if (opts.since !== undefined && t < opts.since) continue;
        if (opts.until !== undefined && t > opts.until) return;
        yield ev;
      }
      if (!opts.follow || opts.signal?.aborted) return;
      if (opts.until !== undefined && Date.now() > opts.until) return;
      await waitForChange(path.dirname(this.file), opts.signal);
    }
  }
}

function waitForChange(dir: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); w.close(); signal?.removeEventListener('abort', done); resolve(); };
    const w = watch(dir, done);
    const timer = setTimeout(done, 1000);
    signal?.addEventListener('abort', done);
  });
}

// Wall-clock nanoseconds: the monotonic clock anchored once to the wall clock, so times from one
// process never go backwards and agree with other processes' to the millisecond.
const epochNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** RFC 3339 with nanoseconds, as Docker prints times. */
export function nowNano(): string {
  const ns = epochNs + process.hrtime.bigint();
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return iso.replace(/\.\d{3}Z$/, `.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`);
}

const EVENT_FILTER_KEYS = ['type', 'event', 'container', 'image', 'label', 'network', 'volume'] as const;

/**
 * `docker events --filter`: values of one key are alternatives, different keys must all match, and
 * labels must all match (Docker's rule). A container's events carry its labels among their attributes.
 */
export function eventFilter(filters: readonly string[]): (ev: EngineEvent) => boolean {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    if (eq < 0 || !(EVENT_FILTER_KEYS as readonly string[]).includes(key)) {
      throw new InvalidArgumentError('--filter', `"${f}" is not KEY=VALUE with KEY one of ${EVENT_FILTER_KEYS.join(', ')}`, 'e.g. --filter type=container --filter event=start');
    }
    byKey.set(key, [...(byKey.get(key) ?? []), f.slice(eq + 1)]);
  }
  const named = (ev: EngineEvent, v: string) => ev.id === v || ev.id.startsWith(v) || ev.attributes.name === v;
  const test = (key: string, v: string, ev: EngineEvent): boolean => {
    switch (key) {
      case 'type': return ev.type === v;
      // moby #25798: event=health_status matches every `health_status: STATUS`
      case 'event': return ev.action === v || (v === 'health_status' && ev.action.startsWith('health_status: '));
      case 'container': return ev.type === 'container' && named(ev, v);
      case 'image': return (ev.type === 'container' && ev.attributes.image === v) || (ev.type === 'image' && named(ev, v));
      case 'network': return ev.type === 'network' && named(ev, v);
      case 'volume': return ev.type === 'volume' && named(ev, v);
      default: {
        const eq = v.indexOf('=');
        return eq < 0 ? v in ev.attributes : ev.attributes[v.slice(0, eq)] === v.slice(eq + 1);
      }
    }
  };
  return (ev) => [...byKey].every(([key, values]) => (key === 'label' ? values.every((v) => test(key, v, ev)) : values.some((v) => test(key, v, ev))));
}
