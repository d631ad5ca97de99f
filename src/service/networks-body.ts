/**
 * Reading the JSON bodies of the network and volume endpoints: each field's type checked, and each field
 * Berth does not implement refused when it holds anything but its default (the API's rule: never accepted
 * and silently ignored). Clients send defaults liberally (docker-py sends `"Options": null`, the docker CLI
 * sends every EndpointSettings key with empty values), so null, "", false, {} and [] count as unset.
 */
import { ApiError } from './errors.js';

type Body = Record<string, unknown>;

/** Whether a client left the field at its default: absent, null, "", false, 0, {} or []. */
export function isUnset(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === false || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v as Body).every(isUnset);
  return false;
}

/** Refuses each named field that holds a value: Berth has no such feature yet. */
export function refuseSet(body: Body, fields: readonly string[], prefix = ''): void {
  for (const f of fields) if (!isUnset(body[f])) throw new ApiError(400, `${prefix}${f} is not supported yet`);
}

/** The field as an object (or undefined when unset), refused when it is another type. */
export function objectField(body: Body, field: string, prefix = ''): Body | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `${prefix}${field} must be a JSON object, not ${typeName(v)}`);
  return v as Body;
}

export function stringField(body: Body, field: string, prefix = ''): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `${prefix}${field} must be a string, not ${typeName(v)}`);
  return v;
}

export function boolField(body: Body, field: string, prefix = ''): boolean | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ApiError(400, `${prefix}${field} must be a boolean, not ${typeName(v)}`);
  return v;
}

/** A `{"key": "value"}` map (Labels, Options, DriverOpts). */
export function stringMapField(body: Body, field: string, prefix = ''): Record<string, string> | undefined {
  const o = objectField(body, field, prefix);
  if (!o) return undefined;
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'string') throw new ApiError(400, `${prefix}${field}["${k}"] must be a string, not ${typeName(v)}`);
  }
  return o as Record<string, string>;
}

export function stringListField(body: Body, field: string, prefix = ''): string[] | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ApiError(400, `${prefix}${field} must be a list of strings`);
  return v as string[];
}

/**
 * Refuses every field outside `known` that holds a value: a field of a newer API version, or one Berth has
 * no feature for. Left at its default it is harmless, and clients send many such.
 */
export function refuseOthers(body: Body, known: readonly string[], prefix = ''): void {
  refuseSet(body, Object.keys(body).filter((k) => !known.includes(k)), prefix);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
