import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate, SCHEMAS } from '../../scripts/gen-validator.mjs';

describe('generated validators', () => {
  it.each(SCHEMAS as [string, string][])('%s is compiled into a current %s (npm run build refreshes it)', (schema, out) => {
    const committed = readFileSync(new URL(`../../${out}`, import.meta.url), 'utf8');
    expect(committed === generate(schema)).toBe(true);
  });
});
