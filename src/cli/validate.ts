/** `meshgate validate FILE|DIR [--output json]`: exit 0 when valid, 1 with every issue otherwise. */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { ConfigIssue } from '../api/issues.ts';
import { compatConverters } from '../compat/index.ts';
import { formatIssue } from '../config/issues.ts';
import { checkConfig, type RawConfig } from '../config/pipeline.ts';
import { readTexts } from '../config/sources/directory/directory.ts';
import { createPluginCatalog } from '../plugins/index.ts';
import { FOREIGN_FORMAT_OPTIONS, FOREIGN_FORMAT_USAGE, foreignFormatOptions } from './options.ts';

export const usage = `Usage: meshgate validate FILE|DIR [--output text|json] [options]

Checks a config file, or a directory of them (merged as the control plane merges them): syntax,
schema, references. Istio resources and Kong files are detected by shape and checked as they would
be loaded.
Exit status 0 when valid, 1 when not, 2 on bad usage.

Options:
  -o, --output text|json
${FOREIGN_FORMAT_USAGE}`;

export async function validateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o', default: 'text' },
      ...FOREIGN_FORMAT_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1 || !['text', 'json'].includes(values.output!)) {
    console.error(usage);
    return 2;
  }
  const warnings: ConfigIssue[] = [];
  const compat = foreignFormatOptions(values, (issue) => warnings.push(issue));
  if (typeof compat === 'string') {
    console.error(`meshgate validate: ${compat}`);
    return 2;
  }
  const file = positionals[0]!;
  const result = await checkConfig(await read(file), 'validate', {
    load: { catalog: createPluginCatalog() },
    converters: compatConverters(compat),
  });
  if (values.output === 'json') {
    console.log(
      JSON.stringify(
        result.ok
          ? { valid: true, file, hash: result.value.loaded.hash, ...(warnings.length ? { warnings } : {}) }
          : { valid: false, file, issues: result.issues },
        null,
        2,
      ),
    );
  } else if (result.ok) {
    for (const issue of warnings) console.error(`warning: ${formatIssue(issue)} (left out)`);
    const c = result.value.loaded.config;
    console.log(
      `${file}: valid (${c.listeners?.length ?? 0} listeners, ${c.services?.length ?? 0} services, ${c.routes?.length ?? 0} routes)`,
    );
  } else {
    for (const issue of result.issues) console.error(formatIssue(issue));
    console.error(`${result.issues.length} problem${result.issues.length === 1 ? '' : 's'} in ${file}`);
  }
  return result.ok ? 0 : 1;
}

async function read(path: string): Promise<RawConfig> {
  try {
    await stat(path);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
    return {
      kind: 'unreadable',
      source: path,
      issues: [{ file: path, line: 0, column: 0, path: '', message: reason }],
    };
  }
  return { kind: 'texts', texts: await readTexts(path), source: path, env: process.env };
}
