#!/usr/bin/env node
/** The `meshgate` command: wiring only; each command lives in its own file. */
import { readFileSync } from 'node:fs';
import { execWithSettings, PROXY_PROCESS_SETTINGS, type ProcessSettings } from './node-flags.ts';

/** A command's module, loaded only when it runs: a sidecar never pays for the control plane's code. */
interface Command {
  run: (args: string[]) => Promise<number>;
  usage: string;
}

const commands: Record<string, { load: () => Promise<Command>; summary: string; process?: ProcessSettings }> = {
  gateway: {
    load: async () => {
      const m = await import('./gateway.ts');
      return { run: m.gatewayCommand, usage: m.usage };
    },
    summary: 'run the gateway from a config file or a control plane',
    process: PROXY_PROCESS_SETTINGS.gateway,
  },
  validate: {
    load: async () => {
      const m = await import('./validate.ts');
      return { run: m.validateCommand, usage: m.usage };
    },
    summary: 'check a config file and report every problem',
  },
  convert: {
    load: async () => {
      const m = await import('./convert.ts');
      return { run: m.convertCommand, usage: m.usage };
    },
    summary: 'turn Istio resources or Kong config into meshgate config, naming each source object',
  },
  'control-plane': {
    load: async () => {
      const m = await import('./control-plane.ts');
      return { run: m.controlPlaneCommand, usage: m.usage };
    },
    summary: 'run the mesh control plane (model, registry, push)',
  },
  sidecar: {
    load: async () => {
      const m = await import('./sidecar.ts');
      return { run: m.sidecarCommand, usage: m.usage };
    },
    summary: 'run the proxy beside one service instance',
    process: PROXY_PROCESS_SETTINGS.sidecar,
  },
  diff: {
    load: async () => {
      const m = await import('./diff.ts');
      return { run: m.diffCommand, usage: m.usage };
    },
    summary: 'what a candidate config would do differently on live traffic (a dry run beside the live one)',
  },
  analyze: {
    load: async () => {
      const m = await import('./analyze.ts');
      return { run: m.analyzeCommand, usage: m.usage };
    },
    summary: 'find mistakes and smells in a config or a running mesh',
  },
  'proxy-config': {
    load: async () => {
      const m = await import('./proxy-config.ts');
      return { run: m.proxyConfigCommand, usage: m.usage };
    },
    summary: 'show the listeners, routes, services or endpoints one proxy has',
  },
  'proxy-status': {
    load: async () => {
      const m = await import('./proxy-status.ts');
      return { run: m.proxyStatusCommand, usage: m.usage };
    },
    summary: 'list every proxy with its config version and sync state',
  },
  apply: {
    load: async () => {
      const m = await import('./apply.ts');
      return { run: m.applyCommand, usage: m.usage };
    },
    summary: 'put a model in force on the control plane, at once or to canary proxies first',
  },
  status: {
    load: async () => {
      const m = await import('./status.ts');
      return { run: m.statusCommand, usage: m.usage };
    },
    summary: 'the mesh at a glance, or what became of one change',
  },
  explain: {
    load: async () => {
      const m = await import('./explain.ts');
      return { run: m.explainCommand, usage: m.usage };
    },
    summary: 'tell what the proxies decided for one request, hop by hop',
  },
  usage: {
    load: async () => {
      const m = await import('./usage.ts');
      return { run: m.usageCommand, usage: m.usage };
    },
    summary: 'usage per consumer and API version, from the metering store',
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'meshgate: an API gateway and service mesh in one.',
    '',
    'Usage: meshgate <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show help (also: meshgate <command> --help)',
    '  -v, --version  print the version',
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    console.error(help());
    return 2;
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    console.log(help());
    return 0;
  }
  if (first === '-v' || first === '--version') {
    console.log(version());
    return 0;
  }
  const entry = commands[first];
  if (!entry) {
    console.error(`meshgate: unknown command "${first}"\n\n${help()}`);
    return 2;
  }
  // A proxy's heap is sized for its role (node-flags.ts); this returns only once the settings are in force.
  if (entry.process) execWithSettings(entry.process);
  const command = await entry.load();
  try {
    return await command.run(rest);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`meshgate ${first}: ${err.message}\n\n${command.usage}`);
      return 2;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
