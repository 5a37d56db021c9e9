# syntax=docker/dockerfile:1
#
# chatkit-server on Debian 12, in two stages: the build stage has the compiler and the -dev
# packages; the runtime stage has only the shared libraries the binary loads, runs as an
# unprivileged user and listens on all interfaces. See docs/deploy.md.
#
#   docker build -t chatkit-server .
#   docker run -p 8000:8000 -e CHATKIT_STORE=postgres://chatkit:secret@db:5432/chatkit chatkit-server

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libuv1-dev libhttp-parser-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev \
      libssl-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the library and the binary are built from: tests, benchmarks and fuzzers stay out.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY include/ include/
COPY src/ src/
COPY app/ app/
# CK_WERROR off: a newer compiler's new warning must not break an image build.
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCK_TESTS=OFF -DCK_WERROR=OFF \
      -DCK_SHARED=OFF \
 && cmake --build build \
 && cmake --install build --prefix /opt/chatkit

FROM debian:12-slim AS runtime
# curl is only for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libuv1 libhttp-parser2.9 libsqlite3-0 libpq5 libcurl4 libssl3 libyaml-0-2 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/chatkit --create-home \
      --shell /usr/sbin/nologin chatkit
COPY --from=build /opt/chatkit/bin/chatkit-server /usr/local/bin/chatkit-server
USER chatkit
WORKDIR /var/lib/chatkit
# The SQLite default lives in the volume; set CHATKIT_STORE to a postgres:// URL to run several
# containers against one database.
ENV CHATKIT_PORT=8000 \
    CHATKIT_STORE=sqlite:/var/lib/chatkit/chatkit.db \
    CHATKIT_LOG_FORMAT=json
VOLUME ["/var/lib/chatkit"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${CHATKIT_PORT}/health" || exit 1
# SIGTERM lets open streams finish for --shutdown-grace-ms (default 10 s): give `docker stop`
# more than that (docker stop -t 15, or stop_grace_period in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/chatkit-server"]
# Listening on 0.0.0.0 requires choosing authentication: pass CHATKIT_AUTH=jwt with a key
# (CHATKIT_JWT_SECRET, ...) or, for a trial, CHATKIT_AUTH=none.
CMD ["--host", "0.0.0.0"]
