// A user plugin: adds a fixed header to every response of the routes it is configured on.
// Load it from a config with `plugins: [{ path: ./plugins/add-header.js, config: { name, value } }]`.
import { definePlugin } from 'meshgate/plugin';

export default definePlugin({
  name: 'add-header',
  phase: 'transform',
  order: 100,
  description: 'Add a fixed header to responses.',
  // Checked when the config is loaded: mistakes are reported with their file position.
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'value'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9-]+$' },
      value: { type: 'string' },
    },
  },
  // Runs once per config version; the returned factory runs per request.
  compile(config) {
    const name = config.name.toLowerCase();
    // No per-request state, so every request shares one filter object.
    const filter = {
      onResponseHeaders(_ctx, response) {
        response.setHeader(name, config.value);
      },
    };
    return () => filter;
  },
});
