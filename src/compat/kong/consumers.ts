/**
 * Kong consumers and their credentials → meshgate consumers. `jwt_secrets` become jwt credentials
 * (the secret's `key` is the `iss` a token names, as in Kong), `keyauth_credentials` api-key
 * credentials, `acls` groups. Credentials may be nested in their consumer or listed at the top with
 * a `consumer` reference.
 */
import { child, fieldsOf, isRecord, listOf, type SourceRef } from '../shared/format.ts';
import {
  type ConsumerInfo,
  isMeshgateName,
  isSet,
  type KongFile,
  notSupported,
  referenceKeys,
  uniqueName,
} from './common.ts';

/** Credential lists Kong's bundled plugins keep, nested in a consumer or at the top of the file. */
export const CREDENTIAL_LISTS = ['jwt_secrets', 'keyauth_credentials', 'acls'] as const;
/** Credentials of plugins meshgate does not convert. */
export const UNSUPPORTED_CREDENTIALS = [
  'basicauth_credentials',
  'hmacauth_credentials',
  'oauth2_credentials',
  'mtls_auth_credentials',
] as const;

const CONSUMER_FIELDS = [
  'id',
  'created_at',
  'updated_at',
  'username',
  'custom_id',
  'tags',
  'plugins',
  'consumer_groups',
  ...CREDENTIAL_LISTS,
  ...UNSUPPORTED_CREDENTIALS,
];

export function convertConsumer(file: KongFile, value: unknown, ref: SourceRef): ConsumerInfo | undefined {
  const { out } = file;
  const c = fieldsOf(out, value, ref, CONSUMER_FIELDS);
  if (!isRecord(value)) return undefined;
  const username = typeof c.username === 'string' && c.username !== '' ? c.username : undefined;
  const customId = typeof c.custom_id === 'string' && c.custom_id !== '' ? c.custom_id : undefined;
  const raw = username ?? customId;
  if (raw === undefined) {
    out.reportInvalid(ref, 'a consumer needs a username or a custom_id');
    return undefined;
  }
  const name = uniqueName(file, 'consumer', raw);
  if (!isMeshgateName(raw) || name !== raw)
    out.reportUnsupported(
      child(ref, username ? 'username' : 'custom_id'),
      `consumer name ${JSON.stringify(raw)} is not a meshgate name ([A-Za-z0-9._-]): it becomes "${name}", sent upstream as X-Consumer-Username`,
    );
  if (username && customId)
    out.reportUnsupported(
      child(ref, 'custom_id'),
      'custom_id beside a username is not supported: meshgate sends X-Consumer-Username and X-Consumer-ID, not X-Consumer-Custom-ID',
    );
  notSupported(
    out,
    c,
    ref,
    'consumer_groups',
    'meshgate has no consumer groups',
    'use acls (groups) and per-consumer plugins',
  );
  for (const key of UNSUPPORTED_CREDENTIALS)
    notSupported(out, c, ref, key, `meshgate's credentials are JWTs and API keys`);
  const config: Record<string, unknown> = { name };
  if (typeof c.id === 'string' && c.id !== '') config.id = c.id;
  config.groups = [];
  config.credentials = [];
  config.plugins = [];
  const path = out.add('consumers', config, ref);
  const info: ConsumerInfo = { name, config, path };
  for (const key of [username, customId, typeof c.id === 'string' ? c.id : undefined])
    if (key !== undefined) file.consumers.set(key, info);
  for (const list of CREDENTIAL_LISTS)
    for (const [i, credential] of listOf(out, c[list], child(ref, list)).entries())
      addCredential(file, info, list, credential, child(ref, list, i));
  return info;
}

/** A credential listed at the top of the file: its `consumer` names the consumer. */
export function convertTopCredential(
  file: KongFile,
  list: (typeof CREDENTIAL_LISTS)[number],
  value: unknown,
  ref: SourceRef,
): void {
  if (!isRecord(value)) {
    file.out.reportInvalid(ref, 'expected a map');
    return;
  }
  const consumer = referenceKeys(value.consumer)
    .map((k) => file.consumers.get(k))
    .find(Boolean);
  if (!consumer) {
    file.out.reportInvalid(child(ref, 'consumer'), `no consumer ${JSON.stringify(value.consumer)} in this file`);
    return;
  }
  addCredential(file, consumer, list, value, ref);
}

const HMAC = /^HS(256|384|512)$/;

function addCredential(
  file: KongFile,
  consumer: ConsumerInfo,
  list: (typeof CREDENTIAL_LISTS)[number],
  value: unknown,
  ref: SourceRef,
): void {
  const { out } = file;
  const credentials = consumer.config.credentials as Record<string, unknown>[];
  const common = ['id', 'created_at', 'consumer', 'tags'];
  const at = (field: string) =>
    out.at([...consumer.path, field, (consumer.config[field] as unknown[]).length - 1], ref);
  if (list === 'acls') {
    const a = fieldsOf(out, value, ref, [...common, 'group']);
    if (typeof a.group !== 'string' || a.group === '') {
      out.reportInvalid(ref, 'an acl needs a group');
      return;
    }
    const groups = consumer.config.groups as string[];
    if (!groups.includes(a.group)) {
      groups.push(a.group);
      at('groups');
    }
    return;
  }
  if (list === 'keyauth_credentials') {
    const k = fieldsOf(out, value, ref, [...common, 'key', 'ttl']);
    notSupported(out, k, ref, 'ttl', 'meshgate’s API keys do not expire');
    if (typeof k.key !== 'string' || k.key === '') {
      out.reportUnsupported(
        ref,
        'a key-auth credential without key is not supported: Kong would make up a random one',
        'write the key',
      );
      return;
    }
    if (k.key.length < 16) {
      out.reportUnsupported(
        child(ref, 'key'),
        'an API key shorter than 16 characters is not supported: meshgate refuses guessable keys',
      );
      return;
    }
    credentials.push({ type: 'api-key', key: k.key });
    at('credentials');
    return;
  }
  const j = fieldsOf(out, value, ref, [...common, 'key', 'secret', 'rsa_public_key', 'algorithm']);
  if (typeof j.key !== 'string' || j.key === '') {
    out.reportUnsupported(
      ref,
      'a jwt secret without key is not supported: Kong would make up a random one that no token names',
      'write the key (the iss of the tokens)',
    );
    return;
  }
  const algorithm = isSet(j.algorithm) ? String(j.algorithm) : 'HS256';
  const credential: Record<string, unknown> = { type: 'jwt', issuer: j.key, algorithm };
  if (HMAC.test(algorithm)) {
    if (typeof j.secret !== 'string' || j.secret === '') {
      out.reportUnsupported(
        ref,
        'an HMAC jwt secret without secret is not supported: Kong would make up a random one',
        'write the secret',
      );
      return;
    }
    if (j.secret.length < 32) {
      out.reportUnsupported(
        child(ref, 'secret'),
        'an HMAC secret shorter than 32 characters is not supported: meshgate refuses secrets that short',
      );
      return;
    }
    credential.secret = j.secret;
  } else {
    if (typeof j.rsa_public_key !== 'string' || j.rsa_public_key === '') {
      out.reportInvalid(ref, `algorithm ${algorithm} needs rsa_public_key`);
      return;
    }
    credential.publicKey = j.rsa_public_key;
  }
  credentials.push(credential);
  at('credentials');
}

/** Drops the lists a consumer left empty (meshgate's output reads better without them). */
export function tidyConsumer(info: ConsumerInfo): void {
  for (const key of ['groups', 'credentials', 'plugins'])
    if (Array.isArray(info.config[key]) && (info.config[key] as unknown[]).length === 0) delete info.config[key];
}
