/**
 * The config checks of `transcode` routes that a schema cannot express, run in the validate stage
 * with the files a config names (src/config/load.ts): the service exists and speaks HTTP/2, the
 * metadata allow-list names no reserved header, and the protos parse, their imports resolve and every
 * mapping fits its method. A problem in a proto is reported at the route's field with the proto's
 * own file, line and column in the message.
 *
 * Only the proto loader is imported here (no request-path code), so validating a config costs
 * protobufjs only when the config has a transcode route.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Config } from '../../api/config.ts';
import type { TranscodeConfig } from '../../api/transcode.ts';
import type { Locator, Path } from '../document.ts';
import { type ConfigIssue, didYouMean, formatPath } from '../issues.ts';
import { loadProtoSet, rememberProtoSet } from './protos.ts';

/** Headers that cannot become metadata: connection-level, gRPC's own, or set by the gateway. */
const RESERVED_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'content-type',
  'content-length',
  'x-request-id',
  'traceparent',
  'tracestate',
  'http2-settings',
]);

/** Route fields of forwarding that a transcode route does not read. */
const FORWARD_ONLY = ['rewrite', 'sticky', 'mirror', 'fault'] as const;

export function checkTranscodeRoutes(config: Config, at: Locator, baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!config || typeof config !== 'object' || !Array.isArray(config.routes)) return issues;
  const report = (path: Path, message: string, hint?: string) =>
    issues.push({ ...at.position(path), path: formatPath(path), message, ...(hint !== undefined && { hint }) });
  const services = new Map(
    (Array.isArray(config.services) ? config.services : [])
      .filter((s) => s && typeof s === 'object' && typeof s.name === 'string')
      .map((s) => [s.name, s]),
  );
  config.routes.forEach((route, i) => {
    const spec = (route as { transcode?: unknown } | null)?.transcode as TranscodeConfig | undefined;
    if (spec === undefined || spec === null || typeof spec !== 'object') return;
    const here: Path = ['routes', i, 'transcode'];
    for (const field of FORWARD_ONLY)
      if ((route as Record<string, unknown>)[field] !== undefined)
        report(['routes', i, field], `${field} applies to forwarding routes; this one transcodes to gRPC`);
    if (typeof spec.service === 'string') {
      const service = services.get(spec.service);
      if (service === undefined)
        report([...here, 'service'], `unknown service "${spec.service}"`, didYouMean(spec.service, services.keys()));
      else {
        if ((service.protocol ?? 'http1') === 'http1')
          report(
            [...here, 'service'],
            `service "${spec.service}" speaks HTTP/1.1; gRPC needs HTTP/2`,
            `set protocol: http2 on service ${spec.service}`,
          );
        if (typeof spec.subset === 'string' && !Object.hasOwn(service.subsets ?? {}, spec.subset))
          report([...here, 'subset'], `service "${spec.service}" has no subset "${spec.subset}"`);
      }
    }
    (Array.isArray(spec.headers) ? spec.headers : []).forEach((name, j) => {
      if (typeof name !== 'string') return;
      if (RESERVED_HEADERS.has(name) || name.startsWith('grpc-') || name.startsWith(':'))
        report(
          [...here, 'headers', j],
          `${name} cannot be sent as metadata`,
          'hop-by-hop, gRPC-reserved and gateway-set headers (x-request-id, trace context) are not listed',
        );
    });
    if (!Array.isArray(spec.protos) || !spec.protos.every((p) => typeof p === 'string')) return;
    if (
      spec.includeDirs !== undefined &&
      !(Array.isArray(spec.includeDirs) && spec.includeDirs.every((d) => typeof d === 'string'))
    )
      return;
    let result: ReturnType<typeof loadProtoSet>;
    try {
      result = loadProtoSet(absolutePaths(spec, baseDir));
    } catch (e) {
      report([...here, 'protos'], `the protos cannot be loaded: ${(e as Error).message}`);
      return;
    }
    if (!result.ok) for (const p of result.problems) report([...here, ...p.at], p.message, p.hint);
    else rememberProtoSet(spec, result.value);
  });
  return issues;
}

/** The spec with `protos` and `includeDirs` resolved from the config's directory. */
function absolutePaths(spec: TranscodeConfig, baseDir: string): TranscodeConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...spec,
    protos: spec.protos.map(abs),
    ...(spec.includeDirs !== undefined && { includeDirs: spec.includeDirs.map(abs) }),
  };
}

/**
 * Makes `protos` and `includeDirs` absolute in a validated config (before it is frozen), so it means
 * the same wherever it is compiled (workers, reloads from another directory).
 */
export function resolveTranscodePaths(config: Config, baseDir: string): void {
  for (const route of config.routes ?? []) {
    const spec = route.transcode;
    if (spec === undefined) continue;
    const resolved = absolutePaths(spec, baseDir);
    (spec as { protos: string[] }).protos = resolved.protos;
    if (resolved.includeDirs !== undefined) (spec as { includeDirs?: string[] }).includeDirs = resolved.includeDirs;
  }
}
