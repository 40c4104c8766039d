# Sourced by the bench scripts: the checkout's root, the bench kit's helpers (BENCH_KIT, by default
# ../shared/bench), the checkout's Node 24 first in PATH, and a build when dist/ is missing.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIT=${BENCH_KIT:-$ROOT/../shared/bench}
source "$KIT/lib/common.sh"
export PATH="$ROOT/node_modules/.bin:$PATH:/usr/sbin"
[[ -f $ROOT/dist/cli/main.js ]] || (cd "$ROOT" && npm run build >/dev/null)
