// The built-in plugins' config validators compiled ahead of time (schema/plugins.validate.js, generated
// by scripts/gen-schema.ts), by the JSON of the schema each checks. They validate and coerce in place,
// like Ajv's compiled validators.
import type { ValidateFunction } from 'ajv';

declare const validators: ReadonlyMap<string, ValidateFunction>;
export default validators;
