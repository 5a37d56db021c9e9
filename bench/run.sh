#!/usr/bin/env bash
# Runs every benchmark against chatkit-server and the Node peer (chatkit-node-backend-sdk) side
# by side on loopback and prints a markdown table with both numbers and their ratio.
#
# Settings (environment):
#   DURATION=5         seconds measured per rate test (after WARMUP seconds of warm-up)
#   WARMUP=1           seconds of warm-up per rate test
#   CONNECTIONS=32     keep-alive connections for the JSON and SSE rate tests
#   TOKENS=50          text deltas per demo reply
#   TTFB_STREAMS=1000  streams opened at once for time-to-first-byte
#   MEM_STREAMS=5000   streams held open for memory per stream
#   PACE_MS=1000       delay between deltas on the paced servers (keeps streams open)
#   STARTUP_RUNS=10    starts per server for start-up time
#   WORKERS=4          --workers of our server for the main comparison
#   WORKER_SWEEP="1 2 4"  --workers values for the worker sweep ("" skips it)
#   OUT=build/bench-results  where raw results and server logs go
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
TOKENS=${TOKENS:-50}
TTFB_STREAMS=${TTFB_STREAMS:-1000}
MEM_STREAMS=${MEM_STREAMS:-5000}
PACE_MS=${PACE_MS:-1000}
STARTUP_RUNS=${STARTUP_RUNS:-10}
WORKERS=${WORKERS:-4}
WORKER_SWEEP=${WORKER_SWEEP-"1 2 4"}
OUT_SET=${OUT:-}
OUT=${OUT:-$BUILD/bench-results}
PEER=$ROOT/bench/peer-node

# ---- Build and install ----
# Measure a Release build only: an existing build directory of another type (a developer's
# Debug or sanitizer build) would make every number meaningless, so use a separate one then.
if [[ -f $BUILD/CMakeCache.txt ]] && ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt"; then
  printf '%s\n' "bench: $BUILD is not a Release build; using $ROOT/build-bench" >&2
  BUILD=$ROOT/build-bench
  OUT=${OUT_SET:-$BUILD/bench-results}
fi
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
OURS=$SERVER
bench_build
if [[ ! -d $PEER/node_modules/chatkit-node-backend-sdk ]]; then
  (cd "$PEER" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }) >&2
fi

# Streams need one descriptor each, on both sides.
need=$((MEM_STREAMS + 100))
if (($(ulimit -n) < need)); then
  log "ulimit -n is $(ulimit -n); need $need for MEM_STREAMS=$MEM_STREAMS"
  exit 1
fi

# ---- Servers ----
# The load is one anonymous user, so the per-user limits are off (the Node peer has none).
ours() { start "ours$1" "$OURS" --host 127.0.0.1 --port 0 --store memory: --log-level off \
  --demo-tokens "$TOKENS" --workers "${3:-$WORKERS}" --demo-delay-ms "$2" \
  --rate-limit-rpm 0 --max-streams-per-user 0 --max-streams 0; }
node_peer() { start "node$1" node "$PEER/server.js" --host 127.0.0.1 --port 0 \
  --demo-tokens "$TOKENS" --demo-delay-ms "$2"; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

declare -A R
ROWS=()
# row KEY LABEL OURS NODE BETTER(higher|lower) TARGET_RATIO TARGET_TEXT
row() { ROWS+=("$*"); }

# ---- 1. JSON rates and SSE streams (delay 0: replies stream at once) ----
log "== rates: ours (--workers $WORKERS) vs node, $CONNECTIONS connections, ${DURATION}s"
ours main 0
OPORT=$SPORT OPID=$SPID
seed "$OPORT" 24 # 25 threads in all, so a threads.list page of 20 is full
OTID=$TID
node_peer main 0
NPORT=$SPORT NPID=$SPID
seed "$NPORT" 24
NTID=$TID

declare -A BODY
BODY[list]='{"type":"threads.list","params":{"limit":20}}'
BODY[items]='{"type":"items.list","params":{"thread_id":"TID","limit":20}}'
BODY[get]='{"type":"threads.get_by_id","params":{"thread_id":"TID"}}'
for k in list items get; do
  o=$(rate json "$OPORT" "${BODY[$k]//TID/$OTID}")
  result "ours.json.$k" "$o"
  n=$(rate json "$NPORT" "${BODY[$k]//TID/$NTID}")
  result "node.json.$k" "$n"
  R[o.$k]=$(kv "$o" rps) R[n.$k]=$(kv "$n" rps)
  R[o.$k.p99]=$(kv "$o" p99_ms) R[n.$k.p99]=$(kv "$n" p99_ms)
done
o=$(rate sse "$OPORT" "$CREATE")
result ours.sse "$o"
n=$(rate sse "$NPORT" "$CREATE")
result node.sse "$n"
R[o.sps]=$(kv "$o" streams_per_s) R[n.sps]=$(kv "$n" streams_per_s)
R[o.eps]=$(kv "$o" events_per_s) R[n.eps]=$(kv "$n" events_per_s)
R[o.sp99]=$(kv "$o" p99_ms) R[n.sp99]=$(kv "$n" p99_ms)
stop "$OPID"
stop "$NPID"

# ---- 2. Time to first byte: TTFB_STREAMS paced streams opened at once ----
log "== ttfb: $TTFB_STREAMS streams at once, ${PACE_MS}ms between deltas"
for who in ours node; do
  if [[ $who == ours ]]; then ours ttfb "$PACE_MS"; else node_peer ttfb "$PACE_MS"; fi
  "$LOADGEN" ttfb --port "$SPORT" --body "$CREATE" --streams 20 --timeout 10 >/dev/null || true
  r=$("$LOADGEN" ttfb --port "$SPORT" --body "$CREATE" --streams "$TTFB_STREAMS" --timeout 30)
  result "$who.ttfb" "$r"
  R[${who:0:1}.ttfb50]=$(kv "$r" ttfb_p50_ms) R[${who:0:1}.ttfb99]=$(kv "$r" ttfb_p99_ms)
  R[${who:0:1}.fe50]=$(kv "$r" first_event_p50_ms) R[${who:0:1}.fe99]=$(kv "$r" first_event_p99_ms)
  stop "$SPID"
done

# ---- 3. Memory per open stream: MEM_STREAMS paced streams held open ----
log "== memory: $MEM_STREAMS open streams"
for who in ours node; do
  if [[ $who == ours ]]; then ours mem "$PACE_MS"; else node_peer mem "$PACE_MS"; fi
  pid=$SPID
  # Warm the code paths and allocator first so "before" is a server that has served streams.
  "$LOADGEN" ttfb --port "$SPORT" --body "$CREATE" --streams 100 --timeout 10 >/dev/null || true
  sleep 1
  before=$(rss_kb "$pid")
  lg_out=$OUT/$who.mem.loadgen
  "$LOADGEN" ttfb --port "$SPORT" --body "$CREATE" --streams "$MEM_STREAMS" --timeout 60 \
    --hold 120 >"$lg_out" &
  lg=$!
  for _ in $(seq 1 1800); do
    grep -q '^holding' "$lg_out" 2>/dev/null && break
    kill -0 "$lg" 2>/dev/null || break
    sleep 0.1
  done
  sleep 2 # let in-flight work settle
  with=$(rss_kb "$pid")
  open=$(sed -n 's/^holding open=//p' "$lg_out")
  kill "$lg" 2>/dev/null || true
  wait "$lg" 2>/dev/null || true
  result "$who.mem" "rss_before_kb=$before rss_with_kb=$with open=${open:-0} $(head -1 "$lg_out")"
  if [[ -n $open && $open -gt 0 ]]; then
    R[${who:0:1}.mem]=$(awk -v a="$before" -v b="$with" -v n="$open" 'BEGIN {printf "%.2f", (b - a) / n}')
  else
    R[${who:0:1}.mem]=nan
  fi
  R[${who:0:1}.memopen]=${open:-0}
  stop "$pid"
done

# ---- 4. Start-up time and idle RSS ----
log "== start-up: $STARTUP_RUNS starts each"
o=$("$LOADGEN" startup --runs "$STARTUP_RUNS" -- "$OURS" --host 127.0.0.1 --port 0 \
  --store memory: --log-level off)
result ours.startup "$o"
n=$("$LOADGEN" startup --runs "$STARTUP_RUNS" -- node "$PEER/server.js" --host 127.0.0.1 --port 0)
result node.startup "$n"
for w in o n; do
  if [[ $w == o ]]; then l=$o; else l=$n; fi
  R[$w.listen]=$(kv "$l" listen_p50_ms) R[$w.health]=$(kv "$l" health_p50_ms)
  R[$w.idle]=$(awk -v k="$(kv "$l" idle_rss_kb)" 'BEGIN {printf "%.1f", k / 1024}')
done

# ---- 5. Worker sweep (ours only) ----
SWEEP=()
for w in $WORKER_SWEEP; do
  log "== worker sweep: --workers $w"
  ours "sweep$w" 0 "$w"
  seed "$SPORT" 24
  line="| $w"
  for k in list items get; do
    r=$(rate json "$SPORT" "${BODY[$k]//TID/$TID}")
    result "ours.w$w.json.$k" "$r"
    line+=" | $(kv "$r" rps)"
  done
  r=$(rate sse "$SPORT" "$CREATE")
  result "ours.w$w.sse" "$r"
  line+=" | $(kv "$r" streams_per_s) |"
  SWEEP+=("$line")
  stop "$SPID"
done

# ---- Table ----
# ratio A B: A / B with two decimals ("-" when either is missing or zero).
# met R T: "yes" when R >= T.
met() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "-") print "?"; else print (r + 0 >= t + 0) ? "yes" : "no" }'; }
# line LABEL OURS NODE RATIO TARGET MET
line() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }

echo
echo "chatkit-server (--workers $WORKERS) vs chatkit-node-backend-sdk 1.1.2 on node $(node --version)," \
  "$(nproc) cores, $CONNECTIONS connections, ${DURATION}s per rate, $TOKENS deltas per reply"
echo
echo "| measure | ours | node | ratio (x better) | target | met? |"
echo "|---|---|---|---|---|---|"
for k in list items get; do
  case $k in list) n=threads.list ;; items) n=items.list ;; get) n=threads.get_by_id ;; esac
  r=$(ratio "${R[o.$k]}" "${R[n.$k]}")
  line "$n req/s" "${R[o.$k]}" "${R[n.$k]}" "$r" "≥ 5×" "$(met "$r" 5)"
  r=$(ratio "${R[n.$k.p99]}" "${R[o.$k.p99]}")
  line "$n p99 ms" "${R[o.$k.p99]}" "${R[n.$k.p99]}" "$r" "-" "-"
done
r=$(ratio "${R[o.sps]}" "${R[n.sps]}")
line "streams/s ($TOKENS deltas)" "${R[o.sps]}" "${R[n.sps]}" "$r" "≥ 5×" "$(met "$r" 5)"
r=$(ratio "${R[o.eps]}" "${R[n.eps]}")
line "SSE events/s" "${R[o.eps]}" "${R[n.eps]}" "$r" "-" "-"
r=$(ratio "${R[n.sp99]}" "${R[o.sp99]}")
line "stream duration p99 ms" "${R[o.sp99]}" "${R[n.sp99]}" "$r" "-" "-"
r=$(ratio "${R[n.ttfb50]}" "${R[o.ttfb50]}")
line "TTFB p50 ms ($TTFB_STREAMS at once)" "${R[o.ttfb50]}" "${R[n.ttfb50]}" "$r" "≥ 10×" "$(met "$r" 10)"
r=$(ratio "${R[n.ttfb99]}" "${R[o.ttfb99]}")
line "TTFB p99 ms ($TTFB_STREAMS at once)" "${R[o.ttfb99]}" "${R[n.ttfb99]}" "$r" "≥ 10×" "$(met "$r" 10)"
r=$(ratio "${R[n.fe50]}" "${R[o.fe50]}")
line "first event p50 ms" "${R[o.fe50]}" "${R[n.fe50]}" "$r" "-" "-"
r=$(ratio "${R[n.fe99]}" "${R[o.fe99]}")
line "first event p99 ms" "${R[o.fe99]}" "${R[n.fe99]}" "$r" "-" "-"
r=$(ratio "${R[n.mem]}" "${R[o.mem]}")
okm=$(awk -v m="${R[o.mem]}" 'BEGIN { print (m != "nan" && m + 0 <= 8) ? "yes" : "no" }')
line "KB per open stream (${R[o.memopen]} / ${R[n.memopen]} open)" "${R[o.mem]}" "${R[n.mem]}" "$r" "≤ 8 KB" "$okm"
r=$(ratio "${R[n.idle]}" "${R[o.idle]}")
line "idle RSS MB" "${R[o.idle]}" "${R[n.idle]}" "$r" "-" "-"
r=$(ratio "${R[n.listen]}" "${R[o.listen]}")
okl=$(awk -v m="${R[o.listen]}" 'BEGIN { print (m + 0 < 50) ? "yes" : "no" }')
line "start-up to 'listening' ms (p50)" "${R[o.listen]}" "${R[n.listen]}" "$r" "< 50 ms" "$okl"
r=$(ratio "${R[n.health]}" "${R[o.health]}")
okh=$(awk -v m="${R[o.health]}" 'BEGIN { print (m + 0 < 50) ? "yes" : "no" }')
line "start-up to first /health ms (p50)" "${R[o.health]}" "${R[n.health]}" "$r" "< 50 ms" "$okh"

if ((${#SWEEP[@]})); then
  echo
  echo "Worker sweep (ours only, req/s and streams/s):"
  echo
  echo "| --workers | threads.list | items.list | threads.get_by_id | streams/s |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${SWEEP[@]}"
fi
echo
echo "Raw results: $OUT/raw.txt"
