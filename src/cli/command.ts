import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { ClientTerminal, EngineApi } from '../api/types.js';
import type { OptionSpec, OptionsOf } from './parser.js';

export interface GlobalOptions {
  root?: string;
  runroot?: string;
  /** the engine configuration file (--config, or $BERTH_CONFIG) */
  config?: string;
  /** --storage-driver, or $BERTH_STORAGE_DRIVER */
  storageDriver?: string;
  /** --cluster-store, or $BERTH_CLUSTER_STORE */
  clusterStore?: string;
  /** --cluster-advertise, or $BERTH_CLUSTER_ADVERTISE */
  clusterAdvertise?: string;
  /** -H/--host: a remote engine's URI (BERTH_HOST is read where the engine is chosen) */
  host?: string;
  /** --tls, --tlsverify and the files, for a tcp:// host (BERTH_TLS_VERIFY and BERTH_CERT_PATH are read where the engine is chosen) */
  tls?: { tls?: boolean; tlsverify?: boolean; tlscacert?: string; tlscert?: string; tlskey?: string };
  /** --context: a stored context's name (BERTH_CONTEXT likewise) */
  context?: string;
  logLevel: string;
}

/** What a command may touch: the engine (loaded on first use), the three streams, and signals. */
export interface Context {
  readonly globals: GlobalOptions;
  engine(): Promise<EngineApi>;
  /**
   * Which engine `engine()` is: a remote host (from -H, --context, BERTH_HOST, BERTH_CONTEXT or the current
   * context; `source` names which) or this machine's (`host` undefined), and the context's name.
   */
  target(): Promise<{ host?: string; context: string; source: string; sshEnv?: Record<string, string | undefined>; tls?: { verify: boolean; ca?: string; cert?: string; key?: string } }>;
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable;
  /** The user's terminal, when stdout is one: a tty container or exec takes its size and follows it. */
  readonly terminal?: ClientTerminal;
  /** Prints lines on stdout. */
  print(...lines: string[]): void;
  /** Calls `handler` on SIGINT/SIGTERM until the returned function is called. */
  onSignal(handler: (signal: NodeJS.Signals) => void): () => void;
}

/**
 * Work that Ctrl-C or a kill must stop (the engine cleans up what it stored): `signal` aborts on the first
 * SIGINT/SIGTERM, and `run` answers 128 + that signal's number, as a signalled docker command exits,
 * instead of the error the abort caused.
 */
export async function interruptible<T>(ctx: Context, work: (signal: AbortSignal) => Promise<T>): Promise<{ value: T } | { exitCode: number }> {
  const abort = new AbortController();
  let caught: NodeJS.Signals | undefined;
  const stop = ctx.onSignal((sig) => {
    caught ??= sig;
    abort.abort(new Error(`stopped by ${sig}`));
  });
  try {
    return { value: await work(abort.signal) };
  } catch (err) {
    if (caught) return { exitCode: 128 + (osConstants.signals[caught] ?? 0) };
    throw err;
  } finally {
    stop();
  }
}

export type Group = 'container' | 'image' | 'network' | 'volume' | 'system' | 'healthcheck' | 'context' | 'machine';

export interface CommandDef<S extends readonly OptionSpec[]> {
  /** The command's own name, as in `berth <group> <name>` (or `berth <name>` without a group). */
  readonly name: string;
  readonly group?: Group;
  /** More names inside the group: `ls`, `list`, `ps`. */
  readonly aliases?: readonly string[];
  /** Top-level names Docker has for it: `ps`, `images`, `rmi`. */
  readonly shortcuts?: readonly string[];
  /** The usage line after the command's name: '[OPTIONS] IMAGE [COMMAND] [ARG...]'. */
  readonly usage: string;
  readonly summary: string;
  readonly options: S;
  readonly minArgs?: number;
  readonly maxArgs?: number;
  /** Options end at the first positional: what follows the image is the container's command. */
  readonly commandAfterArgs?: boolean;
  readonly hidden?: boolean;
  /** Resolves with the exit code (0 when nothing is returned). */
  action(ctx: Context, options: OptionsOf<S>, args: string[]): Promise<number | void>;
}

/** A command with its option types erased, as the table holds them. */
export interface Command extends Omit<CommandDef<readonly OptionSpec[]>, 'action'> {
  action(ctx: Context, options: Record<string, unknown>, args: string[]): Promise<number | void>;
}

/** Keeps the literal option specs so that `action` sees typed options. */
export function defineCommand<const S extends readonly OptionSpec[]>(def: CommandDef<S>): Command {
  return def as unknown as Command;
}

/** Options several commands share. */
export const FORMAT_OPTION = { name: 'format', type: 'string', help: "Format output: 'table', 'table TEMPLATE', 'json' or a Go template" } as const;
export const FILTER_OPTION = { name: 'filter', short: 'f', type: 'list', help: 'Filter output based on conditions provided (key=value)' } as const;
/** Docker's prune filters: until=, label=, label!= (checked by the layers, util/prune-filter.ts). */
export const PRUNE_FILTER_OPTION = { name: 'filter', type: 'list', help: 'Provide filter values (e.g. "until=<timestamp>", "label=<key>=<value>")' } as const;
export const FORCE_OPTION = { name: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' } as const;
export const QUIET_OPTION = { name: 'quiet', short: 'q', type: 'bool', help: 'Only display IDs' } as const;
export const NO_TRUNC_OPTION = { name: 'no-trunc', type: 'bool', help: "Don't truncate output" } as const;
