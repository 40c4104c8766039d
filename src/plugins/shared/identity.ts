/**
 * How an authentication plugin records who the client is: on the context for later plugins, and as
 * headers for the upstream (client-supplied copies are removed by the request-head pass).
 */
import type { Consumer, CredentialRef, RequestContext } from '../../core/plugin.ts';

export function authenticate(ctx: RequestContext, consumer: Consumer, credential: CredentialRef): void {
  ctx.consumer = consumer;
  ctx.credential = credential;
  ctx.setHeader('x-consumer-id', consumer.id);
  ctx.setHeader('x-consumer-username', consumer.name);
  if (consumer.groups.length > 0) ctx.setHeader('x-consumer-groups', consumer.groups.join(', '));
  ctx.setHeader('x-credential-identifier', credential.id);
}
