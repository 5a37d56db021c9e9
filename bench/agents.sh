#!/usr/bin/env bash
# Agents at scale: N conversations at once, each streaming a model answer of DELTAS text deltas
# GAP_MS apart from the mock model (tests/fakes/mock_model.c) through one chatkit-server
# process. For each N in COUNTS, on a fresh mock and a fresh server: the latency the server adds
# to each delta (the mock stamps its send time into the delta text; the load generator
# subtracts it from the arrival time), the server's peak memory per open conversation, and its
# CPU time per 1,000 deltas delivered. Prints a markdown table.
#
# Settings (environment):
#   COUNTS="1000 2000 5000 9900"  conversations opened at once, one run each (each needs two
#                      descriptors in the server: the client and the model connection)
#   DELTAS=50          text deltas per answer
#   GAP_MS=20          pause between deltas at the mock
#   API=chat_completions   or responses: the wire format between server and mock
#   WORKERS=2          --workers of the server
#   TIMEOUT=120        seconds a run may take at most
#   OUT=build-bench/bench-results/agents  raw results and logs
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
COUNTS=${COUNTS:-"1000 2000 5000 9900"}
DELTAS=${DELTAS:-50}
GAP_MS=${GAP_MS:-20}
API=${API:-chat_completions}
WORKERS=${WORKERS:-2}
TIMEOUT=${TIMEOUT:-120}
OUT=${OUT:-$BUILD/bench-results/agents}
MOCK=$BUILD/tests/mock-model
TMP=$(mktemp -d)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap 'bench_cleanup; rm -rf "$TMP"' EXIT
bench_build mock-model

for n in $COUNTS; do
  if ((2 * n + 50 > $(ulimit -n))); then
    log "agents: $n conversations need $((2 * n + 50)) descriptors in the server; ulimit -n is $(ulimit -n)"
    exit 1
  fi
done

# The answer: DELTAS pieces of 18 bytes, "@", a 16-character placeholder the mock overwrites
# with its send time (CLOCK_MONOTONIC microseconds), and a space.
PH=$(printf '~%.0s' $(seq 1 16))
text=$(for _ in $(seq 1 "$DELTAS"); do printf '@%s ' "$PH"; done)
printf '{"bench":{"stamp":"%s","steps":[{"role":true},{"text":"%s","chunk":18,"gap_ms":%d},{"finish":"stop"},{"done":true}]}}\n' \
  "$PH" "$text" "$GAP_MS" >"$TMP/scenarios.json"
# Title generation would add a second model call per new thread.
printf 'title: {enabled: false}\n' >"$TMP/chatkit.yaml"

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# cpu_ticks PID: utime + stime in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

ROWS=()
for n in $COUNTS; do
  log "== agents: $n conversations, $DELTAS deltas ${GAP_MS} ms apart ($API)"
  start "mock$n" "$MOCK" --host 127.0.0.1 --port 0 --scenarios "$TMP/scenarios.json"
  mpid=$SPID mport=$SPORT
  start "server$n" env OPENAI_BASE_URL="http://127.0.0.1:$mport/v1" CHATKIT_API="$API" \
    CHATKIT_MODEL=mock/bench "$SERVER" --host 127.0.0.1 --port 0 --store memory: \
    --config "$TMP/chatkit.yaml" --log-level off --workers "$WORKERS" \
    --rate-limit-rpm 0 --max-streams-per-user 0 --max-streams 0
  spid=$SPID sport=$SPORT
  # Warm the code paths, the allocator and curl's connection setup first.
  "$LOADGEN" agents --port "$sport" --body "$CREATE" --streams 100 --timeout 30 \
    --gap-ms "$GAP_MS" >"$OUT/warm$n.txt"
  sleep 0.5
  rss0=$(status_kb "$spid" VmRSS)
  hwm0=$(status_kb "$spid" VmHWM)
  c0=$(cpu_ticks "$spid") m0=$(cpu_ticks "$mpid")
  r=$("$LOADGEN" agents --port "$sport" --body "$CREATE" --streams "$n" --timeout "$TIMEOUT" \
    --gap-ms "$GAP_MS")
  c1=$(cpu_ticks "$spid") m1=$(cpu_ticks "$mpid")
  hwm=$(status_kb "$spid" VmHWM)
  sleep 0.5
  rss1=$(status_kb "$spid" VmRSS)
  line="server_rss_before_kb=$rss0 server_hwm_before_kb=$hwm0 server_hwm_kb=$hwm server_rss_after_kb=$rss1 server_cpu_ticks=$((c1 - c0)) mock_cpu_ticks=$((m1 - m0)) hz=$HZ $r"
  printf 'agents.%s %s\n' "$n" "$line" >>"$OUT/raw.txt"
  log "$line"
  deltas=$(kv "$r" deltas)
  open=$(kv "$r" max_open)
  row=$(awk -v n="$n" -v r="$r" -v d="$deltas" -v o="$open" -v h="$hwm" -v b="$rss0" -v a="$rss1" \
    -v sc="$((c1 - c0))" -v mc="$((m1 - m0))" -v hz="$HZ" -v want="$((n * DELTAS))" '
    function kv(k,   i, a, m) { m = split(r, a, " "); for (i = 1; i <= m; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
    BEGIN {
      printf "| %d | %s | %s / %s | %d / %d | %s / %s | %s / %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |",
        n, kv("completed"), kv("max_open"), kv("max_streaming"), d, want,
        kv("added_p50_ms"), kv("added_p99_ms"), kv("model_late_p50_ms"), kv("model_late_p99_ms"),
        kv("deltas_per_s"), (o > 0 ? (h - b) / o : 0), (n > 0 ? (a - b) / n : 0),
        (d > 0 ? sc * 1000 / hz / d * 1000 : 0), (d > 0 ? mc * 1000 / hz / d * 1000 : 0),
        (d > 0 ? kv("loadgen_cpu_ms") / d * 1000 : 0), kv("errors") "+" kv("non2xx") "+" kv("unfinished")
    }')
  ROWS+=("$row")
  stop "$spid"
  stop "$mpid"
done

echo
echo "chatkit-server --workers $WORKERS, memory store, mock model ($API), $DELTAS deltas ${GAP_MS} ms apart, $(nproc) cores"
echo
echo "| conversations | completed | max open / streaming at once | deltas / expected | added ms p50 / p99 | mock's own lateness per gap ms p50 / p99 | deltas/s | peak KB per open conversation | retained KB per conversation | server CPU ms per 1,000 deltas | mock CPU ms per 1,000 deltas | loadgen CPU ms per 1,000 deltas | errors+non2xx+unfinished |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Raw results: $OUT/raw.txt"
