/**
 * Foreign config formats, converted into meshgate's config as a stage of the config pipeline
 * (src/config/pipeline.ts, `PipelineOptions.converters`). One folder per format; `shared/` holds what
 * every converter needs (detection, origins, the located "unsupported" report, the merge).
 *
 * Every process that reads config files takes its converter from `compatConverters`, so a gateway,
 * `meshgate validate`, `meshgate convert` and the control plane accept the same files.
 */
import type { ConfigConverter } from '../config/pipeline.ts';
import { istioFormat } from './istio/istio.ts';
import { kongFormat } from './kong/kong.ts';
import { type CompatOptions, convertTexts } from './shared/convert.ts';
import type { ForeignFormat } from './shared/format.ts';

export type { CompatOptions } from './shared/convert.ts';
export { convertTexts } from './shared/convert.ts';

/** The formats meshgate reads, in the order detection tries them. */
export const FOREIGN_FORMATS: readonly ForeignFormat[] = [istioFormat, kongFormat];

/** The converter hooks of a config pipeline (`checkConfig`, `ConfigPipeline`). */
export function compatConverters(options: CompatOptions = {}): ConfigConverter[] {
  return [(parsed) => convertTexts(parsed, FOREIGN_FORMATS, options).parsed];
}
