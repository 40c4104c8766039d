/**
 * A config sent to an admin API (`PUT /config` on the control plane) as a config source. The body is
 * the whole config, YAML or JSON, already final: `${NAME}` is not substituted (the sender's
 * environment is not this process's), and relative paths start from the working directory. Each PUT
 * is its own change with its own answer: a PUT never supersedes another.
 */
import type { ChangeRequest, RawConfig } from '../../pipeline.ts';

/** The name a config sent by API goes by, in issues (`admin-api:3:5`) and as its source. */
export const ADMIN_API_SOURCE = 'admin-api';

/** The change a `PUT /config` with this body makes. */
export function adminApiChange(text: string): ChangeRequest {
  const raw: RawConfig = {
    kind: 'texts',
    texts: [{ file: ADMIN_API_SOURCE, text }],
    source: ADMIN_API_SOURCE,
    env: null,
  };
  return { trigger: ADMIN_API_SOURCE, read: async () => raw };
}
