import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineApi, EngineEvent, EngineOptions, ContainersApi, ImagesApi, NetworksApi, SystemApi, CreateRequest, RunOptions } from './types.js';
import { ContainerManager } from '../container/index.js';
import { probeHost, type HostFacts } from '../host.js';
import { openImageStore } from '../image/index.js';
import { openNetworkManager } from '../network/index.js';
import { hostNames, resolveLayout, type StoreLayout } from '../paths.js';
import { createRuntime } from '../runtime/index.js';
import { openStorage } from '../storage/index.js';
import * as bundle from '../bundle/index.js';
import { InvalidArgumentError } from '../errors.js';

/** bin/berth.js of this package, found from this module whether it runs from src/ (tests) or dist/src/. */
function berthBin(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'bin', 'berth.js'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find bin/berth.js above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return path.join(dir, 'bin', 'berth.js');
}

/**
 * The engine: one store (root + runroot) and the layers over it. Cheap to construct; nothing touches the
 * host until a method is called, so `new Engine()` in a CLI that only prints help costs nothing.
 */
export class Engine implements EngineApi {
  readonly layout: StoreLayout;
  readonly images: ImagesApi;
  readonly containers: ContainersApi;
  readonly networks: NetworksApi;
  readonly system: SystemApi;
  private hostFacts?: Promise<HostFacts>;

  constructor(opts: EngineOptions = {}) {
    this.layout = resolveLayout(opts);
    const layout = this.layout;
    const host = () => (this.hostFacts ??= probeHost());
    const storage = openStorage(layout);
    const imageStore = openImageStore(layout, storage);
    const names = { ...hostNames(layout.root), ...stripUndefined(opts.network ?? {}) };
    const network = openNetworkManager(layout, {
      defaultBridge: { name: names.bridgeName, subnet: names.subnet, mtu: opts.network?.mtu },
      chainPrefix: names.chainPrefix,
    });
    let runtime: ReturnType<typeof createRuntime> | undefined;
    const lazyRuntime = new Proxy({} as ReturnType<typeof createRuntime>, {
      get: (_t, prop) => {
        if (!runtime) throw new Error('runtime used before host facts were probed');
        const v = (runtime as unknown as Record<string | symbol, unknown>)[prop];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(runtime) : v;
      },
    });
    const hostThenRuntime = async () => {
      const facts = await host();
      runtime ??= createRuntime(layout, facts);
      return facts;
    };
    const bin = berthBin();
    const manager = new ContainerManager(layout, {
      host: hostThenRuntime,
      images: imageStore,
      snapshots: storage.snapshots,
      bundle,
      runtime: lazyRuntime,
      network,
      cleanupCommand: (id, attachedPidFile) => [
        // When an attached `berth run` is alive it does the exit work itself; a second node process
        // started now would only compete with it for the CPU. If it dies, repair finishes the work.
        '/bin/sh', '-c', '[ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && exit 0; shift; exec "$@"', 'berth-cleanup',
        attachedPidFile, process.execPath, bin, '--root', layout.root, '--runroot', layout.runroot, 'container', 'cleanup', id,
      ],
    });
    this.images = imageStore;
    this.containers = containersApi(manager, hostThenRuntime);
    this.networks = networksApi(network, manager, hostThenRuntime);
    this.system = systemApi(this, manager, network, imageStore);
  }

  get root(): string {
    return this.layout.root;
  }

  get runroot(): string {
    return this.layout.runroot;
  }

  run(req: CreateRequest, opts?: RunOptions) {
    return this.containers.run(req, opts);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function containersApi(m: ContainerManager, ready: () => Promise<unknown>): ContainersApi {
  const r = <A extends unknown[], T>(fn: (...a: A) => Promise<T>) => async (...a: A): Promise<T> => {
    await ready();
    return fn(...a);
  };
  return {
    create: r((req) => m.create(req)),
    start: r((ref) => m.start(ref)),
    run: r((req, opts) => m.run(req, opts)),
    stop: r((ref, opts) => m.stop(ref, opts)),
    kill: r((ref, sig) => m.kill(ref, sig)),
    restart: r((ref, opts) => m.restart(ref, opts)),
    remove: r((ref, opts) => m.remove(ref, opts)),
    list: r((opts) => m.list(opts)),
    inspect: r((ref) => m.inspect(ref)),
    logs: (ref, opts) => ({
      async *[Symbol.asyncIterator]() {
        await ready();
        yield* m.logs(ref, opts);
      },
    }),
    exec: r((ref, req, io) => m.exec(ref, req, io)),
    attach: r((ref, io) => m.attach(ref, io)),
    wait: r((ref, opts) => m.wait(ref, opts)),
    pause: r((ref) => m.pause(ref)),
    unpause: r((ref) => m.unpause(ref)),
    top: r((ref, ps) => m.top(ref, ps)),
    stats: r((refs) => m.stats(refs)),
    rename: r((ref, name) => m.rename(ref, name)),
    update: r((ref, res) => m.update(ref, res)),
    port: r((ref) => m.port(ref)),
    prune: r(() => m.prune()),
    cleanup: r((ref) => m.cleanup(ref)),
  };
}

function networksApi(n: ReturnType<typeof openNetworkManager>, m: ContainerManager, ready: () => Promise<unknown>): NetworksApi {
  return {
    create: (req) => n.create(req),
    list: (opts) => n.list(opts),
    inspect: (ref) => n.inspect(ref),
    remove: (ref) => n.remove(ref),
    prune: () => n.prune(),
    connect: async (net, ctr, opts) => { await ready(); return m.connect(net, ctr, opts); },
    disconnect: async (net, ctr, opts) => { await ready(); return m.disconnect(net, ctr, opts); },
    reload: async (opts) => {
      const ids = opts?.containers?.length ? await Promise.all(opts.containers.map(async (c) => (await m.records.resolve(c)).id)) : undefined;
      return n.reload({ all: opts?.all ?? !ids, containers: ids });
    },
  };
}

function systemApi(engine: Engine, m: ContainerManager, n: ReturnType<typeof openNetworkManager>, images: ImagesApi): SystemApi {
  return {
    async prune(opts) {
      const cleaned = await engine.containers.prune();
      await m.reconcile();
      const networks = await n.prune();
      const img = await images.prune({ all: opts?.all });
      return { containers: cleaned.deleted, networks: networks.deleted, images: img.deleted, spaceReclaimed: img.spaceReclaimed };
    },
    async reset() {
      for (const c of await engine.containers.list({ all: true })) await engine.containers.remove(c.id, { force: true });
      await m.reconcile();
      for (const net of await n.list()) if (!['bridge', 'host', 'none'].includes(net.name)) await n.remove(net.id);
      for (const img of await images.list({ all: true })) await images.remove(img.id, { force: true }).catch(() => {});
      await images.prune({ all: true });
      await n.shutdown();
    },
    async info() {
      const facts = await probeHost();
      const ctrs = await engine.containers.list({ all: true });
      return {
        Root: engine.root, RunRoot: engine.runroot, CgroupVersion: facts.cgroupMode === 'v2' ? '2' : '1', CgroupMode: facts.cgroupMode,
        Containers: ctrs.length, ContainersRunning: ctrs.filter((c) => c.state === 'running').length,
        ContainersPaused: ctrs.filter((c) => c.state === 'paused').length, ContainersStopped: ctrs.filter((c) => c.state === 'exited').length,
        Images: (await images.list()).length, Runtime: facts.tools.runc, Monitor: facts.tools.conmon, NCPU: facts.cpus,
      };
    },
    events(opts = {}): AsyncIterable<EngineEvent> {
      const since = parseTime(opts.since, '--since');
      const until = parseTime(opts.until, '--until');
      const filters = (opts.filters ?? []).map((f) => f.split('=') as [string, string]);
      return {
        async *[Symbol.asyncIterator]() {
          for await (const ev of m.events.read({ since, until, follow: until === undefined, signal: opts.signal })) {
            if (filters.every(([k, v]) => (k === 'type' ? ev.type === v : k === 'event' ? ev.action === v : k === 'container' ? ev.id.startsWith(v) || ev.attributes.name === v : true))) yield ev;
          }
        },
      };
    },
  };
}

/** RFC 3339, unix seconds, or a duration back from now ('10m', '1h30m'), as docker --since takes. */
export function parseTime(text: string | undefined, field: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const rel = /^(\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$/.test(text) ? durationMs(text) : undefined;
  if (rel !== undefined) return Date.now() - rel;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new InvalidArgumentError(field, `"${text}" is not a time`, 'use RFC 3339, unix seconds, or a duration like 10m');
  return t;
}

function durationMs(text: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, n, u] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)) total += Number(n) * unit[u!]!;
  return total;
}
