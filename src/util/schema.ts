import type { ErrorObject } from 'ajv';

/** One ajv error as "<JSON pointer>: <what is wrong>", the form every schema check in Berth reports. */
export function describeSchemaError(e: ErrorObject): string {
  if (e.keyword === 'required') return `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}: is required`;
  if (e.keyword === 'additionalProperties') return `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}: is not allowed`;
  return `${e.instancePath || '/'}: ${e.message ?? e.keyword}`;
}

/** The first few errors joined, with a count of the rest. */
export function describeSchemaErrors(errors: readonly ErrorObject[] | null | undefined, most = 5): string {
  const all = (errors ?? []).map(describeSchemaError);
  return all.slice(0, most).join('; ') + (all.length > most ? `; and ${all.length - most} more` : '');
}
