import type { ErrorObject } from 'ajv';
import { InvalidArgumentError } from '../errors.js';
// Compiled from runtime-spec/config.schema.json at build time (scripts/gen-validator.mjs): compiling the
// schema with ajv on every command would cost ~40 ms of each `berth run`.
import { validate as compiled } from '../../runtime-spec/config.validate.js';
import type { Spec } from '../../runtime-spec/types.js';

/**
 * Checks a spec against Berth's schema (runtime-spec/config.schema.json) before runc sees it, so that a
 * builder mistake fails with the JSON pointer of the bad field rather than a runc error from deep inside.
 */
export function validateSpec(spec: unknown): asserts spec is Spec {
  if (compiled(spec)) return;
  const errors = (compiled.errors ?? []).map(describe);
  throw new InvalidArgumentError('OCI config', errors.slice(0, 5).join('; ') + (errors.length > 5 ? `; and ${errors.length - 5} more` : ''),
    'this is a bug in Berth\'s spec builder, or in a hand-edited config.json: please report it with the command line');
}

function describe(e: ErrorObject): string {
  if (e.keyword === 'required') return `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}: is required`;
  if (e.keyword === 'additionalProperties') return `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}: is not allowed`;
  return `${e.instancePath || '/'}: ${e.message ?? e.keyword}`;
}
