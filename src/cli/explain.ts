/**
 * `meshgate explain REQUEST_ID`: the decision trail of one request, from every proxy it crossed (the
 * control plane gathers them over the proxies' push streams) or from one proxy's admin API.
 */
import { parseArgs } from 'node:util';
import type { ExplainResult } from '../api/explain.ts';
import { explainStory } from '../observability/explain-story.ts';
import { controlPlaneUrl, EXIT, getJson, operatorToken, reporting } from './mesh-client.ts';

export const usage = `Usage: meshgate explain REQUEST_ID [--control-plane URL | --admin URL] [--json]

Tells what meshgate decided for one request, hop by hop (gateway, then each sidecar): the routes
it considered and why each one did not match, every plugin's verdict (consumer, scopes, rate-limit
counters, authorization, cache), the weighted draw, and every try upstream with its outcome, the
circuit breaker and endpoint state it met, and why it was or was not retried.

A trail exists for requests the proxies sampled (observability.explain.sampleRate) and for those
sent with X-Meshgate-Explain: 1 by an identified consumer (the response then carries
X-Meshgate-Explain-Id). Proxies keep the last observability.explain.size trails.

  --control-plane URL   ask every proxy through the control plane (default $MESHGATE_CONTROL_PLANE,
                        else http://127.0.0.1:15010); sends the operator token
                        ($MESHGATE_OPERATOR_TOKEN or $MESHGATE_OPERATOR_TOKEN_FILE) when set
  --admin URL           ask one proxy's admin API (a gateway run on its own: http://127.0.0.1:9901)
  --json                the trails as JSON

Exit status: 0 a trail was found, 2 bad usage, 3 no proxy has a trail of this request, or the
control plane or proxy cannot be reached.`;

export async function explainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'control-plane': { type: 'string' },
      admin: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  const id = positionals[0];
  if (positionals.length !== 1 || id === '' || (values.admin !== undefined && values['control-plane'] !== undefined)) {
    console.error(usage);
    return EXIT.usage;
  }
  const base = values.admin !== undefined ? values.admin.replace(/\/$/, '') : controlPlaneUrl(values['control-plane']);
  return reporting('explain', async () => {
    // A 404 says why in its error: no proxy kept a trail of it (getJson reports it, exit 3).
    const result = await getJson<ExplainResult>(base, `/requests/${encodeURIComponent(id!)}/explain`, {
      token: operatorToken(),
    });
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else console.log(explainStory(result));
    return EXIT.ok;
  });
}
