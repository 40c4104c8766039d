/**
 * A request's decision trails told as a story (`meshgate explain`): per proxy hop, in the order the
 * hops started, one line per decision in the order it was made. Pure: the trails in, lines out.
 */
import type { ExplainedTrail, ExplainResult, PluginVerdict, TrailHop, TryVerdict } from '../api/explain.ts';

const ms = (v: number) => `${Math.round(v * 10) / 10}ms`;

/** A window's length as the config writes it: `1m`, `1h`, `30s`. */
function span(windowMs: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (windowMs >= size && windowMs % size === 0) return `${windowMs / size}${unit}`;
  return `${windowMs}ms`;
}

function hopTitle(hop: TrailHop): string {
  const t = hop.trail;
  const who =
    hop.kind === 'sidecar'
      ? `sidecar of ${hop.proxyService ?? '?'} (${hop.proxy})`
      : hop.kind === 'gateway'
        ? `gateway (${hop.proxy})`
        : `${hop.kind} ${hop.proxy}`;
  const answer = `${t.outcome.status}${t.outcome.code ? ` ${t.outcome.code}` : ''}`;
  return `${who}: ${t.request.method} ${t.request.host}${t.request.path} → ${answer} in ${ms(t.outcome.durationMs)}`;
}

function pluginLine(p: PluginVerdict): string {
  const head = `plugin ${p.name} (${p.phase}, ${p.scope})`;
  const facts = p.facts === undefined ? '' : factsText(p.name, p.facts);
  const consumer = p.consumer === undefined ? '' : `: consumer ${p.consumer} identified`;
  switch (p.outcome) {
    case 'reply':
      return `${head}${consumer}: answered ${p.status} ${p.code}${p.detail ? ` (${p.detail})` : ''}${facts}`;
    case 'error':
      return `${head}: failed (500 ${p.code ?? 'MG_INTERNAL'})`;
    case 'pending':
      return `${head}: still working when the request ended`;
    default:
      return `${head}${consumer}: passed${facts}`;
  }
}

/** A plugin's own facts, in words where the plugin is known, else as JSON. */
function factsText(name: string, facts: Record<string, unknown>): string {
  if (name === 'rate-limit' && Array.isArray(facts.windows)) {
    const windows = (facts.windows as { limit: number; windowMs: number; remaining: number | null }[])
      .map((w) => `${w.limit} per ${span(w.windowMs)}: ${w.remaining ?? '?'} remaining`)
      .join('; ');
    return ` — by ${facts.by}, ${windows}${facts.dryRun === true ? ' (dry run)' : ''}`;
  }
  if (name === 'cache' && typeof facts.status === 'string') return ` — cache ${facts.status}`;
  if (name === 'jwt' && Array.isArray(facts.requiredScopes))
    return facts.requiredScopes.length === 0
      ? ''
      : ` — requires ${facts.scopesMatch === 'any' ? 'any of' : 'all of'} ${(facts.requiredScopes as string[]).join(' ')}`;
  return ` — ${JSON.stringify(facts)}`;
}

function tryLine(t: TryVerdict, last: boolean, retries: ExplainedTrail['retries']): string {
  const took = t.durationMs === null ? '' : ` after ${ms(t.durationMs)}`;
  const b = t.breaker;
  const state =
    ` [breaker ${b.requests}/${b.maxRequests} requests, ${b.retries}/${b.maxRetries} retries;` +
    ` endpoint ${t.endpointState.consecutiveErrors} consecutive errors, ${t.endpointState.ejections} ejections${t.panic ? '; panic' : ''}]`;
  let next = '';
  if (t.retried) next = `; retried after ${ms(t.retryDelayMs ?? 0)} backoff`;
  else if (last && t.noRetry !== null) next = `; not retried: ${t.noRetry}`;
  else if (last && !/^status [1-4]/.test(t.outcome))
    next =
      retries === null
        ? '; not retried: no retries configured'
        : `; not retried: not a condition of retries.on (${retries.on.join(', ')})`;
  return `try ${t.n}: ${t.endpoint} at +${ms(t.atMs)} → ${t.outcome}${took}${next}${state}`;
}

/** The lines of one hop: its title first, then each decision indented. */
export function hopStory(hop: TrailHop): string[] {
  const t = hop.trail;
  const lines: string[] = [];
  const say = (line: string) => lines.push(`  ${line}`);
  say(
    `request ${t.requestId}${t.traceId ? ` (trace ${t.traceId})` : ''}, recorded: ${t.reason}; config version ${t.config.version} (${t.config.hash.slice(0, 8)})`,
  );
  if (t.peer !== null) say(`caller verified as ${t.peer}`);
  for (const r of t.routes) {
    if (r.verdict === 'chosen') say(`route ${r.name}: chosen`);
    else if (r.verdict === 'outranked') say(`route ${r.name}: matches too, but ${t.route} takes precedence`);
    else say(`route ${r.name}: not matched: ${r.reasons.join('; ')}`);
  }
  if (t.route === null) say(`no route matched on listener ${t.request.listener}`);
  for (const p of t.plugins) say(pluginLine(p));
  if (t.consumer !== null) {
    const scopes = t.consumer.scopes === null ? '' : `, scopes ${t.consumer.scopes.join(' ') || '(none)'}`;
    say(
      `consumer ${t.consumer.name}${t.consumer.groups.length ? ` (groups ${t.consumer.groups.join(', ')})` : ''}` +
        `${t.consumer.credential ? ` by ${t.consumer.credential}` : ''}${scopes}`,
    );
  }
  for (const d of t.authz ?? []) say(`authorization policy ${d.policy} (${d.action}): ${d.result}`);
  if (t.draw !== null) {
    const d = t.draw;
    const chosen = d.destinations[d.chosen];
    const weights = d.destinations.map((x) => `${x.subset ?? x.service} ${x.weight}`).join(', ');
    const target = chosen ? `${chosen.service}${chosen.subset ? ` subset ${chosen.subset}` : ''}` : '?';
    say(
      d.roll === null
        ? `destination: ${target} (the only one)`
        : `weighted draw: ${d.sticky ? 'sticky key' : 'roll'} ${d.roll} of 100 → ${target} (weights ${weights})`,
    );
  }
  for (const [i, x] of t.tries.entries()) say(tryLine(x, i === t.tries.length - 1, t.retries));
  for (const sub of t.subRequests ?? []) {
    say(`call ${sub.call} to ${sub.service}: ${sub.tries.length} ${sub.tries.length === 1 ? 'try' : 'tries'}`);
    // Told as the call noted them: its retry policy is its own, not the route's.
    for (const x of sub.tries) say(`  ${tryLine(x, false, null)}`);
    if (sub.tries.length === 0 && sub.stop !== null) say(`  refused without an upstream answer: ${sub.stop}`);
    else if (sub.stop !== null) say(`  not retried: ${sub.stop}`);
  }
  if (t.refusal !== null) say(`refused without an upstream answer: ${t.refusal}`);
  say(
    `answer: ${t.outcome.status}${t.outcome.code ? ` ${t.outcome.code}` : ''} in ${ms(t.outcome.durationMs)}` +
      (t.outcome.upstreamMs === null ? '' : ` (upstream ${ms(t.outcome.upstreamMs)})`),
  );
  return [hopTitle(hop), ...lines];
}

/** The whole story of a request across its hops. */
export function explainStory(result: ExplainResult): string {
  const hops = result.hops;
  const head = `request ${result.id}: ${hops.length} hop${hops.length === 1 ? '' : 's'} recorded (${result.answered} of ${result.asked} proxies answered)`;
  return [head, ...hops.flatMap((h, i) => ['', `${i + 1}. ${hopStory(h)[0]}`, ...hopStory(h).slice(1)])].join('\n');
}
