/**
 * A proxy's shadow config (docs/shadow.md): `PUT /shadow` sets a candidate config, validated exactly
 * as a config in force would be, beside the live one in every process that proxies; `GET
 * /shadow/report` sums what each process counted; `DELETE /shadow` removes it and answers its last
 * report. The live config is never touched.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { samplePercentOf } from '../api/shadow.ts';
import type { ConfigConverter, PipelineOptions } from '../config/pipeline.ts';
import { checkConfig } from '../config/pipeline.ts';
import { DEFAULT_SHADOW_SAMPLE_PERCENT, MAX_MODEL_BODY_BYTES } from '../core/defaults.ts';
import type { DataPlane } from '../proxy/data-plane.ts';
import { clearShadowEverywhere, setShadowEverywhere, shadowReportEverywhere } from '../proxy/shadow/commands.ts';
import { type AdminHandler, type AdminReply, type AdminServer, readBody } from './server.ts';

/** The name issues of a shadow config sent without `?file=` carry (`shadow:3:5`). */
export const SHADOW_SOURCE = 'shadow';

export interface ShadowEndpointOptions {
  catalog?: NonNullable<PipelineOptions<unknown, object>['load']>['catalog'];
  converters?: readonly ConfigConverter[];
  /**
   * Who may use the endpoints (the gateway's operator-token check on a non-loopback admin address);
   * null: nobody (a non-loopback admin address without operator tokens); absent: every caller.
   */
  guard?: ((req: IncomingMessage) => AdminReply | undefined) | null;
}

const NONE_SET: AdminReply = { status: 404, body: { error: 'no shadow config is set; PUT /shadow sets one' } };
const NO_CONFIG: AdminReply = { status: 503, body: { status: 'waiting for config' } };

/**
 * What a `PUT /shadow` sends, on a proxy's admin API or the control plane's: the candidate's text,
 * the file its issues name (`?file=`, so that they read as `meshgate validate FILE` reports them)
 * and the sample; or the 400 for a bad sample.
 */
export async function readShadowPut(
  req: IncomingMessage,
  url: URL,
): Promise<{ text: string; file: string; samplePercent: number } | AdminReply> {
  const sampleText = url.searchParams.get('sample');
  const samplePercent = samplePercentOf(sampleText, DEFAULT_SHADOW_SAMPLE_PERCENT);
  if (samplePercent === null)
    return { status: 400, body: { error: `sample "${sampleText}" is not a percent from 0 to 100` } };
  const text = await readBody(req, MAX_MODEL_BODY_BYTES);
  return { text, file: url.searchParams.get('file') || SHADOW_SOURCE, samplePercent };
}

export function addShadowEndpoints(admin: AdminServer, plane: DataPlane, options: ShadowEndpointOptions = {}): void {
  const guard = options.guard;
  const guarded =
    (handler: AdminHandler): AdminHandler =>
    (req, url, params) => {
      if (guard === null)
        return {
          status: 403,
          body: {
            error: 'shadow configs need a loopback admin address, or --operator-token-file and an operator token',
          },
        };
      return guard?.(req) ?? handler(req, url, params);
    };
  admin
    .route(
      'PUT /shadow',
      guarded(async (req, url) => {
        const put = await readShadowPut(req, url);
        if ('status' in put) return put;
        const { text, file, samplePercent } = put;
        const checked = await checkConfig(
          { kind: 'texts', texts: [{ file, text }], source: SHADOW_SOURCE, env: null },
          SHADOW_SOURCE,
          { ...(options.catalog ? { load: { catalog: options.catalog } } : {}), converters: options.converters ?? [] },
        );
        if (!checked.ok)
          return {
            status: 400,
            body: { error: 'the shadow config is not valid; nothing changed', issues: checked.issues },
          };
        const loaded = checked.value.loaded;
        const set = await setShadowEverywhere(plane, randomUUID(), loaded, samplePercent);
        if (!set.ok && set.waiting) return NO_CONFIG;
        if (!set.ok) return { status: 422, body: { error: `the shadow config could not be compiled: ${set.error}` } };
        return { status: 200, body: { status: 'set', hash: loaded.hash, samplePercent, processes: set.processes } };
      }),
    )
    .route(
      'DELETE /shadow',
      guarded(async () => {
        const report = await clearShadowEverywhere(plane);
        return report === null ? NONE_SET : { status: 200, body: { status: 'cleared', report } };
      }),
    )
    .route(
      'GET /shadow/report',
      guarded(async () => {
        const report = await shadowReportEverywhere(plane);
        return report === null ? NONE_SET : { status: 200, body: report };
      }),
    );
}
