import { InvalidArgumentError } from '../errors.js';
// Compiled from runtime-spec/config.schema.json at build time (scripts/gen-validator.mjs): compiling the
// schema with ajv on every command would cost ~40 ms of each `berth run`.
import { validate as compiled } from '../../runtime-spec/config.validate.js';
import type { Spec } from '../../runtime-spec/types.js';
import { describeSchemaErrors } from '../util/schema.js';

/**
 * Checks a spec against Berth's schema (runtime-spec/config.schema.json) before runc sees it, so that a
 * builder mistake fails with the JSON pointer of the bad field rather than a runc error from deep inside.
 */
export function validateSpec(spec: unknown): asserts spec is Spec {
  if (compiled(spec)) return;
  throw new InvalidArgumentError('OCI config', describeSchemaErrors(compiled.errors),
    'this is a bug in Berth\'s spec builder, or in a hand-edited config.json: please report it with the command line');
}

