/** `meshgate validate FILE [--output json]`: exit 0 when valid, 1 with every issue otherwise. */
import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issues.ts';
import { loadConfigFile } from '../config/load.ts';
import { createPluginCatalog } from '../plugins/index.ts';

export const usage = `Usage: meshgate validate FILE [--output text|json]

Checks a config file: syntax, schema, references. Exit status 0 when valid, 1 when not, 2 on bad usage.`;

export async function validateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o', default: 'text' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1 || !['text', 'json'].includes(values.output!)) {
    console.error(usage);
    return 2;
  }
  const file = positionals[0]!;
  const result = await loadConfigFile(file, process.env, { catalog: createPluginCatalog() });
  if (values.output === 'json') {
    console.log(
      JSON.stringify(
        result.ok ? { valid: true, file, hash: result.value.hash } : { valid: false, file, issues: result.issues },
        null,
        2,
      ),
    );
  } else if (result.ok) {
    const c = result.value.config;
    console.log(
      `${file}: valid (${c.listeners?.length ?? 0} listeners, ${c.services?.length ?? 0} services, ${c.routes?.length ?? 0} routes)`,
    );
  } else {
    for (const issue of result.issues) console.error(formatIssue(issue));
    console.error(`${result.issues.length} problem${result.issues.length === 1 ? '' : 's'} in ${file}`);
  }
  return result.ok ? 0 : 1;
}
