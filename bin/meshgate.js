#!/usr/bin/env node
// The compiled CLI (built by `npm run build`, which `npm ci` runs): plain JavaScript starts lighter
// than type-stripped TypeScript (a worker idles at ~65 MB instead of ~100 MB).
import '../dist/cli/main.js';
