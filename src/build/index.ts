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
  | { type: 'note'; message: string }
  | { type: 'done'; id: ImageId; tags: string[] };

export { buildImage } from './run.js';
