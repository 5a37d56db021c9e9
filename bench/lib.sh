# shellcheck shell=bash
# Shared helpers of the bench/ scripts (sourced, not run). The caller sets ROOT, BUILD and OUT
# (and TMP, a temporary directory it removes, before pg_start), and calls bench_cleanup from
# its EXIT trap.

log() { printf '%s\n' "$*" >&2; }

LOADGEN=$BUILD/bench_loadgen
SERVER=$BUILD/chatkit-server
PIDS=()
PG_DATA=

# bench_build [TARGET...]: builds our server, the load generator and any extra targets in a
# Release build directory, and starts a fresh raw.txt.
bench_build() {
  if [[ -f $BUILD/CMakeCache.txt ]] && ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt"; then
    log "bench: $BUILD is not a Release build; set BUILD to a Release build directory"
    exit 1
  fi
  if [[ ! -f $BUILD/build.ninja && ! -f $BUILD/Makefile ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  cmake --build "$BUILD" --target chatkit-server bench_loadgen "$@" >&2
  mkdir -p "$OUT"
  : >"$OUT/raw.txt"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  pg_stop
}

# start NAME CMD...: a program printing "listening on http://127.0.0.1:P"; sets SPID, SPORT.
start() {
  local name=$1
  shift
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
  SPID=$!
  PIDS+=("$SPID")
  SPORT=
  for _ in $(seq 1 200); do
    SPORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$OUT/$name.out")
    [[ -n $SPORT ]] && return 0
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.05
  done
  log "$name did not start: $(cat "$OUT/$name.err")"
  exit 1
}

stop() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# server NAME STORE WORKERS [ARGS...]: our server with the demo model answering at once.
server() {
  local name=$1 store=$2 workers=$3
  shift 3
  start "$name" "$SERVER" --host 127.0.0.1 --port 0 --store "$store" --log-level off \
    --demo-tokens "$TOKENS" --demo-delay-ms 0 --workers "$workers" \
    --rate-limit-rpm 0 --max-streams-per-user 0 --max-streams 0 "$@"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pg_start: a throw-away PostgreSQL on loopback (as tests/support/pg_server.c does: initdb as
# the postgres user when root, trust authentication, fsync off); sets PG_URL.
pg_start() {
  local bindir=
  for v in 17 16 15 14 13 12; do
    [[ -x /usr/lib/postgresql/$v/bin/pg_ctl ]] && bindir=/usr/lib/postgresql/$v/bin && break
  done
  if [[ -z $bindir ]]; then
    log "bench: PostgreSQL server binaries not found (apt-get install postgresql)"
    exit 1
  fi
  local as=()
  PG_DATA=$TMP/pg
  mkdir -p "$PG_DATA"
  if ((EUID == 0)); then
    chown postgres: "$TMP" "$PG_DATA"
    as=(runuser -u postgres --)
  fi
  PG_AS=("${as[@]}")
  PG_CTL=$bindir/pg_ctl
  "${as[@]}" "$bindir/initdb" -D "$PG_DATA/data" -U chatkit -A trust -E UTF8 --no-locale \
    --no-sync >"$OUT/initdb.log" 2>&1
  local port
  port=$(free_port)
  cat >>"$PG_DATA/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DATA'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 128MB
CONF
  "${as[@]}" "$PG_CTL" -D "$PG_DATA/data" -l "$PG_DATA/server.log" -w -t 60 -s start >&2
  PG_URL="postgres://chatkit@127.0.0.1:$port/postgres?sslmode=disable"
}

pg_stop() {
  if [[ -n $PG_DATA && -f $PG_DATA/data/postmaster.pid ]]; then
    "${PG_AS[@]}" "$PG_CTL" -D "$PG_DATA/data" -w -t 60 -m fast -s stop >&2 || true
  fi
  PG_DATA=
}

CREATE='{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"hello there"}],"attachments":[],"inference_options":{}}}}'

post() { curl -sS --max-time 30 -X POST -H 'Content-Type: application/json' \
  "http://127.0.0.1:$1/chatkit" -d "$2"; }

# seed PORT [MORE]: a thread with 20 items (10 turns), then MORE other threads (default 0);
# sets TID.
seed() {
  local port=$1 more=${2:-0}
  TID=$(post "$port" "$CREATE" | grep -o '"thread":{[^}]*"id":"thr_[0-9a-zA-Z]*' | grep -o 'thr_[0-9a-zA-Z]*' | head -1)
  if [[ -z $TID ]]; then
    TID=$(post "$port" '{"type":"threads.list","params":{"limit":1}}' | grep -o 'thr_[0-9a-zA-Z]*' | head -1)
  fi
  for _ in $(seq 1 9); do
    post "$port" "{\"type\":\"threads.add_user_message\",\"params\":{\"thread_id\":\"$TID\",\"input\":{\"content\":[{\"type\":\"input_text\",\"text\":\"tell me more\"}],\"attachments\":[],\"inference_options\":{}}}}" >/dev/null
  done
  for _ in $(seq 1 "$more"); do post "$port" "$CREATE" >/dev/null; done
  local n
  n=$(post "$port" "{\"type\":\"items.list\",\"params\":{\"thread_id\":\"$TID\",\"limit\":50}}" | grep -o '"thread_id":"' | wc -l)
  if [[ $n -ne 20 ]]; then
    log "seeding port $port: thread '$TID' has $n items, want 20"
    exit 1
  fi
}

# kv "LINE" KEY: the value of KEY in a "k=v k=v" result line.
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# ratio A B: A / B with two decimals, or "-" when either is missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }

# best A B: the larger of two numbers (A may be empty).
best() { awk -v a="${1:-0}" -v b="$2" 'BEGIN { print (b + 0 > a + 0) ? b : a }'; }

result() {
  printf '%s %s\n' "$1" "$2" >>"$OUT/raw.txt"
  log "$1: $2"
}

# rate MODE PORT BODY [CONNECTIONS]: one bench_loadgen rate run.
rate() {
  "$LOADGEN" "$1" --port "$2" --body "$3" --connections "${4:-$CONNECTIONS}" \
    --duration "$DURATION" --warmup "$WARMUP"
}

items_body() { printf '{"type":"items.list","params":{"thread_id":"%s","limit":20}}' "$1"; }
