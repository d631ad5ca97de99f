import { createHash } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BuildStepError, InvalidArgumentError, NotFoundError } from '../errors.js';
import type { ImageId } from '../ids.js';
import type { ImageStore, OciContainerConfig, OciImageConfig, OciHistory } from '../image/index.js';
import type { ContainerManager } from '../container/index.js';
import type { CreateRequest } from '../options.js';
import { readXattrs } from '../storage/xattrs.js';
import { overlayXattrs } from '../storage/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { ociArchitecture } from '../image/oci.js';
import { isDefaultImageRef } from '../image/busybox.js';
import { parseDuration } from '../util/time.js';
import { EntryHasher, makeBuildTemp, SourceResolver } from './context.js';
import { findStage, globalArgValues, parseDockerfile, stageOrder } from './dockerfile.js';
import { expandInstruction, isHeredocSource } from './expand.js';
import type { BuildContext, BuildEvent, BuildOptions, BuildResult, CommandForm, ContextEntry, Dockerfile, Instruction, Stage } from './index.js';
import { checkRunMounts, prepareRunMounts, runMountKey, type PreparedMounts, type RunMountEnv, type RunMountSpec } from './mounts.js';
import { packItems, type PackFolder, type PackItem } from './pack.js';
import { fetchUrl, parseChecksum, type Fetched } from './remote.js';
import { chownNeedsNames, resolveChown } from './users.js';

/**
 * The classic builder's model, on Berth's own layers: every step's result is an image (untagged), so a
 * later step, a `COPY --from` and the cache can name it by ID. RUN is a container run by runc whose changes
 * are committed as the next layer. COPY/ADD packs its files straight into the next layer when the path to
 * the destination is plain folders (`directCopy`), else (a link on the way, an archive ADD extracts) a
 * created, never started, container receives them and its changes are committed. Metadata steps change
 * the config only.
 */

/** What the builder uses of the layers below it. */
export interface BuilderDeps {
  images: Pick<ImageStore, 'resolve' | 'addBuilt' | 'tag' | 'mount' | 'unmount' | 'ensureDefault'>;
  containers(): Promise<Pick<ContainerManager, 'create' | 'run' | 'kill' | 'remove' | 'extractInto' | 'pathKind' | 'packLayer'>>;
  /** pulls `ref` into the store, with the build's logins (BuildOptions.registryAuth) when it has them */
  pull(ref: string, signal?: AbortSignal, registryAuth?: BuildOptions['registryAuth']): Promise<void>;
  /** where cache entries live: one file per key, holding the image ID the step made */
  cacheDir: string;
  /** where a build keeps its temporary files: unpacked tar contexts, RUN heredoc scripts */
  tempDir: string;
  /** where `RUN --mount=type=cache` folders live, kept across builds */
  cacheMountsDir: string;
}

/** Docker's predefined ARGs: usable with --build-arg without an ARG line, and left out of history. */
const PREDEFINED_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

const DEFAULT_SHELL = ['/bin/sh', '-c'];

interface StageState {
  stage: Stage;
  image: ImageId;
  config: OciImageConfig;
  /** ARGs declared in this stage, with their values (undefined: declared without value) */
  args: Map<string, string | undefined>;
  /** CMD set by this stage (an ENTRYPOINT then keeps it) */
  cmdSet: boolean;
}

export async function buildDockerfile(deps: BuilderDeps, df: Dockerfile, context: BuildContext, opts: BuildOptions): Promise<BuildResult> {
  const emit = (e: BuildEvent) => opts.onProgress?.(e);
  const buildArgs = opts.buildArgs ?? {};
  const escape = df.directives.escape;
  const used = new Set<string>();
  const globals = globalArgValues(df, buildArgs);
  for (const a of df.globalArgs) for (const { name } of a.args) if (name in buildArgs) used.add(name);
  if (opts.platform && opts.platform !== hostPlatform()) {
    throw new InvalidArgumentError('--platform', `"${opts.platform}" is not this host's platform (${hostPlatform()})`, 'builds for other platforms are not supported yet: leave --platform out');
  }
  if (df.directives.syntax !== undefined) emit({ type: 'note', message: `# syntax=${df.directives.syntax} is ignored: Berth builds with its own frontend` });
  const stages = stageOrder(df, opts.target, buildArgs);
  const final = stages.at(-1)!;
  const labels = Object.entries(opts.labels ?? {});
  const plan = stages.map((s) => ({
    stage: s,
    // --label: a LABEL step at the end of the target stage, as Docker's classic builder adds it.
    instructions: s === final && labels.length
      ? [...s.instructions, { kind: 'LABEL' as const, line: 0, text: `LABEL ${labels.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`, pairs: labels }]
      : s.instructions,
  }));
  const steps = plan.reduce((n, p) => n + 1 + p.instructions.length, 0);
  const results = new Map<number, ImageId>();
  const ctx: StepContext = { deps, opts, context, emit, results, df, step: 0, steps, mounted: new Map(), hasher: new EntryHasher() };
  let last: ImageId | undefined;
  try {
    for (const { stage, instructions } of plan) {
      ctx.step++;
      emit({ type: 'step', stage: stage.index, stageName: stage.name, step: ctx.step, steps, text: stage.from.text });
      const from = expandInstruction(stage.from, globals, escape);
      if (from.platform !== undefined && from.platform !== hostPlatform()) {
        throw new InvalidArgumentError('FROM --platform', `line ${from.line}: "${from.platform}" is not this host's platform (${hostPlatform()})`, 'builds for other platforms are not supported yet');
      }
      const state = await fromImage(ctx, from.image);
      const st: StageState = { stage, image: state.id, config: state.config, args: new Map(), cmdSet: false };
      const step = async (raw: Instruction, esc: '\\' | '`') => {
        const instr = expandInstruction(raw, scope(st, buildArgs), esc);
        if (instr.kind === 'ARG') {
          for (const { name, default: d } of instr.args) {
            if (name in buildArgs) used.add(name);
            st.args.set(name, buildArgs[name] ?? d ?? globals[name]);
          }
        }
        await runStep(ctx, st, instr);
      };
      const triggers = onBuildTriggers(state.config, from.image, from.line);
      if (triggers.length) {
        // As Docker: the triggers run as part of FROM, and the image they make no longer carries them.
        emit({ type: 'note', message: `# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}` });
        st.config = { ...st.config, config: { ...st.config.config, OnBuild: [] } };
        for (const trigger of triggers) await step(trigger, '\\');
      }
      emit({ type: 'stepDone', step: ctx.step, id: st.image });
      for (const raw of instructions) {
        opts.signal?.throwIfAborted();
        ctx.step++;
        emit({ type: 'step', stage: stage.index, stageName: stage.name, step: ctx.step, steps, text: raw.text });
        await step(raw, escape);
        emit({ type: 'stepDone', step: ctx.step, id: st.image });
      }
      results.set(stage.index, st.image);
      last = st.image;
    }
  } finally {
    for (const ref of ctx.mounted.keys()) await deps.images.unmount(ref).catch(() => {});
  }
  for (const name of Object.keys(buildArgs)) {
    if (!used.has(name) && !PREDEFINED_ARGS.includes(name)) emit({ type: 'note', message: `[Warning] One or more build-args [${name}] were not consumed` });
  }
  const id = last!;
  const tags: string[] = [];
  for (const t of opts.tags ?? []) {
    await deps.images.tag(id, t);
    tags.push(t);
  }
  if (opts.iidfile) await writeFileAtomic(opts.iidfile, id, 0o644);
  emit({ type: 'done', id, tags });
  return { id, tags };
}

/**
 * A base image's ONBUILD triggers as instructions. Each is one Dockerfile line that its builder checked,
 * but an image can be made by anything: ONBUILD, FROM and MAINTAINER are refused as Docker refuses them.
 */
function onBuildTriggers(config: OciImageConfig, image: string, line: number): Instruction[] {
  const triggers = config.config?.OnBuild;
  if (!Array.isArray(triggers)) return [];
  return (triggers as unknown[]).map((t) => {
    const bad = (why: string) => new InvalidArgumentError('FROM', `line ${line}: ${image} has the ONBUILD trigger ${JSON.stringify(t)}: ${why}`, 'build from another image, or rebuild that one without the trigger');
    if (typeof t !== 'string' || t.includes('\n')) throw bad('a trigger must be one line');
    const word = /^\s*(\S+)/.exec(t)?.[1]?.toUpperCase();
    if (word === 'ONBUILD') throw bad('chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
    if (word === 'FROM' || word === 'MAINTAINER') throw bad(`${word} isn't allowed as an ONBUILD trigger`);
    let parsed: Dockerfile;
    try {
      parsed = parseDockerfile(`FROM scratch\n${t}\n`, { file: `${image} ONBUILD` });
    } catch (err) {
      throw bad((err as Error).message);
    }
    const only = parsed.stages.length === 1 && parsed.stages[0]!.instructions.length === 1 ? parsed.stages[0]!.instructions[0]! : undefined;
    if (!only) throw bad('it is not one instruction');
    return { ...only, line };
  });
}

interface StepContext {
  deps: BuilderDeps;
  opts: BuildOptions;
  context: BuildContext;
  emit: (e: BuildEvent) => void;
  /** each built stage's image, by index */
  results: Map<number, ImageId>;
  df: Dockerfile;
  step: number;
  steps: number;
  /** images mounted for COPY --from: ref → mount point */
  mounted: Map<string, string>;
  /** file digests for COPY --from, kept for the whole build */
  hasher: EntryHasher;
}

/** The variables a step sees: the stage's ARGs (with values), then its ENV over them, as Docker. */
function scope(st: StageState, buildArgs: Record<string, string>): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const name of PREDEFINED_ARGS) if (name in buildArgs) vars[name] = buildArgs[name]!;
  for (const [k, v] of st.args) if (v !== undefined) vars[k] = v;
  for (const e of st.config.config?.Env ?? []) {
    const i = e.indexOf('=');
    vars[i < 0 ? e : e.slice(0, i)] = i < 0 ? '' : e.slice(i + 1);
  }
  return vars;
}

/** ARGs with a value that the ENV does not shadow: the environment of a RUN, and part of its cache key. */
function runArgs(st: StageState, buildArgs: Record<string, string>): string[] {
  const env = new Set((st.config.config?.Env ?? []).map((e) => e.split('=')[0]));
  const out: string[] = [];
  for (const [k, v] of st.args) if (v !== undefined && !env.has(k)) out.push(`${k}=${v}`);
  for (const name of PREDEFINED_ARGS) if (name in buildArgs && !st.args.has(name)) out.push(`${name}=${buildArgs[name]}`);
  return out.sort();
}

async function fromImage(ctx: StepContext, ref: string): Promise<{ id: ImageId; config: OciImageConfig }> {
  const { deps, opts } = ctx;
  const stage = ctx.df.stages.find((s) => s.name !== undefined && s.name === ref.toLowerCase());
  if (stage && ctx.results.has(stage.index)) {
    const id = ctx.results.get(stage.index)!;
    return { id, config: (await deps.images.resolve(id)).config };
  }
  if (ref === 'scratch') {
    const config: OciImageConfig = { architecture: ociArchitecture(), os: 'linux', created: new Date().toISOString(), config: { Env: [DEFAULT_PATH] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
    const id = await deps.images.addBuilt({ config });
    return { id, config };
  }
  const rec = await resolveImage(ctx, ref, !!opts.pull);
  return { id: rec.id, config: rec.config };
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** An image by reference: from the store, the embedded busybox built on first use, or pulled. */
async function resolveImage(ctx: StepContext, ref: string, pull: boolean) {
  const { deps } = ctx;
  if (isDefaultImageRef(ref)) {
    try {
      return await deps.images.resolve(ref);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      await deps.images.ensureDefault();
      return deps.images.resolve(ref);
    }
  }
  if (!pull) {
    try {
      return await deps.images.resolve(ref);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  ctx.emit({ type: 'note', message: `pulling ${ref}` });
  await deps.pull(ref, ctx.opts.signal, ctx.opts.registryAuth);
  return deps.images.resolve(ref);
}

// ---------------------------------------------------------------------------------------------- steps

async function runStep(ctx: StepContext, st: StageState, instr: Instruction): Promise<void> {
  switch (instr.kind) {
    case 'RUN': {
      const mounts = checkRunMounts(instr.mounts, instr.line, st.config.config?.WorkingDir || '/');
      const env = mountEnv(ctx, instr.line);
      const mountKey = mounts.length ? { mounts: await runMountKey(env, mounts) } : {};
      return cachedStep(ctx, st, instr, { args: runArgs(st, ctx.opts.buildArgs ?? {}), ...mountKey }, () => runCommand(ctx, st, instr, env, mounts));
    }
    case 'COPY':
    case 'ADD':
      return copyStep(ctx, st, instr);
    case 'WORKDIR': {
      const dir = path.posix.resolve(st.config.config?.WorkingDir || '/', instr.value);
      return cachedStep(ctx, st, instr, {}, async () => {
        const out = await withContainer(ctx, st.image, async (m, id) => {
          if ((await m.pathKind(id, dir)) !== 'missing') return undefined;
          await m.extractInto(id, dir, emptyTar());
          return m.packLayer(id);
        });
        return { ...out, change: (c) => { c.WorkingDir = dir; } };
      });
    }
    default:
      return cachedStep(ctx, st, instr, {}, async () => ({ change: (c, s) => applyMetadata(c, s, instr) }));
  }
}

/** What a step made: a layer (none for metadata steps) and its change to the container config. */
interface StepOutcome {
  layer?: Readable;
  change?: (c: OciContainerConfig, st: StageState, img: OciImageConfig) => void;
  createdBy?: string;
  /** removes what the step used (its container), once the layer is stored */
  release?: () => Promise<void>;
}

/**
 * One step through the cache: key = parent image + instruction as expanded + `extra` (files' hash, ARGs
 * in use). A hit takes the recorded image; a miss runs `work` and records what it made.
 */
async function cachedStep(ctx: StepContext, st: StageState, instr: Instruction, extra: Record<string, unknown>, work: () => Promise<StepOutcome>): Promise<void> {
  const { deps, opts } = ctx;
  const key = createHash('sha256').update(JSON.stringify([st.image, { ...instr, line: undefined }, extra])).digest('hex');
  const entry = path.join(deps.cacheDir, key);
  if (!opts.noCache) {
    const hit = await cacheLookup(deps, entry);
    if (hit) {
      ctx.emit({ type: 'cached', step: ctx.step });
      st.image = hit.id;
      st.config = hit.config;
      if (instr.kind === 'CMD') st.cmdSet = true;
      return;
    }
  }
  const out = await work();
  try {
    await recordStep(ctx, st, instr, extra, out, entry);
  } finally {
    await out.release?.();
  }
}

async function recordStep(ctx: StepContext, st: StageState, instr: Instruction, extra: Record<string, unknown>, out: StepOutcome, entry: string): Promise<void> {
  const { deps } = ctx;
  const config: OciImageConfig = structuredClone(st.config);
  const created = new Date().toISOString();
  config.created = created;
  config.config ??= {};
  out.change?.(config.config, st, config);
  const argsPrefix = instr.kind === 'RUN' && Array.isArray(extra.args) && extra.args.length ? `|${extra.args.length} ${extra.args.join(' ')} ` : '';
  const history: OciHistory = { created, created_by: out.createdBy ?? `${argsPrefix}/bin/sh -c #(nop) ${instr.text}`, ...(out.layer ? {} : { empty_layer: true }) };
  config.history = [...(config.history ?? []), history];
  const id = await deps.images.addBuilt({ parent: st.image, layer: out.layer, config });
  await fsp.mkdir(deps.cacheDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(entry, id);
  st.image = id;
  st.config = config;
}

/** A cache entry whose image is gone (image prune, rmi) is a miss. */
async function cacheLookup(deps: BuilderDeps, entry: string): Promise<{ id: ImageId; config: OciImageConfig } | undefined> {
  const id = (await fsp.readFile(entry, 'utf8').catch(() => '')).trim();
  if (!id) return undefined;
  try {
    const rec = await deps.images.resolve(id);
    return { id: rec.id, config: rec.config };
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

function shellArgs(c: OciContainerConfig): string[] {
  const shell = c.Shell;
  return Array.isArray(shell) && shell.length ? (shell as string[]) : DEFAULT_SHELL;
}

function commandArgv(cmd: CommandForm, c: OciContainerConfig): string[] {
  return cmd.form === 'exec' ? cmd.args : [...shellArgs(c), cmd.script];
}

function applyMetadata(c: OciContainerConfig, st: StageState, instr: Instruction): void {
  switch (instr.kind) {
    case 'ENV':
      for (const [k, v] of instr.pairs) c.Env = [...(c.Env ?? []).filter((e) => e.split('=')[0] !== k), `${k}=${v}`];
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(instr.pairs) };
      break;
    case 'USER':
      c.User = instr.value;
      break;
    case 'STOPSIGNAL':
      c.StopSignal = instr.value;
      break;
    case 'MAINTAINER':
      break;
    case 'EXPOSE':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}), ...Object.fromEntries(instr.values.map((p) => [p.includes('/') ? p.toLowerCase() : `${p}/tcp`, {}])) };
      break;
    case 'VOLUME':
      c.Volumes = { ...(c.Volumes ?? {}), ...Object.fromEntries(instr.values.map((v) => [v, {}])) };
      break;
    case 'CMD':
      c.Cmd = commandArgv(instr.command, c);
      st.cmdSet = true;
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = commandArgv(instr.command, c);
      // Docker: an ENTRYPOINT drops the CMD inherited from the base image, not one this stage set.
      if (!st.cmdSet) c.Cmd = null;
      break;
    case 'SHELL':
      c.Shell = instr.args;
      break;
    case 'ONBUILD':
      c.OnBuild = [...((c.OnBuild as string[] | undefined) ?? []), instr.trigger];
      break;
    case 'HEALTHCHECK':
      c.Healthcheck = instr.command
        ? stripUndef({
          Test: instr.command.form === 'exec' ? ['CMD', ...instr.command.args] : ['CMD-SHELL', instr.command.script],
          Interval: healthDuration(instr.interval, '--interval'),
          Timeout: healthDuration(instr.timeout, '--timeout'),
          StartPeriod: healthDuration(instr.startPeriod, '--start-period'),
          StartInterval: healthDuration(instr.startInterval, '--start-interval'),
          Retries: instr.retries,
        })
        : { Test: ['NONE'] };
      break;
    case 'ARG':
      break;
    default:
      throw new InvalidArgumentError('Dockerfile', `line ${instr.line}: ${instr.kind} is not supported here`);
  }
}

function stripUndef<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** A HEALTHCHECK time in nanoseconds, as Docker keeps them; Docker's builder refuses one under 1ms but 0. */
function healthDuration(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const ns = parseDuration(`HEALTHCHECK ${flag}`, v);
  if (ns < 0 || (ns > 0 && ns < 1e6)) throw new InvalidArgumentError(`HEALTHCHECK ${flag}`, `"${v}" is shorter than 1ms`, 'give 0 or at least 1ms');
  return ns;
}

// ---------------------------------------------------------------------------------------------- containers

type BuildContainers = Awaited<ReturnType<BuilderDeps['containers']>>;

/** A created (never started) container from `image`; `release` removes it with its anonymous volumes. */
async function openContainer(ctx: StepContext, image: ImageId): Promise<{ m: BuildContainers; id: string; release: () => Promise<void> }> {
  const m = await ctx.deps.containers();
  const { id } = await m.create(buildContainer(image, ['true'], 'none'));
  return { m, id, release: () => m.remove(id, { force: true, volumes: true }) };
}

/**
 * `work` on a created container from `image`; what it returns (a layer read from the container's
 * snapshot) is handed on with `release`, which the caller runs once the layer is stored.
 */
async function withContainer(ctx: StepContext, image: ImageId, work: (m: BuildContainers, id: string) => Promise<Readable | undefined>): Promise<StepOutcome> {
  const c = await openContainer(ctx, image);
  try {
    const layer = await work(c.m, c.id);
    return { layer, release: async () => { layer?.destroy(); await c.release(); } };
  } catch (err) {
    await c.release();
    throw err;
  }
}

/**
 * A step's container. Under userns-remap it gets the engine's user namespace as any container does (COPY
 * and ADD shift their owners into it, and the layer is packed back in the container's ids, so the image is
 * the same as without); `hostUserns` keeps the host's for a RUN whose --mount sources (cache folders,
 * secrets, binds) Berth makes with host owners the namespace would show as nobody. TODO(issue 18).
 */
function buildContainer(image: ImageId, command: string[], network: string | undefined, env: string[] = [], hostUserns = false): CreateRequest {
  return {
    image,
    command,
    entrypoint: [],
    env,
    noHealthcheck: true,
    pull: 'never',
    labels: { 'berth.build': 'step' },
    ...(hostUserns ? { userns: 'host' } : {}),
    ...(network && network !== 'bridge' && network !== 'default' ? { network: { networks: [network] } } : {}),
  };
}

function mountEnv(ctx: StepContext, line: number): RunMountEnv {
  return {
    cacheMountsDir: ctx.deps.cacheMountsDir,
    tempDir: ctx.deps.tempDir,
    context: ctx.context,
    secrets: new Map((ctx.opts.secrets ?? []).map((s) => [s.id, s.src])),
    rootOf: async (from) => {
      const ref = await fromRef(ctx, from, 'RUN --mount from', line);
      return { root: await mountedRoot(ctx, ref), id: ref };
    },
    line,
  };
}

async function runCommand(ctx: StepContext, st: StageState, instr: Extract<Instruction, { kind: 'RUN' }>, env: RunMountEnv, mountSpecs: RunMountSpec[]): Promise<StepOutcome> {
  const c = st.config.config ?? {};
  const script = loneScript(instr);
  const argv = script ? [`/dev/pipes/${script.name}`] : commandArgv(instr.command, c);
  const network = instr.network ?? ctx.opts.network;
  if (network && !['none', 'host', 'bridge', 'default'].includes(network)) {
    throw new InvalidArgumentError('--network', `"${network}" is not none, host or bridge`);
  }
  const m = await ctx.deps.containers();
  const step = ctx.step;
  const tail: string[] = [];
  const out = lineSink((line) => { pushTail(tail, line); ctx.emit({ type: 'output', step: ctx.step, stream: 'stdout', line }); });
  const err = lineSink((line) => { pushTail(tail, line); ctx.emit({ type: 'output', step: ctx.step, stream: 'stderr', line }); });
  let id: string | undefined;
  let handedOn = false;
  let scriptDir: string | undefined;
  let mounts: PreparedMounts | undefined;
  try {
    const req = buildContainer(st.image, argv, network, runArgs(st, ctx.opts.buildArgs ?? {}), mountSpecs.some((s) => s.type !== 'tmpfs'));
    mounts = await prepareRunMounts(env, mountSpecs);
    req.mounts = [...mounts.specs];
    if (script) {
      // BuildKit runs a lone `#!` heredoc as a file, mounted where the layer never sees it.
      scriptDir = await makeBuildTemp(ctx.deps.tempDir, 'heredoc');
      const file = path.join(scriptDir, script.name);
      await fsp.writeFile(file, script.content, { mode: 0o755 });
      req.mounts.push(`type=bind,source=${file},target=/dev/pipes/${script.name},readonly`);
    }
    // An abort that came before this point (with the step's header) fires no event for killOnAbort.
    ctx.opts.signal?.throwIfAborted();
    const stop = killOnAbort(m, () => id, ctx.opts.signal);
    const res = await m.run({ ...req, attach: ['stdout', 'stderr'] },
      { io: { stdout: out.stream, stderr: err.stream }, onCreated: (cid) => { id = cid; ctx.emit({ type: 'container', step, id: cid, action: 'run' }); } })
      .finally(stop);
    ctx.opts.signal?.throwIfAborted();
    out.flush();
    err.flush();
    id = res.id;
    if (res.exitCode !== 0) throw new BuildStepError(ctx.step, argv.join(' '), res.exitCode ?? -1, tail);
    const layer = await m.packLayer(id);
    const argsUsed = runArgs(st, ctx.opts.buildArgs ?? {});
    const cid = id;
    handedOn = true;
    return {
      layer,
      createdBy: `${argsUsed.length ? `|${argsUsed.length} ${argsUsed.join(' ')} ` : ''}${argv.join(' ')}`,
      release: async () => {
        layer.destroy();
        await m.remove(cid, { force: true, volumes: true });
        ctx.emit({ type: 'container', step, id: cid, action: 'remove' });
      },
    };
  } finally {
    if (id && !handedOn) await m.remove(id, { force: true, volumes: true });
    if (scriptDir) await fsp.rm(scriptDir, { recursive: true, force: true });
    await mounts?.release();
  }
}

/**
 * An aborted build (`signal`, or leaving `buildEvents` early) must not wait for a RUN to end: its
 * container is killed, retried until it has started (the abort may come between create and start).
 * Returns what stops the watching once the run has ended.
 */
function killOnAbort(m: BuildContainers, id: () => string | undefined, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => {};
  let ended = false;
  const attempt = () => {
    if (ended) return;
    const cid = id();
    if (!cid) return void setTimeout(attempt, 50);
    m.kill(cid, 'KILL').catch(() => setTimeout(attempt, 100));
  };
  // The caller checked `signal` just before (an abort that came earlier fires no event).
  signal.addEventListener('abort', attempt, { once: true });
  return () => {
    ended = true;
    signal.removeEventListener('abort', attempt);
  };
}

/** `RUN <<EOF` alone, with a body starting with `#!`: the parser leaves running it as a file to the builder. */
function loneScript(instr: Extract<Instruction, { kind: 'RUN' }>): { name: string; content: string } | undefined {
  const [h, ...rest] = instr.heredocs;
  if (!h || rest.length || instr.command.form !== 'shell' || instr.command.script !== h.content || !h.content.startsWith('#!')) return undefined;
  if (!/^[A-Za-z0-9_.-]+$/.test(h.name)) return undefined;
  return { name: h.name, content: h.content };
}

function pushTail(tail: string[], line: string): void {
  tail.push(line);
  if (tail.length > 10) tail.shift();
}

function lineSink(onLine: (line: string) => void): { stream: Writable; flush: () => void } {
  let buf = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      cb();
    },
  });
  return { stream, flush: () => { if (buf) onLine(buf); buf = ''; } };
}

// ---------------------------------------------------------------------------------------------- COPY / ADD

type CopyInstruction = Extract<Instruction, { kind: 'COPY' | 'ADD' }>;

/** What one source brings: entries to pack, a heredoc body, or (ADD) a local archive to extract. */
type Resolved =
  | { kind: 'entries'; entries: ContextEntry[] }
  | { kind: 'heredoc'; name: string; content: string }
  | { kind: 'archive'; entry: ContextEntry; compression: 'tar' | 'gzip' }
  /** ADD of a URL with --checksum: fetched only when the cache misses */
  | { kind: 'url'; url: string; checksum: string };

async function copyStep(ctx: StepContext, st: StageState, instr: CopyInstruction): Promise<void> {
  const unsupported = Object.keys(instr.otherFlags);
  if (unsupported.length) throw notSupported(`${instr.kind} --${unsupported[0]}`, instr, `${instr.kind} --${unsupported[0]} is not supported yet`, `leave --${unsupported[0]} out`);
  if (instr.kind === 'ADD' && instr.sources.some((s) => /^git@/.test(s) || /\.git(#.*)?$/.test(s) && isUrl(s))) {
    throw notSupported('ADD', instr, 'ADD of a git repository is not supported yet', 'clone it with RUN git, or COPY it from the context');
  }
  const checksum = instr.checksum !== undefined ? parseChecksum(instr.checksum) : undefined;
  if (checksum !== undefined && !instr.sources.every(isUrl)) throw new InvalidArgumentError('ADD --checksum', `line ${instr.line}: --checksum applies to URL sources only`, 'leave --checksum out for files of the context');
  let downloads: string | undefined;
  const download = async (url: string) => {
    downloads ??= await makeBuildTemp(ctx.deps.tempDir, 'url');
    return urlEntry(await fetchUrl(url, downloads, `ADD (line ${instr.line})`, ctx.opts.signal));
  };
  try {
    await copyFiles(ctx, st, instr, checksum, download);
  } finally {
    if (downloads) await fsp.rm(downloads, { recursive: true, force: true });
  }
}

/** A downloaded file as a COPY entry: mode 0600 as Docker gives a URL's file, mtime from Last-Modified. */
function urlEntry(f: Fetched): ContextEntry & { digest: string } {
  return { path: f.name, target: f.name, type: 'file', mode: 0o600, size: f.size, hostPath: f.file, digest: f.digest };
}

async function copyFiles(ctx: StepContext, st: StageState, instr: CopyInstruction, checksum: string | undefined,
  download: (url: string) => Promise<ContextEntry & { digest: string }>): Promise<void> {
  const source = await sourceRoot(ctx, instr);
  const heredocs = new Map(instr.heredocs.map((h) => [h.name, h]));
  const names = new Set(heredocs.keys());
  const resolved: Resolved[] = [];
  const hashes: string[] = [];
  for (const src of instr.sources) {
    if (isHeredocSource(src, names)) {
      const h = heredocs.get(/^<<-?(["']?)(.+)\1$/.exec(src)![2]!)!;
      resolved.push({ kind: 'heredoc', name: h.name, content: h.content });
      hashes.push(`heredoc ${h.name} ${createHash('sha256').update(h.content).digest('hex')}`);
      continue;
    }
    if (instr.kind === 'ADD' && isUrl(src)) {
      // The cache key holds the checksum when one is given (nothing fetched on a hit), else the content.
      if (checksum !== undefined) {
        resolved.push({ kind: 'url', url: src, checksum });
        hashes.push(`url ${src} ${checksum}`);
      } else {
        const entry = await download(src);
        resolved.push({ kind: 'entries', entries: [entry] });
        hashes.push(`url ${src} ${entry.digest}`);
      }
      continue;
    }
    const entries = await source.resolve(src);
    hashes.push(await source.hash(entries));
    const only = entries.length === 1 ? entries[0]! : undefined;
    const compression = instr.kind === 'ADD' && source.within === 'context' && only?.type === 'file' ? await archiveKind(only.hostPath) : undefined;
    resolved.push(compression ? { kind: 'archive', entry: only!, compression } : { kind: 'entries', entries });
  }
  const workdir = st.config.config?.WorkingDir || '/';
  const destSlash = instr.dest.endsWith('/') || instr.dest.endsWith('/.');
  const dest = path.posix.resolve(workdir, instr.dest);
  const many = resolved.length > 1 || resolved.some((r) => r.kind === 'entries' && r.entries.length > 1 && r.entries[0]!.target !== '');
  if (many && !destSlash) {
    throw new InvalidArgumentError(instr.kind, `line ${instr.line}: with more than one source file, the destination must be a directory and end with a /`, `write the destination as ${instr.dest}/`);
  }
  const owner = await chownOf(ctx, st, instr.chown);
  // Checked after expansion: `--chmod=$MODE` is only known here.
  const mode = instr.chmod !== undefined ? parseChmod(instr.chmod) : undefined;
  const kind = resolved.length === 1 && !(resolved[0]!.kind === 'entries' && resolved[0]!.entries[0]!.type === 'directory') ? 'file' : 'dir';
  const createdBy = `/bin/sh -c #(nop) ${instr.kind} ${kind}:${createHash('sha256').update(JSON.stringify(hashes)).digest('hex')} in ${instr.dest} `;
  await cachedStep(ctx, st, instr, { files: hashes, owner, mode }, async () => {
    const single = resolved.length === 1 ? resolved[0]! : undefined;
    const isDirSource = single?.kind === 'entries' && single.entries[0]!.type === 'directory' && single.entries[0]!.target === '';
    /** What one source writes, by name below the folder it lands in (a URL fetched now, on a cache miss). */
    const itemsOf = async (r: Resolved): Promise<PackItem[]> => {
      if (r.kind === 'heredoc') return [{ name: r.name, content: r.content }];
      if (r.kind === 'url') {
        const entry = await download(r.url);
        if (entry.digest !== r.checksum) {
          throw new InvalidArgumentError('ADD --checksum', `line ${instr.line}: ${r.url} has the digest ${entry.digest}, not ${r.checksum}`, 'check the URL and the checksum');
        }
        return [{ name: entry.target, entry }];
      }
      if (r.kind === 'archive') throw new Error('an archive is extracted, not packed');
      return r.entries.filter((e) => e.target !== '').map((e) => ({ name: e.target, entry: e }));
    };
    const landing = { dest, destSlash, many, isDirSource };
    const direct = resolved.some((r) => r.kind === 'archive') ? undefined : await directCopy(ctx, st, landing, resolved, itemsOf, owner, mode);
    if (direct) return { layer: direct, createdBy };
    const out = await withContainer(ctx, st.image, async (m, id) => {
      const destIsDir = destSlash || many || isDirSource || (await m.pathKind(id, dest)) === 'dir';
      for (const r of resolved) {
        if (r.kind === 'archive') {
          const input = (await fsp.open(r.entry.hostPath)).createReadStream();
          await m.extractInto(id, dest, r.compression === 'gzip' ? input.pipe(createGunzip()) : input);
          continue;
        }
        const items = await itemsOf(r);
        if (destIsDir) {
          await m.extractInto(id, dest, items.length ? packItems(items, owner, mode) : emptyTar());
        } else {
          // One file to a destination that is not a folder: it takes the destination's name.
          await m.extractInto(id, path.posix.dirname(dest), packItems(items.map((it) => ({ ...it, name: path.posix.basename(dest) })), owner, mode));
        }
      }
      return m.packLayer(id);
    });
    return { ...out, createdBy };
  });
}

/**
 * A COPY's layer made straight from its sources, without a container: the folders on the way to the
 * destination (as the image has them, or made root 0755 as Docker makes them), then the files under it.
 * The files are read once and written once (by the layer's unpack), where a container would take them
 * three times (extract, pack its changes, unpack). Only when nothing on the way is a link or a file: then
 * (undefined) the container path resolves the destination inside the image, as Docker does.
 */
async function directCopy(ctx: StepContext, st: StageState, landing: { dest: string; destSlash: boolean; many: boolean; isDirSource: boolean },
  resolved: readonly Resolved[], itemsOf: (r: Resolved) => Promise<PackItem[]>, owner: { uid: number; gid: number }, mode: number | undefined): Promise<Readable | undefined> {
  const root = await mountedRoot(ctx, st.image);
  const destKind = await plainKind(root, landing.dest);
  if (destKind === 'other') return undefined;
  const destIsDir = landing.destSlash || landing.many || landing.isDirSource || destKind === 'dir';
  const dir = destIsDir ? landing.dest : path.posix.dirname(landing.dest);
  const folders = await foldersOnTheWay(root, dir);
  if (!folders) return undefined;
  const prefix = dir.split('/').filter(Boolean).join('/');
  const under = (name: string) => (prefix ? `${prefix}/${name}` : name);
  const items: PackItem[] = [...folders];
  for (const r of resolved) {
    for (const it of await itemsOf(r)) items.push({ ...it, name: under(destIsDir ? it.name : path.posix.basename(landing.dest)) });
  }
  return packItems(items, owner, mode);
}

/** What `abs` is in the image at `root`, links not followed: 'other' for a link or a special file. */
async function plainKind(root: string, abs: string): Promise<'dir' | 'file' | 'missing' | 'other'> {
  const st = await lstatIn(root, abs);
  if (st === 'blocked') return 'other';
  if (!st) return 'missing';
  return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}

/**
 * The folders from the image's root down to `dir` as layer entries: the image's own owner, mode and time
 * (the last one there gets a new entry, so its time is now, as a copy-up would make it), and those missing
 * made root:root 0755. Undefined when one is a link or not a folder.
 */
async function foldersOnTheWay(root: string, dir: string): Promise<PackItem[] | undefined> {
  const parts = dir.split('/').filter(Boolean);
  const now = new Date();
  const out: { name: string; folder: PackFolder }[] = [];
  let lastExisting = -1;
  for (let i = 0; i < parts.length; i++) {
    const name = parts.slice(0, i + 1).join('/');
    const st = lastExisting === i - 1 ? await lstatIn(root, `/${name}`) : undefined;
    if (st === 'blocked' || (st && !st.isDirectory())) return undefined;
    if (st) lastExisting = i;
    out.push({ name, folder: st ? { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime } : { uid: 0, gid: 0, mode: 0o755, mtime: now } });
  }
  if (lastExisting < 0) return out;
  out[lastExisting]!.folder.mtime = now;
  // The layer's folder hides the image's own, xattrs included: they are carried over (overlayfs' own never are).
  const xattrs = await readXattrs(root, out.slice(0, lastExisting + 1).map((f) => f.name));
  for (const f of out) {
    const own = Object.entries(xattrs.get(f.name) ?? {}).filter(([k]) => !k.startsWith(overlayXattrs().prefix));
    if (own.length) f.folder.xattrs = Object.fromEntries(own);
  }
  return out;
}

/** lstat of `abs` below `root`; 'blocked' when a component above it is not a folder (ENOTDIR). */
async function lstatIn(root: string, abs: string): Promise<Stats | undefined | 'blocked'> {
  try {
    return await fsp.lstat(path.join(root, abs));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return 'blocked';
    throw err;
  }
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function notSupported(field: string, instr: Instruction, what: string, hint: string): InvalidArgumentError {
  return new InvalidArgumentError(field, `line ${instr.line}: ${what}`, hint);
}

interface CopySource {
  within: 'context' | 'image';
  resolve(source: string): Promise<ContextEntry[]>;
  hash(entries: readonly ContextEntry[]): Promise<string>;
}

/** Where a COPY reads from: the context, or a stage's or image's root filesystem (mounted read-only). */
async function sourceRoot(ctx: StepContext, instr: CopyInstruction): Promise<CopySource> {
  if (instr.from === undefined) return { within: 'context', resolve: (s) => ctx.context.resolve(s), hash: (e) => ctx.context.hash(e) };
  const root = await mountedRoot(ctx, await fromRef(ctx, instr.from, `${instr.kind} --from`, instr.line));
  const resolver = new SourceResolver(root, { links: 'rootfs', where: `--from=${instr.from}` });
  return { within: 'image', resolve: (s) => resolver.resolve(s), hash: (e) => ctx.hasher.hash(e) };
}

/** The image a `--from=` names: a stage built above this step, else an image (pulled when missing). */
async function fromRef(ctx: StepContext, from: string, field: string, line: number): Promise<string> {
  const stage = findStage(ctx.df, from);
  if (!stage) return (await resolveImage(ctx, from, false)).id;
  const id = ctx.results.get(stage.index);
  if (!id) throw new InvalidArgumentError(field, `line ${line}: stage "${from}" is not built before this step`, 'a stage can only use the stages above it');
  return id;
}

/** An image's root filesystem, mounted read-only once for the whole build. */
async function mountedRoot(ctx: StepContext, ref: string): Promise<string> {
  let root = ctx.mounted.get(ref);
  if (!root) {
    root = await ctx.deps.images.mount(ref);
    ctx.mounted.set(ref, root);
  }
  return root;
}

/** ADD: a local file is extracted when it is a tar or a gzipped tar, as Docker's ADD does. */
async function archiveKind(file: string): Promise<'tar' | 'gzip' | undefined> {
  const fh = await fsp.open(file);
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
    if (bytesRead >= 262 && buf.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/** `--chown`: names read from the step's own image (its /etc/passwd and /etc/group), as BuildKit reads them. */
async function chownOf(ctx: StepContext, st: StageState, spec: string | undefined): Promise<{ uid: number; gid: number }> {
  if (spec === undefined) return { uid: 0, gid: 0 };
  if (!chownNeedsNames(spec)) return resolveChown(spec, {});
  const root = await mountedRoot(ctx, st.image);
  const resolver = new SourceResolver(root, { links: 'rootfs' });
  const read = async (file: string) => {
    try {
      return await fsp.readFile(path.join(root, resolver.follow(file, `/${file}`)), 'utf8');
    } catch (err) {
      if (err instanceof NotFoundError || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return resolveChown(spec, { passwd: await read('etc/passwd'), group: await read('etc/group') });
}

function parseChmod(v: string): number {
  if (!/^[0-7]{3,4}$/.test(v)) throw new InvalidArgumentError('--chmod', `"${v}" is not an octal mode`, 'give it as 755 or 0644');
  return parseInt(v, 8);
}

/** A tar with nothing in it (its two zero blocks): extracting it makes only the destination's folders. */
function emptyTar(): Readable {
  return Readable.from([Buffer.alloc(1024)]);
}

function hostPlatform(): string {
  return `linux/${ociArchitecture()}`;
}
