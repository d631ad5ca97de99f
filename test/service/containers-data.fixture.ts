/**
 * What both containers-data test files share: a test engine with the default image, the service on
 * it, a scratch folder, all removed after the file; and the docker CLI's output as text.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';

export interface DataFixture {
  t: TestEngine;
  svc: TestService;
  dir: string;
  /** the docker CLI against the service (or `env`'s DOCKER_HOST), its output as text */
  docker(args: string[], env?: Record<string, string>): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }>;
}

/** Filled in by the file's beforeAll; everything made is removed in its afterAll. */
export function useDataService(slot: number, prefix: string): DataFixture {
  const f = {
    async docker(args: string[], env?: Record<string, string>) {
      const r = await f.svc.docker(args, env ? { env } : {});
      return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
  } as DataFixture;
  beforeAll(async () => {
    f.t = await testEngine(slot);
    await f.t.engine.images.ensureDefault();
    f.svc = await startService(f.t);
    f.dir = await mkdtemp(path.join(tmpdir(), prefix));
  }, 120_000);
  afterAll(async () => {
    await f.svc?.close();
    await cleanupAll(f.t, f.dir);
  });
  return f;
}
