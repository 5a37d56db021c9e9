#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, but only the missing ones, so
# `make run` and `make test` work on a fresh Debian 12 machine and cost nothing afterwards.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  libuv1-dev libhttp-parser-dev libsqlite3-dev libcmocka-dev libcurl4-openssl-dev
  libssl-dev libyaml-dev libpq-dev
)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(curl valgrind postgresql wrk nginx)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
