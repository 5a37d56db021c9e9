#!/usr/bin/env bash
# Runs every libFuzzer harness built in BUILD_DIR for SECONDS each, on its committed corpus
# (fuzz/corpus/<name>/) copied to a scratch directory so new inputs do not dirty the tree.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work=$(mktemp -d)
  if [ -d "$root/fuzz/corpus/$name" ]; then cp -r "$root/fuzz/corpus/$name/." "$work/"; fi
  echo "fuzz: $name for ${secs}s"
  extra=()
  # The config loader reports every bad file on stderr; libFuzzer keeps its own output and
  # sanitizer reports on a duplicate of stderr when it closes the original.
  [ "$name" = fuzz_config ] && extra=(-close_fd_mask=2)
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
    "$work" 2>&1 | tail -n 5
  rm -rf "$work"
done
