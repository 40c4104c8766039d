/**
 * `node:http` as its CommonJS exports, for every module a proxy loads. An ESM `import` of a built-in
 * builds the module's namespace from all of its exports, and so reads `node:http`'s lazy `WebSocket`,
 * `CloseEvent` and `MessageEvent`, which load Node's bundled undici (fetch, WebSocket, web streams):
 * ~2 MB resident in every proxy, 13 MB in a bare process, for code no proxy runs. One ESM import
 * anywhere in a process is enough, so proxy code takes `http` from here; `import type` is fine.
 * (docs/benchmarks.md, "The demo's proxies".)
 */
export const http = process.getBuiltinModule('node:http');
