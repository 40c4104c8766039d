/**
 * Reading one cookie or one query parameter without parsing the rest of the header or query: route
 * matching, consistent-hash keys, sticky splits and the credentials plugins read from them on the
 * request path.
 */

/** The value of cookie `name` in a Cookie header (`a=1; b=2`), or undefined. Quotes around a value are removed. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    let i = start;
    while (i < end && (header.charCodeAt(i) === 0x20 || header.charCodeAt(i) === 0x09)) i++;
    const eq = header.indexOf('=', i);
    if (eq !== -1 && eq < end && eq - i === name.length && header.startsWith(name, i)) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22)
        value = value.slice(1, -1);
      return value;
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * A Cookie header without any cookie named `name` (the others as sent, joined by `; `): '' when none
 * is left, undefined when there was no header.
 */
export function withoutCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const kept: string[] = [];
  for (const part of header.split(';')) {
    const pair = part.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if ((eq === -1 ? pair : pair.slice(0, eq)) !== name) kept.push(pair);
  }
  return kept.join('; ');
}

/**
 * The first value of query parameter `name` (URL-decoded, `+` as space, as browsers encode forms), or
 * undefined. `query` is the raw query string without `?`.
 */
export function queryValue(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const eq = query.indexOf('=', start);
    const keyEnd = eq !== -1 && eq < end ? eq : end;
    if (decode(query.slice(start, keyEnd)) === name) return keyEnd === end ? '' : decode(query.slice(keyEnd + 1, end));
    start = end + 1;
  }
  return undefined;
}

/**
 * `query` without any parameter named `name`; every other byte stays as the client sent it (no
 * re-encoding, which could change what the upstream reads).
 */
export function withoutQueryParam(query: string, name: string): string {
  let out = '';
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const eq = query.indexOf('=', start);
    const keyEnd = eq !== -1 && eq < end ? eq : end;
    if (decode(query.slice(start, keyEnd)) !== name && end > start)
      out = out === '' ? query.slice(start, end) : `${out}&${query.slice(start, end)}`;
    start = end + 1;
  }
  return out;
}

function decode(text: string): string {
  if (text.indexOf('%') === -1 && text.indexOf('+') === -1) return text;
  const spaced = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced; // a malformed escape stays as sent
  }
}

/** A query string's name or value as URL-decoded (`+` as space); a malformed escape stays as sent. */
export { decode as decodeQueryComponent };
