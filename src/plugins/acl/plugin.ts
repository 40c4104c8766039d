/**
 * acl: allows or denies consumers by group. Runs after authentication; a request no authentication
 * plugin identified is refused with 401.
 */
import { definePlugin, type Filter, type LocalReply } from '../../core/plugin.ts';
import { type AclConfig, aclSchema } from './schema.ts';

export default definePlugin<AclConfig>({
  name: 'acl',
  phase: 'authorize',
  order: 100,
  description: 'Allow or deny authenticated consumers by group.',
  configSchema: aclSchema,
  compile(config) {
    const allow = config.allow ? new Set(config.allow) : null;
    const deny = new Set(config.deny ?? []);
    const anonymous: LocalReply = {
      status: 401,
      code: 'MG_UNAUTHORIZED',
      detail: 'this route needs an authenticated consumer',
    };
    const filter: Filter = {
      onRequestHeaders(ctx) {
        const consumer = ctx.consumer;
        if (consumer === null) return anonymous;
        const groups = consumer.groups;
        const denied = groups.some((g) => deny.has(g)) || (allow !== null && !groups.some((g) => allow.has(g)));
        if (!denied) return undefined;
        return { status: 403, code: 'MG_FORBIDDEN', detail: `consumer ${consumer.name} is not allowed on this route` };
      },
    };
    return () => filter;
  },
});
