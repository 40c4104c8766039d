/**
 * Istio's networking and security resources (multi-document YAML, `networking.istio.io` v1alpha3,
 * v1beta1, v1; `security.istio.io` v1beta1, v1) as meshgate config. See README.md for what maps to
 * what; everything else is reported unsupported at its position.
 */

import { type Conversion, type ForeignFile, type ForeignFormat, isRecord, type SourceRef } from '../shared/format.ts';
import type { IstioResource } from './common.ts';
import { DEFAULT_ISTIO_LISTENER_ADDRESS, DEFAULT_ISTIO_LISTENER_PORT } from './defaults.ts';
import { convertDestinationRule } from './destination-rule.ts';
import { convertGateway } from './gateway.ts';
import {
  convertAuthorizationPolicy,
  convertPeerAuthentication,
  convertRequestAuthentication,
  finishRequestAuthentication,
} from './security.ts';
import { convertServiceEntry } from './service-entry.ts';
import { convertVirtualService } from './virtual-service.ts';

const NETWORKING = /^networking\.istio\.io\/(v1alpha3|v1beta1|v1)$/;
const SECURITY = /^security\.istio\.io\/(v1beta1|v1)$/;
const ANY_ISTIO = /^(networking|security)\.istio\.io\//;

type Converter = (resource: IstioResource, spec: unknown) => void;

/** Kinds in the order they are converted: Gateways first, whose listeners VirtualServices name. */
const KINDS: [kind: string, group: RegExp, convert: Converter][] = [
  ['Gateway', NETWORKING, convertGateway],
  ['ServiceEntry', NETWORKING, convertServiceEntry],
  ['DestinationRule', NETWORKING, convertDestinationRule],
  ['VirtualService', NETWORKING, convertVirtualService],
  ['PeerAuthentication', SECURITY, convertPeerAuthentication],
  ['AuthorizationPolicy', SECURITY, convertAuthorizationPolicy],
  ['RequestAuthentication', SECURITY, convertRequestAuthentication],
];

export const istioFormat: ForeignFormat = {
  name: 'istio',
  defaultListener: {
    name: 'istio-ingress',
    address: DEFAULT_ISTIO_LISTENER_ADDRESS,
    port: DEFAULT_ISTIO_LISTENER_PORT,
  },
  sniff: (text) => /apiVersion["']?\s*:\s*["']?(networking|security)\.istio\.io\//.test(text),
  detect: (documents) =>
    documents.some(
      (d) =>
        isRecord(d) && typeof d.apiVersion === 'string' && ANY_ISTIO.test(d.apiVersion) && typeof d.kind === 'string',
    ),
  convert: convertIstioFile,
};

function convertIstioFile(file: ForeignFile, out: Conversion): void {
  const gateways = new Map<string, string[]>();
  const resources: { resource: IstioResource; spec: unknown; convert: Converter; order: number }[] = [];
  file.values.forEach((value, doc) => {
    const root: SourceRef = { doc, path: [] };
    if (!isRecord(value)) {
      out.reportInvalid(root, 'expected a Kubernetes resource (a map with apiVersion, kind, metadata and spec)');
      return;
    }
    const { apiVersion, kind, metadata, spec } = value;
    const meta = isRecord(metadata) ? metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';
    out.nameDocument(doc, `${String(kind)}/${namespace}/${name || '?'}`);
    for (const key of Object.keys(value))
      if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(key))
        out.reportUnsupported({ doc, path: [key] }, `field "${key}" is not supported`);
    const entry = KINDS.findIndex(([k]) => k === kind);
    if (entry === -1) {
      out.reportUnsupported(
        { doc, path: ['kind'] },
        `${String(kind)} (${String(apiVersion)}) is not supported`,
        `meshgate reads ${KINDS.map(([k]) => k).join(', ')}`,
      );
      return;
    }
    const [, group, convert] = KINDS[entry]!;
    if (typeof apiVersion !== 'string' || !group.test(apiVersion)) {
      out.reportUnsupported(
        { doc, path: ['apiVersion'] },
        `apiVersion ${String(apiVersion)} of ${kind} is not supported`,
      );
      return;
    }
    if (!name) {
      out.reportInvalid({ doc, path: ['metadata'] }, 'metadata.name is required');
      return;
    }
    const resource: IstioResource = {
      out,
      ref: { doc, path: ['spec'] },
      kind: kind as string,
      name,
      namespace,
      origin: (suffix) => `istio:${kind}/${namespace}/${name}${suffix ? ` ${suffix}` : ''}`,
      gateways,
    };
    resources.push({ resource, spec, convert, order: entry });
  });
  // Stable: within a kind, the order of the file.
  resources.sort((a, b) => a.order - b.order);
  for (const { resource, spec, convert } of resources) convert(resource, spec);
  finishRequestAuthentication(out);
}
