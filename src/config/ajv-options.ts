/**
 * Ajv's options for config schemas, shared by the validator compiled ahead of time
 * (scripts/gen-schema.ts) and the one compiled at run time for plugin schemas (schema-check.ts), so
 * both report and coerce alike.
 */
export const CONFIG_AJV_OPTIONS = {
  // Every problem in one pass, with the schema and value of each (for located, human messages).
  allErrors: true,
  verbose: true,
  // As YAML users expect: `"8080"` is 8080.
  coerceTypes: true,
  // Plugin schemas written by users may carry unknown keywords (`examples`); they are fine.
  strict: false,
} as const;
