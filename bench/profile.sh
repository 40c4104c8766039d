#!/usr/bin/env bash
# A CPU profile of one proxy under the shared kit's load: the kit's nginx upstream, the proxy started
# with `node --cpu-prof` (or another V8 flag), wrk for WARMUP then DURATION seconds, then the profile
# summarised by bench/cpu-profile.ts (categories and top frames, in µs per measured request).
#
#   bash bench/profile.sh                  # meshgate, the bare route, one process
#   TARGET=floor bash bench/profile.sh     # the kit's node:http + undici floor (peers/undici-minimal.mjs)
#   TARGET=leanclient bash bench/profile.sh   # one process, lean listener engine and lean upstream client (TARGET=lean: undici)
#   TARGET=at-REV bash bench/profile.sh    # the build of an earlier commit (made by bench/compare.sh)
#   NODE_FLAGS="--trace-gc" TARGET=floor bash bench/profile.sh   # any other flags; the log is kept
#   PIN_PROXY=1 PIN_LOAD=0 bash bench/profile.sh   # taskset: the proxy on CPU 1, wrk and the upstream on CPU 0
#   PERF=1 bash bench/profile.sh           # on-CPU samples of every thread with `perf record` (bench/perf-profile.ts)
#   SYSCALLS=1 bash bench/profile.sh       # system calls per request (`perf stat` on the syscall tracepoints)
#
# The summary counts the measured window only (the profile's last DURATION seconds and the exit); the
# profile and the log stay in OUT (default /tmp/meshgate-profile.<target>.XXXX).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

TARGET=${TARGET:-meshgate}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} CONNS=${CONNS:-64} THREADS=${THREADS:-2}
PORT=${PORT:-18290}
export UPSTREAM_PORT=${UPSTREAM_PORT:-18280}
PERF=${PERF:-0} SYSCALLS=${SYSCALLS:-0}
if [[ $PERF == 1 ]]; then
  NODE_FLAGS=${NODE_FLAGS:---perf-basic-prof-only-functions --interpreted-frames-native-stack}
fi
[[ $SYSCALLS == 1 ]] && NODE_FLAGS=${NODE_FLAGS-}
NODE_FLAGS=${NODE_FLAGS---cpu-prof}
SYSCALL_EVENTS=syscalls:sys_enter_read,syscalls:sys_enter_readv,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex
OUT=${OUT:-$(mktemp -d "/tmp/meshgate-profile.$TARGET.XXXX")}
REQ=/api/v1/items/42?verbose=1
trap 'cleanup_all' EXIT

pin() { if [[ -n ${1:-} ]]; then echo "taskset -c $1"; fi; }
! port_busy "$PORT" || die "port $PORT is taken (set PORT)"
! port_busy "$UPSTREAM_PORT" || die "port $UPSTREAM_PORT is taken (set UPSTREAM_PORT)"
UPSTREAM_STATUS_PORT=$((UPSTREAM_PORT + 1))
mkdir -p "$OUT/upstream"
render "$BENCH_DIR/conf/upstream-nginx.conf" "$OUT/upstream/upstream.conf" "RUN=$OUT/upstream" \
  "UPSTREAM_PORT=$UPSTREAM_PORT" "UPSTREAM_STATUS_PORT=$UPSTREAM_STATUS_PORT" "EXTRA_LISTEN="
mkdir -p "$OUT/upstream/upstream-tmp"
# shellcheck disable=SC2046
start_bg "$OUT/upstream.out" $(pin "${PIN_LOAD:-}") nginx -e "$OUT/upstream/error.log" -p "$OUT/upstream" -c "$OUT/upstream/upstream.conf"
wait_ready "$BG_PID" "http://127.0.0.1:$UPSTREAM_PORT/" || die "upstream did not start"
export UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT"

case $TARGET in
  floor-*) cmd="$ROOT/bench/floor.mjs" ;;
  meshgate) cmd="$ROOT/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench.yaml --workers 1" ;;
  # One process on the lean listener engine, with undici (lean) or the lean upstream client as well (leanclient).
  lean) cmd="$ROOT/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench-lean.yaml --workers 0" ;;
  # One process on node:http's server and undici's client instead of the default lean engines.
  node) cmd="$ROOT/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench-node.yaml --workers 0" ;;
  leanclient) cmd="$ROOT/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench-leanclient.yaml --workers 0" ;;
  at-*) cmd="/tmp/meshgate-$TARGET/dist/cli/main.js gateway --no-watch --config $ROOT/bench/bench.yaml --workers 1" ;;
  floor) cmd="$KIT/peers/undici-minimal.mjs" ;;
  *) die "unknown TARGET $TARGET (meshgate, lean, leanclient, node, at-REV, floor, floor-headers, floor-pipe8)" ;;
esac
target_env() {
  case $TARGET in
    floor-headers) echo HEADERS=1 ;;
    floor-pipe*) echo "PIPELINING=${TARGET#floor-pipe} CONNECTIONS=$(((CONNS + ${TARGET#floor-pipe} - 1) / ${TARGET#floor-pipe}))" ;;
  esac
}
# shellcheck disable=SC2046,SC2086
start_bg "$OUT/proxy.log" env PORT="$PORT" NODE_ENV=production $(target_env)  $(pin "${PIN_PROXY:-}") \
  node $NODE_FLAGS $([[ $NODE_FLAGS == *--cpu-prof* ]] && echo "--cpu-prof-dir=$OUT") $cmd
pid=$BG_PID
wait_ready "$pid" "http://127.0.0.1:$PORT$REQ" || die "$TARGET did not start (see $OUT/proxy.log)"
# shellcheck disable=SC2046
$(pin "${PIN_LOAD:-}") wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$PORT$REQ" >/dev/null
watcher=''
if [[ $PERF == 1 ]]; then
  start_bg "$OUT/perf-record.log" perf record -e cpu-clock -F 999 -g -p "$pid" -o "$OUT/perf.data" -- sleep "$DURATION"
  watcher=$BG_PID
elif [[ $SYSCALLS == 1 ]]; then
  start_bg "$OUT/syscalls.txt" perf stat -x, -e "$SYSCALL_EVENTS" -p "$pid" -- sleep "$DURATION"
  watcher=$BG_PID
fi
cpu0=$(tree_cpu "$pid")
# shellcheck disable=SC2046
out=$($(pin "${PIN_LOAD:-}") wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT$REQ")
cpu1=$(tree_cpu "$pid")
[[ -z $watcher ]] || { wait "$watcher" 2>/dev/null || true; forget_pid "$watcher"; }
t_load_end=$(date +%s.%N)
n=$(awk '/requests in/ { print $1 }' <<<"$out")
rps=$(awk '/Requests\/sec/ { printf "%d", $2 }' <<<"$out")
us=$(awk -v c=$((cpu1 - cpu0)) -v t="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
# SIGINT: meshgate drains and exits, the floor exits; either way V8 writes the profile on the way out.
kill -INT "$pid" 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
t_exit=$(date +%s.%N)
stop_tree "$pid"
log "$TARGET: $rps req/s, $n requests measured, $us µs CPU per request (from /proc); output in $OUT"
if [[ $PERF == 1 ]]; then
  perf script -i "$OUT/perf.data" 2>/dev/null | node "$ROOT/bench/perf-profile.ts" --requests "$n" --top "${TOP:-25}"
fi
if [[ $SYSCALLS == 1 ]]; then
  echo "system calls per request ($n requests):"
  awk -F, -v n="$n" '$3 ~ /syscalls/ { sub(/syscalls:sys_enter_/, "", $3); if ($1 > 0) printf "  %-12s %6.2f\n", $3, $1 / n }' "$OUT/syscalls.txt"
fi
prof=$(ls -t "$OUT"/*.cpuprofile 2>/dev/null | head -1 || true)
if [[ -n $prof ]]; then
  # The measured window and the exit: the start, JIT warm-up and wrk's warm-up stay out.
  last=$(awk -v d="$DURATION" -v a="$t_load_end" -v b="$t_exit" 'BEGIN { printf "%.2f", d + b - a }')
  node "$ROOT/bench/cpu-profile.ts" "$prof" --requests "$n" --last "$last" --top "${TOP:-25}"
fi
