/**
 * JSON-Schema validation of a parsed config (Ajv, compiled once per process), with Ajv's errors turned
 * into located, human issues: "expected X, got Y", unknown fields with a did-you-mean, and one issue
 * per place (Ajv reports every branch of a union; only the branch the user meant is kept).
 */
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
// The config schema's validator, compiled ahead of time (scripts/gen-schema.ts): a proxy validates every
// config pushed to it without Ajv's compiler (~13 MB) or compiling the schema (~20 MB, most of a second).
// Neither the TypeBox definitions nor the schema's JSON are loaded at run time. `npm test` checks it is current.
import validateConfig from '../../schema/meshgate.validate.js';
import { DURATION_PATTERN } from '../core/duration.ts';
import { CONFIG_AJV_OPTIONS } from './ajv-options.ts';
import type { Locator, Path } from './document.ts';
import { type ConfigIssue, didYouMean, formatPath } from './issues.ts';

let ajv: Ajv | undefined;
// Compiled validators are pure functions of their schema: safe to share between proxies in one process.
const compiled = new WeakMap<object, ValidateFunction>();
/** The built-in plugins' validators compiled ahead of time, by their schema's JSON (scripts/gen-schema.ts). */
let precompiled: ReadonlyMap<string, ValidateFunction> | undefined;

/**
 * Loads the built-in plugins' precompiled validators (~240 KB of code), for the configs that name a
 * plugin; the config pipeline awaits it before its synchronous check (config/plugins.ts).
 */
export async function loadPluginValidators(): Promise<void> {
  precompiled ??= (await import('../../schema/plugins.validate.js')).default;
}

/**
 * A plugin schema's validator: a built-in's compiled ahead of time when loaded; otherwise (a plugin of
 * the user's, or a caller that checks without loading them) Ajv's, loaded synchronously, as the check is.
 */
function validator(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (validate === undefined) {
    validate = precompiled?.get(JSON.stringify(schema));
    if (validate === undefined) {
      ajv ??= new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv(CONFIG_AJV_OPTIONS);
      validate = ajv.compile(schema);
    }
    compiled.set(schema, validate);
  }
  return validate;
}

/** Validates (and, as YAML users expect, coerces `"8080"` to 8080) in place. */
export function checkSchema(data: unknown, source: Locator): ConfigIssue[] {
  if (validateConfig(data)) return [];
  return toIssues(validateConfig.errors ?? [], source, []);
}

/** Validates `data` found at `base` in the document against `schema` (e.g. a plugin's config schema). */
export function checkAgainst(schema: object, data: unknown, source: Locator, base: Path): ConfigIssue[] {
  const validate = validator(schema);
  if (validate(data)) return [];
  return toIssues(validate.errors ?? [], source, base);
}

function pointerToPath(pointer: string): Path {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return `"${value.length > 40 ? value.slice(0, 40) + '…' : value}"`;
  return `${typeof value} ${String(value)}`;
}

const DURATION_HINT = 'write a number with a unit: 250ms, 5s, 1m30s, 1h; 0 disables';

function toIssue(e: ErrorObject, source: Locator, base: Path): ConfigIssue | undefined {
  const path = [...base, ...pointerToPath(e.instancePath)];
  const schema = e.parentSchema as { description?: string; pattern?: string } | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      return {
        ...source.position(path, field),
        path: formatPath([...path, field]),
        message: `unknown field "${field}"`,
        hint: didYouMean(field, known) ?? (known.length ? `expected one of: ${known.join(', ')}` : undefined),
      };
    }
    case 'required': {
      const field = String((e.params as { missingProperty: string }).missingProperty);
      return { ...source.position(path), path: formatPath(path), message: `missing required field "${field}"` };
    }
    case 'type':
      return {
        ...source.position(path),
        path: formatPath(path),
        message: `expected ${(e.params as { type: string }).type}, got ${describe(e.data)}`,
      };
    case 'pattern': {
      const isDuration = schema?.pattern === DURATION_PATTERN;
      return {
        ...source.position(path),
        path: formatPath(path),
        message: isDuration ? `${describe(e.data)} is not a duration` : `${describe(e.data)} is not valid here`,
        hint: isDuration ? DURATION_HINT : schema?.description,
      };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      return {
        ...source.position(path),
        path: formatPath(path),
        message: `${describe(e.data)} is not one of ${allowed.join(', ')}`,
        hint: typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined,
      };
    }
    case 'minimum':
    case 'maximum': {
      const { comparison, limit } = e.params as { comparison: string; limit: number };
      return {
        ...source.position(path),
        path: formatPath(path),
        message: `${String(e.data)} is out of range: it must be ${comparison} ${limit}`,
      };
    }
    case 'minProperties':
    case 'maxProperties':
      return {
        ...source.position(path),
        path: formatPath(path),
        message:
          e.keyword === 'maxProperties'
            ? `give exactly one of its fields, not ${Object.keys(e.data as object).length}`
            : 'this map needs at least one field',
        hint: schema?.description,
      };
    case 'uniqueItems': {
      const { i, j } = e.params as { i: number; j: number };
      return {
        ...source.position([...path, i]),
        path: formatPath([...path, i]),
        message: `${describe((e.data as unknown[])[i])} is listed twice (also at [${j}])`,
      };
    }
    case 'const': {
      const allowed = (e.params as { allowedValue: unknown }).allowedValue;
      return {
        ...source.position(path),
        path: formatPath(path),
        message: `expected ${JSON.stringify(allowed)}, got ${describe(e.data)}`,
      };
    }
    case 'minItems': {
      const limit = (e.params as { limit: number }).limit;
      const message = limit === 1 ? 'the list must not be empty' : `the list needs at least ${limit} entries`;
      return { ...source.position(path), path: formatPath(path), message };
    }
    case 'minLength': {
      const limit = (e.params as { limit: number }).limit;
      const message = limit === 1 ? 'must not be empty' : `must be at least ${limit} characters long`;
      return { ...source.position(path), path: formatPath(path), message };
    }
    case 'anyOf':
    case 'oneOf':
      // The branch errors (already reported, filtered) say more than "must match a schema in anyOf".
      return undefined;
    default:
      return { ...source.position(path), path: formatPath(path), message: e.message ?? 'invalid value' };
  }
}

/**
 * For a union, Ajv reports the errors of every branch. Keep the branch whose type matched the value
 * (a map given for `{ exact | regex | ... }` is judged against the object branch, a string against the
 * string branch); when no branch's type matched, keep only a summarising type error.
 */
function pruneUnionBranches(errors: ErrorObject[]): ErrorObject[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  if (unions.length === 0) return errors;
  const drop = new Set<ErrorObject>();
  const extra: ErrorObject[] = [];
  for (const union of unions) {
    const prefix = union.schemaPath + '/';
    const branches = new Map<string, ErrorObject[]>();
    const inside = union.instancePath + '/';
    for (const e of errors) {
      if (!e.schemaPath.startsWith(prefix)) continue;
      // Every value of a record shares one schema path; only this value's errors belong to this union.
      if (e.instancePath !== union.instancePath && !e.instancePath.startsWith(inside)) continue;
      const branch = e.schemaPath.slice(prefix.length).split('/')[0]!;
      if (!branches.has(branch)) branches.set(branch, []);
      branches.get(branch)!.push(e);
    }
    // A discriminated union (`type: jwt | api-key`): the branch whose discriminator matched is the one meant.
    const discriminatorMissed = (errs: ErrorObject[]) =>
      errs.some((e) => e.keyword === 'const' && e.instancePath === `${union.instancePath}/type`);
    const typeMatched = [...branches.values()]
      .filter((errs) => !errs.some((e) => e.instancePath === union.instancePath && e.keyword === 'type'))
      .sort((a, b) => Number(discriminatorMissed(a)) - Number(discriminatorMissed(b)));
    for (const errs of branches.values()) for (const e of errs) drop.add(e);
    if (typeMatched.length > 0) {
      for (const e of typeMatched[0]!) drop.delete(e);
    } else {
      const types = [...branches.values()]
        .flatMap((errs) => errs.filter((e) => e.keyword === 'type').map((e) => (e.params as { type: string }).type))
        .filter((t, i, all) => all.indexOf(t) === i);
      extra.push({ ...union, keyword: 'type', params: { type: types.join(' or ') } });
    }
  }
  return [...errors.filter((e) => !drop.has(e)), ...extra];
}

function toIssues(errors: ErrorObject[], source: Locator, base: Path): ConfigIssue[] {
  const seen = new Set<string>();
  const issues: ConfigIssue[] = [];
  for (const e of pruneUnionBranches(errors)) {
    const issue = toIssue(e, source, base);
    if (!issue) continue;
    const key = `${issue.path}\0${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}
