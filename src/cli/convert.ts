/**
 * `meshgate convert FILE... [--from istio|kong] [--output FILE]`: foreign config files (Istio
 * resources, Kong declarative config) as meshgate's own YAML config, each object preceded by a comment naming the source object it came
 * from. The output is validated before it is written: what it prints loads as it is.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Document, isMap, isSeq } from 'yaml';
import type { ConfigIssue } from '../api/issues.ts';
import { convertTexts, FOREIGN_FORMATS } from '../compat/index.ts';
import type { Locator } from '../config/document.ts';
import { formatIssue } from '../config/issues.ts';
import { type ConfigText, parseTexts, validateParsed } from '../config/load.ts';
import { readTexts } from '../config/sources/directory/directory.ts';
import { createPluginCatalog } from '../plugins/index.ts';
import { FOREIGN_FORMAT_OPTIONS, FOREIGN_FORMAT_USAGE, foreignFormatOptions } from './options.ts';

export const usage = `Usage: meshgate convert FILE... [--from ${FOREIGN_FORMATS.map((f) => f.name).join('|')}] [--output FILE] [options]

Prints the meshgate config that Istio resources (multi-document YAML) or a Kong declarative file
become, with a comment naming the source object of each listener, service, route, consumer and policy. Files in meshgate's own format may be
given too: they are merged in, as a directory of config files is. \`\${NAME}\` is left as written.
The result is validated; a part that cannot be converted is an error unless --allow-unsupported,
which leaves it out and lists it at the top of the output. Exit status 0 converted, 1 not, 2 bad usage.

Options:
      --from FORMAT     read every file as this format instead of detecting it by shape
  -o, --output FILE     write the config there instead of to stdout
${FOREIGN_FORMAT_USAGE}`;

export async function convertCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      from: { type: 'string' },
      output: { type: 'string', short: 'o' },
      ...FOREIGN_FORMAT_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length === 0 || (values.from !== undefined && !FOREIGN_FORMATS.some((f) => f.name === values.from))) {
    console.error(usage);
    return 2;
  }
  const warnings: ConfigIssue[] = [];
  const compat = foreignFormatOptions(values, (issue) => warnings.push(issue));
  if (typeof compat === 'string') {
    console.error(`meshgate convert: ${compat}`);
    return 2;
  }
  const texts: ConfigText[] = [];
  for (const path of positionals) {
    try {
      texts.push(...(await readTexts(path)));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      console.error(`meshgate convert: ${path}: ${err.code === 'ENOENT' ? 'file not found' : err.message}`);
      return 1;
    }
  }
  const source = positionals.join(', ');
  const { parsed, conversions } = convertTexts(parseTexts(texts, source, null), FOREIGN_FORMATS, {
    ...compat,
    ...(values.from === undefined ? {} : { from: values.from }),
  });
  if (conversions.length === 0 && parsed.issues.length === 0) {
    console.error(`meshgate convert: no ${FOREIGN_FORMATS.map((f) => f.name).join(' or ')} resources in ${source}`);
    return 1;
  }
  // Validation resolves paths and freezes: print the data as converted.
  const data = parsed.data === undefined ? undefined : structuredClone(parsed.data);
  const checked = validateParsed(parsed, { catalog: createPluginCatalog() });
  if (!checked.ok || data === undefined) {
    const issues = checked.ok ? parsed.issues : checked.issues;
    for (const issue of issues) console.error(formatIssue(issue));
    console.error(`meshgate convert: ${issues.length} problem${issues.length === 1 ? '' : 's'}; nothing written`);
    return 1;
  }
  const text = render(data as Record<string, unknown>, parsed.locator, source, warnings);
  if (values.output === undefined) process.stdout.write(text);
  else {
    await writeFile(values.output, text);
    for (const issue of warnings) console.error(`warning: ${formatIssue(issue)} (left out)`);
    console.error(`meshgate convert: wrote ${values.output}`);
  }
  return 0;
}

const SECTIONS = ['listeners', 'services', 'routes', 'consumers', 'authorizationPolicies'] as const;

/** The config as YAML, each object of a converted file preceded by its origin and source position. */
function render(
  data: Record<string, unknown>,
  locator: Locator,
  source: string,
  warnings: readonly ConfigIssue[],
): string {
  // Sections in the order the schema lists them, whatever order the files were merged in.
  const ordered: Record<string, unknown> = {};
  for (const key of ['listeners', 'admin', 'services', 'routes', 'consumers', 'plugins'])
    if (key in data) ordered[key] = data[key];
  Object.assign(ordered, data);
  const doc = new Document(ordered, { aliasDuplicateObjects: false });
  const header = [` meshgate config converted from ${source} by \`meshgate convert\`.`];
  if (warnings.length > 0) {
    header.push(' Left out (not supported, loaded with --allow-unsupported):');
    for (const w of warnings) header.push(`   ${formatIssue(w)}`);
  }
  doc.commentBefore = header.join('\n');
  for (const section of SECTIONS) {
    const seq = doc.get(section, true);
    const list = data[section];
    if (!isSeq(seq) || !Array.isArray(list)) continue;
    seq.items.forEach((node, i) => {
      const item = list[i] as Record<string, unknown>;
      const at = locator.position([section, i]);
      // Objects without an `origin` field (policies) are named by the path the locator gives them.
      const named = locator.localPath?.(`${section}[${i}]`);
      const origin =
        typeof item.origin === 'string'
          ? item.origin
          : named?.includes(':')
            ? named.replace(/ \([^)]*\)$/, '')
            : undefined;
      if (!isMap(node) || (origin === undefined && at.line === 0)) return;
      const where = at.line > 0 ? `${at.file}:${at.line}` : at.file;
      node.commentBefore = ` from ${origin ?? where}${origin && at.line > 0 ? ` (${where})` : ''}`;
    });
  }
  if (data.mesh !== undefined) {
    const at = locator.position(['mesh']);
    const pair = isMap(doc.contents)
      ? doc.contents.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === 'mesh')
      : undefined;
    if (pair && at.line > 0) (pair.key as { commentBefore?: string }).commentBefore = ` from ${at.file}:${at.line}`;
  }
  return doc.toString({ lineWidth: 0 });
}
