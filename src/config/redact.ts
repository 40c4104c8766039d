/** Hiding secret values before a config is shown or logged. */
const SECRET_KEYS = /^(secret|key|password|token|privateKey|clientSecret)$/i;

/** A copy of a config with secret values replaced, safe to show and log. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        SECRET_KEYS.test(k) && typeof v === 'string' ? '<redacted>' : redact(v),
      ]),
    );
  }
  return value;
}
