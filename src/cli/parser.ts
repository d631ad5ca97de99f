/**
 * A small declarative argv parser with Docker's (cobra/pflag) rules: `--flag value`, `--flag=value`,
 * combined short booleans (`-it`), a short flag's value glued on (`-p80:80`) or next, `--` ends options,
 * repeatable list/map flags collect, and for run/exec/create options stop at the first positional
 * (everything after the image is the container's command).
 */
export type OptionType = 'string' | 'bool' | 'number' | 'list' | 'map';

export interface OptionSpec {
  /** long name, kebab-case: 'no-trunc' (parsed into `noTrunc`) */
  readonly name: string;
  readonly type: OptionType;
  readonly short?: string;
  /** more long names for the same option: `--net` for `--network` */
  readonly aliases?: readonly string[];
  readonly help: string;
  readonly hidden?: boolean;
  /** booleans that are on unless turned off with `--flag=false` (docker's -H, --sig-proxy) */
  readonly default?: boolean;
}

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type ValueOf<T extends OptionType> = T extends 'string' ? string
  : T extends 'bool' ? boolean
  : T extends 'number' ? number
  : T extends 'list' ? string[]
  : Record<string, string>;
type Defaulted = 'bool' | 'list' | 'map';

/** The typed record a command's option specs parse into: booleans, lists and maps always have a value. */
export type OptionsOf<S extends readonly OptionSpec[]> =
  & { [O in S[number] as O['type'] extends Defaulted ? Camel<O['name']> : never]: ValueOf<O['type']> }
  & { [O in S[number] as O['type'] extends Defaulted ? never : Camel<O['name']>]?: ValueOf<O['type']> };

export type OptionValue = string | boolean | number | string[] | Record<string, string>;

export interface Parsed {
  options: Record<string, OptionValue>;
  args: string[];
}

/** A command line Berth cannot understand. Docker exits 125 for flag errors, 1 for argument counts. */
export class UsageError extends Error {
  /** `details` follow the "See 'berth X --help'." line: the usage block of argument-count errors. */
  constructor(message: string, readonly exitCode: 1 | 125 = 125, readonly details = '') {
    super(message);
    this.name = 'UsageError';
  }
}

export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function parseArgv(argv: readonly string[], specs: readonly OptionSpec[], opts: { stopAtPositional?: boolean } = {}): Parsed {
  const long = new Map<string, OptionSpec>();
  const short = new Map<string, OptionSpec>();
  for (const s of specs) {
    long.set(s.name, s);
    for (const a of s.aliases ?? []) long.set(a, s);
    if (s.short) short.set(s.short, s);
  }
  const options = defaults(specs);
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const spec = long.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`);
      if (spec.type === 'bool') {
        set(options, spec, eq < 0 ? true : parseBool(spec, a.slice(eq + 1)));
      } else {
        if (eq < 0 && i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        set(options, spec, convert(spec, eq < 0 ? argv[++i]! : a.slice(eq + 1)));
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const ch = a[j]!;
        const spec = short.get(ch);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${ch}' in ${a}`);
        if (spec.type === 'bool') {
          if (a[j + 1] === '=') {
            set(options, spec, parseBool(spec, a.slice(j + 2)));
            break;
          }
          set(options, spec, true);
          continue;
        }
        let value = a.slice(j + 1);
        if (value.startsWith('=')) value = value.slice(1);
        else if (value === '') {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${ch}' in ${a}`);
          value = argv[++i]!;
        }
        set(options, spec, convert(spec, value));
        break;
      }
      continue;
    }
    args.push(a);
    if (opts.stopAtPositional) {
      args.push(...argv.slice(i + 1));
      break;
    }
  }
  return { options, args };
}

function defaults(specs: readonly OptionSpec[]): Record<string, OptionValue> {
  const out: Record<string, OptionValue> = {};
  for (const s of specs) {
    const key = camelCase(s.name);
    if (s.type === 'bool') out[key] = s.default ?? false;
    else if (s.type === 'list') out[key] = [];
    else if (s.type === 'map') out[key] = {};
  }
  return out;
}

function set(options: Record<string, OptionValue>, spec: OptionSpec, value: OptionValue): void {
  const key = camelCase(spec.name);
  if (spec.type === 'list') (options[key] as string[]).push(value as string);
  else if (spec.type === 'map') Object.assign(options[key] as Record<string, string>, value);
  else options[key] = value;
}

function flagName(spec: OptionSpec): string {
  return spec.short ? `-${spec.short}, --${spec.name}` : `--${spec.name}`;
}

function convert(spec: OptionSpec, text: string): OptionValue {
  switch (spec.type) {
    case 'number': {
      if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`invalid argument "${text}" for "${flagName(spec)}" flag: not an integer`);
      return Number(text);
    }
    case 'map': {
      const eq = text.indexOf('=');
      return eq < 0 ? { [text]: '' } : { [text.slice(0, eq)]: text.slice(eq + 1) };
    }
    default:
      return text;
  }
}

function parseBool(spec: OptionSpec, text: string): boolean {
  if (/^(1|t|true)$/i.test(text)) return true;
  if (/^(0|f|false)$/i.test(text)) return false;
  throw new UsageError(`invalid argument "${text}" for "${flagName(spec)}" flag: not a boolean`);
}
