#!/usr/bin/env bash
# `npm run bench`: the shared proxy benchmark kit (../shared/bench, see its README) with meshgate as
# its `project` target, measured in the same run as nginx, HAProxy, Caddy and the Node.js peers.
#
#   npm run bench                                   # every target, 3 rounds
#   TARGETS="direct nginx-1w node-undici-min node-http-proxy project" ROUNDS=5 npm run bench
#   MESHGATE_WORKERS=0 npm run bench               # one process, like the Node.js peers (default 1: primary + worker)
#   MESHGATE_WORKERS=2 MESHGATE_CONFIG=bench/bench.yaml npm run bench
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIT=${BENCH_KIT:-$ROOT/../shared/bench}
[[ -x $KIT/run.sh ]] || { echo "benchmark kit not found at $KIT (set BENCH_KIT)" >&2; exit 1; }
[[ -f $ROOT/dist/cli/main.js ]] || (cd "$ROOT" && npm run build)
# Peers run on the same pinned Node as meshgate, so the comparison measures code, not runtimes.
export PATH="$ROOT/node_modules/.bin:$PATH"
export TARGET_CMD="$ROOT/node_modules/.bin/node $ROOT/dist/cli/main.js gateway --config $ROOT/${MESHGATE_CONFIG:-bench/bench.yaml} --no-watch --workers ${MESHGATE_WORKERS:-1}"
export RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
exec "$KIT/run.sh"
