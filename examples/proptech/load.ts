/**
 * `npm start -- --load`: steady, bounded traffic across the public API, so metrics and traces have
 * something to show. A fixed rate (open loop) with a cap on requests in flight: a slow gateway gets
 * fewer requests, never a pile-up. Mostly successes, with the errors a real API sees (no token, no
 * route). It runs as its own consumer, so the demo token's hourly limit stays untouched.
 */

export interface LoadOptions {
  gateway: string;
  /** A token of the `load-generator` consumer. */
  token: string;
  requestsPerSecond: number;
  maxInFlight: number;
  /** Called every `summaryEveryMs` with one line about the last interval. */
  onSummary: (line: string) => void;
  summaryEveryMs: number;
}

/** Not austin: the printed search curl asks for austin, and its first answer should come from the service. */
const CITIES = ['denver', 'portland', 'raleigh'];
const REQUEST_TIMEOUT_MS = 5000;

/** One request of the mix: path and whether it carries the token and the canary header. */
type Shot = { path: string; auth: boolean; canary?: boolean };

function mix(i: number): Shot {
  const id = 1 + ((i * 7919) % 500);
  const city = CITIES[i % CITIES.length];
  switch (i % 10) {
    case 0:
    case 2:
    case 5:
    case 8:
      return { path: `/api/v1/properties/${id}`, auth: true };
    case 3:
      return { path: `/api/v1/properties/${id}`, auth: true, canary: true };
    case 1:
    case 6:
      // Few distinct searches: most are answered from the cache.
      return { path: `/api/v1/search/homes?city=${city}`, auth: false };
    case 4:
      // Each page once: these miss the cache, so search-service and enrichment-service see traffic too.
      return { path: `/api/v1/search/condos?city=${city}&page=${i}`, auth: false };
    case 7:
      return { path: `/api/v1/properties/${id}`, auth: false }; // 401: no token
    default:
      return { path: '/api/v1/agents/7', auth: false }; // 404: no route
  }
}

export function startLoad(options: LoadOptions): { stop(): Promise<void> } {
  let sent = 0;
  let inFlight = 0;
  let skipped = 0;
  const classes = new Map<string, number>();
  const pending = new Set<Promise<void>>();

  const shoot = () => {
    if (inFlight >= options.maxInFlight) {
      skipped++;
      return;
    }
    const shot = mix(sent++);
    const headers: Record<string, string> = { 'user-agent': 'proptech-demo-load' };
    if (shot.auth) headers.authorization = `Bearer ${options.token}`;
    if (shot.canary) headers.canary = 'true';
    inFlight++;
    const done = fetch(options.gateway + shot.path, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      .then(async (res) => {
        await res.arrayBuffer();
        return `${Math.floor(res.status / 100)}xx`;
      })
      .catch(() => 'failed')
      .then((outcome) => {
        classes.set(outcome, (classes.get(outcome) ?? 0) + 1);
        inFlight--;
        pending.delete(done);
      });
    pending.add(done);
  };

  const ticker = setInterval(shoot, 1000 / options.requestsPerSecond);
  const summary = setInterval(() => {
    const total = [...classes.values()].reduce((a, b) => a + b, 0);
    const parts = [...classes.entries()].sort().map(([k, v]) => `${k} ${v}`);
    options.onSummary(
      `load: ${total} requests in the last ${options.summaryEveryMs / 1000} s (${parts.join(', ') || 'none'})` +
        (skipped > 0 ? `, ${skipped} skipped: ${options.maxInFlight} already in flight` : ''),
    );
    classes.clear();
    skipped = 0;
  }, options.summaryEveryMs);

  return {
    async stop() {
      clearInterval(ticker);
      clearInterval(summary);
      await Promise.allSettled([...pending]);
    },
  };
}
