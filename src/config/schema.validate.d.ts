// Types of the generated validator (scripts/gen-validator.mjs): an ajv standalone ValidateFunction.
import type { ErrorObject } from 'ajv';

export interface StandaloneValidate {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}
export declare const validate: StandaloneValidate;
export default validate;
