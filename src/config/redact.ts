/** Hiding secret values before a config is shown or logged. */
import { yaml } from './document.ts';

const SECRET_KEYS = /^(secret|key|password|token|privateKey|clientSecret)$/i;
/** The password of a URL's userinfo (`redis://user:password@host`). */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:)[^/@\s]+@/i;

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
  if (typeof value === 'string' && URL_PASSWORD.test(value)) return value.replace(URL_PASSWORD, '$1<redacted>@');
  return value;
}

/**
 * A config's text with the characters of secret values replaced by `x`, everything else (and every
 * line and column) as it was, so `analyze` can still point at positions. `${NAME}` references stay:
 * they name a variable, not a secret. Text that is not YAML is returned as it is (it holds nothing
 * the model accepted).
 */
export function redactText(text: string): string {
  const doc = yaml().parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) return text;
  const chars = text.split('');
  yaml().visit(doc, {
    Pair(_, pair) {
      if (!yaml().isScalar(pair.key) || !SECRET_KEYS.test(String(pair.key.value))) return;
      const value = pair.value;
      if (
        !yaml().isScalar(value) ||
        typeof value.value !== 'string' ||
        value.range === undefined ||
        value.range === null
      )
        return;
      if (value.value.startsWith('${')) return;
      const quoted = value.type === 'QUOTE_DOUBLE' || value.type === 'QUOTE_SINGLE';
      const block = value.type === 'BLOCK_LITERAL' || value.type === 'BLOCK_FOLDED';
      let [start, end] = value.range;
      if (quoted) [start, end] = [start + 1, end - 1];
      if (block) start = text.indexOf('\n', start) + 1; // the `|` or `>` header line stays
      for (let i = start; i < end; i++) if (chars[i] !== '\n' && chars[i] !== '\r' && chars[i] !== ' ') chars[i] = 'x';
    },
  });
  return chars.join('');
}
