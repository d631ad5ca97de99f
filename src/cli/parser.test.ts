import { describe, expect, it } from 'vitest';
import { type OptionSpec, parseArgv, UsageError } from './parser.js';

const SPECS = [
  { name: 'interactive', short: 'i', type: 'bool', help: '' },
  { name: 'tty', short: 't', type: 'bool', help: '' },
  { name: 'detach', short: 'd', type: 'bool', help: '' },
  { name: 'name', type: 'string', help: '' },
  { name: 'env', short: 'e', type: 'list', help: '' },
  { name: 'publish', short: 'p', type: 'list', help: '' },
  { name: 'label', short: 'l', type: 'map', help: '' },
  { name: 'timeout', short: 'T', type: 'number', help: '' },
  { name: 'network', aliases: ['net'], type: 'list', help: '' },
  { name: 'human', short: 'H', type: 'bool', default: true, help: '' },
] as const satisfies readonly OptionSpec[];

const parse = (argv: string[], stop = false) => parseArgv(argv, SPECS, { stopAtPositional: stop });

describe('parseArgv', () => {
  it('gives booleans, lists and maps a default', () => {
    expect(parse([]).options).toEqual({ interactive: false, tty: false, detach: false, env: [], publish: [], label: {}, network: [], human: true });
  });

  it('splits combined short booleans', () => {
    const { options } = parse(['-itd']);
    expect([options.interactive, options.tty, options.detach]).toEqual([true, true, true]);
  });

  it('takes a short flag value glued on, after =, or from the next word', () => {
    expect(parse(['-p80:80', '-p=81:81', '-p', '82:82']).options.publish).toEqual(['80:80', '81:81', '82:82']);
  });

  it('lets a value-taking short flag end a combined group', () => {
    const { options } = parse(['-ite', 'A=1']);
    expect(options).toMatchObject({ interactive: true, tty: true, env: ['A=1'] });
  });

  it('takes long values as --flag=value and --flag value', () => {
    expect(parse(['--name=a']).options.name).toBe('a');
    expect(parse(['--name', 'b']).options.name).toBe('b');
    expect(parse(['--name=']).options.name).toBe('');
  });

  it('collects repeatable flags, aliases included', () => {
    const { options } = parse(['-e', 'A=1', '--env', 'B=2', '--env=C=3', '--net', 'x', '--network=y']);
    expect(options.env).toEqual(['A=1', 'B=2', 'C=3']);
    expect(options.network).toEqual(['x', 'y']);
  });

  it('merges map flags, splitting at the first =', () => {
    expect(parse(['-l', 'a=1', '--label', 'b=x=y', '-l', 'c']).options.label).toEqual({ a: '1', b: 'x=y', c: '' });
  });

  it('parses numbers and rejects non-integers', () => {
    expect(parse(['-T', '5']).options.timeout).toBe(5);
    expect(parse(['--timeout=-1']).options.timeout).toBe(-1);
    expect(() => parse(['-T', 'abc'])).toThrow('invalid argument "abc" for "-T, --timeout" flag');
  });

  it('accepts --bool=false and -H=false', () => {
    expect(parse(['--detach=false']).options.detach).toBe(false);
    expect(parse(['-H=false']).options.human).toBe(false);
    expect(parse(['--human=0']).options.human).toBe(false);
    expect(() => parse(['--detach=maybe'])).toThrow(UsageError);
  });

  it('ends options at --', () => {
    expect(parse(['-d', '--', '-i', '--name', 'x'])).toMatchObject({ args: ['-i', '--name', 'x'], options: { detach: true, interactive: false } });
  });

  it('keeps options after positionals unless told to stop at the first one', () => {
    expect(parse(['img', '-d']).options.detach).toBe(true);
    const run = parse(['-d', 'img', 'sh', '-c', 'echo -i --name x'], true);
    expect(run.args).toEqual(['img', 'sh', '-c', 'echo -i --name x']);
    expect(run.options).toMatchObject({ detach: true, interactive: false });
  });

  it('treats a lone - as a positional', () => {
    expect(parse(['-', 'ref']).args).toEqual(['-', 'ref']);
  });

  it("reports unknown flags in docker's words, exit 125", () => {
    const err = (() => { try { parse(['--nope']); } catch (e) { return e; } })() as UsageError;
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('unknown flag: --nope');
    expect(err.exitCode).toBe(125);
    expect(() => parse(['-iz'])).toThrow("unknown shorthand flag: 'z' in -iz");
  });

  it('reports a missing value', () => {
    expect(() => parse(['--name'])).toThrow('flag needs an argument: --name');
    expect(() => parse(['-e'])).toThrow("flag needs an argument: 'e' in -e");
  });
});
