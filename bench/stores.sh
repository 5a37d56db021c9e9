#!/usr/bin/env bash
# items.list req/s and streams/s (demo model, TOKENS deltas, no delay) of one chatkit-server
# on each store, side by side in one run: memory:, sqlite: (a file in a temporary directory)
# and postgres:// (a throw-away local PostgreSQL, fsync off). Prints a markdown table.
#
# Settings (environment): DURATION=5 WARMUP=1 CONNECTIONS=32 TOKENS=50 WORKERS=4 ROUNDS=2
# (each store is measured ROUNDS times, interleaved, and the best round is kept),
# OUT=build-bench/bench-results/stores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
TOKENS=${TOKENS:-50}
WORKERS=${WORKERS:-4}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$BUILD/bench-results/stores}
TMP=$(mktemp -d)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap 'bench_cleanup; rm -rf "$TMP"' EXIT

bench_build
pg_start

declare -A STORE BEST
STORE[memory]=memory:
STORE[sqlite]=sqlite:$TMP/chatkit.db
STORE[postgres]=$PG_URL
KINDS=(memory sqlite postgres)


for round in $(seq 1 "$ROUNDS"); do
  for k in "${KINDS[@]}"; do
    log "== stores: $k, round $round"
    server "$k$round" "${STORE[$k]}" "$WORKERS"
    seed "$SPORT"
    r=$(rate json "$SPORT" "$(items_body "$TID")")
    result "$k.r$round.items" "$r"
    BEST[$k.items]=$(best "${BEST[$k.items]:-}" "$(kv "$r" rps)")
    BEST[$k.items.p99]=${BEST[$k.items.p99]:-$(kv "$r" p99_ms)}
    s=$(rate sse "$SPORT" "$CREATE")
    result "$k.r$round.sse" "$s"
    BEST[$k.sse]=$(best "${BEST[$k.sse]:-}" "$(kv "$s" streams_per_s)")
    BEST[$k.err]=$((${BEST[$k.err]:-0} + $(kv "$r" errors) + $(kv "$r" non2xx) + $(kv "$s" errors) + $(kv "$s" non2xx)))
    stop "$SPID"
  done
done

echo
echo "chatkit-server --workers $WORKERS, $CONNECTIONS connections, ${DURATION}s per rate, best of $ROUNDS interleaved rounds, $(nproc) cores"
echo
echo "| store | items.list req/s (20 items) | vs memory | streams/s ($TOKENS deltas) | vs memory | errors |"
echo "|---|---|---|---|---|---|"
for k in "${KINDS[@]}"; do
  printf '| %s | %s | %s | %s | %s | %s |\n' "$k" "${BEST[$k.items]}" \
    "$(ratio "${BEST[$k.items]}" "${BEST[memory.items]}")" "${BEST[$k.sse]}" \
    "$(ratio "${BEST[$k.sse]}" "${BEST[memory.sse]}")" "${BEST[$k.err]}"
done
echo
echo "Raw results: $OUT/raw.txt"
