#!/bin/sh
# Installs this build into a temporary prefix and builds examples/hello.c against the
# installed copy three ways: with pkg-config (libchatkit.so, then libchatkit.a), and
# as a tiny CMake project using find_package(chatkit). Each program is then started and must
# print its "listening on" line.
#
#   install_test.sh BUILD_DIR SOURCE_DIR CC [EXTRA_FLAGS]
#
# The compiler's default C dialect is used (gnu17 for gcc and clang): libuv's headers, which
# chatkit.h includes, need the POSIX types that strict -std=c17 hides without _GNU_SOURCE.
#
# EXTRA_FLAGS are added to every compile and link: a sanitizer build's library needs the
# sanitizer runtime in the programs that link it.
set -eu
build=$1
src=$2
cc=$3
extra=${4:-}

tmp=$(mktemp -d /tmp/ck-install.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

step() { printf '== %s\n' "$*"; }

step "cmake --install into $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
prefix=$tmp/prefix
for f in include/chatkit/chatkit.h include/chatkit/store.h bin/chatkit-server; do
  test -e "$prefix/$f" || { echo "missing $f"; exit 1; }
done
pcdir=$(dirname "$(find "$prefix" -name chatkit.pc | head -n 1)")
test -n "$pcdir" || { echo "chatkit.pc not installed"; exit 1; }
libdir=$(dirname "$pcdir")
test -e "$libdir/libchatkit.a" || { echo "libchatkit.a not installed"; exit 1; }
test -e "$prefix/bin/chatkit-server" && "$prefix/bin/chatkit-server" --version

export PKG_CONFIG_PATH="$pcdir"
pkg-config --exists chatkit
step "pkg-config: $(pkg-config --modversion chatkit) $(pkg-config --cflags --libs chatkit)"

# Starts a program built from hello.c on a free port and waits for its "listening on" line.
run_hello() {
  out=$tmp/$(basename "$1").out
  : >"$out"
  "$@" 0 "$tmp/$(basename "$1").db" >"$out" 2>&1 &
  pid=$!
  pids="$pids $pid"
  i=0
  while ! grep -q "listening on http://" "$out"; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "$1 did not start:"; cat "$out"; exit 1
    fi
    sleep 0.1
  done
  echo "$(basename "$1"): $(head -n 1 "$out")"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

if [ -e "$libdir/libchatkit.so" ]; then
  step "libchatkit.so exports the public API only"
  nm -D --defined-only "$libdir/libchatkit.so" | awk '{print $3}' >"$tmp/exported"
  if grep -q '^ck__' "$tmp/exported"; then
    echo "internal ck__ symbols are exported: $(grep '^ck__' "$tmp/exported" | head -n 3 | tr '\n' ' ')"
    exit 1
  fi
  grep -qx 'ck_server_process' "$tmp/exported" || { echo "ck_server_process is not exported"; exit 1; }
  step "hello with pkg-config, shared library"
  # shellcheck disable=SC2046,SC2086
  "$cc" $extra $(pkg-config --cflags chatkit) "$src/examples/hello.c" -o "$tmp/hello-shared" \
    $(pkg-config --libs chatkit) -Wl,-rpath,"$libdir"
  run_hello "$tmp/hello-shared"
fi

step "hello with pkg-config, static libchatkit.a over shared dependencies"
# Both libchatkit.a and libchatkit.so are in libdir, so the static one is asked for by name.
# `pkg-config --static` would also ask for static builds of the dependencies' own private
# libraries (libpq's libpgcommon.a, Kerberos...), which Debian does not ship; the usual way is
# a static libchatkit.a over the shared dependencies: chatkit's own private libraries plus
# the --libs of its private requirements.
privlibs=$(sed -n 's/^Libs.private://p' "$pcdir/chatkit.pc")
# shellcheck disable=SC2046,SC2086
"$cc" $extra $(pkg-config --cflags chatkit) "$src/examples/hello.c" -o "$tmp/hello-static" \
  $(pkg-config --libs chatkit | sed 's/-lchatkit/-Wl,-Bstatic -lchatkit -Wl,-Bdynamic/') \
  $privlibs $(pkg-config --libs $(pkg-config --print-requires-private chatkit))
run_hello "$tmp/hello-static"

step "hello with find_package(chatkit)"
mkdir -p "$tmp/proj"
cp "$src/examples/hello.c" "$tmp/proj/"
cat >"$tmp/proj/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(hello_consumer C)
find_package(chatkit 0.1 REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE chatkit::chatkit)
CMAKE
gen=""
command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
# shellcheck disable=SC2086
CC="$cc" cmake -S "$tmp/proj" -B "$tmp/proj/build" $gen -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/proj/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
run_hello "$tmp/proj/build/hello"

step "install test passed"
