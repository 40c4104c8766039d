/**
 * Istio's implicit behaviour, reproduced on what the converter produces so the same traffic behaves
 * the same after a move (istio/api's field comments and istiod's defaults).
 */

/** Where a VirtualService alone (no Gateway resource in any file) is served: the port
 * istio-ingressgateway's pods listen on for plain HTTP (its Service's port 80 maps to it). */
export const DEFAULT_ISTIO_LISTENER_ADDRESS = '0.0.0.0';
export const DEFAULT_ISTIO_LISTENER_PORT = 8080;

/** A route without `retries`: 2 retries on these (Envoy's names; meshgate reads the same ones) and 503. */
export const ISTIO_DEFAULT_RETRY_ATTEMPTS = 2;
export const ISTIO_DEFAULT_RETRY_ON = ['connect-failure', 'refused-stream', 'unavailable', 'cancelled'] as const;
export const ISTIO_DEFAULT_RETRIABLE_STATUS_CODES = [503] as const;

/** `outlierDetection` present: what an absent field means. */
export const ISTIO_OUTLIER_DEFAULTS = {
  consecutive5xxErrors: 5,
  interval: '10s',
  baseEjectionTime: '30s',
  maxEjectionPercent: 10,
  /** Istio turns Envoy's panic mode off unless `minHealthPercent` says otherwise. */
  minHealthPercent: 0,
} as const;

/**
 * Istio's connection pool limits when a DestinationRule leaves them out: effectively none (istiod
 * sets 2^32-1). meshgate's ceiling for these limits is 1,000,000.
 */
export const ISTIO_UNLIMITED = 1_000_000;

/** The connect timeout of a connection pool that leaves `tcp.connectTimeout` out (meshConfig's default). */
export const ISTIO_CONNECT_TIMEOUT = '10s';
