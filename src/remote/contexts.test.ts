import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { ContextStore, resolveEngineHost } from './contexts.js';

let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-ctx-'));
  env = { XDG_CONFIG_HOME: dir };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function thrown(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (e: unknown) => e);
}

describe('ContextStore', () => {
  it('stores a context where Docker would (meta/<sha256 of name>/meta.json), lists it, makes it current', async () => {
    const s = new ContextStore(env);
    await s.create('lab', { host: 'ssh://root@10.0.0.2', description: 'the lab' });
    const meta = JSON.parse(await readFile(path.join(dir, 'berth/contexts/meta', createHash('sha256').update('lab').digest('hex'), 'meta.json'), 'utf8'));
    expect(meta).toEqual({ Name: 'lab', Metadata: { Description: 'the lab' }, Endpoints: { docker: { Host: 'ssh://root@10.0.0.2', SkipTLSVerify: false } } });
    expect((await s.list()).map((c) => [c.name, c.current])).toEqual([['default', true], ['lab', false]]);
    await s.use('lab');
    expect(await s.current()).toBe('lab');
    expect(await resolveEngineHost({}, env)).toMatchObject({ host: 'ssh://root@10.0.0.2', context: 'lab' });
    await s.use('default');
    expect(await resolveEngineHost({}, env)).toEqual({ context: 'default', source: expect.any(String) });
  });

  it('picks the engine in Docker\'s order: -H, --context, BERTH_HOST, BERTH_CONTEXT, current', async () => {
    const s = new ContextStore(env);
    await s.create('aa', { host: 'unix:///a.sock' });
    await s.create('bb', { host: 'unix:///b.sock' });
    await s.use('aa');
    const e = { ...env, BERTH_HOST: 'unix:///env.sock', BERTH_CONTEXT: 'bb' };
    expect((await resolveEngineHost({ host: 'unix:///flag.sock' }, e)).host).toBe('unix:///flag.sock');
    expect((await resolveEngineHost({ context: 'bb' }, e)).host).toBe('unix:///b.sock');
    expect((await resolveEngineHost({}, e)).host).toBe('unix:///env.sock');
    expect((await resolveEngineHost({}, { ...env, BERTH_CONTEXT: 'bb' })).host).toBe('unix:///b.sock');
    expect((await resolveEngineHost({}, env)).host).toBe('unix:///a.sock');
    expect(await resolveEngineHost({ context: 'default' }, e)).toMatchObject({ context: 'default' });
    expect(await thrown(resolveEngineHost({ host: 'unix:///x', context: 'aa' }, env))).toBeInstanceOf(InvalidArgumentError);
    expect(await thrown(resolveEngineHost({ context: 'nope' }, env))).toBeInstanceOf(NotFoundError);
  });

  it('refuses bad names, a name that exists, removing default or the current context, and leaves nothing behind', async () => {
    const s = new ContextStore(env);
    for (const bad of ['x', '-x', 'a/b', 'a b', '']) expect(await thrown(s.create(bad, { host: 'unix:///s' })), bad).toBeInstanceOf(InvalidArgumentError);
    expect(await thrown(s.create('ok1', { host: 'http://nope' }))).toBeInstanceOf(InvalidArgumentError);
    await s.create('ok1', { host: 'unix:///s' });
    const dup = await thrown(s.create('ok1', { host: 'unix:///t' }));
    expect(dup).toBeInstanceOf(AlreadyExistsError);
    expect((dup as Error).message).toBe('context ok1 already exists');
    expect(await thrown(s.create('default', { host: 'unix:///t' }))).toBeInstanceOf(AlreadyExistsError);
    expect(await thrown(s.remove('default'))).toBeInstanceOf(BadStateError);
    await s.use('ok1');
    expect(await thrown(s.remove('ok1'))).toBeInstanceOf(BadStateError);
    await s.remove('ok1', { force: true });
    expect(await s.current()).toBe('default');
    expect(await thrown(s.remove('ok1'))).toBeInstanceOf(NotFoundError);
    expect(await readdir(path.join(dir, 'berth/contexts/meta'))).toEqual([]);
  });

  it('exports Docker\'s tar and imports it under a new name; refuses what is not one', async () => {
    const s = new ContextStore(env);
    await s.create('src1', { host: 'tcp://127.0.0.1:2375', description: 'd' });
    const file = path.join(dir, 'src1.berthcontext');
    await s.export('src1', file);
    await s.import('copy1', file);
    expect(await s.inspect('copy1')).toMatchObject({ Name: 'copy1', Metadata: { Description: 'd' }, Endpoints: { docker: { Host: 'tcp://127.0.0.1:2375' } } });
    expect(await thrown(s.import('copy1', file))).toBeInstanceOf(AlreadyExistsError);
    const junk = path.join(dir, 'junk');
    await writeFile(junk, 'not a tar at all'.repeat(100));
    expect(await thrown(s.import('copy2', junk))).toBeInstanceOf(InvalidArgumentError);
    expect((await s.list()).map((c) => c.name)).toEqual(['default', 'copy1', 'src1']);
  });
});
