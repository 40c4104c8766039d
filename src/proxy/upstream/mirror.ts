/**
 * Request mirroring: a copy of a share of a route's requests goes to a shadow service, and whatever
 * the shadow does (answers, fails, hangs) stays there. The copy is sent once the client's body has
 * fully arrived (bodies up to a limit; larger requests are not mirrored), so a slow shadow can never
 * hold back the client's upload; its response is read and dropped; it runs under the shadow service's
 * own timeouts and circuit breaker (a hanging shadow fills its own limits and further copies are
 * dropped). The shadow's Host gets `-shadow` appended, so it can tell copies from real traffic.
 */
import type { Dispatcher } from 'undici';
import { MIRROR_HOST_SUFFIX } from '../../core/defaults.ts';
import type { Endpoint } from './endpoint.ts';
import type { EndpointSet } from './endpoint-set.ts';
import { randomHash } from './hash.ts';
import type { PoolClient, PooledHandler } from './pool.ts';
import type { UpstreamService } from './service.ts';

export interface CompiledMirror {
  readonly service: UpstreamService;
  readonly subset: string | undefined;
  readonly endpoints: EndpointSet;
  readonly percent: number;
}

/** Sends one copy: `headers` as the client's request goes upstream, `body` the whole body (or null). */
export function sendMirror(
  mirror: CompiledMirror,
  method: string,
  path: string,
  headers: readonly string[],
  body: Buffer | null,
): void {
  const service = mirror.service;
  const endpoint = mirror.endpoints.choose(randomHash(), null);
  const breaker = service.breaker;
  if (endpoint === null || breaker.requests >= breaker.maxRequests) {
    if (endpoint !== null) breaker.overflows.maxRequests++;
    service.stats.mirrorDropped++;
    return;
  }
  const copy = headers.slice();
  for (let i = 0; i < copy.length; i += 2) if (copy[i] === 'host') copy[i + 1] = copy[i + 1] + MIRROR_HOST_SUFFIX;
  const call = new MirrorCall(service, endpoint);
  endpoint.active++;
  breaker.requests++;
  const sent = endpoint.pool.dispatch(
    {
      method,
      path,
      headers: copy,
      body,
      headersTimeout: service.timeouts.requestMs,
      bodyTimeout: service.timeouts.idleMs,
    },
    call,
  );
  if (sent) service.stats.mirrorSent++;
  else {
    call.finish();
    service.stats.mirrorDropped++;
  }
}

/** The shadow's response: read and dropped. */
class MirrorCall implements PooledHandler {
  client: PoolClient | null = null;
  private readonly service: UpstreamService;
  private readonly endpoint: Endpoint;
  private done = false;

  constructor(service: UpstreamService, endpoint: Endpoint) {
    this.service = service;
    this.endpoint = endpoint;
  }

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    if (statusCode >= 200) this.service.outlier?.observe(this.endpoint, statusCode);
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    this.finish();
  }

  onResponseError(): void {
    if (this.done) return;
    this.service.stats.mirrorFailed++;
    this.finish();
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.endpoint.active--;
    this.service.breaker.requests--;
    this.endpoint.pool.release(this);
  }
}
