import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without types
import { generate } from '../../scripts/gen-validator.mjs';

describe('generated validator', () => {
  it('is current with runtime-spec/config.schema.json (run npm run build to refresh it)', () => {
    const committed = readFileSync(new URL('../../runtime-spec/config.validate.js', import.meta.url), 'utf8');
    expect(committed === generate()).toBe(true);
  });
});
