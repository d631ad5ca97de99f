import { InvalidArgumentError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * A size in bytes as Docker's RAMInBytes reads it: binary units (k = 1024), an optional "b" or "ib"
 * after the unit, decimals allowed ("1.5g"), case-insensitive. Numbers are taken as bytes.
 */
export function parseBytes(field: string, value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(field, `${value} is not a whole number of bytes`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(value);
  if (!m) throw new InvalidArgumentError(field, `"${value}" is not a size`, 'use a number of bytes or a number with a unit: 512k, 64m, 1g');
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError(field, `"${value}" is too large`);
  return bytes;
}

/** A whole number from a flag that Docker takes as an integer. */
export function parseInteger(field: string, value: string | number, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(field, `"${value}" is not a whole number`);
  if (n < min || n > max) throw new InvalidArgumentError(field, `${n} is out of range`, `give a value from ${min} to ${max}`);
  return n;
}
