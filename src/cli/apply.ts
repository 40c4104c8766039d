/** `meshgate apply FILE`: puts a model in force on the control plane, at once or as a guarded rollout. */
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ChangeRecord, ConfigIssue, RolloutOptions } from '../api/mesh.ts';
import { CANARY_SHARE_PATTERN } from '../api/mesh.ts';
import { DEFAULT_INSPECT_TIMEOUT_MS } from '../core/defaults.ts';
import { parseDuration } from '../core/duration.ts';
import { controlPlaneUrl, EXIT, getJson, operatorToken, reporting, short, Unavailable } from './mesh-client.ts';
import { printChange } from './status.ts';

export const usage = `Usage: meshgate apply FILE [--control-plane URL] [--canary-proxies SHARE] [--watch DURATION]
                      [--max-error-rate RATE] [--max-p99 DURATION] [--min-requests N]
                      [--wait DURATION] [--output text|json]

Sends FILE (the whole model, YAML or JSON, as PUT /config takes it) to the control plane. It is
validated there as \`meshgate validate\` would; an invalid model changes nothing.

Without --canary-proxies the model goes to every proxy it affects at once (PUT /config). With it,
it is rolled out (POST /rollouts, docs/rollout.md): only the canary share of the proxies it affects
gets it; every other proxy keeps the model in force. The canaries are watched for --watch after
each applied it; a NACK, or their traffic crossing a threshold, rolls it back at once (the
canaries get the previous model again); otherwise it is promoted to every proxy. One rollout runs
at a time: while one is watched, apply is refused.

  --canary-proxies SHARE  a share of the affected proxies (10%, rounded up) or a count (2); at least one
  --watch DURATION        how long the canaries are watched (default 60s; 0: promoted once all ACKed)
  --max-error-rate RATE   canary error rate (5xx or unanswered, 0..1) that rolls back (default 0.05)
  --max-p99 DURATION      canary p99 latency that rolls back (default: latency is not judged)
  --min-requests N        requests the canaries must serve before thresholds are judged (default 20)
  --wait DURATION         wait up to this long for the change to be applied (a rollout: promoted or
                          rolled back), then print its record as \`meshgate status CHANGE\` does

Needs an operator token when the control plane has tokens: $MESHGATE_OPERATOR_TOKEN or
$MESHGATE_OPERATOR_TOKEN_FILE.

Exit status: 0 applied (a rollout: started, or with --wait promoted), or already in force; 1 the
model is not valid, a proxy rejected it, it was rolled back, the control plane refused it (a
rollout is being watched), or --wait ran out first; 2 bad usage; 3 the control plane cannot be
reached.`;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** Sends `body` (text) and reads a JSON answer; throws Unavailable when there is no answer. */
function send(url: string, method: string, body: string, contentType: string, token: string | undefined) {
  return new Promise<Answer>((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : request)(
      url,
      {
        method,
        headers: {
          'content-type': contentType,
          'content-length': Buffer.byteLength(body),
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        timeout: DEFAULT_INSPECT_TIMEOUT_MS,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(text);
          } catch {}
          if (parsed === null || typeof parsed !== 'object')
            reject(new Unavailable(`${url} answered ${res.statusCode} with something that is not JSON`));
          else resolve({ status: res.statusCode ?? 0, body: parsed as Record<string, unknown> });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${DEFAULT_INSPECT_TIMEOUT_MS} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new Unavailable(`cannot reach ${new URL(url).origin}: ${e.code ?? e.message}`)),
    );
    req.end(body);
  });
}

export async function applyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'control-plane': { type: 'string' },
      'canary-proxies': { type: 'string' },
      watch: { type: 'string' },
      'max-error-rate': { type: 'string' },
      'max-p99': { type: 'string' },
      'min-requests': { type: 'string' },
      wait: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  const fail = (why: string) => {
    console.error(`meshgate apply: ${why}\n\n${usage}`);
    return EXIT.usage;
  };
  if (positionals.length !== 1) return fail('give one model file');
  if (!['text', 'json'].includes(values.output!)) return fail('--output is text or json');
  const waitMs = values.wait === undefined ? 0 : parseDuration(values.wait);
  if (waitMs === undefined) return fail(`--wait ${values.wait}: not a duration (30s, 2m)`);
  const share = values['canary-proxies'];
  const rolloutFlags = ['watch', 'max-error-rate', 'max-p99', 'min-requests'] as const;
  if (share === undefined && rolloutFlags.some((f) => values[f] !== undefined))
    return fail('--watch and the thresholds go with --canary-proxies');
  let rollout: RolloutOptions | undefined;
  if (share !== undefined) {
    if (!new RegExp(CANARY_SHARE_PATTERN).test(share))
      return fail(`--canary-proxies ${share}: a share (10%) or a count (2)`);
    rollout = { canaryProxies: share };
    if (values.watch !== undefined) {
      if (parseDuration(values.watch) === undefined) return fail(`--watch ${values.watch}: not a duration (60s)`);
      rollout.watch = values.watch;
    }
    const thresholds: NonNullable<RolloutOptions['thresholds']> = {};
    if (values['max-error-rate'] !== undefined) {
      const rate = Number(values['max-error-rate']);
      if (!(rate >= 0 && rate <= 1)) return fail(`--max-error-rate ${values['max-error-rate']}: a number from 0 to 1`);
      thresholds.errorRate = rate;
    }
    if (values['max-p99'] !== undefined) {
      if (!parseDuration(values['max-p99'])) return fail(`--max-p99 ${values['max-p99']}: a duration above 0 (500ms)`);
      thresholds.p99 = values['max-p99'];
    }
    if (values['min-requests'] !== undefined) {
      const n = Number(values['min-requests']);
      if (!Number.isInteger(n) || n < 0) return fail(`--min-requests ${values['min-requests']}: a whole number`);
      thresholds.minRequests = n;
    }
    if (Object.keys(thresholds).length > 0) rollout.thresholds = thresholds;
  }
  const file = positionals[0]!;
  let text: string;
  try {
    if (statSync(file).isDirectory()) return fail(`${file} is a directory: give one file holding the whole model`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    console.error(`meshgate apply: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return EXIT.usage;
  }
  const base = controlPlaneUrl(values['control-plane']);
  const json = values.output === 'json';
  return reporting('apply', async () => {
    const token = operatorToken();
    const answer =
      rollout === undefined
        ? await send(`${base}/config`, 'PUT', text, 'application/yaml', token)
        : await send(`${base}/rollouts`, 'POST', JSON.stringify({ config: text, rollout }), 'application/json', token);
    const body = answer.body;
    if (answer.status === 401 || answer.status === 403)
      throw new Unavailable(
        `${String(body.detail ?? body.error)}${token === undefined ? ' (set MESHGATE_OPERATOR_TOKEN or MESHGATE_OPERATOR_TOKEN_FILE)' : ''}`,
      );
    if (answer.status >= 300) {
      if (json) console.log(JSON.stringify(body, null, 2));
      else {
        console.error(`meshgate apply: ${String(body.detail ?? body.error ?? `status ${answer.status}`)}`);
        for (const issue of (body.issues as ConfigIssue[] | undefined) ?? [])
          console.error(`  ${issue.path}${issue.line ? ` (line ${issue.line})` : ''}: ${issue.message}`);
      }
      return EXIT.findings;
    }
    const change = body.change as number | null;
    if (change === null) {
      if (json) console.log(JSON.stringify(body, null, 2));
      else console.log(`model ${short(String(body.version))} is already in force: nothing to do`);
      return EXIT.ok;
    }
    let record = await getJson<ChangeRecord>(base, `/changes/${change}`, { token });
    const deadline = Date.now() + waitMs;
    while (record.status === 'propagating' && Date.now() < deadline) {
      await sleep(100);
      record = await getJson<ChangeRecord>(base, `/changes/${change}`, { token });
    }
    if (json) console.log(JSON.stringify(record, null, 2));
    else if (waitMs > 0) printChange(record);
    else if (record.rollout && record.rollout.state === 'canary') {
      const r = record.rollout;
      console.log(
        [
          `change ${change}: model ${short(record.modelVersion)} rolling out to ${r.canaries.length} canary prox${r.canaries.length === 1 ? 'y' : 'ies'} (${r.canaries.join(', ')}); ${r.baseline.length} more affected stay on ${short(r.previousVersion)}`,
          `watch ${r.watchMs}ms after they applied it; follow it with: meshgate status ${change} --wait ${Math.ceil(r.watchMs / 1000) + 30}s`,
        ].join('\n'),
      );
    } else
      console.log(
        `change ${change}: model ${short(record.modelVersion)}, ${record.status}; see meshgate status ${change}`,
      );
    if (waitMs === 0) return record.status === 'rolled-back' || record.status === 'rejected' ? EXIT.findings : EXIT.ok;
    return record.status === 'applied' || record.status === 'no-op' ? EXIT.ok : EXIT.findings;
  });
}
