import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { InvalidArgumentError } from '../errors.js';
import configSchema from '../../runtime-spec/config.schema.json' with { type: 'json' };
import type { Spec } from '../../runtime-spec/types.js';

let compiled: ValidateFunction | undefined;

/**
 * Checks a spec against Berth's schema (runtime-spec/config.schema.json) before runc sees it, so that a
 * builder mistake fails with the JSON pointer of the bad field rather than a runc error from deep inside.
 */
export function validateSpec(spec: unknown): asserts spec is Spec {
  compiled ??= new Ajv({ allErrors: true, strict: true }).compile(configSchema);
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
