import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { applyChanges } from './changes.js';

describe('applyChanges', () => {
  it('applies every supported instruction', () => {
    const cfg = applyChanges({ Env: ['PATH=/bin', 'A=old'] }, [
      'CMD ["sh", "-c", "echo hi"]',
      'ENV A=new B="two words" C=3',
      'env D 4 5',
      'WORKDIR /app',
      'WORKDIR sub',
      'USER 1000:1000',
      'EXPOSE 80 53/udp 8000-8001',
      'LABEL a=b "c d"="e f"',
      'VOLUME ["/data", "/logs"]',
      'VOLUME /cache',
      'STOPSIGNAL SIGINT',
    ]);
    expect(cfg).toEqual({
      Cmd: ['sh', '-c', 'echo hi'],
      Env: ['PATH=/bin', 'A=new', 'B=two words', 'C=3', 'D=4 5'],
      WorkingDir: '/app/sub',
      User: '1000:1000',
      ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} },
      Labels: { a: 'b', 'c d': 'e f' },
      Volumes: { '/data': {}, '/logs': {}, '/cache': {} },
      StopSignal: 'SIGINT',
    });
  });

  it('runs the shell form under /bin/sh -c', () => {
    expect(applyChanges({}, ['CMD echo $HOME']).Cmd).toEqual(['/bin/sh', '-c', 'echo $HOME']);
    expect(applyChanges({}, ['ENTRYPOINT top -b']).Entrypoint).toEqual(['/bin/sh', '-c', 'top -b']);
  });

  it('drops an inherited CMD when ENTRYPOINT is set, as Docker does', () => {
    expect(applyChanges({ Cmd: ['sh'] }, ['ENTRYPOINT ["/bin/echo"]']).Cmd).toBeNull();
    expect(applyChanges({ Cmd: ['sh'] }, ['CMD ["x"]', 'ENTRYPOINT ["/bin/echo"]']).Cmd).toEqual(['x']);
  });

  it('does not change its input', () => {
    const base = { Env: ['A=1'] };
    applyChanges(base, ['ENV A=2']);
    expect(base.Env).toEqual(['A=1']);
  });

  it.each([
    ['RUN echo hi', 'not supported'],
    ['FROM busybox', 'not supported'],
    ['CMD', 'needs an argument'],
    ['EXPOSE 70000', 'out of 1-65535'],
    ['EXPOSE http', 'PORT'],
    ['ENV A="x', 'unterminated quote'],
    ['LABEL =x', 'KEY=VALUE'],
  ])('refuses %j', (change, why) => {
    let err: unknown;
    try { applyChanges({}, [change]); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain(why);
  });
});
