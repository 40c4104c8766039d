/** `meshgate proxy-status`: every proxy the control plane knows, its config version and sync state. */
import { parseArgs } from 'node:util';
import type { ProxyStatusView } from '../api/mesh.ts';
import { ago, controlPlaneUrl, EXIT, getJson, operatorToken, reporting, short, table, until } from './mesh-client.ts';

export const usage = `Usage: meshgate proxy-status [--control-plane URL] [--output text|json]

Lists every proxy connected to the control plane (and those that left in the last 10 minutes):
its kind and service, its sync state, the version it has ACKed and the one it should have, its
last ACK, when its workload certificate expires (the last one this control plane issued it; - when
none), and its last NACK. Needs an operator token when the control plane has tokens:
$MESHGATE_OPERATOR_TOKEN or $MESHGATE_OPERATOR_TOKEN_FILE.

States: SYNCED (has what it should), PENDING (pushed, no answer yet), NACKED (rejected the last
push; serves its previous config), NOT_SENT (nothing pushed yet: warm-up), DISCONNECTED.

Exit status: 0 every connected proxy is SYNCED, 1 some is not, 2 bad usage, 3 the control plane
cannot be reached.`;

export async function proxyStatusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'control-plane': { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return EXIT.ok;
  }
  if (positionals.length > 0 || !['text', 'json'].includes(values.output!)) {
    console.error(usage);
    return EXIT.usage;
  }
  const base = controlPlaneUrl(values['control-plane']);
  return reporting('proxy-status', async () => {
    const { proxies } = await getJson<{ proxies: ProxyStatusView[] }>(base, '/proxies', { token: operatorToken() });
    const outOfSync = proxies.filter((p) => p.connected && p.state !== 'SYNCED');
    if (values.output === 'json') console.log(JSON.stringify({ controlPlane: base, proxies }, null, 2));
    else if (proxies.length === 0) console.log(`no proxy is connected to ${base}`);
    else
      console.log(
        table(
          ['PROXY', 'KIND', 'SERVICE', 'STATE', 'VERSION', 'EXPECTED', 'LAST ACK', 'CERT EXPIRES', 'LAST NACK'],
          proxies.map((p) => [
            p.id,
            p.kind,
            p.service ?? '-',
            p.state,
            short(p.ackedVersion),
            short(p.expectedVersion),
            ago(p.lastAckAt),
            p.certificate ? until(p.certificate.notAfter) : '-',
            p.lastNack ? `${ago(p.lastNack.at)}: ${p.lastNack.error.message}` : '-',
          ]),
        ),
      );
    return outOfSync.length === 0 ? EXIT.ok : EXIT.findings;
  });
}
