const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The JSON Schema pattern of a duration (every config schema uses this one, and the checker knows it). */
export const DURATION_PATTERN = '^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$';
const PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/y;

/**
 * Parses `250ms`, `5s`, `1m30s`, `1h` or `0` into milliseconds (rounded).
 * Returns undefined for anything else; the config schema has already rejected most bad forms.
 */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const m = PART.exec(text);
    if (m === null || m.index !== at) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return text.length > 0 ? Math.round(total) : undefined;
}
