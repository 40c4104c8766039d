/** `meshgate analyze [FILE|DIR | --control-plane URL]`: mistakes and smells, each with a code, a place and a fix. */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Instance, ProxyStatusView } from '../api/mesh.ts';
import type { ConfigText } from '../config/load.ts';
import { readTexts } from '../config/sources/directory/directory.ts';
import { analyze, type Finding, SEVERITIES, type Severity } from '../control-plane/analyze/analyze.ts';
import { createPluginCatalog } from '../plugins/index.ts';
import { controlPlaneUrl, EXIT, getJson, operatorToken, reporting, Unavailable } from './mesh-client.ts';

export const usage = `Usage: meshgate analyze FILE|DIR [--output text|json] [--fail-on error|warning|info]
       meshgate analyze --control-plane URL [...]

Finds mistakes and smells in a config (a file, or a directory merged as the control plane merges
it) or in a running mesh (its model and its registered instances), each with a stable code
(MGA001…), its place as file:line:column, and a fix. Codes are listed in docs/cli.md.

Options:
      --control-plane URL   analyze the mesh a control plane runs
  -o, --output text|json
      --fail-on LEVEL       the least severe finding that makes the exit status 1 (default error)

Exit status: 0 nothing at or above --fail-on, 1 something is, 2 bad usage, 3 the file or the
control plane cannot be read.`;

export async function analyzeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'control-plane': { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
      'fail-on': { type: 'string', default: 'error' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  const fromControlPlane = values['control-plane'] !== undefined;
  if (
    positionals.length !== (fromControlPlane ? 0 : 1) ||
    !['text', 'json'].includes(values.output!) ||
    !SEVERITIES.includes(values['fail-on'] as Severity)
  ) {
    console.error(usage);
    return EXIT.usage;
  }
  return reporting('analyze', async () => {
    let texts: ConfigText[];
    let instances: Instance[] | undefined;
    let proxies: ProxyStatusView[] | undefined;
    let source: string;
    let mesh = fromControlPlane;
    if (fromControlPlane) {
      const base = controlPlaneUrl(values['control-plane']);
      const model = await getJson<{ source: string; texts: ConfigText[] }>(base, '/config/source', {
        token: operatorToken(),
      });
      instances = (await getJson<{ instances: Instance[] }>(base, '/instances', { token: operatorToken() })).instances;
      proxies = (await getJson<{ proxies: ProxyStatusView[] }>(base, '/proxies', { token: operatorToken() })).proxies;
      texts = model.texts;
      source = `${base} (model from ${model.source})`;
    } else {
      source = positionals[0]!;
      texts = await readPath(source);
      mesh = (await stat(source)).isDirectory();
    }
    // The control plane has already substituted its environment; a model's text is taken as written.
    const findings = analyze({
      texts,
      instances,
      ...(proxies === undefined ? {} : { proxies }),
      env: fromControlPlane ? null : process.env,
      catalog: createPluginCatalog(),
      mesh,
    });
    const failOn = SEVERITIES.indexOf(values['fail-on'] as Severity);
    const failing = findings.filter((f) => SEVERITIES.indexOf(f.severity) <= failOn);
    if (values.output === 'json') console.log(JSON.stringify({ source, findings }, null, 2));
    else printFindings(source, findings);
    return failing.length > 0 ? EXIT.findings : EXIT.ok;
  });
}

async function readPath(path: string): Promise<ConfigText[]> {
  try {
    return await readTexts(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Unavailable(`${path}: ${err.code === 'ENOENT' ? 'file or directory not found' : err.message}`);
  }
}

function printFindings(source: string, findings: Finding[]) {
  for (const f of findings) {
    const where = f.line > 0 ? `${f.file}:${f.line}:${f.column}` : f.file;
    console.log(`${where}: ${f.severity} ${f.code}: ${f.path ? `${f.path}: ` : ''}${f.message}`);
    console.log(`    fix: ${f.fix}`);
  }
  const counts = SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}${n === 1 ? '' : 's'}`);
  console.log(counts.length ? `${counts.join(', ')} in ${source}` : `${source}: no findings`);
}
