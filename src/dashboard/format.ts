/** How numbers read on the page: short, with units, "–" for nothing. */

export const DASH = '–';

export function rate(rps: number | null | undefined): string {
  if (rps === null || rps === undefined) return DASH;
  if (rps === 0) return '0/s';
  if (rps < 0.1) return `${(rps * 60).toFixed(1)}/min`;
  return rps < 10 ? `${rps.toFixed(2)}/s` : `${rps.toFixed(1)}/s`;
}

export function percent(share: number | null | undefined, digits = 1): string {
  if (share === null || share === undefined) return DASH;
  return `${(share * 100).toFixed(digits)}%`;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  if (value < 1) return `${value.toFixed(2)} ms`;
  if (value < 1000) return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
  return `${(value / 1000).toFixed(2)} s`;
}

/** "3 s ago", "in 23 h". */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return DASH;
  const delta = Date.parse(iso) - now;
  const abs = Math.abs(delta);
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 172_800_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return delta < 0 ? `${text} ago` : `in ${text}`;
}

export function time(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

export function shortVersion(v: string | null | undefined): string {
  return v ? v.slice(0, 10) : DASH;
}

/** The display name of a topology node id (`service:photo-service` → photo-service). */
export function nodeName(id: string): string {
  const cut = id.indexOf(':');
  return cut === -1 ? id : id.slice(cut + 1);
}
