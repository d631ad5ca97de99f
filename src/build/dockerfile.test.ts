import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { findStage, globalArgValues, parseDockerfile, stageOrder } from './dockerfile.js';
import type { Instruction } from './index.js';

/** The instructions of the only stage of `FROM base` followed by `body`. */
function instrs(body: string): Instruction[] {
  const df = parseDockerfile(`FROM base\n${body}`);
  return df.stages[0]!.instructions;
}
const one = (body: string): Instruction => {
  const list = instrs(body);
  expect(list).toHaveLength(1);
  return list[0]!;
};

/** The message of the InvalidArgumentError thrown by parsing `text`. */
function parseError(text: string, file?: string): string {
  try {
    parseDockerfile(text, file !== undefined ? { file } : {});
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('Dockerfile');
    return (err as Error).message;
  }
  throw new Error('parsed without error');
}

describe('parseDockerfile: instructions and forms', () => {
  const cases: [string, string, Partial<Instruction> & Record<string, unknown>][] = [
    ['RUN shell form', 'RUN apt-get update && apt-get install -y x', { kind: 'RUN', command: { form: 'shell', script: 'apt-get update && apt-get install -y x' }, mounts: [], heredocs: [] }],
    ['RUN exec form', 'RUN ["/bin/echo", "a b"]', { kind: 'RUN', command: { form: 'exec', args: ['/bin/echo', 'a b'] } }],
    ['RUN bad JSON falls back to the shell form', 'RUN [ "a", 1 ]', { kind: 'RUN', command: { form: 'shell', script: '[ "a", 1 ]' } }],
    ['RUN --network', 'RUN --network=none true', { kind: 'RUN', network: 'none', command: { form: 'shell', script: 'true' } }],
    ['RUN --mount (several, aliases folded)', 'RUN --mount=type=cache,target=/root/.cache,id=x --mount=type=secret,id=tok,dst=/run/t --mount=src=/a,dst=/b,ro make', {
      kind: 'RUN',
      mounts: [
        { type: 'cache', options: { target: '/root/.cache', id: 'x' } },
        { type: 'secret', options: { id: 'tok', target: '/run/t' } },
        { type: 'bind', options: { source: '/a', target: '/b', readonly: 'true' } },
      ],
      command: { form: 'shell', script: 'make' },
    }],
    ['CMD exec', 'CMD ["nginx", "-g", "daemon off;"]', { kind: 'CMD', command: { form: 'exec', args: ['nginx', '-g', 'daemon off;'] } }],
    ['CMD shell', 'CMD echo $HOME', { kind: 'CMD', command: { form: 'shell', script: 'echo $HOME' } }],
    ['ENTRYPOINT empty exec form', 'ENTRYPOINT []', { kind: 'ENTRYPOINT', command: { form: 'exec', args: [] } }],
    ['SHELL', 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]', { kind: 'SHELL', args: ['/bin/bash', '-o', 'pipefail', '-c'] }],
    ['COPY with flags', 'COPY --from=build --chown=1000:1000 --chmod=0644 --link a b /dst/', {
      kind: 'COPY', sources: ['a', 'b'], dest: '/dst/', from: 'build', chown: '1000:1000', chmod: '0644', otherFlags: { link: 'true' }, heredocs: [],
    }],
    ['COPY JSON form keeps blanks', 'COPY ["a b", "c", "/x y/"]', { kind: 'COPY', sources: ['a b', 'c'], dest: '/x y/' }],
    ['ADD --checksum and other flags', 'ADD --checksum=sha256:abc --keep-git-dir=true https://h/x.tar /x', {
      kind: 'ADD', sources: ['https://h/x.tar'], dest: '/x', checksum: 'sha256:abc', otherFlags: { 'keep-git-dir': 'true' },
    }],
    ['ENV pairs with quotes and escapes, as written', 'ENV a=b c="d e" f=g\\ h', { kind: 'ENV', pairs: [['a', 'b'], ['c', '"d e"'], ['f', 'g\\ h']] }],
    ['ENV legacy form', 'ENV PATH /usr/local/bin:$PATH  x', { kind: 'ENV', pairs: [['PATH', '/usr/local/bin:$PATH  x']] }],
    ['LABEL with quoted keys', 'LABEL "com.example.x y"="z" version=1.0 desc=\'a b\'', {
      kind: 'LABEL', pairs: [['"com.example.x y"', '"z"'], ['version', '1.0'], ['desc', "'a b'"]],
    }],
    ['ARG several, with and without defaults', 'ARG A B=2 C=', { kind: 'ARG', args: [{ name: 'A' }, { name: 'B', default: '2' }, { name: 'C', default: '' }] }],
    ['WORKDIR', 'WORKDIR /app/$X', { kind: 'WORKDIR', value: '/app/$X' }],
    ['USER', 'USER 1000:1000', { kind: 'USER', value: '1000:1000' }],
    ['STOPSIGNAL', 'STOPSIGNAL SIGQUIT', { kind: 'STOPSIGNAL', value: 'SIGQUIT' }],
    ['MAINTAINER', 'MAINTAINER Jane Doe <jane@example.com>', { kind: 'MAINTAINER', value: 'Jane Doe <jane@example.com>' }],
    ['EXPOSE', 'EXPOSE 80/tcp 53/udp  8000-8010', { kind: 'EXPOSE', values: ['80/tcp', '53/udp', '8000-8010'] }],
    ['VOLUME words', 'VOLUME /data /logs', { kind: 'VOLUME', values: ['/data', '/logs'] }],
    ['VOLUME JSON', 'VOLUME ["/var/my data"]', { kind: 'VOLUME', values: ['/var/my data'] }],
    ['HEALTHCHECK NONE', 'HEALTHCHECK NONE', { kind: 'HEALTHCHECK' }],
    ['HEALTHCHECK with every flag', 'HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1', {
      kind: 'HEALTHCHECK', interval: '30s', timeout: '1m30s', startPeriod: '5s', startInterval: '500ms', retries: 3,
      command: { form: 'shell', script: 'curl -f http://localhost/ || exit 1' },
    }],
    ['HEALTHCHECK exec form', 'HEALTHCHECK CMD ["/bin/check", "--quick"]', { kind: 'HEALTHCHECK', command: { form: 'exec', args: ['/bin/check', '--quick'] } }],
    ['ONBUILD', 'ONBUILD RUN echo built', { kind: 'ONBUILD', trigger: 'RUN echo built' }],
    ['instruction names in any case', 'run echo hi', { kind: 'RUN', text: 'run echo hi', command: { form: 'shell', script: 'echo hi' } }],
  ];
  for (const [name, body, expected] of cases) {
    it(name, () => {
      const instr = one(body);
      expect(instr).toMatchObject({ line: 2, ...expected });
    });
  }

  it('keeps no value for HEALTHCHECK NONE', () => {
    expect(one('HEALTHCHECK NONE')).toEqual({ kind: 'HEALTHCHECK', line: 2, text: 'HEALTHCHECK NONE' });
  });
});

describe('parseDockerfile: stages and FROM', () => {
  it('reads ARG before FROM into globalArgs, FROM --platform and AS (lower-cased), and scratch', () => {
    const df = parseDockerfile([
      '# syntax=docker/dockerfile:1.7',
      'ARG BASE=alpine:3.20',
      'ARG TAG',
      'FROM --platform=$BUILDPLATFORM ${BASE} AS Builder',
      'RUN make',
      'from scratch as final',
      'COPY --from=builder /out /',
    ].join('\n'));
    expect(df.directives).toEqual({ escape: '\\', syntax: 'docker/dockerfile:1.7' });
    expect(df.globalArgs.map((a) => a.args)).toEqual([[{ name: 'BASE', default: 'alpine:3.20' }], [{ name: 'TAG' }]]);
    expect(df.stages).toHaveLength(2);
    expect(df.stages[0]).toMatchObject({ index: 0, name: 'builder', from: { kind: 'FROM', line: 4, image: '${BASE}', platform: '$BUILDPLATFORM', alias: 'builder' } });
    expect(df.stages[0]!.instructions.map((i) => i.kind)).toEqual(['RUN']);
    expect(df.stages[1]).toMatchObject({ index: 1, name: 'final', from: { image: 'scratch', line: 6 } });
  });

  it('leaves a stage without a name unnamed', () => {
    const df = parseDockerfile('FROM a\nFROM b\n');
    expect(df.stages.map((s) => s.name)).toEqual([undefined, undefined]);
    expect(df.directives).toEqual({ escape: '\\' });
  });
});

describe('parseDockerfile: lines', () => {
  it('joins continuations, dropping comment and blank lines inside them, and gives the first line', () => {
    const df = parseDockerfile([
      '# a comment',
      '',
      'FROM base',
      '',
      '  # indented comment',
      'RUN apt-get update \\',
      '    # why we install curl',
      '',
      '    && apt-get install -y curl \\   ',
      '    && echo done',
      'CMD ["sh"]',
    ].join('\n'));
    const [run, cmd] = df.stages[0]!.instructions;
    expect(run).toMatchObject({
      line: 6,
      text: 'RUN apt-get update     && apt-get install -y curl     && echo done',
      command: { form: 'shell', script: 'apt-get update     && apt-get install -y curl     && echo done' },
    });
    expect(cmd).toMatchObject({ line: 11, kind: 'CMD' });
  });

  it('tolerates a line continuation at the end of the file, as Docker does', () => {
    for (const text of ['FROM base\nRUN echo hi \\\n', 'FROM base\nRUN echo hi \\', 'FROM base\nRUN echo hi \\\n\n# c\n']) {
      expect(parseDockerfile(text).stages[0]!.instructions).toMatchObject([{ kind: 'RUN', line: 2, command: { form: 'shell', script: 'echo hi' } }]);
    }
  });

  it('reads CRLF files and a leading byte-order mark', () => {
    const df = parseDockerfile('\uFEFFFROM base\r\nRUN a \\\r\n  b\r\nCMD x\r\n');
    expect(df.stages[0]!.instructions.map((i) => i.text)).toEqual(['RUN a   b', 'CMD x']);
  });

  it('honours the escape directive: backtick continues lines and backslash is literal (Windows style)', () => {
    const df = parseDockerfile([
      '# escape=`',
      'FROM mcr.microsoft.com/windows/servercore',
      'RUN dir c:\\ `',
      '    # listing',
      '    && echo done',
      'COPY testfile.txt c:\\',
      'ENV DIR=C:\\Program` Files\\x',
    ].join('\n'));
    expect(df.directives.escape).toBe('`');
    const [run, copy, env] = df.stages[0]!.instructions;
    expect(run).toMatchObject({ line: 3, command: { form: 'shell', script: 'dir c:\\     && echo done' } });
    expect(copy).toMatchObject({ sources: ['testfile.txt'], dest: 'c:\\' });
    expect(env).toMatchObject({ pairs: [['DIR', 'C:\\Program` Files\\x']] });
  });

  it('refuses an escape directive other than \\ or `', () => {
    expect(parseError('# escape=x\nFROM a\n')).toMatch(/Dockerfile:1: invalid escape character "x"/);
  });
});

describe('parseDockerfile: heredocs', () => {
  it('runs a lone heredoc as the script', () => {
    expect(one('RUN <<EOF\napt-get update\napt-get install -y vim\nEOF\n')).toMatchObject({
      kind: 'RUN',
      text: 'RUN <<EOF\napt-get update\napt-get install -y vim\nEOF',
      command: { form: 'shell', script: 'apt-get update\napt-get install -y vim\n' },
      heredocs: [{ name: 'EOF', content: 'apt-get update\napt-get install -y vim\n', expand: true, stripTabs: false }],
    });
  });

  it('hands the shell the command line and every heredoc of it; quoted names do not expand; <<- strips tabs', () => {
    const list = instrs('RUN cat <<-"A" <<B > /out\n\tx $X\n\tA\ny\nB\nCMD z\n');
    expect(list).toHaveLength(2);
    expect(list[0]).toMatchObject({
      command: { form: 'shell', script: 'cat <<-"A" <<B > /out\nx $X\nA\ny\nB' },
      heredocs: [
        { name: 'A', content: 'x $X\n', expand: false, stripTabs: true },
        { name: 'B', content: 'y\n', expand: true, stripTabs: false },
      ],
    });
    expect(list[1]).toMatchObject({ kind: 'CMD', line: 7 });
  });

  it('passes a heredoc with a program to that program', () => {
    expect(one("RUN <<'EOT' python3\nprint('hi')\nEOT")).toMatchObject({
      command: { form: 'shell', script: "<<'EOT' python3\nprint('hi')\nEOT" },
      heredocs: [{ name: 'EOT', expand: false }],
    });
  });

  it('takes heredoc sources for COPY, several on one line', () => {
    expect(one('COPY <<one.txt <<two.txt /dst/\n1 $A\none.txt\n2\ntwo.txt\n')).toMatchObject({
      kind: 'COPY', sources: ['<<one.txt', '<<two.txt'], dest: '/dst/',
      heredocs: [{ name: 'one.txt', content: '1 $A\n', expand: true }, { name: 'two.txt', content: '2\n' }],
    });
  });

  it('sees no heredoc in a JSON form or inside quotes', () => {
    expect(one('RUN ["sh", "-c", "cat <<EOF"]')).toMatchObject({ heredocs: [], command: { form: 'exec' } });
    expect(one('RUN echo "<<EOF"')).toMatchObject({ heredocs: [], command: { form: 'shell', script: 'echo "<<EOF"' } });
  });

  it('refuses an unterminated heredoc, naming its line', () => {
    expect(parseError('FROM a\nRUN <<EOF\necho hi\n')).toMatch(/^invalid Dockerfile: Dockerfile:2: RUN: unterminated heredoc <<EOF/);
  });
});

describe('parseDockerfile: errors name the file and the line', () => {
  const cases: [string, string, RegExp][] = [
    ['unknown instruction', 'FROM a\nRUN x\nFOO bar\n', /Dockerfile:3: unknown instruction: FOO/],
    ['instruction before FROM', 'ARG A\n\nRUN x\nFROM a\n', /Dockerfile:3: RUN before the first FROM/],
    ['no FROM', 'ARG A=1\n', /no FROM instruction/],
    ['empty file', '', /no FROM instruction/],
    ['FROM with two words', 'FROM a b\n', /Dockerfile:1: FROM: FROM requires either one or three arguments/],
    ['FROM without image', 'FROM\n', /Dockerfile:1: FROM: FROM requires/],
    ['FROM with bad AS', 'FROM a to b\n', /Dockerfile:1: FROM: FROM requires/],
    ['invalid stage name', 'FROM a AS 1st\n', /Dockerfile:1: FROM: invalid stage name "1st"/],
    ['duplicate stage names', 'FROM a AS x\nFROM b AS X\n', /Dockerfile:2: duplicate stage name "x"/],
    ['continuation at the end of the file on an empty RUN', 'FROM a\nRUN \\\n', /Dockerfile:2: RUN: RUN requires at least one argument/],
    ['--chmod not octal', 'FROM a\nCOPY --chmod=rwx a /b\n', /Dockerfile:2: COPY: --chmod=rwx is not an octal mode/],
    ['--chmod with a digit 8', 'FROM a\nADD --chmod=0789 a /b\n', /Dockerfile:2: ADD: --chmod=0789 is not an octal mode/],
    ['SHELL not JSON', 'FROM a\nSHELL /bin/bash -c\n', /Dockerfile:2: SHELL: SHELL requires the arguments to be in JSON form/],
    ['SHELL JSON of numbers', 'FROM a\nSHELL [1, 2]\n', /SHELL requires the arguments to be in JSON form/],
    ['unknown flag', 'FROM a\nCOPY --frm=x a b\n', /Dockerfile:2: COPY: unknown flag: --frm/],
    ['flag on an instruction that takes none', 'FROM a\nENV --x=1 a=b\n', /Dockerfile:2: ENV: unknown flag: --x/],
    ['flag repeated', 'FROM a\nCOPY --from=a --from=b x y\n', /--from is given more than once/],
    ['RUN without command', 'FROM a\nRUN\n', /Dockerfile:2: RUN: RUN requires at least one argument/],
    ['RUN --network unknown', 'FROM a\nRUN --network=bridge x\n', /unsupported network mode "bridge"/],
    ['COPY with one argument', 'FROM a\nCOPY x\n', /COPY requires at least two arguments/],
    ['ENV without value', 'FROM a\nENV A\n', /ENV: ENV must have two arguments/],
    ['ENV pair without =', 'FROM a\nENV a=1 b\n', /can't find = in "b"/],
    ['ENV blank name', 'FROM a\nENV =1\n', /ENV names can not be blank/],
    ['WORKDIR without path', 'FROM a\nWORKDIR\n', /WORKDIR requires exactly one argument/],
    ['EXPOSE without port', 'FROM a\nEXPOSE\n', /EXPOSE requires at least one argument/],
    ['HEALTHCHECK unknown type', 'FROM a\nHEALTHCHECK RUN x\n', /unknown type "RUN" in HEALTHCHECK \(try CMD\)/],
    ['HEALTHCHECK NONE with arguments', 'FROM a\nHEALTHCHECK NONE x\n', /HEALTHCHECK NONE takes no arguments/],
    ['HEALTHCHECK bad duration', 'FROM a\nHEALTHCHECK --interval=5 CMD x\n', /--interval=5 is not a duration/],
    ['HEALTHCHECK negative retries', 'FROM a\nHEALTHCHECK --retries=-1 CMD x\n', /--retries cannot be negative/],
    ['HEALTHCHECK CMD without command', 'FROM a\nHEALTHCHECK CMD\n', /missing command after HEALTHCHECK CMD/],
    ['ONBUILD ONBUILD', 'FROM a\nONBUILD ONBUILD RUN x\n', /Dockerfile:2: ONBUILD: ONBUILD isn't allowed as an ONBUILD trigger/],
    ['ONBUILD FROM', 'FROM a\nonbuild from b\n', /FROM isn't allowed as an ONBUILD trigger/],
    ['ONBUILD MAINTAINER', 'FROM a\nONBUILD MAINTAINER me\n', /MAINTAINER isn't allowed as an ONBUILD trigger/],
    ['ONBUILD unknown trigger', 'FROM a\nONBUILD FOO x\n', /Dockerfile:2: unknown instruction: FOO/],
    ['line numbers count continuation and heredoc lines', 'FROM a\nRUN a \\\n  b\nRUN <<E\nx\nE\nBAD x\n', /Dockerfile:7: unknown instruction: BAD/],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => expect(parseError(text)).toMatch(expected));
  }

  it('names the file given', () => {
    expect(parseError('FROM a\nFOO\n', 'build/Containerfile')).toMatch(/build\/Containerfile:2: unknown instruction: FOO/);
  });

  it('gives a hint', () => {
    try {
      parseDockerfile('RUN x\n');
    } catch (err) {
      expect((err as InvalidArgumentError).hint).toMatch(/FROM/);
    }
  });
});

describe('stageOrder', () => {
  const df = parseDockerfile([
    'ARG BASE=deps',
    'FROM alpine AS deps',
    'FROM golang AS tools',
    'FROM ${BASE} AS build',
    'COPY --from=tools /go/bin/x /bin/',
    'FROM alpine AS docs',
    'RUN --mount=type=bind,from=0,target=/d true',
    'FROM scratch',
    'COPY --from=build /out /',
    'COPY --from=nginx:latest /etc/nginx /etc/nginx',
  ].join('\n'));
  const names = (target?: string, args?: Record<string, string>) => stageOrder(df, target, args).map((s) => s.name ?? String(s.index));

  it('builds only what the target needs, each stage after its dependencies', () => {
    expect(names()).toEqual(['deps', 'tools', 'build', '4']);
    expect(names('docs')).toEqual(['deps', 'docs']);
    expect(names('TOOLS')).toEqual(['tools']);
  });

  it('expands FROM with the global ARGs, --build-arg first', () => {
    expect(names('build', { BASE: 'debian' })).toEqual(['tools', 'build']);
    expect(globalArgValues(df, { OTHER: 'x' })).toEqual({ BASE: 'deps' });
  });

  it('refuses an unknown target, listing the stages', () => {
    expect(() => stageOrder(df, 'nope')).toThrow(InvalidArgumentError);
    try {
      stageOrder(df, 'nope');
    } catch (err) {
      expect((err as InvalidArgumentError).field).toBe('target');
      expect((err as Error).message).toMatch(/no stage named "nope"/);
      expect((err as InvalidArgumentError).hint).toMatch(/deps, tools, build, docs/);
    }
  });

  it('refuses stages copying from each other in a circle', () => {
    const cyc = parseDockerfile('FROM a AS x\nCOPY --from=y /a /a\nFROM b AS y\nCOPY --from=x /b /b\n');
    expect(() => stageOrder(cyc, 'y')).toThrow(/in a circle: y → x → y/);
    expect(() => stageOrder(parseDockerfile('FROM a AS x\nCOPY --from=x /a /b\n'))).toThrow(/refers to itself/);
  });

  it('finds stages by name or index', () => {
    expect(findStage(df, 'BUILD')?.index).toBe(2);
    expect(findStage(df, '4')?.from.image).toBe('scratch');
    expect(findStage(df, '9')).toBeUndefined();
    expect(findStage(df, 'nginx:latest')).toBeUndefined();
  });
});
