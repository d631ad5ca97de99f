import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from './main.js';

async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) => new Writable({ write(chunk, _enc, cb) { add(chunk.toString()); cb(); } });
  const code = await main(argv, { stdin: new PassThrough(), stdout: sink((s) => { out += s; }), stderr: sink((s) => { err += s; }) });
  return { code, out, err };
}

describe('main (no engine needed)', () => {
  it('prints the version', async () => {
    expect(await cli('--version')).toEqual({ code: 0, out: 'Berth version 0.1.0\n', err: '' });
    expect((await cli('-v')).out).toContain('Berth version');
  });

  it('lists commands in --help and with no command', async () => {
    for (const argv of [['--help'], ['-h'], []]) {
      const { code, out } = await cli(...argv);
      expect(code).toBe(0);
      expect(out).toMatch(/^Usage: {2}berth \[OPTIONS\] COMMAND/);
      for (const name of ['run', 'ps', 'images', 'rmi', 'network', 'container', 'inspect']) expect(out).toMatch(new RegExp(`^  ${name} `, 'm'));
      expect(out).not.toContain('cleanup');
    }
    expect((await cli('system', '--help')).out).not.toContain('cluster-agent');
  });

  it('answers an unknown command as docker does (exit 1)', async () => {
    expect(await cli('frobnicate')).toEqual({ code: 1, out: '', err: "berth: 'frobnicate' is not a berth command.\nSee 'berth --help'\n" });
    expect((await cli('network', 'frob')).code).toBe(1);
  });

  it('answers an unknown flag with exit 125 and a pointer to help', async () => {
    expect(await cli('run', '--bogus', 'busybox')).toEqual({ code: 125, out: '', err: "unknown flag: --bogus\nSee 'berth run --help'.\n" });
    expect((await cli('container', 'ls', '-z')).err).toBe("unknown shorthand flag: 'z' in -z\nSee 'berth container ls --help'.\n");
    expect((await cli('--bogus')).code).toBe(125);
    expect((await cli('--log-level', 'loud', 'ps')).code).toBe(125);
  });

  it('answers a wrong argument count with exit 1 and the usage', async () => {
    const { code, err } = await cli('rm');
    expect(code).toBe(1);
    expect(err).toBe([
      '"berth rm" requires at least 1 argument.', "See 'berth rm --help'.", '', 'Usage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]', '',
      'Remove one or more containers', '',
    ].join('\n'));
    expect((await cli('rename', 'a')).err).toContain('"berth rename" requires exactly 2 arguments.');
    expect((await cli('ps', 'x')).err).toContain('"berth ps" accepts no arguments.');
    expect((await cli('run')).code).toBe(1);
  });

  it('prints command help with aliases; -h is --hostname for run', async () => {
    const ps = await cli('ps', '--help');
    expect(ps.code).toBe(0);
    expect(ps.out).toContain('berth container ls, berth container list, berth container ps, berth ps');
    expect(ps.out).toMatch(/-n, --last int/);
    expect((await cli('container', 'ls', '-h')).out).toContain('List containers');
    const run = await cli('run', '--help');
    expect(run.out).toMatch(/-h, --hostname string/);
    expect(run.out).not.toMatch(/--sig-proxy.*\n.*--sig-proxy/);
    expect((await cli('run', '-h')).err).toContain("flag needs an argument: 'h' in -h");
  });

  it('prints group help', async () => {
    const { code, out } = await cli('network');
    expect(code).toBe(0);
    expect(out).toContain('Usage:  berth network COMMAND');
    for (const name of ['connect', 'create', 'disconnect', 'inspect', 'ls', 'prune', 'reload', 'rm']) expect(out).toMatch(new RegExp(`^  ${name} `, 'm'));
  });

  it('prints version details without an engine', async () => {
    const { code, out } = await cli('version', '--format', '{{.Client.Version}} {{.Server.Version}} {{(index .Server.Components 0).Name}}');
    expect(code).toBe(0);
    expect(out).toBe('0.1.0 0.1.0 Engine\n');
  });
});
