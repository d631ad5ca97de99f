import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { createGunzip } from 'node:zlib';
import { BuildStepError, InvalidArgumentError, NotFoundError } from '../errors.js';
import type { ImageId } from '../ids.js';
import type { ImageStore, OciContainerConfig, OciImageConfig, OciHistory } from '../image/index.js';
import { renameTransform, type ContainerManager } from '../container/index.js';
import type { CreateRequest } from '../options.js';
import { writeFileAtomic } from '../util/fs.js';
import { walkInRoot } from '../util/inroot.js';
import type { BuildEvent, BuildOptions, BuildResult, CommandForm, Dockerfile, Instruction, Stage } from './index.js';
import { expandInstruction, stageOrder } from './steps.js';

/**
 * The classic builder's model, on Berth's own layers: every step's result is an image (untagged), so a
 * later step, a `COPY --from` and the cache can name it by ID. RUN is a container run by runc, COPY/ADD a
 * created (never started) container whose filesystem receives the files, and both commit the container's
 * changes as the next layer; metadata steps change the config only.
 */

/** What the builder uses of the layers below it. */
export interface BuilderDeps {
  images: Pick<ImageStore, 'resolve' | 'addBuilt' | 'tag' | 'mount' | 'unmount' | 'ensureDefault'>;
  containers(): Promise<Pick<ContainerManager, 'create' | 'run' | 'remove' | 'extractInto' | 'pathKind' | 'packLayer'>>;
  /** pulls `ref` into the store */
  pull(ref: string, signal?: AbortSignal): Promise<void>;
  /** where cache entries live: one file per key, holding the image ID the step made */
  cacheDir: string;
}

/** The build context as the builder reads it: a folder, and which of its files `.dockerignore` lets in. */
export interface BuildContext {
  root: string;
  /** relative path (no leading `/`); absent: everything is in */
  includes?(rel: string): boolean;
}

/** Docker's predefined ARGs: usable with --build-arg without an ARG line, and left out of history. */
const PREDEFINED_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const DEFAULT_IMAGE_REF = /^(localhost\/)?busybox(:latest)?$/;

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
  const used = new Set<string>();
  const globals = new Map<string, string | undefined>();
  for (const a of df.globalArgs) for (const { name, default: d } of a.args) globals.set(name, buildArgs[name] ?? d);
  for (const name of globals.keys()) if (name in buildArgs) used.add(name);
  if (opts.platform && opts.platform !== hostPlatform()) {
    throw new InvalidArgumentError('--platform', `"${opts.platform}" is not this host's platform (${hostPlatform()})`, 'builds for other platforms are not built yet');
  }
  const stages = stageOrder(df, opts.target);
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
  const ctx: StepContext = { deps, opts, context, emit, results, df, step: 0, steps, mounted: new Map() };
  let last: ImageId | undefined;
  try {
    for (const { stage, instructions } of plan) {
      ctx.step++;
      emit({ type: 'step', stage: stage.index, stageName: stage.name, step: ctx.step, steps, text: stage.from.text });
      const fromRef = expandWords(stage.from.image, globals);
      const state = await fromImage(ctx, fromRef);
      const st: StageState = { stage, image: state.id, config: state.config, args: new Map(), cmdSet: false };
      emit({ type: 'stepDone', step: ctx.step, id: st.image });
      for (const raw of instructions) {
        ctx.step++;
        emit({ type: 'step', stage: stage.index, stageName: stage.name, step: ctx.step, steps, text: raw.text });
        if (raw.kind === 'ARG') {
          for (const { name, default: d } of raw.args) {
            if (name in buildArgs) used.add(name);
            st.args.set(name, buildArgs[name] ?? (d !== undefined ? expandWords(d, scope(st, buildArgs)) : globals.get(name)));
          }
        }
        const instr = raw.kind === 'ARG' ? raw : expandInstruction(raw, scope(st, buildArgs));
        await runStep(ctx, st, instr);
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
}

/** The variables a step sees: the stage's ARGs (with values), then its ENV over them, as Docker. */
function scope(st: StageState, buildArgs: Record<string, string>): Map<string, string> {
  const vars = new Map<string, string>();
  for (const name of PREDEFINED_ARGS) if (name in buildArgs) vars.set(name, buildArgs[name]!);
  for (const [k, v] of st.args) if (v !== undefined) vars.set(k, v);
  for (const e of st.config.config?.Env ?? []) {
    const i = e.indexOf('=');
    vars.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
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
    const config: OciImageConfig = { architecture: hostArch(), os: 'linux', created: new Date().toISOString(), config: { Env: [DEFAULT_PATH] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
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
  if (DEFAULT_IMAGE_REF.test(ref)) {
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
  await deps.pull(ref, ctx.opts.signal);
  return deps.images.resolve(ref);
}

// ---------------------------------------------------------------------------------------------- steps

async function runStep(ctx: StepContext, st: StageState, instr: Instruction): Promise<void> {
  switch (instr.kind) {
    case 'RUN':
      return cachedStep(ctx, st, instr, { args: runArgs(st, ctx.opts.buildArgs ?? {}) }, () => runCommand(ctx, st, instr));
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
          Interval: goDuration(instr.interval, '--interval'),
          Timeout: goDuration(instr.timeout, '--timeout'),
          StartPeriod: goDuration(instr.startPeriod, '--start-period'),
          StartInterval: goDuration(instr.startInterval, '--start-interval'),
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

const UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration (`1m30s`) in nanoseconds, as Docker keeps HEALTHCHECK's times. */
export function goDuration(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(v))) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (!v || pos !== v.length) throw new InvalidArgumentError(`HEALTHCHECK ${flag}`, `"${v}" is not a duration`, 'write it as Go does: 30s, 1m30s, 500ms');
  return Math.round(total);
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

function buildContainer(image: ImageId, command: string[], network: string | undefined, env: string[] = []): CreateRequest {
  return {
    image,
    command,
    entrypoint: [],
    env,
    noHealthcheck: true,
    pull: 'never',
    labels: { 'berth.build': 'step' },
    ...(network && network !== 'bridge' && network !== 'default' ? { network: { networks: [network] } } : {}),
  };
}

async function runCommand(ctx: StepContext, st: StageState, instr: Extract<Instruction, { kind: 'RUN' }>): Promise<StepOutcome> {
  if (instr.mounts.length) throw new InvalidArgumentError('RUN --mount', `line ${instr.line}: RUN --mount is not built yet`, 'copy what the command needs with COPY');
  if (instr.heredocs.length) throw new InvalidArgumentError('RUN', `line ${instr.line}: heredocs in RUN are not built yet`, 'write the script on the RUN line');
  const c = st.config.config ?? {};
  const argv = commandArgv(instr.command, c);
  const network = instr.network ?? ctx.opts.network;
  if (network && !['none', 'host', 'bridge', 'default'].includes(network)) {
    throw new InvalidArgumentError('--network', `"${network}" is not none, host or bridge`);
  }
  const m = await ctx.deps.containers();
  const tail: string[] = [];
  const out = lineSink((line) => { pushTail(tail, line); ctx.emit({ type: 'output', step: ctx.step, stream: 'stdout', line }); });
  const err = lineSink((line) => { pushTail(tail, line); ctx.emit({ type: 'output', step: ctx.step, stream: 'stderr', line }); });
  let id: string | undefined;
  let handedOn = false;
  try {
    const res = await m.run({ ...buildContainer(st.image, argv, network, runArgs(st, ctx.opts.buildArgs ?? {})), attach: ['stdout', 'stderr'] },
      { io: { stdout: out.stream, stderr: err.stream }, onCreated: (cid) => { id = cid; } });
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
      release: async () => { layer.destroy(); await m.remove(cid, { force: true, volumes: true }); },
    };
  } finally {
    if (id && !handedOn) await m.remove(id, { force: true, volumes: true });
  }
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

/** A source resolved on the host: where it is, the name it was given, what it is. */
interface Source {
  host: string;
  name: string;
  isDir: boolean;
  /** ADD of a local archive: extracted, not copied */
  archive?: 'tar' | 'gzip';
}

async function copyStep(ctx: StepContext, st: StageState, instr: CopyInstruction): Promise<void> {
  const unsupported = Object.keys(instr.otherFlags);
  if (unsupported.length) throw new InvalidArgumentError(`${instr.kind} --${unsupported[0]}`, `line ${instr.line}: this flag is not built yet`);
  if (instr.heredocs.length) throw new InvalidArgumentError(instr.kind, `line ${instr.line}: heredocs in ${instr.kind} are not built yet`);
  if (instr.kind === 'ADD' && instr.sources.some(isUrl)) throw new InvalidArgumentError('ADD', `line ${instr.line}: ADD of a URL is not built yet`, 'fetch it with RUN wget, or COPY it from the context');
  const { root, within } = await sourceRoot(ctx, instr);
  const sources: Source[] = [];
  for (const src of instr.sources) sources.push(...(await resolveSources(root, src, within, instr)));
  if (instr.kind === 'ADD') for (const s of sources) if (!s.isDir) s.archive = await archiveKind(s.host);
  const workdir = st.config.config?.WorkingDir || '/';
  const destSlash = instr.dest.endsWith('/') || instr.dest.endsWith('/.');
  const dest = path.posix.resolve(workdir, instr.dest);
  if (sources.length > 1 && !destSlash) {
    throw new InvalidArgumentError(instr.kind, `line ${instr.line}: with more than one source file, the destination must be a directory and end with a /`);
  }
  const owner = parseChown(instr.chown);
  const mode = instr.chmod !== undefined ? parseChmod(instr.chmod) : undefined;
  const files = await hashSources(sources, ctx.context, within);
  await cachedStep(ctx, st, instr, { files, owner, mode }, async () => {
    const out = await withContainer(ctx, st.image, async (m, id) => {
      const destIsDir = destSlash || sources.length > 1 || (sources.length === 1 && sources[0]!.isDir) || (await m.pathKind(id, dest)) === 'dir';
      for (const s of sources) {
        if (s.archive) {
          await m.extractInto(id, dest, s.archive === 'gzip' ? (await fsp.open(s.host)).createReadStream().pipe(createGunzip()) : (await fsp.open(s.host)).createReadStream());
        } else if (s.isDir) {
          await m.extractInto(id, dest, packTree(s.host, await includedChildren(s.host, ctx.context, within), owner, mode));
        } else if (destIsDir) {
          await m.extractInto(id, dest, packTree(path.dirname(s.host), [path.basename(s.host)], owner, mode, s.name));
        } else {
          await m.extractInto(id, path.posix.dirname(dest), packTree(path.dirname(s.host), [path.basename(s.host)], owner, mode, path.posix.basename(dest)));
        }
      }
      return m.packLayer(id);
    });
    const kind = sources.length === 1 && !sources[0]!.isDir ? 'file' : 'dir';
    return { ...out, createdBy: `/bin/sh -c #(nop) ${instr.kind} ${kind}:${createHash('sha256').update(JSON.stringify(files)).digest('hex')} in ${instr.dest} ` };
  });
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s) || /^git@/.test(s);
}

/** Where a COPY reads from: the context, or a stage's or image's root filesystem (mounted read-only). */
async function sourceRoot(ctx: StepContext, instr: CopyInstruction): Promise<{ root: string; within: 'context' | 'image' }> {
  if (instr.from === undefined) return { root: ctx.context.root, within: 'context' };
  const from = instr.from.toLowerCase();
  const stage = ctx.df.stages.find((s) => s.name === from) ?? (/^\d+$/.test(from) ? ctx.df.stages[Number(from)] : undefined);
  let ref: string;
  if (stage) {
    const id = ctx.results.get(stage.index);
    if (!id) throw new InvalidArgumentError(`${instr.kind} --from`, `line ${instr.line}: stage "${instr.from}" is not built before this step`, 'a stage can only copy from the stages above it');
    ref = id;
  } else {
    ref = (await resolveImage(ctx, instr.from, false)).id;
  }
  let root = ctx.mounted.get(ref);
  if (!root) {
    root = await ctx.deps.images.mount(ref);
    ctx.mounted.set(ref, root);
  }
  return { root, within: 'image' };
}

const GLOB = /[*?[]/;

/** A source as written, relative to its root: `..` refused, globs expanded (Go's filepath.Match), links followed inside the root. */
async function resolveSources(root: string, src: string, within: 'context' | 'image', instr: CopyInstruction): Promise<Source[]> {
  const where = within === 'context' ? 'the build context' : `--from=${instr.from}`;
  const norm = path.posix.normalize(src.replace(/^\/+/, ''));
  if (within === 'context' && (norm === '..' || norm.startsWith('../'))) {
    throw new InvalidArgumentError(instr.kind, `line ${instr.line}: ${src} is outside the build context`, 'copy only files inside the context folder');
  }
  const rel = path.posix.normalize('/' + src).slice(1);
  const names = GLOB.test(rel) ? await expandGlob(root, rel) : [rel];
  if (!names.length) throw new NotFoundError('file', `${src} in ${where}`, 'check the path: sources are relative to the context');
  const out: Source[] = [];
  for (const name of names) {
    const walked = await walkInRoot(root, name);
    if ('escape' in walked) {
      throw new InvalidArgumentError(instr.kind, `line ${instr.line}: ${src} leads out of ${where} through the link ${walked.escape.link} -> ${walked.escape.target}`, 'copy the file itself into the context');
    }
    if ('loop' in walked) throw new InvalidArgumentError(instr.kind, `line ${instr.line}: too many levels of links in ${src}`);
    if ('missing' in walked) throw new NotFoundError('file', `${src} in ${where}`, 'check the path: sources are relative to the context');
    const st = await fsp.stat(walked.path);
    out.push({ host: walked.path, name: path.posix.basename(name) || '.', isDir: st.isDirectory() });
  }
  return out;
}

/** Go's filepath.Match, one path component at a time (`*` never crosses a `/`). */
async function expandGlob(root: string, pattern: string): Promise<string[]> {
  let found = [''];
  for (const part of pattern.split('/').filter(Boolean)) {
    const next: string[] = [];
    for (const dir of found) {
      if (!GLOB.test(part)) {
        next.push(path.posix.join(dir, part));
        continue;
      }
      const re = globRegex(part);
      const entries = await fsp.readdir(path.join(root, dir)).catch(() => [] as string[]);
      for (const e of entries.sort()) if (re.test(e)) next.push(path.posix.join(dir, e));
    }
    found = next;
  }
  const exists = await Promise.all(found.map((f) => fsp.lstat(path.join(root, f)).then(() => true, () => false)));
  return found.filter((_, i) => exists[i]);
}

function globRegex(part: string): RegExp {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const ch = part[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = part.indexOf(']', i + 1);
      if (end < 0) throw new InvalidArgumentError('COPY', `bad pattern "${part}": [ without ]`);
      re += '[' + part.slice(i + 1, end).replace(/^\^/, '^').replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (ch === '\\' && i + 1 < part.length) re += '\\' + part[++i];
    else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Children of a source folder that the context lets in (.dockerignore), sorted. */
async function includedChildren(dir: string, context: BuildContext, within: 'context' | 'image'): Promise<string[]> {
  const names = (await fsp.readdir(dir)).sort();
  if (within !== 'context' || !context.includes) return names;
  const rel = path.relative(context.root, dir);
  return names.filter((n) => context.includes!(path.posix.join(rel, n)));
}

/**
 * What the cache compares for a COPY: every file's path, type, mode, size and content hash, and link
 * targets; not times (as Docker's classic cache).
 */
async function hashSources(sources: Source[], context: BuildContext, within: 'context' | 'image'): Promise<string[]> {
  const out: string[] = [];
  const visit = async (host: string, rel: string): Promise<void> => {
    const st = await fsp.lstat(host);
    if (st.isDirectory()) {
      out.push(`d ${rel} ${st.mode}`);
      for (const n of await includedChildren(host, context, within)) await visit(path.join(host, n), `${rel}/${n}`);
    } else if (st.isSymbolicLink()) {
      out.push(`l ${rel} ${await fsp.readlink(host)}`);
    } else if (st.isFile()) {
      const h = createHash('sha256');
      for await (const chunk of (await fsp.open(host)).createReadStream()) h.update(chunk as Buffer);
      out.push(`f ${rel} ${st.mode} ${st.size} ${h.digest('hex')}`);
    } else {
      out.push(`o ${rel} ${st.mode} ${st.rdev}`);
    }
  };
  for (const s of sources) await visit(s.host, s.name);
  return out;
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

function parseChown(v: string | undefined): { uid: number; gid: number } {
  if (v === undefined) return { uid: 0, gid: 0 };
  const [u, g] = v.split(':');
  const num = (s: string | undefined, fallback: number) => {
    if (s === undefined || s === '') return fallback;
    if (s === 'root') return 0;
    if (!/^\d+$/.test(s)) throw new InvalidArgumentError('--chown', `"${v}": user and group names are not built yet`, 'give numeric IDs: --chown=1000:1000');
    return Number(s);
  };
  const uid = num(u, 0);
  return { uid, gid: num(g, uid) };
}

function parseChmod(v: string): number {
  if (!/^[0-7]{3,4}$/.test(v)) throw new InvalidArgumentError('--chmod', `"${v}" is not an octal mode`, 'give it as 755 or 0644');
  return parseInt(v, 8);
}

/** GNU tar of `names` under `dir`, owned by `owner`, with `mode` for every entry when given; a single name may be renamed. */
function packTree(dir: string, names: string[], owner: { uid: number; gid: number }, mode: number | undefined, rename?: string): Readable {
  const args = ['-c', '-f', '-', '--numeric-owner', `--owner=${owner.uid}`, `--group=${owner.gid}`, '--xattrs', '--xattrs-include=user.*', '--xattrs-include=security.capability'];
  if (mode !== undefined) args.push(`--mode=${mode.toString(8)}`);
  if (rename !== undefined && names.length === 1 && rename !== names[0]) args.push(renameTransform(names[0]!, rename));
  args.push('-C', dir, '--', ...names);
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Node drops a child's unread stdout once it exits: piped at once, the pass-through holds it (with back-pressure).
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  child.on('close', (code) => {
    if (code !== 0) out.destroy(new InvalidArgumentError('COPY', `reading ${dir} failed: ${stderr.trim()}`));
    else out.end();
  });
  out.on('close', () => { if (child.exitCode === null) child.kill('SIGTERM'); });
  return out;
}

/** A tar with nothing in it (its two zero blocks): extracting it makes only the destination's folders. */
function emptyTar(): Readable {
  return Readable.from([Buffer.alloc(1024)]);
}

function hostArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}

function hostPlatform(): string {
  return `linux/${hostArch()}`;
}

/** `$V`, `${V}`, `${V:-x}`, `${V:+x}` in FROM lines (global ARGs). */
function expandWords(s: string, vars: Map<string, string | undefined>): string {
  return expandInstruction({ kind: 'USER', line: 0, text: '', value: s }, new Map([...vars].filter((e): e is [string, string] => e[1] !== undefined))).value as string;
}
