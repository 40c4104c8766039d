#!/usr/bin/env bash
# Throughput on the proxy's own cores: nginx with a worker per core against meshgate with `--workers`
# equal to the cores, the proxy pinned (taskset) to PROXY_CPUS and the load generator and upstream to
# LOAD_CPUS, so they never compete for the proxy's cores. Alternating rounds, each target freshly
# started; uses the shared kit's upstream and helpers.
#
#   BENCH_KIT=/tmp/benchkit bash bench/cores.sh
#   PROXY_CPUS=2-3 LOAD_CPUS=0-1 ROUNDS=5 bash bench/cores.sh   # on a 4-core machine
#
# Targets: `nginx` (worker_processes = the proxy's cores), `meshgate` (bare route, --workers = cores),
# `meshgate-rl` (the same plus a rate limit counted exactly in memory: through the primary when there
# are several workers), `meshgate-semi-N` (a young generation of N MiB, as a sidecar has 1),
# `meshgate-arena1` (one malloc arena, as a sidecar has), and, as a check of what the primary's exact counting costs, `meshgate-w2` and
# `meshgate-rl-w2` (two workers sharing the proxy's cores). Prints median req/s, CPU of the proxy per
# request, peak RSS of its process tree, and each target's req/s relative to nginx.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
command -v taskset >/dev/null || die "taskset (util-linux) is needed"

PROXY_CPUS=${PROXY_CPUS:-1} LOAD_CPUS=${LOAD_CPUS:-0}
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-8} WARMUP=${WARMUP:-2} CONNS=${CONNS:-64} THREADS=${THREADS:-2}
TARGETS=${TARGETS:-nginx meshgate meshgate-rl meshgate-w2 meshgate-rl-w2}
PORT=${PORT:-18390}
CORES=$(taskset -c "$PROXY_CPUS" nproc)
RUN=$(mktemp -d /tmp/meshgate-cores.XXXX)
trap 'cleanup_all; rm -rf "$RUN"' EXIT
REQ=/api/v1/items/42?verbose=1

target_cmd() {
  local gw="node $ROOT/dist/cli/main.js gateway --no-watch"
  case $1 in
    nginx)
      mkdir -p "$RUN/nginx-tmp"
      render "$KIT/conf/nginx-proxy.conf" "$RUN/nginx.conf" "RUN=$RUN" "NAME=nginx" "WORKERS=$CORES" \
        "UPSTREAM_PORT=$UPSTREAM_PORT" "PORT=$PORT" "EXTRA_LISTEN="
      echo "nginx -e $RUN/nginx-error.log -p $RUN -c $RUN/nginx.conf"
      ;;
    meshgate) echo "$gw --config $ROOT/bench/bench.yaml --workers $CORES" ;;
    meshgate-rl) echo "env RL_STORE=memory $gw --config $ROOT/bench/bench-rate-limit.yaml --workers $CORES" ;;
    # The gateway with a young generation of another size, in MiB (a sidecar's is 1).
    meshgate-semi-*) echo "node --max-semi-space-size=${1#meshgate-semi-} $ROOT/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench.yaml --workers $CORES" ;;
    # One malloc arena, as a sidecar has.
    meshgate-arena1) echo "env MALLOC_ARENA_MAX=1 $gw --config $ROOT/bench/bench.yaml --workers $CORES" ;;
    meshgate-w2) echo "$gw --config $ROOT/bench/bench.yaml --workers 2" ;;
    meshgate-rl-w2) echo "env RL_STORE=memory $gw --config $ROOT/bench/bench-rate-limit.yaml --workers 2" ;;
    *) die "unknown target $1" ;;
  esac
}

start_upstream "$RUN"
taskset -a -p -c "$LOAD_CPUS" "$UPSTREAM_PID" >/dev/null
export UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT" REDIS_PORT=${REDIS_PORT:-18196}
log "proxy on CPUs $PROXY_CPUS ($CORES cores), load generator and upstream on CPUs $LOAD_CPUS; load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RPS CPU RSS
TICK=$(getconf CLK_TCK)
for ((r = 1; r <= ROUNDS; r++)); do
  for t in $TARGETS; do
    start_bg "$RUN/$t.log" env PORT=$PORT taskset -c "$PROXY_CPUS" bash -c "exec $(target_cmd "$t")"
    pid=$BG_PID
    wait_ready "$pid" "http://127.0.0.1:$PORT$REQ" || die "$t did not start (see $RUN/$t.log)"
    taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$PORT$REQ" >/dev/null
    cpu0=$(tree_cpu "$pid")
    out=$(taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT$REQ")
    cpu1=$(tree_cpu "$pid")
    rss=$(($(peak_rss_kb "$pid") / 1024))
    rps=$(awk '/Requests\/sec/ { printf "%d", $2 }' <<<"$out")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    us=$(awk -v c=$((cpu1 - cpu0)) -v t="$TICK" -v n="$n" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
    [[ -z $(awk '/Non-2xx/ { print $NF }' <<<"$out") ]] || die "$t answered non-2xx responses"
    RPS[$t]+="$rps " CPU[$t]+="$us " RSS[$t]+="$rss "
    log "round $r/$ROUNDS $t: $rps req/s, $us µs CPU per request, peak RSS $rss MiB"
    stop_tree "$pid"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
base=$(echo "${RPS[nginx]:-}" | median)
echo "Proxy pinned to CPUs $PROXY_CPUS ($CORES cores); wrk ($THREADS threads, $CONNS connections) and the upstream on CPUs $LOAD_CPUS; median of $ROUNDS rounds."
echo ""
echo "| target | req/s | rounds | CPU µs per request | peak RSS MiB | × nginx |"
echo "|---|--:|---|--:|--:|--:|"
for t in $TARGETS; do
  m=$(echo "${RPS[$t]}" | median)
  ratio=$([[ -n $base ]] && awk -v a="$m" -v b="$base" 'BEGIN { printf "%.2f", a / b }' || echo "—")
  echo "| $t | $m | ${RPS[$t]}| $(echo "${CPU[$t]}" | median) | $(echo "${RSS[$t]}" | median) | $ratio |"
done
