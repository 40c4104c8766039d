/**
 * ip-restriction: allow or deny client addresses by CIDR, IPv4 and IPv6. The client address is the one
 * seen through the listener's trusted hops, so X-Forwarded-For cannot be forged past it.
 */
import { BlockList, isIP } from 'node:net';
import { definePlugin, type Filter, type LocalReply } from '../../core/plugin.ts';
import { type IpRestrictionConfig, ipRestrictionSchema } from './schema.ts';

/** `::ffff:10.0.0.1` (IPv4 on a dual-stack socket) is 10.0.0.1 for matching. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Adds each entry to a BlockList; returns the problems (for `check`) instead of throwing. */
function fill(list: BlockList, entries: readonly string[]): { index: number; message: string }[] {
  const problems: { index: number; message: string }[] = [];
  entries.forEach((entry, index) => {
    const [address, bits] = entry.split('/');
    const family = isIP(address ?? '');
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (family === 0) problems.push({ index, message: `"${entry}" is not an IP address or CIDR block` });
    else if (bits === undefined) list.addAddress(address!, type);
    else if (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))
      problems.push({ index, message: `"/${bits}" is not a prefix length for ${type}` });
    else list.addSubnet(address!, Number(bits), type);
  });
  return problems;
}

function matches(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export default definePlugin<IpRestrictionConfig>({
  name: 'ip-restriction',
  phase: 'request',
  order: 100,
  description: 'Allow or deny client addresses by CIDR (IPv4 and IPv6).',
  configSchema: ipRestrictionSchema,
  check(config) {
    return (['allow', 'deny'] as const).flatMap((key) =>
      fill(new BlockList(), config[key] ?? []).map((p) => ({
        path: [key, p.index],
        message: p.message,
        hint: 'e.g. 10.0.0.0/8 or 2001:db8::/32',
      })),
    );
  },
  compile(config) {
    const allow = config.allow ? new BlockList() : null;
    const deny = config.deny ? new BlockList() : null;
    if (allow) fill(allow, config.allow!);
    if (deny) fill(deny, config.deny!);
    const refuse = (address: string): LocalReply => ({
      status: 403,
      code: 'MG_IP_FORBIDDEN',
      detail: `requests from ${address} are not allowed on this route`,
    });
    const filter: Filter = {
      onRequestHeaders(ctx) {
        const address = plain(ctx.clientAddress);
        if (deny !== null && matches(deny, address)) return refuse(address);
        if (allow !== null && !matches(allow, address)) return refuse(address);
        return undefined;
      },
    };
    return () => filter;
  },
});
