/**
 * Builds: images from a Dockerfile, on Berth's own image store, snapshots and runtime (each RUN is a real
 * container run by runc).
 *
 * Layers, each behind the types below:
 *   dockerfile.ts  text → Dockerfile (parsed with dockerfile-ast; directives, heredocs, line continuations,
 *                  flags), no variable expanded: expansion depends on the build's state at each step
 *   expand.ts      `expandWords`/`expandInstruction`: Docker's variable substitution ($V, ${V}, ${V:-x},
 *                  ${V:+x}, escapes) on the instructions Docker expands, with the ARG/ENV in scope
 *   ignore.ts      .dockerignore patterns (Docker's rules: `**`, `!` exceptions, leading `/`, `..` cleaned)
 *   context.ts     the build context: a directory or a tar stream, hostile paths refused, ignore applied,
 *                  files hashed for the cache
 *   builder.ts     stages in dependency order, each instruction a step: FROM, RUN (a container), COPY/ADD
 *                  (a layer), metadata (config only); the layer cache; history; progress events
 */
import type { Readable } from 'node:stream';
import type { ImageId } from '../ids.js';

/** A parsed Dockerfile. Words are as written (variables unexpanded); `line` is 1-based, of the instruction's first line. */
export interface Dockerfile {
  /** parser directives at the top: `# escape=` (default `\`), `# syntax=` (accepted and ignored, with a note) */
  directives: { escape: '\\' | '`'; syntax?: string };
  /** ARGs before the first FROM: usable in FROM lines only (unless re-declared inside a stage) */
  globalArgs: ArgInstruction[];
  stages: Stage[];
}

export interface Stage {
  /** position among the stages, from 0 */
  index: number;
  /** `FROM image AS name`, lower-cased as Docker does */
  name?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

/** What every instruction carries: its line, and its text as written (for history's created_by and the cache key). */
interface Base {
  line: number;
  /** the instruction's original text, continuations joined, e.g. `RUN apt-get update && ...` */
  text: string;
}

/** `CMD`, `ENTRYPOINT`, `RUN`, `HEALTHCHECK CMD`: the JSON (exec) form or the shell form. */
export type CommandForm = { form: 'exec'; args: string[] } | { form: 'shell'; script: string };

/** A here-document: `<<EOF` (`expand` false for `<<'EOF'` / `<<"EOF"`), `<<-EOF` strips leading tabs. */
export interface Heredoc {
  name: string;
  content: string;
  expand: boolean;
  stripTabs: boolean;
}

export interface FromInstruction extends Base { kind: 'FROM'; image: string; alias?: string; platform?: string }
export interface ArgInstruction extends Base { kind: 'ARG'; args: { name: string; default?: string }[] }

/** `RUN --mount=type=cache|bind|secret|tmpfs,...` as given; the builder checks what it supports. */
export interface RunMount { type: string; options: Record<string, string> }

export type Instruction =
  | (Base & { kind: 'RUN'; command: CommandForm; mounts: RunMount[]; network?: string; heredocs: Heredoc[] })
  | (Base & {
      kind: 'COPY' | 'ADD';
      /** sources as written (globs unexpanded); with heredocs, a source may name one (`COPY <<EOF /x`) */
      sources: string[];
      dest: string;
      from?: string;
      chown?: string;
      chmod?: string;
      /** ADD --checksum=sha256:... (remote sources) */
      checksum?: string;
      /** COPY --link, ADD --keep-git-dir, ...: flags the builder does not support are refused by it, by name */
      otherFlags: Record<string, string>;
      heredocs: Heredoc[];
    })
  | (Base & { kind: 'ENV' | 'LABEL'; pairs: [string, string][] })
  | ArgInstruction
  | (Base & { kind: 'WORKDIR' | 'USER' | 'STOPSIGNAL' | 'MAINTAINER'; value: string })
  | (Base & { kind: 'EXPOSE' | 'VOLUME'; values: string[] })
  | (Base & { kind: 'CMD' | 'ENTRYPOINT'; command: CommandForm })
  | (Base & { kind: 'SHELL'; args: string[] })
  | (Base & {
      kind: 'HEALTHCHECK';
      /** undefined: `HEALTHCHECK NONE` */
      command?: CommandForm;
      /** Go durations as written (`30s`, `1m30s`); the builder converts */
      interval?: string;
      timeout?: string;
      startPeriod?: string;
      startInterval?: string;
      retries?: number;
    })
  | (Base & { kind: 'ONBUILD'; trigger: string });

export type InstructionKind = Instruction['kind'] | 'FROM';

/** `berth build` / `engine.images.build()`. */
export interface BuildOptions {
  /** a directory, or a tar stream of the context (`berth build -`) */
  context: string | Readable;
  /** path of the Dockerfile inside the context (default `Dockerfile`), or its text (`-f -`) */
  dockerfile?: string | { text: string };
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  /** pull FROM images even when present */
  pull?: boolean;
  /** network of RUN containers: none, host, or bridge (default bridge, as Docker) */
  network?: 'none' | 'host' | 'bridge';
  labels?: Record<string, string>;
  platform?: string;
  /**
   * Logins for the FROM images' pulls, by registry host (`docker.io`, `127.0.0.1:5000`): the Engine API's
   * X-Registry-Config, which a remote client sends from its own store. Without one, the store's login.
   */
  registryAuth?: Record<string, { username: string; password: string; identityToken?: string }>;
  /** `--secret id=ID,src=PATH` */
  secrets?: { id: string; src: string }[];
  /** `--iidfile`: the image ID is written there once the build succeeded */
  iidfile?: string;
  signal?: AbortSignal;
  onProgress?: (event: BuildEvent) => void;
}

export interface BuildResult {
  id: ImageId;
  tags: string[];
}

/** Progress, in order: each step announced, its output lines, whether the cache served it, and the end. */
export type BuildEvent =
  | { type: 'step'; stage: number; stageName?: string; step: number; steps: number; text: string }
  | { type: 'cached'; step: number }
  /** the step's result (the image after it), Docker's ` ---> 1a2b3c4d5e6f` */
  | { type: 'stepDone'; step: number; id: ImageId }
  | { type: 'output'; step: number; stream: 'stdout' | 'stderr'; line: string }
  /** a RUN's container: created (before its output), and removed once its layer is stored (not after a failure) */
  | { type: 'container'; step: number; id: string; action: 'run' | 'remove' }
  | { type: 'note'; message: string }
  | { type: 'done'; id: ImageId; tags: string[] };

/**
 * One thing a COPY/ADD source brings: a file, a directory or a symbolic link (copied as the link itself).
 * `resolve` lists a directory source's own entry first (target ''), then everything beneath it in
 * lexical order, so the list (and its hash) is the same on every run.
 */
export interface ContextEntry {
  /** where it is in the context, relative to the root, `/`-separated ('' is the root itself) */
  path: string;
  /**
   * where it lands, relative to the destination: a file (or a symlink given as the source, followed) → its
   * base name; a directory source → '' for itself and the path below it for its contents (Docker copies
   * a directory's contents, not the directory)
   */
  target: string;
  type: 'file' | 'directory' | 'symlink';
  /** permission bits with setuid/setgid/sticky (mode & 0o7777) */
  mode: number;
  /** bytes, for files; 0 otherwise */
  size: number;
  /** modification time, as the walk that found it saw it (the layer's entry keeps it, as Docker's COPY does) */
  mtime?: Date;
  /** a symlink's target, as written */
  linkname?: string;
  /** absolute path on this host to read it from (for a followed symlink: the file it points to) */
  hostPath: string;
}

export interface OpenContextOptions {
  /**
   * the Dockerfile's path in the context (default `Dockerfile`): `readDockerfile()` reads it, and
   * `<dockerfile>.dockerignore` beside it is preferred to the root's `.dockerignore`, as BuildKit does
   */
  dockerfile?: string;
  /** apply .dockerignore (default true) */
  ignore?: boolean;
  /** where a tar context is unpacked: a folder under the engine's root (default the OS temp dir) */
  tempParent?: string;
}

/**
 * The build context, as the builder asks questions of it. A directory is used in place (never copied);
 * a tar stream is unpacked into a temp folder that `close` removes. Life: `openContext` → `readDockerfile`
 * → `resolve`/`hash` per COPY/ADD → `close` (always, also when the build fails).
 */
export interface BuildContext {
  /** the context's folder on this host (for `RUN --mount=type=bind` from the context) */
  readonly root: string;
  /**
   * The Dockerfile's text: `name` (default: the `dockerfile` given to `openContext`, else `Dockerfile`,
   * falling back to `dockerfile` as Docker does). Read even when .dockerignore excludes it, as Docker does.
   * When stdin held a Dockerfile rather than a tar, that text is returned whatever the name.
   */
  readDockerfile(name?: string): Promise<{ name: string; text: string }>;
  /**
   * A COPY/ADD source (variables already expanded) → what it brings, .dockerignore applied: a file, a
   * directory (everything beneath it) or a glob (Go's filepath.Match, each match as if named on its own).
   * A leading `/` is relative to the context root. Refused, with the source named: `..` out of the context,
   * a source (or a directory on its path) that is a symlink whose target leaves the context, nothing found,
   * a source excluded by .dockerignore. Symlinks inside a directory are listed as links, never followed.
   */
  resolve(source: string): Promise<ContextEntry[]>;
  /**
   * `sha256:<hex>` over the entries in order: target, type, mode, size, link target and file content.
   * Not mtime, owner or where in the context a file was: COPY writes 0:0 unless --chown (part of the
   * instruction), so only what lands in the layer counts. Stable across runs and processes.
   */
  hash(entries: readonly ContextEntry[]): Promise<string>;
  /** whether .dockerignore excludes `path` (relative to the root) */
  isIgnored(path: string): boolean;
  /** whether a .dockerignore applies at all (then a bind of the context must not show the folder itself) */
  readonly filtered: boolean;
  /** removes the temp folder of a tar context; idempotent */
  close(): Promise<void>;
}

export { buildImage, checkSecrets } from './run.js';

/**
 * A remote build's --secret files travel at the head of the context tar, in this folder, one file an id,
 * with the Berth parameter `secrets=["ID",...]`; the service takes them out of the context before the
 * builder sees it (so no COPY can reach them), keeps them in a private folder for the build, and removes
 * them after. See src/remote/data.ts and src/service/images-build.ts.
 */
export const REMOTE_SECRETS_DIR = '.berth-build-secrets';
export { pruneBuildCache } from './cache.js';
