/**
 * key-auth: authenticates a request by an API key in a header or the query string and identifies its
 * consumer. Keys are held only as SHA-256 digests; the lookup compares digests in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Consumer } from '../../core/plugin.ts';
import { definePlugin, type Filter, type LocalReply } from '../../core/plugin.ts';
import { queryValue, withoutQueryParam } from '../../core/request-values.ts';
import { authenticate } from '../shared/identity.ts';
import { type KeyAuthConfig, keyAuthSchema } from './schema.ts';

interface KeyEntry {
  digest: Buffer;
  consumer: Consumer;
  /** Non-secret id of the credential: the first 12 hex digits of the digest. */
  id: string;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

const WWW_AUTHENTICATE: [string, string] = ['www-authenticate', 'Key realm="meshgate"'];

export default definePlugin<KeyAuthConfig>({
  name: 'key-auth',
  phase: 'authenticate',
  order: 200,
  description: 'Authenticate consumers by API key (header or query), keys held hashed.',
  configSchema: keyAuthSchema,
  compile(config, deps) {
    // One index per snapshot, shared by every route that uses key-auth.
    const keys = deps.perSnapshot('key-auth:keys', () => {
      const index = new Map<string, KeyEntry>();
      for (const consumer of deps.consumers.values())
        for (const c of consumer.credentials)
          if (c.type === 'api-key') {
            const d = digest(c.key as string);
            index.set(d.toString('hex'), { digest: d, consumer, id: d.toString('hex').slice(0, 12) });
          }
      return index;
    });
    const names = (config.keyNames ?? ['apikey', 'x-api-key']).map((n) => n.toLowerCase());
    const inHeader = (config.in ?? ['header', 'query']).includes('header');
    const inQuery = (config.in ?? ['header', 'query']).includes('query');
    const hide = config.hideCredentials !== false;
    const missing: LocalReply = {
      status: 401,
      code: 'MG_UNAUTHORIZED',
      detail: `no API key in the request (send it in ${names.join(' or ')})`,
      headers: [WWW_AUTHENTICATE],
    };
    const invalid: LocalReply = {
      status: 401,
      code: 'MG_UNAUTHORIZED',
      detail: 'the API key is not valid',
      headers: [WWW_AUTHENTICATE],
    };

    const filter: Filter = {
      onRequestHeaders(ctx) {
        let key: string | undefined;
        let fromQuery: string | undefined;
        if (inHeader)
          for (const name of names) {
            key = ctx.header(name);
            if (key !== undefined) {
              if (hide) ctx.removeHeader(name);
              break;
            }
          }
        if (key === undefined && inQuery && ctx.query !== '') {
          for (const name of names) {
            key = queryValue(ctx.query, name);
            if (key !== undefined) {
              fromQuery = name;
              break;
            }
          }
          if (fromQuery !== undefined && hide) ctx.query = withoutQueryParam(ctx.query, fromQuery);
        }
        if (key === undefined || key === '') return missing;
        const d = digest(key);
        const entry = keys.get(d.toString('hex'));
        // The map lookup is by digest, which tells an attacker nothing; the compare is constant-time anyway.
        if (entry === undefined || !timingSafeEqual(entry.digest, d)) return invalid;
        authenticate(ctx, entry.consumer, { type: 'api-key', id: entry.id });
        return undefined;
      },
    };
    return () => filter;
  },
});
