/**
 * Test helpers for meshgate and for plugins written for it (`meshgate/testing`): real upstream servers
 * that record what reached them, a gateway built from a config object, raw HTTP over a socket, an
 * OTLP/HTTP receiver for spans and a strict reader of the Prometheus text format.
 */

export { flattenExport, type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp.ts';
export { type MetricFamily, type MetricSample, parsePrometheusText, type Scrape } from './prometheus.ts';
export { type RawResponse, rawRequest } from './raw.ts';
export {
  echo,
  type GatewayOptions,
  type Handler,
  type SeenRequest,
  simpleConfig,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
} from './servers.ts';
