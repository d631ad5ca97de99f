/**
 * `berth`: parses argv into a typed request, calls the programmatic API, prints, and picks the exit code.
 * The engine is imported only when a command needs it, so `--help` and `--version` stay fast.
 */
import type { Readable, Writable } from 'node:stream';
import type { ClientTerminal, EngineApi } from '../api/types.js';
import type { Command, Context, GlobalOptions } from './command.js';
import { type Resolved, resolveCommand } from './commands/index.js';
import { exitCodeFor } from './exit.js';
import { commandHelp, GLOBAL_OPTIONS, groupHelp, rootHelp, usageLine } from './help.js';
import { type OptionSpec, parseArgv, UsageError } from './parser.js';
import { printError } from './report.js';
import { VERSION } from './version.js';

export interface CliStreams {
  stdin: Context['stdin'];
  stdout: Context['stdout'];
  stderr: Writable;
  terminal?: ClientTerminal;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'];

/** Resolves with the exit code; never throws. */
export async function main(argv: readonly string[], streams: CliStreams = defaultStreams): Promise<number> {
  let globals: GlobalOptions = { logLevel: 'warn' };
  let resolved: Resolved | undefined;
  try {
    const g = parseArgv(argv, GLOBAL_OPTIONS, { stopAtPositional: true });
    const o = g.options as { root?: string; runroot?: string; config?: string; host?: string; context?: string; clusterStore?: string; clusterAdvertise?: string; storageDriver?: string; logLevel?: string; debug: boolean; version: boolean; help: boolean;
      tls: boolean; tlsverify: boolean; tlscacert?: string; tlscert?: string; tlskey?: string };
    globals = {
      root: o.root, runroot: o.runroot, config: o.config ?? (process.env.BERTH_CONFIG || undefined), logLevel: o.debug ? 'debug' : o.logLevel ?? 'warn',
      clusterStore: o.clusterStore ?? (process.env.BERTH_CLUSTER_STORE || undefined),
      storageDriver: o.storageDriver ?? (process.env.BERTH_STORAGE_DRIVER || undefined),
      clusterAdvertise: o.clusterAdvertise ?? (process.env.BERTH_CLUSTER_ADVERTISE || undefined),
      ...(o.host !== undefined ? { host: o.host } : {}),
      ...(o.context !== undefined ? { context: o.context } : {}),
      ...(o.tls || o.tlsverify || (o.tlscacert ?? o.tlscert ?? o.tlskey) !== undefined ? { tls: { tls: o.tls, tlsverify: o.tlsverify, tlscacert: o.tlscacert, tlscert: o.tlscert, tlskey: o.tlskey } } : {}),
    };
    if (!LOG_LEVELS.includes(globals.logLevel)) throw new UsageError(`invalid argument "${globals.logLevel}" for "-l, --log-level" flag: not a log level`);
    if (o.version) return write(streams.stdout, `Berth version ${VERSION}\n`, 0);
    if (o.help || !g.args.length) return write(streams.stdout, rootHelp(), 0);
    resolved = resolveCommand(g.args);
    switch (resolved.kind) {
      case 'group': {
        const rest = resolved.rest;
        const helpAsked = rest.includes('--help') || rest.includes('-h');
        if (rest.length && !helpAsked) throw new UsageError(`unknown flag: ${rest[0]}`);
        return write(streams.stdout, groupHelp(resolved.group), 0);
      }
      case 'unknown': {
        const where = resolved.group ? `berth ${resolved.group}` : 'berth';
        return write(streams.stderr, `berth: '${resolved.invokedAs}' is not a berth command.\nSee '${where} --help'\n`, 1);
      }
      case 'command':
        // Not root: a command on this machine's engine runs again inside the user's own user namespace
        // (src/rootless). One on a remote engine, and `context`, which only edits the user's files, need none.
        if (process.geteuid?.() !== 0 && streams === defaultStreams && resolved.command.group !== 'context' && !(await remoteChosen(globals))) {
          const { runInNamespace } = await import('../rootless/index.js');
          return await runInNamespace(argv);
        }
        return await runCommand(resolved.command, resolved.invokedAs, resolved.rest, globals, streams);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const where = resolved?.kind === 'command' ? `berth ${resolved.invokedAs}` : 'berth';
      return write(streams.stderr, `${err.message}\nSee '${where} --help'.\n${err.details}`, err.exitCode);
    }
    printError(streams.stderr, err, globals.logLevel === 'debug');
    // `volume create`, `network create` and `context create` are not `create`: Docker gives them 1, as every other command.
    const objectCreate = resolved?.kind === 'command' && ['volume', 'network', 'context'].includes(resolved.command.group ?? '');
    const cmd = resolved?.kind === 'command' && !objectCreate ? resolved.command.name : undefined;
    return exitCodeFor(err, cmd);
  }
}

async function runCommand(command: Command, invokedAs: string, argv: readonly string[], globals: GlobalOptions, streams: CliStreams): Promise<number> {
  // docker: -h is --help, except where a command gives -h a meaning of its own (run's --hostname).
  const takesH = command.options.some((o) => o.short === 'h');
  const help: OptionSpec = { name: 'help', type: 'bool', help: 'Print usage', ...(takesH ? {} : { short: 'h' }) };
  const parsed = parseArgv(argv, [...command.options, help], { stopAtPositional: command.commandAfterArgs });
  if (parsed.options.help) return write(streams.stdout, commandHelp(invokedAs, command), 0);
  checkArgCount(command, invokedAs, parsed.args.length);
  const code = await command.action(context(globals, streams), parsed.options, parsed.args);
  return code ?? 0;
}

/** Docker's wording for argument counts (exit 1, where flag errors exit 125). */
function checkArgCount(c: Command, invokedAs: string, n: number): void {
  const min = c.minArgs ?? 0;
  const max = c.maxArgs ?? Infinity;
  if (n >= min && n <= max) return;
  const plural = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  const what = max === 0 ? 'accepts no arguments'
    : min === max ? `requires exactly ${plural(min)}`
    : n < min ? `requires at least ${plural(min)}`
    : `requires at most ${plural(max)}`;
  throw new UsageError(`"berth ${invokedAs}" ${what}.`, 1, `\n${usageLine(invokedAs, c)}\n\n${c.summary}\n`);
}

async function remoteChosen(globals: GlobalOptions): Promise<boolean> {
  const { resolveEngineHost } = await import('../remote/contexts.js');
  return !!(await resolveEngineHost({ host: globals.host, context: globals.context, tls: globals.tls })).host;
}

function context(globals: GlobalOptions, streams: CliStreams): Context {
  let engine: Promise<EngineApi> | undefined;
  let target: ReturnType<Context['target']> | undefined;
  const chosen = () => {
    target ??= import('../remote/contexts.js').then(({ resolveEngineHost }) => resolveEngineHost({ host: globals.host, context: globals.context, tls: globals.tls }));
    return target;
  };
  return {
    globals,
    stdin: streams.stdin,
    stdout: streams.stdout,
    stderr: streams.stderr,
    terminal: streams.terminal,
    engine() {
      engine ??= import('../api/index.js').then(async ({ Engine, InvalidArgumentError }) => {
        const remote = await chosen();
        if (!remote.host) return new Engine({ root: globals.root, runroot: globals.runroot, config: globals.config, clusterStore: globals.clusterStore, clusterAdvertise: globals.clusterAdvertise, storageDriver: globals.storageDriver });
        // --root, --runroot and --storage-driver name this machine's store: with a remote engine they would be silently unused.
        const local = globals.root !== undefined ? '--root' : globals.runroot !== undefined ? '--runroot' : globals.storageDriver !== undefined ? '--storage-driver' : undefined;
        if (local) throw new InvalidArgumentError(local, `cannot be used with a remote engine (${remote.host}, chosen by ${remote.source})`, 'drop it, or drop the remote engine to use this machine\'s store');
        // dial.ts reads a context's ssh settings (a machine's key, remote berth and root) where it reads BERTH_SSH_OPTS.
        for (const [k, v] of Object.entries(remote.sshEnv ?? {})) if (v === undefined) delete process.env[k]; else process.env[k] = v;
        return new Engine({ host: remote.host, ...(remote.tls ? { tls: remote.tls } : {}) });
      });
      return engine;
    },
    target: chosen,
    print(...lines) {
      if (lines.length) streams.stdout.write(lines.join('\n') + '\n');
    },
    onSignal(handler) {
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
  };
}

function write(stream: Writable, text: string, code: number): number {
  stream.write(text);
  return code;
}

const defaultStreams = processStreams();

function processStreams(): CliStreams {
  return {
    // process.stdin opens a handle when first touched: only commands that read it pay for that.
    get stdin() {
      return process.stdin as Readable & { isTTY?: boolean };
    },
    stdout: process.stdout,
    stderr: process.stderr,
    terminal: stdoutTerminal(),
  };
}

/** The user's terminal as docker's client sees it: stdout's size, followed through SIGWINCH ('resize'). */
function stdoutTerminal(): ClientTerminal | undefined {
  const out = process.stdout;
  if (!out.isTTY) return undefined;
  return {
    // Asked of the terminal each time, not Node's copy, which is only refreshed when its SIGWINCH handler runs.
    size: () => {
      const [columns, rows] = out.getWindowSize?.() ?? [out.columns ?? 0, out.rows ?? 0];
      return { rows: rows ?? 0, columns: columns ?? 0 };
    },
    onResize(listener) {
      out.on('resize', listener);
      return () => {
        out.off('resize', listener);
      };
    },
  };
}
