import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildSpec } from '../../src/bundle/index.js';
import { GOLDEN, inputFor } from './fixtures.js';

const BUNDLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bundles');

/**
 * bundles/NAME/config.json are the configs Berth generates for the requests in fixtures.ts GOLDEN, on a
 * fixed fake host. This test regenerates them in memory and compares, so the checked-in examples never
 * drift from the builder. After an intended change, rewrite them with: BERTH_UPDATE_GOLDEN=1 npx vitest run test/bundle/golden.test.ts
 */
describe('golden bundles', () => {
  for (const [name, request] of Object.entries(GOLDEN)) {
    it(`bundles/${name}/config.json matches what buildSpec generates`, async () => {
      const file = path.join(BUNDLES, name, 'config.json');
      const generated = JSON.stringify(buildSpec(inputFor(request)).spec, null, 2) + '\n';
      if (process.env.BERTH_UPDATE_GOLDEN === '1') {
        await fsp.mkdir(path.dirname(file), { recursive: true });
        await fsp.writeFile(file, generated);
      }
      expect(await fsp.readFile(file, 'utf8')).toBe(generated);
    });
  }
});
