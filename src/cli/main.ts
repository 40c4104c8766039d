#!/usr/bin/env node
/** The `meshgate` command: wiring only; each command lives in its own file. */
import { readFileSync } from 'node:fs';
import { analyzeCommand, usage as analyzeUsage } from './analyze.ts';
import { controlPlaneCommand, usage as controlPlaneUsage } from './control-plane.ts';
import { convertCommand, usage as convertUsage } from './convert.ts';
import { gatewayCommand, usage as gatewayUsage } from './gateway.ts';
import { proxyConfigCommand, usage as proxyConfigUsage } from './proxy-config.ts';
import { proxyStatusCommand, usage as proxyStatusUsage } from './proxy-status.ts';
import { sidecarCommand, usage as sidecarUsage } from './sidecar.ts';
import { statusCommand, usage as statusUsage } from './status.ts';
import { usageCommand, usage as usageUsage } from './usage.ts';
import { validateCommand, usage as validateUsage } from './validate.ts';

const commands: Record<string, { run: (args: string[]) => Promise<number>; usage: string; summary: string }> = {
  gateway: {
    run: gatewayCommand,
    usage: gatewayUsage,
    summary: 'run the gateway from a config file or a control plane',
  },
  validate: { run: validateCommand, usage: validateUsage, summary: 'check a config file and report every problem' },
  convert: {
    run: convertCommand,
    usage: convertUsage,
    summary: 'turn Istio resources or Kong config into meshgate config, naming each source object',
  },
  'control-plane': {
    run: controlPlaneCommand,
    usage: controlPlaneUsage,
    summary: 'run the mesh control plane (model, registry, push)',
  },
  sidecar: { run: sidecarCommand, usage: sidecarUsage, summary: 'run the proxy beside one service instance' },
  analyze: {
    run: analyzeCommand,
    usage: analyzeUsage,
    summary: 'find mistakes and smells in a config or a running mesh',
  },
  'proxy-config': {
    run: proxyConfigCommand,
    usage: proxyConfigUsage,
    summary: 'show the listeners, routes, services or endpoints one proxy has',
  },
  'proxy-status': {
    run: proxyStatusCommand,
    usage: proxyStatusUsage,
    summary: 'list every proxy with its config version and sync state',
  },
  status: { run: statusCommand, usage: statusUsage, summary: 'the mesh at a glance, or what became of one change' },
  usage: {
    run: usageCommand,
    usage: usageUsage,
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
  const command = commands[first];
  if (!command) {
    console.error(`meshgate: unknown command "${first}"\n\n${help()}`);
    return 2;
  }
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
