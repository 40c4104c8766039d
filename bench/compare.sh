#!/usr/bin/env bash
# A/B of meshgate variants on the shared kit's upstream and load, in alternating rounds (the kit's
# run.sh takes one `project`; this compares several meshgate configs in one run).
#
#   bench/compare.sh                       # bare route vs jwt + rate-limit, 1 worker
#   VARIANTS="bare plugins" ROUNDS=5 DURATION=8 bench/compare.sh
#   VARIANTS="w1 w2" bench/compare.sh      # 1 vs 2 workers, bare route
#   VARIANTS="bare at-0c42a1e" bench/compare.sh   # this tree vs the build of an earlier commit
#   VARIANTS="bare floor" bench/compare.sh     # against the kit's 40-line node:http + undici proxy
#   VARIANTS="bare floor floor-headers floor-pipe8" bench/compare.sh   # the floor with meshgate's headers; pipelining 8
#   PROXY_CPUS=1 LOAD_CPUS=0 VARIANTS="bare floor" bench/compare.sh   # the proxy pinned apart from wrk and the upstream
#   VARIANTS="bare transform" bench/compare.sh # request- and response-transformer (headers, one JSON field)
#   VARIANTS="bare plugins fresh-tokens" bench/compare.sh   # fresh-tokens: a new JWT on every request
#   VARIANTS="plugins quota" bench/compare.sh   # jwt + rate-limit vs jwt + a plan's daily quota
#   VARIANTS="rl-memory redis" bench/compare.sh   # a rate limit counted in memory vs in Redis (redis-server started here)
#   VARIANTS="bare cache" bench/compare.sh   # the bare route vs the same route answered by the cache (all HITs)
#   VARIANTS="rl-inproc rl-memory rl-w2" bench/compare.sh   # the in-process store vs the primary-held one, 1 and 2 workers
#   VARIANTS="bare fresh-tokens fresh-tokens-at-0c42a1e" bench/compare.sh   # fresh-tokens against history
#   VARIANTS="bare graphql graphql-protect" bench/compare.sh   # REST → GraphQL, and a GraphQL GET through graphql-protection
#   VARIANTS="bare jwt metering" bench/compare.sh   # a JWT consumer on a versioned route, without and with usage metering (SQLite)
#   VARIANTS="bare transcode" bench/compare.sh   # REST → gRPC transcoding (bench/transcode.sh: against passthrough)
#   VARIANTS="bare explain-0 explain-1" bench/compare.sh   # decision trails off, configured (none sampled), every request recorded
#   VARIANTS="bare young1" bench/compare.sh   # V8's default young generation vs a sidecar's (1 MiB semi-spaces, one malloc arena)
#   VARIANTS="bare shadow shadow-rl" bench/compare.sh   # no shadow config vs one evaluating every request (docs/shadow.md)
#   VARIANTS="node inproc floor nginx-1w" bench/compare.sh   # one process: node:http + undici vs the lean engines (the defaults), the floor, nginx
#   VARIANTS="lean leanclient floor nginx-1w" bench/compare.sh   # the lean server with undici vs with the lean upstream client too
# Prints a Markdown table: median and best req/s, p50/p99, CPU time of the proxy's processes per request
# (median and least; less sensitive than req/s to how the machine's cores were shared), the same
# divided by wrk's CPU per request in each round (median: discounts how slow the machine was), the
# proxy's share of the cores, and each variant's req/s relative to the first. Each round's log line adds wrk's
# and the upstream's CPU per request and the machine's other CPU (foreign load).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-8} WARMUP=${WARMUP:-2} CONNS=${CONNS:-64} THREADS=${THREADS:-2}
VARIANTS=${VARIANTS:-bare plugins}
PORT=${PORT:-18190}
export BENCH_JWT_SECRET=${BENCH_JWT_SECRET:-bench-secret-0123456789abcdef-0123456789}
TOKEN=$(node "$ROOT/bench/token.ts")
RUN=$(mktemp -d /tmp/meshgate-compare.XXXX)
trap 'cleanup_all; rm -rf "$RUN"' EXIT

# `fresh-tokens`: the plugins config, but wrk sends each of FRESH_TOKENS distinct tokens in turn (the
# two threads half the list apart), more than the jwt plugin remembers, so every request pays a
# signature check.
FRESH_TOKENS=${FRESH_TOKENS:-50000}
if [[ " $VARIANTS " == *" fresh-tokens"* ]]; then
  log "signing $FRESH_TOKENS tokens"
  {
    echo 'local t = {'
    node "$ROOT/bench/token.ts" "$FRESH_TOKENS" | sed 's/.*/"&",/'
    echo '}'
    echo 'local n = #t'
    echo 'local started = 0'
    echo 'function setup(thread) thread:set("start", started * math.floor(n / 2)); started = started + 1 end'
    echo 'function init(args) i = start or 0 end'
    echo 'function request() i = i % n + 1; return wrk.format(nil, "/api/v1/items/42?verbose=1&access_token=" .. t[i]) end'
  } >"$RUN/fresh-tokens.lua"
fi

# `at-REV`: the commit REV checked out and built once under /tmp (with this tree's node_modules),
# serving the same bare config: a regression hunt measures against history in one run.
# `fresh-tokens-at-REV`: that build with the plugins config and fresh tokens.
build_at() {
  local rev=$1 dir=/tmp/meshgate-at-$1
  if [[ ! -f $dir/dist/cli/main.js ]]; then
    rm -rf "$dir"
    git -C "$ROOT" worktree add --force --detach "$dir" "$rev" >/dev/null
    ln -s "$ROOT/node_modules" "$dir/node_modules"
    (cd "$dir" && node_modules/.bin/tsc -p tsconfig.build.json) || die "cannot build $rev"
  fi
}
for v in $VARIANTS; do
  case $v in
    at-*) build_at "${v#at-}" ;;
    fresh-tokens-at-*) build_at "${v#fresh-tokens-at-}" ;;
  esac
done

# `redis`: one redis-server for the whole run (no persistence, its own directory), stopped on exit.
export REDIS_PORT=${REDIS_PORT:-18196}
if [[ " $VARIANTS " == *" redis "* ]]; then
  command -v redis-server >/dev/null || die "the redis variant needs redis-server (apt-get install redis-server)"
  ! port_busy "$REDIS_PORT" || die "port $REDIS_PORT is taken (set REDIS_PORT)"
  mkdir -p "$RUN/redis"
  start_bg "$RUN/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN/redis"
  for _ in $(seq 100); do port_busy "$REDIS_PORT" && break; sleep 0.05; done
  port_busy "$REDIS_PORT" || die "redis-server did not start (see $RUN/redis.log)"
fi

# `graphql`, `graphql-protect`: the tiny GraphQL service (bench/graphql-upstream.ts), once for the run.
export GRAPHQL_UPSTREAM_PORT=${GRAPHQL_UPSTREAM_PORT:-18197}
GRAPHQL_QUERY='%7B%20item(id%3A%20%2242%22)%20%7B%20id%20status%20items%20%7D%20%7D'
GRAPHQL_BODY='{"data":{"item":{"id":"42","status":"ok","items":[1,2,3]}}}'
if [[ " $VARIANTS " == *" graphql"* ]]; then
  ! port_busy "$GRAPHQL_UPSTREAM_PORT" || die "port $GRAPHQL_UPSTREAM_PORT is taken (set GRAPHQL_UPSTREAM_PORT)"
  start_bg "$RUN/graphql-upstream.log" node "$ROOT/bench/graphql-upstream.ts" "$GRAPHQL_UPSTREAM_PORT"
  for _ in $(seq 100); do port_busy "$GRAPHQL_UPSTREAM_PORT" && break; sleep 0.05; done
  port_busy "$GRAPHQL_UPSTREAM_PORT" || die "the GraphQL upstream did not start (see $RUN/graphql-upstream.log)"
fi
# `transcode`: REST calls transcoded to gRPC (bench/bench-transcode.yaml), answered by one gRPC upstream
# (bench/grpc-upstream.ts, the kit's body as a message) started here for the whole run;
# bench/transcode.sh compares it with gRPC passthrough.
export GRPC_UPSTREAM_PORT=${GRPC_UPSTREAM_PORT:-18198}
if [[ " $VARIANTS " == *" transcode "* ]]; then
  ! port_busy "$GRPC_UPSTREAM_PORT" || die "port $GRPC_UPSTREAM_PORT is taken (set GRPC_UPSTREAM_PORT)"
  start_bg "$RUN/grpc-upstream.log" node "$ROOT/bench/grpc-upstream.ts" "$GRPC_UPSTREAM_PORT"
  for _ in $(seq 100); do port_busy "$GRPC_UPSTREAM_PORT" && break; sleep 0.1; done
  port_busy "$GRPC_UPSTREAM_PORT" || die "the gRPC upstream did not start (see $RUN/grpc-upstream.log)"
fi

# `shadow`, `shadow-rl`: the bare route with a shadow config set through the admin API once the gateway
# is ready (bench/bench-shadow-*candidate.yaml): every request is also evaluated by the candidate.
export ADMIN_PORT=${ADMIN_PORT:-18199}
prepare_variant() {
  case $1 in
    shadow | shadow-rl)
      sed "s|UPSTREAM_URL|$UPSTREAM_URL|" "$ROOT/bench/bench-$1-candidate.yaml" |
        curl -fsS -X PUT --data-binary @- "http://127.0.0.1:$ADMIN_PORT/shadow" >/dev/null ||
        die "$1: the shadow config was not set"
      ;;
  esac
}

variant_cmd() {
  local gw="node $ROOT/dist/cli/main.js gateway --no-watch"
  case $1 in
    at-*) echo "node /tmp/meshgate-$1/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench.yaml --workers 1" ;;
    fresh-tokens-at-*)
      echo "node /tmp/meshgate-at-${1#fresh-tokens-at-}/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench-plugins.yaml --workers 1"
      ;;
    bare) echo "$gw --config $ROOT/bench/bench.yaml --workers 1" ;;
    plugins | fresh-tokens) echo "$gw --config $ROOT/bench/bench-plugins.yaml --workers 1" ;;
    # One request, two parallel calls to the upstream, one composed JSON answer.
    aggregate) echo "$gw --config $ROOT/bench/bench-aggregate.yaml --workers 1" ;;
    rl-memory) echo "env RL_STORE=memory $gw --config $ROOT/bench/bench-rate-limit.yaml --workers 1" ;;
    # Decision trails configured but sampling none (0), or recording every request (1): docs/explain.md.
    explain-0) echo "env EXPLAIN_RATE=0 $gw --config $ROOT/bench/bench-explain.yaml --workers 1" ;;
    explain-1) echo "env EXPLAIN_RATE=1 $gw --config $ROOT/bench/bench-explain.yaml --workers 1" ;;
    # `store: memory` counted in this one process (no primary, no IPC): what the exact default costs against.
    rl-inproc) echo "env RL_STORE=memory $gw --config $ROOT/bench/bench-rate-limit.yaml --workers 0" ;;
    # Two workers deciding in the primary's store, the default on a 2-core machine.
    rl-w2) echo "env RL_STORE=memory $gw --config $ROOT/bench/bench-rate-limit.yaml --workers 2" ;;
    redis) echo "env RL_STORE=redis $gw --config $ROOT/bench/bench-rate-limit.yaml --workers 1" ;;
    transform) echo "$gw --config $ROOT/bench/bench-transform.yaml --workers 1" ;;
    # jwt as in `plugins`, and the consumer's plan counting a daily quota instead of the rate-limit plugin.
    quota) echo "$gw --config $ROOT/bench/bench-quota.yaml --workers 1" ;;
    # Every request after the first a cache HIT from memory.
    cache) echo "$gw --config $ROOT/bench/bench-cache.yaml --workers 1" ;;
    # A consumer (JWT) on a versioned route, without and with usage metering into a SQLite file of this run.
    jwt) echo "env METERING_ENABLED=false METERING_DB=$RUN/usage-$1.db $gw --config $ROOT/bench/bench-metering.yaml --workers 1" ;;
    metering) echo "env METERING_ENABLED=true METERING_DB=$RUN/usage-$1.db $gw --config $ROOT/bench/bench-metering.yaml --workers 1" ;;
    # Istio resources converted at load (bench/bench-istio/): first-match routes with Istio's retry policy.
    istio) echo "$gw --config $ROOT/bench/bench-istio --listen 127.0.0.1:$PORT --workers 1" ;;
    # A Kong declarative file converted at load (bench/bench-kong/): Kong's route order, strip_path, Host.
    kong) echo "$gw --config $ROOT/bench/bench-kong --listen 127.0.0.1:$PORT --workers 1" ;;
    w1) echo "$gw --config $ROOT/bench/bench.yaml --workers 1" ;;
    w2) echo "$gw --config $ROOT/bench/bench.yaml --workers 2" ;;
    inproc) echo "$gw --config $ROOT/bench/bench.yaml --workers 0" ;;
    graphql | graphql-protect) echo "$gw --config $ROOT/bench/bench-graphql.yaml --workers 1" ;;
    transcode) echo "$gw --config $ROOT/bench/bench-transcode.yaml --workers 1" ;;
    floor) echo "node $KIT/peers/undici-minimal.mjs" ;;
    # The floor sending meshgate's forwarding headers and X-Request-ID (bench/floor.mjs): how much of
    # meshgate's cost above the floor is those headers going through node:http and undici.
    floor-headers) echo "env HEADERS=1 node $ROOT/bench/floor.mjs" ;;
    # The floor pipelining N requests per upstream connection, on as few connections as the load needs.
    floor-pipe*) echo "env PIPELINING=${1#floor-pipe} CONNECTIONS=$(((CONNS + ${1#floor-pipe} - 1) / ${1#floor-pipe})) node $ROOT/bench/floor.mjs" ;;
    # The bare route in one process on node:http's server and undici's client instead of the default lean engines.
    node) echo "$gw --config $ROOT/bench/bench-node.yaml --workers 0" ;;
    # The bare route in one process on the lean listener engine with undici's client.
    lean) echo "$gw --config $ROOT/bench/bench-lean.yaml --workers 0" ;;
    # Both lean engines named (`inproc` is the same by default).
    leanclient) echo "$gw --config $ROOT/bench/bench-leanclient.yaml --workers 0" ;;
    # The kit's nginx proxy with one worker, the reference the kit's ratios are taken against.
    nginx-1w)
      mkdir -p "$RUN/nginx-1w-tmp"
      render "$KIT/conf/nginx-proxy.conf" "$RUN/nginx-1w.conf" "RUN=$RUN" "NAME=nginx-1w" "WORKERS=1" \
        "PORT=$PORT" "UPSTREAM_PORT=$UPSTREAM_PORT" "EXTRA_LISTEN="
      echo "nginx -e $RUN/nginx-1w-error.log -p $RUN -c $RUN/nginx-1w.conf"
      ;;
    shadow | shadow-rl) echo "$gw --config $ROOT/bench/bench-shadow.yaml --workers 1" ;;
    # The bare route with a sidecar's heap settings instead of the gateway's (docs/operations.md).
    young1) echo "env MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 $ROOT/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench.yaml --workers 1" ;;
    # Any other command under test: `VARIANTS="bare x-mine" CMD_mine="node /tmp/mine.mjs"` (it reads PORT).
    x-*)
      local var="CMD_${1#x-}"
      [[ -n ${!var:-} ]] || die "variant $1 needs $var"
      echo "${!var}"
      ;;
    *) die "unknown variant $1" ;;
  esac
}
path_of() {
  case $1 in
    graphql-protect) echo "/graphql?query=$GRAPHQL_QUERY" ;;
    plugins | quota | jwt | metering | fresh-tokens*) echo "/api/v1/items/42?verbose=1&access_token=$TOKEN" ;;
    *) echo "/api/v1/items/42?verbose=1" ;;
  esac
}
# What a variant answers (the kit's upstream body, unless the variant's upstream is another).
body_of() {
  case $1 in
    graphql*) echo "$GRAPHQL_BODY" ;;
    # aggregate: the kit's body twice, composed
    aggregate) echo "{\"item\":$EXPECTED_BODY,\"related\":$EXPECTED_BODY}" ;;
    *) echo "$EXPECTED_BODY" ;;
  esac
}
script_of() { [[ $1 == fresh-tokens* ]] && echo "-s $RUN/fresh-tokens.lua" || true; }

start_upstream "$RUN"
export UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT"
# PROXY_CPUS / LOAD_CPUS (e.g. 1 and 0): taskset the proxy (every thread) apart from wrk and the upstream.
pin_tree() { [[ -z $2 ]] || for p in $(tree_pids "$1"); do taskset -a -cp "$2" "$p" >/dev/null; done; }
pin_tree "$UPSTREAM_PID" "${LOAD_CPUS:-}"
WRK=wrk
[[ -z ${LOAD_CPUS:-} ]] || WRK="taskset -c $LOAD_CPUS wrk"
declare -A RPS P50 P99 CPU CORES VSWRK
TICK=$(getconf CLK_TCK)
for ((r = 1; r <= ROUNDS; r++)); do
  for v in $VARIANTS; do
    PORT=$PORT start_bg "$RUN/$v.log" ${PROXY_CPUS:+taskset -c "$PROXY_CPUS"} env PORT=$PORT bash -c "exec $(variant_cmd "$v")"
    pid=$BG_PID
    EXPECTED_BODY=$(body_of "$v") wait_ready "$pid" "http://127.0.0.1:$PORT$(path_of "$v")" || die "$v did not start (see $RUN/$v.log)"
    prepare_variant "$v"
    # shellcheck disable=SC2046 # script_of is empty or two words
    $WRK -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" $(script_of "$v") "http://127.0.0.1:$PORT$(path_of "$v")" >/dev/null
    # CPU of the proxy, the upstream and wrk (this shell's waited-for children) over the window, and of
    # the whole machine: what is left is foreign load, and how the three shared the cores.
    m0=$(machine_cpu) t0=$(date +%s%N) s0=$(self_cpu) u0=$(tree_cpu "$UPSTREAM_PID") cpu0=$(tree_cpu "$pid")
    # shellcheck disable=SC2046
    out=$($WRK -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency $(script_of "$v") "http://127.0.0.1:$PORT$(path_of "$v")")
    cpu1=$(tree_cpu "$pid") u1=$(tree_cpu "$UPSTREAM_PID") s1=$(self_cpu) t1=$(date +%s%N) m1=$(machine_cpu)
    rps=$(awk '/Requests\/sec/ { printf "%d", $2 }' <<<"$out")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    us=$(awk -v c=$((cpu1 - cpu0)) -v t="$TICK" -v n="$n" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    [[ -z $non2xx ]] || die "$v answered $non2xx non-2xx responses"
    RPS[$v]+="$rps "
    P50[$v]+="$p50 "
    P99[$v]+="$p99 "
    CPU[$v]+="$us "
    shares=$(awk -v p=$((cpu1 - cpu0)) -v u=$((u1 - u0)) -v w=$((s1 - s0)) -v m=$((m1 - m0)) -v ns=$((t1 - t0)) \
      -v t="$TICK" -v n="$n" -v ncpu="$(nproc)" 'BEGIN {
        wall = ns / 1e9
        printf "proxy %.2f cores, wrk %.1f µs/req, upstream %.1f µs/req, other CPU %.0f%%",
          p / t / wall, w / t * 1e6 / n, u / t * 1e6 / n, 100 * (m - p - u - w) / (wall * t * ncpu) }')
    log "round $r/$ROUNDS $v: $rps req/s p50 $p50 p99 $p99, $us µs CPU per request; $shares"
    CORES[$v]+="$(awk '{ print $2 }' <<<"$shares") "
    # wrk does the same work per request whatever the proxy: the proxy's CPU against wrk's in the same
    # round discounts how slow the machine was in that round.
    VSWRK[$v]+="$(awk -v p="$us" -v w=$((s1 - s0)) -v t="$TICK" -v n="$n" 'BEGIN { printf "%.2f", p / (w / t * 1e6 / n) }') "
    stop_tree "$pid"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ms() { sed -E 's/([0-9.]+)us/\1e-3/; s/([0-9.]+)ms/\1/; s/([0-9.]+)s$/\1e3/' | awk '{ printf "%.2f", $1 }'; }
first=""
# The best round and the least CPU per request are what a noisy machine disturbs least.
echo "| variant | req/s (median of $ROUNDS) | rounds | best | p50 ms | p99 ms | CPU µs per request | least CPU µs | CPU ÷ wrk's | proxy cores | × $(echo "$VARIANTS" | awk '{print $1}') |"
echo "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|"
for v in $VARIANTS; do
  m=$(echo "${RPS[$v]}" | median)
  [[ -n $first ]] || first=$m
  p50=$(for x in ${P50[$v]}; do echo "$x" | ms; echo; done | median)
  p99=$(for x in ${P99[$v]}; do echo "$x" | ms; echo; done | median)
  cpu=$(echo "${CPU[$v]}" | median)
  best=$(echo "${RPS[$v]}" | tr ' ' '\n' | grep -v '^$' | sort -g | tail -1)
  least=$(echo "${CPU[$v]}" | tr ' ' '\n' | grep -v '^$' | sort -g | head -1)
  cores=$(echo "${CORES[$v]}" | median)
  vswrk=$(echo "${VSWRK[$v]}" | median)
  echo "| $v | $m | ${RPS[$v]}| $best | $p50 | $p99 | $cpu | $least | $vswrk | $cores | $(awk -v a="$m" -v b="$first" 'BEGIN { printf "%.2f", a / b }') |"
done
