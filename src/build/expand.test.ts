import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parseDockerfile } from './dockerfile.js';
import { expandInstruction, expandWord, expandWords, isHeredocSource, lex } from './expand.js';
import type { Instruction } from './index.js';

const vars = { FOO: '/bar', EMPTY: '', NAME: 'world', SPACED: 'a  b', PATH_: 'dir/sub/file.tar.gz' };

describe('expandWord', () => {
  // the cases of the Dockerfile reference ("Environment replacement") and BuildKit's lexer
  const cases: [string, string][] = [
    ['$FOO', '/bar'],
    ['${FOO}', '/bar'],
    ['${FOO}/baz', '/bar/baz'],
    ['$FOO/baz', '/bar/baz'],
    ['$FOO_x', ''],
    ['\\$FOO', '$FOO'],
    ['\\${FOO}', '${FOO}'],
    ["'$FOO'", '$FOO'],
    ['"$FOO"', '/bar'],
    ['"\\$FOO"', '$FOO'],
    ['"a\\b"', 'a\\b'],
    ['"say \\"hi\\""', 'say "hi"'],
    ["'a\\b'", 'a\\b'],
    ['a\\ b', 'a b'],
    ['$UNSET', ''],
    ['x${UNSET}y', 'xy'],
    ['${UNSET:-default}', 'default'],
    ['${EMPTY:-default}', 'default'],
    ['${EMPTY-default}', ''],
    ['${UNSET-default}', 'default'],
    ['${FOO:-default}', '/bar'],
    ['${FOO:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${UNSET:-$FOO/x}', '/bar/x'],
    ['${UNSET:-"a b"}', 'a b'],
    ['${UNSET:-${NAME}}', 'world'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$ x', '$ x'],
    ['$1', ''],
    ['cost: $5', 'cost: '],
    ['${PATH_#*/}', 'sub/file.tar.gz'],
    ['${PATH_##*/}', 'file.tar.gz'],
    ['${PATH_%.*}', 'dir/sub/file.tar'],
    ['${PATH_%%.*}', 'dir/sub/file'],
    ['${PATH_/sub/top}', 'dir/top/file.tar.gz'],
    ['${PATH_//\\//-}', 'dir-sub-file.tar.gz'],
    ['hello \\', 'hello '],
  ];
  for (const [word, expected] of cases) {
    it(`${word} → ${JSON.stringify(expected)}`, () => expect(expandWord(word, vars)).toBe(expected));
  }

  it('uses the backtick as escape when the directive says so, and keeps the backslash', () => {
    expect(expandWord('C:\\dir\\`$FOO', vars, '`')).toBe('C:\\dir\\$FOO');
    expect(expandWord('"`$FOO"', vars, '`')).toBe('$FOO');
  });

  it('reports the variables it used', () => {
    expect([...lex('$FOO ${NAME:-x} $UNSET', vars).used].sort()).toEqual(['FOO', 'NAME']);
  });

  const errors: [string, RegExp][] = [
    ["'open", /matching single-quote/],
    ['"open', /matching double-quote/],
    ['${FOO', /missing '}'/],
    ['${FOO:-x', /missing '}'/],
    ['${}', /needs a variable name/],
    ['${FOO:=x}', /unsupported modifier \(:=\)/],
    ['${UNSET:?must be set}', /UNSET: must be set/],
    ['${EMPTY:?}', /EMPTY: is not allowed to be unset or empty/],
  ];
  for (const [word, expected] of errors) {
    it(`refuses ${word}`, () => {
      expect(() => expandWord(word, vars)).toThrow(InvalidArgumentError);
      expect(() => expandWord(word, vars)).toThrow(expected);
    });
  }
  it('accepts ${VAR?} when set, even empty', () => expect(expandWord('${EMPTY?x}', vars)).toBe(''));
});

describe('expandWords', () => {
  it('splits on blanks outside quotes, and a variable unquoted into several words', () => {
    expect(expandWords('80/tcp  $PORTS "a b"', { PORTS: '443 8080' })).toEqual(['80/tcp', '443', '8080', 'a b']);
    expect(expandWords('"$SPACED" $SPACED', vars)).toEqual(['a  b', 'a', 'b']);
    expect(expandWords('$EMPTY', vars)).toEqual([]);
    expect(expandWords('""', vars)).toEqual(['']);
  });
});

describe('expandInstruction', () => {
  const stage = (body: string) => parseDockerfile(`FROM base\n${body}`).stages[0]!.instructions;
  const expand = (body: string, v: Record<string, string> = vars): Instruction[] => stage(body).map((i) => expandInstruction(i, v));

  it('expands what the Dockerfile reference shows: WORKDIR, ADD, COPY with an escaped $', () => {
    const [workdir, add, copy] = expand('WORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux');
    expect(workdir).toMatchObject({ value: '/bar' });
    expect(add).toMatchObject({ sources: ['.'], dest: '/bar' });
    expect(copy).toMatchObject({ sources: ['$FOO'], dest: '/quux' });
  });

  it('expands every pair of one ENV with the values from before it (abc=bye def=$abc gives def=hello)', () => {
    const [env] = expand('ENV abc=bye def=$abc ghi="$abc x" jkl=\'$abc\'', { abc: 'hello' });
    expect(env).toMatchObject({ pairs: [['abc', 'bye'], ['def', 'hello'], ['ghi', 'hello x'], ['jkl', '$abc']] });
  });

  it('unquotes and expands LABEL keys and values, the legacy ENV form and ARG defaults', () => {
    const [label, env, arg] = expand('LABEL "com.x.$NAME"="v $NAME" k=a\\ b\nENV P $FOO:/usr/bin\nARG A=${FOO}/x B');
    expect(label).toMatchObject({ pairs: [['com.x.world', 'v world'], ['k', 'a b']] });
    expect(env).toMatchObject({ pairs: [['P', '/bar:/usr/bin']] });
    expect(arg).toMatchObject({ args: [{ name: 'A', default: '/bar/x' }, { name: 'B' }] });
  });

  it('splits EXPOSE and VOLUME values into words after expansion', () => {
    const [expose, volume] = expand('EXPOSE $PORTS 9000\nVOLUME ["$FOO", "/x"]', { PORTS: '80 443', FOO: '/data' });
    expect(expose).toMatchObject({ values: ['80', '443', '9000'] });
    expect(volume).toMatchObject({ values: ['/data', '/x'] });
  });

  it('expands USER, STOPSIGNAL, COPY flags and RUN --mount options, not the RUN command', () => {
    const [user, sig, copy, run] = expand(
      'USER ${NAME}:$G\nSTOPSIGNAL $SIG\nCOPY --from=$STAGE --chown=$NAME --chmod=$MODE a${X} /d/\nRUN --mount=type=cache,target=$FOO echo $FOO',
      { NAME: 'app', G: 'staff', SIG: 'SIGTERM', STAGE: 'build', MODE: '755', X: '1', FOO: '/c' },
    );
    expect(user).toMatchObject({ value: 'app:staff' });
    expect(sig).toMatchObject({ value: 'SIGTERM' });
    expect(copy).toMatchObject({ from: 'build', chown: 'app', chmod: '755', sources: ['a1'], dest: '/d/' });
    expect(run).toMatchObject({ mounts: [{ type: 'cache', options: { target: '/c' } }], command: { form: 'shell', script: 'echo $FOO' } });
  });

  it('leaves CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD as written', () => {
    const body = 'CMD echo $FOO\nENTRYPOINT ["$FOO"]\nSHELL ["$FOO"]\nHEALTHCHECK CMD $FOO\nMAINTAINER $FOO\nONBUILD RUN $FOO';
    expect(expand(body)).toEqual(stage(body));
  });

  it('expands FROM image and platform', () => {
    const df = parseDockerfile('ARG V\nFROM --platform=$P alpine:${V:-3} AS x\n');
    expect(expandInstruction(df.stages[0]!.from, { V: '3.20', P: 'linux/arm64' })).toMatchObject({ image: 'alpine:3.20', platform: 'linux/arm64', alias: 'x' });
  });

  it('expands COPY heredoc bodies unless the delimiter is quoted, keeping their escapes and quotes', () => {
    const [a, b] = expand('COPY <<EOF /a\n"$NAME" \\$NAME \'$NAME\'\nEOF\nCOPY <<"EOF" /b\n$NAME\nEOF');
    expect(a).toMatchObject({ sources: ['<<EOF'], heredocs: [{ content: '"world" \\$NAME \'world\'\n' }] });
    expect(b).toMatchObject({ heredocs: [{ content: '$NAME\n' }] });
  });

  it('names the line of a word it cannot expand', () => {
    const [workdir] = stage('\nWORKDIR "/x');
    expect(() => expandInstruction(workdir!, vars)).toThrow(/invalid Dockerfile: line 3: WORKDIR: .*double-quote/);
  });

  it('knows a heredoc source from a path', () => {
    const names = new Set(['EOF']);
    expect(isHeredocSource('<<EOF', names)).toBe(true);
    expect(isHeredocSource('<<-"EOF"', names)).toBe(true);
    expect(isHeredocSource('<<OTHER', names)).toBe(false);
    expect(isHeredocSource('EOF', names)).toBe(false);
  });
});
