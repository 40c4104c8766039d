/**
 * Test helpers for meshgate and for plugins written for it (`meshgate/testing`): real upstream servers
 * that record what reached them, a gateway built from a config object, raw HTTP over a socket.
 */
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
