import { describe, expect, it } from 'vitest';
import { formatValue, parseTemplate } from './template.js';
import { UsageError } from './parser.js';

const render = (tpl: string, data: unknown) => parseTemplate(tpl).render(data);

const INSPECT = {
  Id: 'abc',
  State: { Status: 'exited', ExitCode: 3, Running: false },
  Config: { Env: ['A=1', 'B=2'], Labels: { b: '2', a: '1' } },
  NetworkSettings: { Networks: { bridge: { IPAddress: '10.0.0.2' }, other: { IPAddress: '10.1.0.2' } } },
};

describe('templates', () => {
  it('prints field paths', () => {
    expect(render('{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}', INSPECT)).toBe('exited 3 false');
    expect(render('id={{ .Id }}', INSPECT)).toBe('id=abc');
  });

  it("prints like Go's %v", () => {
    expect(render('{{.Config.Env}}', INSPECT)).toBe('[A=1 B=2]');
    expect(render('{{.Config.Labels}}', INSPECT)).toBe('map[a:1 b:2]');
    expect(render('{{.Nope}}', INSPECT)).toBe('<no value>');
    expect(render('{{.Nope.Deeper}}', INSPECT)).toBe('<no value>');
    expect(formatValue(null)).toBe('<nil>');
  });

  it('has json, join, upper, lower, title, split, index, len, truncate', () => {
    expect(render('{{json .State}}', INSPECT)).toBe('{"Status":"exited","ExitCode":3,"Running":false}');
    expect(render('{{json .}}', { a: 1 })).toBe('{"a":1}');
    expect(render('{{join .Config.Env ","}}', INSPECT)).toBe('A=1,B=2');
    expect(render('{{.State.Status | upper}}', INSPECT)).toBe('EXITED');
    expect(render('{{lower "AbC"}} {{title "hello world"}}', {})).toBe('abc Hello World');
    expect(render('{{index (split "a:b" ":") 1}}', {})).toBe('b');
    expect(render('{{index .Config.Labels "a"}}', INSPECT)).toBe('1');
    expect(render('{{len .Config.Env}}', INSPECT)).toBe('2');
    expect(render('{{truncate .Id 2}}', INSPECT)).toBe('ab');
    expect(render('{{printf "%s-%d" .Id 7}}', INSPECT)).toBe('abc-7');
  });

  it('ranges over maps (sorted) and arrays, with variables', () => {
    expect(render('{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', INSPECT)).toBe('10.0.0.2 10.1.0.2 ');
    expect(render('{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}};{{end}}', INSPECT)).toBe('bridge=10.0.0.2;other=10.1.0.2;');
    expect(render('{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}', INSPECT)).toBe('0:A=1 1:B=2 ');
    expect(render('{{range .Missing}}x{{else}}none{{end}}', INSPECT)).toBe('none');
    expect(render('{{range .Config.Env}}{{$.Id}}{{end}}', INSPECT)).toBe('abcabc');
  });

  it('has if/else if/else and with', () => {
    const t = '{{if eq .State.Status "running"}}up{{else if .State.ExitCode}}failed{{else}}ok{{end}}';
    expect(render(t, INSPECT)).toBe('failed');
    expect(render(t, { State: { Status: 'running' } })).toBe('up');
    expect(render(t, { State: { Status: 'exited', ExitCode: 0 } })).toBe('ok');
    expect(render('{{with .State}}{{.Status}}{{end}}', INSPECT)).toBe('exited');
    expect(render('{{if not .State.Running}}stopped{{end}}', INSPECT)).toBe('stopped');
  });

  it('reads fields of a parenthesized pipeline', () => {
    expect(render('{{(index .Config.Env 1)}} {{(index .NetworkSettings.Networks "other").IPAddress}}', INSPECT)).toBe('B=2 10.1.0.2');
  });

  it('trims around {{- and -}}', () => {
    expect(render('a  {{- .Id -}}  b', INSPECT)).toBe('aabcb');
  });

  it('rejects broken templates with a usage error', () => {
    expect(() => parseTemplate('{{.Id')).toThrow(UsageError);
    expect(() => parseTemplate('{{if .Id}}x')).toThrow('missing {{end}}');
    expect(() => render('{{nosuch .Id}}', INSPECT)).toThrow('function "nosuch" not defined');
  });

  it('compares with lt le gt ge, of one kind only', () => {
    expect(render('{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 2 2}} {{lt "a" "b"}}', {})).toBe('true true false true true');
    expect(render('{{if gt .State.ExitCode 2}}big{{end}}', INSPECT)).toBe('big');
    expect(() => render('{{lt .State.ExitCode "3"}}', INSPECT)).toThrow('error calling lt: incompatible types for comparison');
    expect(() => render('{{lt true false}}', {})).toThrow('error calling lt: invalid type for comparison');
    expect(() => render('{{eq .State.ExitCode "3"}}', INSPECT)).toThrow('error calling eq: incompatible types for comparison');
    expect(() => render('{{lt .Config.Env 1}}', INSPECT)).toThrow('non-comparable type');
  });

  it('slices strings and lists as Go does', () => {
    expect(render('{{slice .Id 1}} {{slice .Id 0 2}} {{slice .Config.Env 1 2}} {{slice .Id}}', INSPECT)).toBe('bc ab [B=2] abc');
    expect(() => render('{{slice .Id 2 9}}', INSPECT)).toThrow('index out of range: 9');
    expect(() => render('{{slice .State 1}}', INSPECT)).toThrow("can't slice item of type map");
    expect(() => render('{{slice .Id "1"}}', INSPECT)).toThrow('expected int; got string');
  });

  it('calls methods with their arguments, and bare ones with none', () => {
    const row = { Labels: 'app=web', Label: (name: string) => ({ app: 'web' } as Record<string, string>)[name] ?? '', Count: () => 3 };
    expect(render('{{.Label "app"}}|{{.Label "nope"}}|{{.Count}}|{{"app" | .Label}}', row)).toBe('web||3|web');
    expect(() => render('{{.Label}}', row)).toThrow('wrong number of args for Label: want 1 got 0');
    expect(() => render('{{.Labels "app"}}', row)).toThrow("can't give argument to non-function .Labels");
  });

  it('reports type errors instead of printing them', () => {
    expect(() => render('{{.State.Running | upper}}', INSPECT)).toThrow('wrong type for value; expected string; got bool');
    expect(() => render('{{join .Config.Labels ","}}', INSPECT)).toThrow('expected []string');
    expect(() => render('{{truncate .Id "x"}}', INSPECT)).toThrow('expected int');
    expect(() => render('{{.Id.Foo}}', INSPECT)).toThrow("can't evaluate field Foo in type string");
    expect(() => render('{{upper}}', INSPECT)).toThrow('wrong number of args for upper: want 1 got 0');
    expect(() => render('{{index .Config.Env "a"}}', INSPECT)).toThrow('cannot index slice/array with type string');
    expect(() => render('{{index .Config.Env 5}}', INSPECT)).toThrow('index out of range: 5');
    expect(() => render('{{len .State.ExitCode}}', INSPECT)).toThrow('len of type int');
  });

  it('refuses fields a struct-like row does not have, when told the data are structs', () => {
    expect(() => parseTemplate('{{.Nope}}', { strictFields: true }).render({ ID: 'x' })).toThrow("can't evaluate field Nope");
    expect(parseTemplate('{{.ID}}', { strictFields: true }).render({ ID: 'x' })).toBe('x');
  });
});
