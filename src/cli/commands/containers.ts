import type { ContainerStats, EngineApi, StdioStreams } from '../../api/types.js';
import { BadStateError, InvalidArgumentError } from '../../errors.js';
import { type Command, type Context, defineCommand, FILTER_OPTION, FORMAT_OPTION, NO_TRUNC_OPTION, FORCE_OPTION, PRUNE_FILTER_OPTION } from '../command.js';
import { clientEnv, CREATE_OPTIONS, createRequest, RESOURCE_OPTIONS, resourceRequest, RUN_OPTIONS } from '../create.js';
import { bytesSize, humanSize, percent, renderRows, table, truncId } from '../format.js';
import { UsageError } from '../parser.js';
import { confirm, forEachRef, PARALLEL_REFS } from '../report.js';
import { runPullPrinter } from './registry.js';
import { parseTemplate } from '../template.js';
import { CONTAINER_HEADERS, CONTAINER_TABLE, CONTAINER_TABLE_SIZE, containerRow } from '../views.js';

type ApiRun = EngineApi['containers']['run'];
type RunOptions = NonNullable<Parameters<ApiRun>[1]>;

const run = defineCommand({
  name: 'run', group: 'container', shortcuts: ['run'],
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]', summary: 'Create and run a new container from an image',
  options: RUN_OPTIONS, minArgs: 1, commandAfterArgs: true,
  async action(ctx, o, args) {
    const req = { ...createRequest(o, args), ...(o.attach.length ? { attach: [...o.attach] } : {}) };
    // An accepted flag that does nothing is never allowed: the keys only mean something to an attached run.
    if (o.detach && o.detachKeys !== undefined) throw new InvalidArgumentError('--detach-keys', 'has no effect with --detach', 'attach later with "berth attach --detach-keys KEYS CONTAINER"');
    const engine = await ctx.engine();
    if (o.detach) {
      const { id, warnings } = await engine.containers.run(req, { detach: true, onPull: runPullPrinter(ctx, req.image) });
      printWarnings(ctx, warnings);
      ctx.print(id);
      return 0;
    }
    let id: string | undefined;
    const opts: RunOptions = {
      io: attachedIo(ctx, o.interactive), onCreated: (created) => { id = created; }, onPull: runPullPrinter(ctx, req.image),
      ...(o.detachKeys !== undefined ? { detachKeys: o.detachKeys } : {}),
    };
    // docker's sig-proxy: without a tty, Ctrl-C and SIGTERM go to the container, which decides whether to end.
    const stopProxy = o.tty || !o.sigProxy ? () => {} : ctx.onSignal((signal) => {
      const ref = id ?? req.name;
      if (ref) engine.containers.kill(ref, signal).catch(() => {});
    });
    const restoreTty = rawTty(ctx, o.tty && o.interactive);
    try {
      const res = await engine.containers.run(req, opts);
      printWarnings(ctx, res.warnings);
      if (res.detached) return 0;
      return res.exitCode ?? 125;
    } finally {
      stopProxy();
      restoreTty();
      if (o.interactive) ctx.stdin.pause();
    }
  },
});

const create = defineCommand({
  name: 'create', group: 'container', shortcuts: ['create'],
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]', summary: 'Create a new container',
  options: CREATE_OPTIONS, minArgs: 1, commandAfterArgs: true,
  async action(ctx, o, args) {
    const req = createRequest(o, args);
    const { id, warnings } = await (await ctx.engine()).containers.create(req, { onPull: runPullPrinter(ctx, req.image) });
    printWarnings(ctx, warnings);
    ctx.print(id);
  },
});

const start = defineCommand({
  name: 'start', group: 'container', shortcuts: ['start'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Start one or more stopped containers',
  options: [
    { name: 'attach', short: 'a', type: 'bool', help: 'Attach STDOUT/STDERR and forward signals' },
    { name: 'interactive', short: 'i', type: 'bool', help: "Attach container's STDIN" },
    { name: 'detach-keys', type: 'string', help: 'Override the key sequence for detaching a container' },
  ],
  minArgs: 1,
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    if (!o.attach && !o.interactive) {
      if (o.detachKeys !== undefined) throw new InvalidArgumentError('--detach-keys', 'has no effect without --attach or --interactive', 'give -a (or -ai), or leave --detach-keys out');
      return forEachRef(ctx, refs, (ref) => c.start(ref));
    }
    if (refs.length > 1) throw new UsageError('you cannot start and attach multiple containers at once', 1);
    const ref = refs[0]!;
    // As attach: a tty container's terminal gets every key as typed (the detach keys among them).
    const restoreTty = rawTty(ctx, o.interactive && (await c.inspect(ref)).Config.Tty === true);
    try {
      await c.start(ref, { terminal: ctx.terminal, ...(o.detachKeys !== undefined ? { detachKeys: o.detachKeys } : {}) });
      return await attachOrReplay(ctx, c, ref, attachedIo(ctx, o.interactive), o.detachKeys);
    } finally {
      restoreTty();
    }
  },
});

const stop = defineCommand({
  name: 'stop', group: 'container', shortcuts: ['stop'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Stop one or more running containers',
  options: [
    { name: 'timeout', short: 't', aliases: ['time'], type: 'number', help: 'Seconds to wait before killing the container' },
    { name: 'signal', short: 's', type: 'string', help: 'Signal to send to the container' },
  ],
  minArgs: 1,
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    return forEachRef(ctx, refs, (ref) => c.stop(ref, { timeout: o.timeout, signal: o.signal }), { parallel: PARALLEL_REFS });
  },
});

const kill = defineCommand({
  name: 'kill', group: 'container', shortcuts: ['kill'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Kill one or more running containers',
  options: [{ name: 'signal', short: 's', type: 'string', help: 'Signal to send to the container' }],
  minArgs: 1,
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    return forEachRef(ctx, refs, (ref) => c.kill(ref, o.signal), { parallel: PARALLEL_REFS });
  },
});

const restart = defineCommand({
  name: 'restart', group: 'container', shortcuts: ['restart'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Restart one or more containers',
  options: [{ name: 'timeout', short: 't', aliases: ['time'], type: 'number', help: 'Seconds to wait before killing the container' }],
  minArgs: 1,
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    return forEachRef(ctx, refs, (ref) => c.restart(ref, { timeout: o.timeout }));
  },
});

const rm = defineCommand({
  name: 'rm', group: 'container', aliases: ['remove'], shortcuts: ['rm'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Remove one or more containers',
  options: [
    { name: 'force', short: 'f', type: 'bool', help: 'Force the removal of a running container (uses SIGKILL)' },
    { name: 'volumes', short: 'v', type: 'bool', help: 'Remove anonymous volumes associated with the container' },
  ],
  minArgs: 1,
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    return forEachRef(ctx, refs, (ref) => c.remove(ref, { force: o.force, volumes: o.volumes }), { parallel: PARALLEL_REFS });
  },
});

const ps = defineCommand({
  name: 'ls', group: 'container', aliases: ['list', 'ps'], shortcuts: ['ps'],
  usage: '[OPTIONS]', summary: 'List containers',
  options: [
    { name: 'all', short: 'a', type: 'bool', help: 'Show all containers (default shows just running)' },
    FILTER_OPTION, FORMAT_OPTION,
    { name: 'last', short: 'n', type: 'number', help: 'Show n last created containers (includes all states)' },
    { name: 'latest', short: 'l', type: 'bool', help: 'Show the latest created container (includes all states)' },
    NO_TRUNC_OPTION,
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only display container IDs' },
    { name: 'size', short: 's', type: 'bool', help: 'Display total file sizes' },
  ],
  maxArgs: 0,
  async action(ctx, o) {
    const last = o.latest ? 1 : o.last !== undefined && o.last >= 0 ? o.last : undefined;
    // As docker: a format that prints .Size measures sizes without -s; -q never needs them.
    const size = !o.quiet && (o.size || !!o.format?.includes('.Size'));
    const list = await (await ctx.engine()).containers.list({ all: o.all, filters: o.filter, last, size });
    const now = Date.now();
    const rows = list.map((c) => containerRow(c, { trunc: !o.noTrunc, now }));
    if (o.quiet) return ctx.print(...rows.map((r) => r.ID));
    ctx.print(...renderRows(rows, o.format, o.size ? CONTAINER_TABLE_SIZE : CONTAINER_TABLE, CONTAINER_HEADERS));
  },
});

const inspect = defineCommand({
  name: 'inspect', group: 'container',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Display detailed information on one or more containers',
  options: [
    { name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' },
    { name: 'size', short: 's', type: 'bool', help: 'Display total file sizes' },
  ],
  minArgs: 1,
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    return printInspect(ctx, refs, (ref) => c.inspect(ref, { size: o.size }), o.format);
  },
});

const logs = defineCommand({
  name: 'logs', group: 'container', shortcuts: ['logs'],
  usage: '[OPTIONS] CONTAINER', summary: 'Fetch the logs of a container',
  options: [
    { name: 'follow', short: 'f', type: 'bool', help: 'Follow log output' },
    { name: 'timestamps', short: 't', type: 'bool', help: 'Show timestamps' },
    { name: 'since', type: 'string', help: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
    { name: 'until', type: 'string', help: 'Show logs before a timestamp or relative' },
    { name: 'tail', short: 'n', type: 'string', help: 'Number of lines to show from the end of the logs (default "all")' },
    { name: 'details', type: 'bool', help: 'Show extra details provided to logs', hidden: true },
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [ref]) {
    const tail = parseTail(o.tail);
    const entries = (await ctx.engine()).containers.logs(ref!, { follow: o.follow, timestamps: o.timestamps, since: o.since, until: o.until, tail });
    for await (const e of entries) {
      const out = e.stream === 'stderr' ? ctx.stderr : ctx.stdout;
      out.write(`${o.timestamps ? `${e.time} ` : ''}${e.line}${e.partial ? '' : '\n'}`);
    }
  },
});

export function parseTail(text: string | undefined): number | 'all' | undefined {
  if (text === undefined || text === 'all') return text;
  if (!/^-?\d+$/.test(text)) throw new UsageError(`invalid argument "${text}" for "-n, --tail" flag: use a number or "all"`);
  const n = Number(text);
  return n < 0 ? 'all' : n;
}

const exec = defineCommand({
  name: 'exec', group: 'container', shortcuts: ['exec'],
  usage: '[OPTIONS] CONTAINER COMMAND [ARG...]', summary: 'Execute a command in a running container',
  options: [
    { name: 'detach', short: 'd', type: 'bool', help: 'Detached mode: run command in the background' },
    { name: 'interactive', short: 'i', type: 'bool', help: 'Keep STDIN open even if not attached' },
    { name: 'tty', short: 't', type: 'bool', help: 'Allocate a pseudo-TTY' },
    { name: 'env', short: 'e', type: 'list', help: 'Set environment variables' },
    { name: 'user', short: 'u', type: 'string', help: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
    { name: 'workdir', short: 'w', type: 'string', help: 'Working directory inside the container' },
    { name: 'privileged', type: 'bool', help: 'Give extended privileges to the command' },
  ],
  minArgs: 2, commandAfterArgs: true,
  async action(ctx, o, [ref, ...command]) {
    const engine = await ctx.engine();
    const restoreTty = rawTty(ctx, o.tty && o.interactive);
    try {
      const res = await engine.containers.exec(ref!, {
        command, interactive: o.interactive, tty: o.tty, env: clientEnv(o.env), user: o.user, workdir: o.workdir, detach: o.detach, privileged: o.privileged,
      }, o.detach ? {} : attachedIo(ctx, o.interactive));
      return o.detach ? 0 : res.exitCode ?? 0;
    } finally {
      restoreTty();
      if (o.interactive) ctx.stdin.pause();
    }
  },
});

const attach = defineCommand({
  name: 'attach', group: 'container', shortcuts: ['attach'],
  usage: '[OPTIONS] CONTAINER', summary: 'Attach local standard input, output, and error streams to a running container',
  options: [
    { name: 'no-stdin', type: 'bool', help: 'Do not attach STDIN' },
    { name: 'sig-proxy', type: 'bool', default: true, help: 'Proxy all received signals to the process (default true)' },
    { name: 'detach-keys', type: 'string', help: 'Override the key sequence for detaching a container' },
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [ref]) {
    const c = (await ctx.engine()).containers;
    // As docker attach: a tty container's terminal gets every key as typed (the detach keys among them).
    const tty = !o.noStdin && (await c.inspect(ref!)).Config.Tty === true;
    const stopProxy = o.sigProxy && !tty ? ctx.onSignal((signal) => void c.kill(ref!, signal).catch(() => {})) : () => {};
    const restoreTty = rawTty(ctx, tty);
    try {
      const { exitCode } = await c.attach(ref!, attachedIo(ctx, !o.noStdin), o.detachKeys !== undefined ? { detachKeys: o.detachKeys } : {});
      return exitCode ?? 0;
    } finally {
      stopProxy();
      restoreTty();
      if (!o.noStdin) ctx.stdin.pause();
    }
  },
});

/** The flagless `verb CONTAINER...` commands: each ref in turn, docker's output and exit code. */
function perContainer(name: string, summary: string, op: (c: EngineApi['containers'], ref: string) => Promise<string | void>, parallel = 1): Command {
  return defineCommand({
    name, group: 'container', shortcuts: [name], usage: 'CONTAINER [CONTAINER...]', summary, options: [], minArgs: 1,
    async action(ctx, _o, refs) {
      const c = (await ctx.engine()).containers;
      return forEachRef(ctx, refs, (ref) => op(c, ref), { parallel });
    },
  });
}

const wait = perContainer('wait', 'Block until one or more containers stop, then print their exit codes', async (c, ref) => String(await c.wait(ref)));
const pause = perContainer('pause', 'Pause all processes within one or more containers', (c, ref) => c.pause(ref), PARALLEL_REFS);
const unpause = perContainer('unpause', 'Unpause all processes within one or more containers', (c, ref) => c.unpause(ref), PARALLEL_REFS);

/** Docker's splitCpArg: an absolute path, or one whose part before ':' starts with '.', is local. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/')) return { path: arg };
  const i = arg.indexOf(':');
  if (i < 0 || arg.startsWith('.')) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

const cp = defineCommand({
  name: 'cp', group: 'container', shortcuts: ['cp'],
  usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  summary: 'Copy files/folders between a container and the local filesystem',
  options: [
    { name: 'archive', short: 'a', type: 'bool', help: 'Archive mode (copy all uid/gid information)' },
    { name: 'follow-link', short: 'L', type: 'bool', help: 'Always follow symbol link in SRC_PATH' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress progress output during copy' },
  ],
  minArgs: 2, maxArgs: 2,
  async action(ctx, o, [srcArg, destArg]) {
    const src = splitCpArg(srcArg!);
    const dest = splitCpArg(destArg!);
    if (src.container !== undefined && dest.container !== undefined) throw new UsageError('copying between containers is not supported', 1);
    if (src.container === undefined && dest.container === undefined) throw new UsageError('must specify at least one container source', 1);
    if (src.container === '' || dest.container === '') throw new UsageError('the container name before ":" is empty', 1);
    const opts = { archive: o.archive, followLink: o.followLink };
    const containers = (await ctx.engine()).containers;
    if (src.container !== undefined) {
      if (dest.path === '-' && ctx.stdout.isTTY) throw new InvalidArgumentError('destination', 'cowardly refusing to write a tar stream to a terminal', 'redirect the output');
      const res = await containers.copyFrom(src.container, src.path, dest.path === '-' ? ctx.stdout : dest.path, opts);
      for (const w of res.warnings) ctx.stderr.write(`${w}\n`);
      if (!o.quiet && dest.path !== '-') ctx.stderr.write(`Successfully copied ${humanSize(res.bytes)} to ${dest.path}\n`);
    } else {
      const res = await containers.copyTo(dest.container!, dest.path, src.path === '-' ? ctx.stdin : src.path, opts);
      for (const w of res.warnings) ctx.stderr.write(`${w}\n`);
      if (!o.quiet && src.path !== '-') ctx.stderr.write(`Successfully copied ${humanSize(res.bytes)} to ${dest.container}:${dest.path}\n`);
    }
  },
});

const diff = defineCommand({
  name: 'diff', group: 'container', shortcuts: ['diff'],
  usage: 'CONTAINER', summary: "Inspect changes to files or directories on a container's filesystem",
  options: [], minArgs: 1, maxArgs: 1,
  async action(ctx, _o, [ref]) {
    ctx.print(...(await (await ctx.engine()).containers.diff(ref!)).map((c) => `${c.kind} ${c.path}`));
  },
});

const exportCmd = defineCommand({
  name: 'export', group: 'container', shortcuts: ['export'],
  usage: '[OPTIONS] CONTAINER', summary: "Export a container's filesystem as a tar archive",
  options: [{ name: 'output', short: 'o', type: 'string', help: 'Write to a file, instead of STDOUT' }],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [ref]) {
    await (await ctx.engine()).containers.export(ref!, archiveOutput(ctx, o.output));
  },
});

const commit = defineCommand({
  name: 'commit', group: 'container', shortcuts: ['commit'],
  usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]', summary: "Create a new image from a container's changes",
  options: [
    { name: 'author', short: 'a', type: 'string', help: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    { name: 'change', short: 'c', type: 'list', help: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string', help: 'Commit message' },
    { name: 'pause', short: 'p', type: 'bool', default: true, help: 'Pause container during commit' },
  ],
  minArgs: 1, maxArgs: 2,
  async action(ctx, o, [ref, reference]) {
    const id = await (await ctx.engine()).containers.commit(ref!, { reference, changes: o.change, message: o.message, author: o.author, pause: o.pause });
    ctx.print(id);
  },
});

const top = defineCommand({
  name: 'top', group: 'container', shortcuts: ['top'],
  usage: 'CONTAINER [ps OPTIONS]', summary: 'Display the running processes of a container',
  options: [], minArgs: 1, commandAfterArgs: true,
  async action(ctx, _o, [ref, ...psArgs]) {
    const { titles, processes } = await (await ctx.engine()).containers.top(ref!, psArgs);
    ctx.print(...table(titles, processes));
  },
});

export const STATS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
const STATS_HEADERS = {
  Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %',
  NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
};

export function statsRow(s: ContainerStats): typeof STATS_HEADERS {
  return {
    Container: truncId(s.id), ID: truncId(s.id), Name: s.name, CPUPerc: percent(s.cpuPercent),
    MemUsage: `${bytesSize(s.memoryUsage)} / ${bytesSize(s.memoryLimit)}`, MemPerc: percent(s.memoryPercent),
    NetIO: `${humanSize(s.netRx)} / ${humanSize(s.netTx)}`, BlockIO: `${humanSize(s.blockRead)} / ${humanSize(s.blockWrite)}`, PIDs: String(s.pids),
  };
}

const stats = defineCommand({
  name: 'stats', group: 'container', shortcuts: ['stats'],
  usage: '[OPTIONS] [CONTAINER...]', summary: 'Display a live stream of container(s) resource usage statistics',
  options: [
    { name: 'all', short: 'a', type: 'bool', help: 'Show all containers (default shows just running)', hidden: true },
    { name: 'no-stream', type: 'bool', help: 'Disable streaming stats and only pull the first result' },
    NO_TRUNC_OPTION, FORMAT_OPTION,
  ],
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    const render = async () => renderRows((await c.stats(refs.length ? refs : undefined)).map(statsRow), o.format, STATS_TABLE, STATS_HEADERS);
    if (o.noStream) return ctx.print(...(await render()));
    let stopped = false;
    const stop = ctx.onSignal(() => { stopped = true; });
    try {
      while (!stopped) {
        const lines = await render();
        // docker clears the screen between samples only on a terminal.
        if (ctx.stdout.isTTY) ctx.stdout.write('\x1b[2J\x1b[H');
        ctx.print(...lines);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      stop();
    }
  },
});

const rename = defineCommand({
  name: 'rename', group: 'container', shortcuts: ['rename'],
  usage: 'CONTAINER NEW_NAME', summary: 'Rename a container',
  options: [], minArgs: 2, maxArgs: 2,
  async action(ctx, _o, [ref, name]) {
    await (await ctx.engine()).containers.rename(ref!, name!);
  },
});

const update = defineCommand({
  name: 'update', group: 'container', shortcuts: ['update'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Update configuration of one or more containers',
  options: [...RESOURCE_OPTIONS, { name: 'restart', type: 'string', help: 'Restart policy to apply when a container exits' }],
  minArgs: 1,
  async action(ctx, o, refs) {
    const c = (await ctx.engine()).containers;
    const req = { ...resourceRequest(o), ...(o.restart !== undefined ? { restart: o.restart } : {}) };
    if (!Object.keys(req).length) throw new UsageError('you must provide one or more flags when using this command', 1);
    return forEachRef(ctx, refs, (ref) => c.update(ref, req));
  },
});

const port = defineCommand({
  name: 'port', group: 'container', shortcuts: ['port'],
  usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]', summary: 'List port mappings or a specific mapping for the container',
  options: [], minArgs: 1, maxArgs: 2,
  async action(ctx, _o, [ref, want]) {
    const ports = await (await ctx.engine()).containers.port(ref!);
    const [num, proto = 'tcp'] = want?.split('/') ?? [];
    const hostAddr = (p: (typeof ports)[number]) => `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:${p.hostPort}`;
    if (want === undefined) return ctx.print(...ports.map((p) => `${p.containerPort}/${p.protocol} -> ${hostAddr(p)}`));
    const found = ports.filter((p) => String(p.containerPort) === num && p.protocol === proto);
    if (!found.length) throw new BadStateError(`no public port '${num}/${proto}' published for ${ref}`, `see its ports with "berth port ${ref}"`);
    ctx.print(...found.map(hostAddr));
  },
});

const prune = defineCommand({
  name: 'prune', group: 'container',
  usage: '[OPTIONS]', summary: 'Remove all stopped containers',
  options: [FORCE_OPTION, PRUNE_FILTER_OPTION],
  maxArgs: 0,
  async action(ctx, o) {
    if (!o.force && !(await confirm(ctx, 'This will remove all stopped containers.'))) return 0;
    const { deleted } = await (await ctx.engine()).containers.prune({ filters: o.filter });
    if (deleted.length) ctx.print('Deleted Containers:', ...deleted, '');
    ctx.print('Total reclaimed space: 0B');
  },
});

const cleanup = defineCommand({
  name: 'cleanup', group: 'container', hidden: true,
  usage: 'CONTAINER', summary: "Finish a container's exit (run by its monitor)",
  options: [], minArgs: 1, maxArgs: 1,
  async action(ctx, _o, [ref]) {
    await (await ctx.engine()).containers.cleanup(ref!);
  },
});

export const containerCommands: Command[] = [
  run, create, start, stop, kill, restart, rm, ps, inspect, logs, exec, attach, wait, pause, unpause, top, stats, rename, update, port, prune,
  cp, diff, exportCmd, commit, cleanup,
];

// ------------------------------------------------------------------------------------------ helpers

/** -o FILE, or stdout unless it is a terminal (docker's "cowardly refusing"). */
export function archiveOutput(ctx: Context, output: string | undefined): string | Context['stdout'] {
  if (output !== undefined) return output;
  if (ctx.stdout.isTTY) throw new InvalidArgumentError('--output', 'cowardly refusing to save to a terminal', 'use the -o flag or redirect');
  return ctx.stdout;
}

/**
 * `inspect`: a JSON array (4-space indent, as docker), the same array on one line with `--format json`
 * (docker's JSON inspector), or one template line per object.
 */
export async function printInspect(ctx: Context, refs: readonly string[], get: (ref: string) => Promise<unknown>, format: string | undefined): Promise<number> {
  const tpl = format && format !== 'json' ? parseTemplate(format) : undefined;
  const found: unknown[] = [];
  const failures: unknown[] = [];
  for (const ref of refs) {
    try {
      found.push(await get(ref));
    } catch (err) {
      failures.push(err);
    }
  }
  if (tpl) ctx.print(...found.map((x) => tpl.render(x)));
  else ctx.print(format === 'json' ? JSON.stringify(found) : JSON.stringify(found, null, 4));
  if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures, 'inspect failed');
  return 0;
}

function attachedIo(ctx: Context, withStdin: boolean): StdioStreams {
  return { stdin: withStdin ? ctx.stdin : undefined, stdout: ctx.stdout, stderr: ctx.stderr, terminal: ctx.terminal };
}

function rawTty(ctx: Context, wanted: boolean): () => void {
  if (!wanted || !ctx.stdin.isTTY || !ctx.stdin.setRawMode) return () => {};
  ctx.stdin.setRawMode(true);
  return () => ctx.stdin.setRawMode?.(false);
}

function printWarnings(ctx: Context, warnings: readonly string[]): void {
  for (const w of warnings) ctx.stderr.write(`WARNING: ${w}\n`);
}

/** `start -a`: a container that ended before we attached still shows its output and exit code. */
async function attachOrReplay(ctx: Context, c: EngineApi['containers'], ref: string, io: StdioStreams, detachKeys?: string): Promise<number> {
  try {
    const { exitCode } = await c.attach(ref, io, detachKeys !== undefined ? { detachKeys } : {});
    return exitCode ?? 0;
  } catch (err) {
    if (!(err instanceof BadStateError)) throw err;
    for await (const e of c.logs(ref)) (e.stream === 'stderr' ? ctx.stderr : ctx.stdout).write(`${e.line}${e.partial ? '' : '\n'}`);
    return c.wait(ref);
  } finally {
    if (io.stdin) ctx.stdin.pause();
  }
}
