/** What the build test files share: context folders and builds through the API, with their events. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { BuildEvent, BuildOptions } from '../../src/build/index.js';
import type { TestEngine } from '../helpers/engine.js';

/** Helpers over the file's engine and work folder (getters: both are made in beforeAll). */
export function buildHelpers(engine: () => TestEngine, work: () => string) {
  let n = 0;
  return {
    /** A context folder holding `files` (name → content) and the Dockerfile. */
    async contextDir(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
      const dir = path.join(work(), `ctx${n++}`);
      await fsp.mkdir(dir, { recursive: true });
      await fsp.writeFile(path.join(dir, 'Dockerfile'), dockerfile);
      for (const [name, content] of Object.entries(files)) {
        await fsp.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
        await fsp.writeFile(path.join(dir, name), content);
      }
      return dir;
    },
    /** A build with RUN steps on --network none; its events, RUN output lines and cached step numbers. */
    async build(context: string, opts: Partial<BuildOptions> = {}) {
      const events: BuildEvent[] = [];
      const res = await engine().engine.images.build({ context, network: 'none', ...opts, onProgress: (e) => events.push(e) });
      const output = events.filter((e) => e.type === 'output').map((e) => (e as { line: string }).line);
      return { ...res, events, output, cached: events.filter((e) => e.type === 'cached').map((e) => (e as { step: number }).step) };
    },
  };
}
