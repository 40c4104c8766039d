#!/usr/bin/env bash
# REST → gRPC transcoding against gRPC passthrough, in alternating rounds on one gateway
# (bench/bench-transcode.yaml, 1 worker) and one gRPC upstream (bench/grpc-upstream.ts), all loaded by
# h2load so the client is the same for every variant:
#   transcode     GET /api/v1/items/42 over HTTP/1.1, transcoded to bench.Items/GetItem
#   transcode-h2  the same over h2c
#   passthrough   the gRPC call itself over h2c (a framed GetItemRequest), forwarded as it is
#   direct        the gRPC call straight to the upstream (what the upstream alone can do)
# Prints the median req/s and the CPU time per request of the gateway's and the upstream's processes.
#
#   ROUNDS=3 DURATION=5 bench/transcode.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
command -v h2load >/dev/null || die "h2load is needed (apt-get install nghttp2-client)"

ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} WARMUP=${WARMUP:-2} CONNS=${CONNS:-64}
VARIANTS=${VARIANTS:-transcode transcode-h2 passthrough direct}
PORT=${PORT:-18390}
export GRPC_UPSTREAM_PORT=${GRPC_UPSTREAM_PORT:-$((PORT + 1))}
RUN=$(mktemp -d /tmp/meshgate-transcode.XXXX)
trap 'cleanup_all; rm -rf "$RUN"' EXIT

# GetItemRequest { id: 42 }, gRPC-framed: uncompressed, 2 bytes, field 1 varint 42.
printf '\x00\x00\x00\x00\x02\x08\x2a' >"$RUN/get-item.bin"

start_bg "$RUN/upstream.log" node "$ROOT/bench/grpc-upstream.ts" "$GRPC_UPSTREAM_PORT"
upstream=$BG_PID
for _ in $(seq 100); do port_busy "$GRPC_UPSTREAM_PORT" && break; sleep 0.1; done
port_busy "$GRPC_UPSTREAM_PORT" || die "the gRPC upstream did not start (see $RUN/upstream.log)"
start_bg "$RUN/gateway.log" env PORT="$PORT" node "$ROOT/dist/cli/main.js" gateway --no-watch \
  --config "$ROOT/bench/bench-transcode.yaml" --workers 1
gateway=$BG_PID
wait_ready "$gateway" "http://127.0.0.1:$PORT/api/v1/items/42" || die "the gateway did not start (see $RUN/gateway.log)"

load() {
  local v=$1 secs=$2
  local grpc=(-d "$RUN/get-item.bin" -H 'content-type: application/grpc' -H 'te: trailers')
  case $v in
    transcode) h2load --h1 -c "$CONNS" -D "$secs" "http://127.0.0.1:$PORT/api/v1/items/42" ;;
    transcode-h2) h2load -c "$CONNS" -m 1 -D "$secs" "http://127.0.0.1:$PORT/api/v1/items/42" ;;
    passthrough) h2load -c "$CONNS" -m 1 -D "$secs" "${grpc[@]}" "http://127.0.0.1:$PORT/bench.Items/GetItem" ;;
    direct) h2load -c "$CONNS" -m 1 -D "$secs" "${grpc[@]}" "http://127.0.0.1:$GRPC_UPSTREAM_PORT/bench.Items/GetItem" ;;
    *) die "unknown variant $v" ;;
  esac
}

declare -A RPS GW UP
TICK=$(getconf CLK_TCK)
per_request() { awk -v c="$1" -v t="$TICK" -v n="$2" 'BEGIN { printf "%.1f", c / t * 1e6 / n }'; }
for ((r = 1; r <= ROUNDS; r++)); do
  for v in $VARIANTS; do
    load "$v" "$WARMUP" >/dev/null
    g0=$(tree_cpu "$gateway") u0=$(tree_cpu "$upstream")
    out=$(load "$v" "$DURATION")
    g1=$(tree_cpu "$gateway") u1=$(tree_cpu "$upstream")
    ok=$(awk '/^requests:/ { print $8 }' <<<"$out")
    bad=$(awk '/^status codes:/ { print $5 + $7 + $9 }' <<<"$out")
    [[ ${bad:-1} == 0 && ${ok:-0} -gt 0 ]] || die "$v: $(grep -E '^(requests|status codes):' <<<"$out" | tr '\n' ' ')"
    rps=$(awk '/^finished in/ { printf "%d", $4 }' <<<"$out")
    gw=$([[ $v == direct ]] && echo "-" || per_request $((g1 - g0)) "$ok")
    up=$(per_request $((u1 - u0)) "$ok")
    RPS[$v]+="$rps " GW[$v]+="$gw " UP[$v]+="$up "
    log "round $r/$ROUNDS $v: $rps req/s, gateway $gw µs CPU per request, upstream $up µs"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "| variant | req/s (median of $ROUNDS) | rounds | gateway CPU µs per request | upstream CPU µs per request |"
echo "|---|--:|---|--:|--:|"
for v in $VARIANTS; do
  echo "| $v | $(echo "${RPS[$v]}" | median) | ${RPS[$v]}| $(echo "${GW[$v]}" | median) | $(echo "${UP[$v]}" | median) |"
done
