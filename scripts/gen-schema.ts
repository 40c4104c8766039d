/**
 * Writes schema/meshgate.schema.json from the TypeBox definitions in src/api/config.ts.
 * `--check` fails when the committed file is stale (run by `npm test`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ConfigSchema } from '../src/api/config.ts';

const target = new URL('../schema/meshgate.schema.json', import.meta.url);
const schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://meshgate.dev/schema/meshgate.schema.json',
  ...JSON.parse(JSON.stringify(ConfigSchema)),
};
const text = JSON.stringify(schema, null, 2) + '\n';

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== text) {
    console.error('schema/meshgate.schema.json is out of date: run `npm run schema` and commit it.');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.log(`wrote ${target.pathname}`);
}
