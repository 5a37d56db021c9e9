#!/usr/bin/env bash
# Scale-out behind nginx: items.list req/s and streams/s (demo model, TOKENS deltas, no delay)
# through nginx in front of one chatkit-server and in front of two, all sharing one throw-away
# PostgreSQL (fsync off), plus one run straight to a backend without nginx. Side by side in
# one run; prints a markdown table.
#
# Settings (environment): DURATION=5 WARMUP=1 CONNECTIONS=32 TOKENS=50 ROUNDS=2
#   WORKERS_ONE=4      --workers of the single backend
#   WORKERS_TWO=2      --workers of each of the two backends (the same 4 workers in all)
#   NGINX_WORKERS=2    nginx worker_processes
#   OUT=build-bench/bench-results/scale
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
TOKENS=${TOKENS:-50}
ROUNDS=${ROUNDS:-2}
WORKERS_ONE=${WORKERS_ONE:-4}
WORKERS_TWO=${WORKERS_TWO:-2}
NGINX_WORKERS=${NGINX_WORKERS:-2}
OUT=${OUT:-$BUILD/bench-results/scale}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
TMP=$(mktemp -d)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap 'bench_cleanup; rm -rf "$TMP"' EXIT

if [[ ! -x $NGINX ]]; then
  log "scale: nginx not found (apt-get install nginx, or set NGINX)"
  exit 1
fi
bench_build
pg_start

# nginx_start PORT...: nginx on a free port, round robin over the backends with upstream
# keep-alive and nothing buffered (the configuration of tests/integration/test_scaleout.c);
# sets NPID and NPORT.
nginx_start() {
  local dir=$TMP/nginx servers= p
  mkdir -p "$dir"
  for p in "$@"; do servers+="    server 127.0.0.1:$p;"$'\n'; done
  NPORT=$(free_port)
  local user=
  ((EUID == 0)) && user="user root root;"
  cat >"$dir/nginx.conf" <<CONF
$user
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 8192;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream chatkit {
$servers    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NPORT;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://chatkit;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
CONF
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' \
    >"$OUT/nginx.out" 2>&1 &
  NPID=$!
  PIDS+=("$NPID")
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$NPORT/health" && return 0
    kill -0 "$NPID" 2>/dev/null || break
    sleep 0.05
  done
  log "nginx did not start: $(cat "$dir/error.log" "$OUT/nginx.out" 2>/dev/null)"
  exit 1
}

# Every set-up sees the same thread (the store is shared), so it is seeded once.
server seed "$PG_URL" 2
seed "$SPORT"
stop "$SPID"

declare -A BEST ERR
# measure KEY PORT: both rates against PORT.
measure() {
  local r s
  r=$(rate json "$2" "$(items_body "$TID")")
  result "$1.r$round.items" "$r"
  s=$(rate sse "$2" "$CREATE")
  result "$1.r$round.sse" "$s"
  BEST[$1.items]=$(best "${BEST[$1.items]:-}" "$(kv "$r" rps)")
  BEST[$1.sse]=$(best "${BEST[$1.sse]:-}" "$(kv "$s" streams_per_s)")
  ERR[$1]=$((${ERR[$1]:-0} + $(kv "$r" errors) + $(kv "$r" non2xx) + $(kv "$s" errors) + $(kv "$s" non2xx)))
}

for round in $(seq 1 "$ROUNDS"); do
  log "== scale: round $round: one backend (--workers $WORKERS_ONE), direct and through nginx"
  server one "$PG_URL" "$WORKERS_ONE"
  one=$SPID oport=$SPORT
  measure direct "$oport"
  nginx_start "$oport"
  measure nginx1 "$NPORT"
  stop "$NPID"
  stop "$one"
  log "== scale: round $round: two backends (--workers $WORKERS_TWO each) through nginx"
  server two_a "$PG_URL" "$WORKERS_TWO"
  a=$SPID aport=$SPORT
  server two_b "$PG_URL" "$WORKERS_TWO"
  b=$SPID bport=$SPORT
  nginx_start "$aport" "$bport"
  measure nginx2 "$NPORT"
  stop "$NPID"
  stop "$a"
  stop "$b"
done

echo
echo "PostgreSQL store, $CONNECTIONS connections, ${DURATION}s per rate, best of $ROUNDS interleaved rounds, nginx $NGINX_WORKERS workers, $(nproc) cores"
echo
echo "| set-up | items.list req/s | vs direct | streams/s ($TOKENS deltas) | vs direct | errors |"
echo "|---|---|---|---|---|---|"
row() {
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "${BEST[$2.items]}" \
    "$(ratio "${BEST[$2.items]}" "${BEST[direct.items]}")" "${BEST[$2.sse]}" \
    "$(ratio "${BEST[$2.sse]}" "${BEST[direct.sse]}")" "${ERR[$2]}"
}
row "direct, 1 backend (--workers $WORKERS_ONE)" direct
row "nginx, 1 backend (--workers $WORKERS_ONE)" nginx1
row "nginx, 2 backends (--workers $WORKERS_TWO each)" nginx2
echo
echo "Raw results: $OUT/raw.txt"
