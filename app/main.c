/* chatkit-server: the ready-to-run binary. It reads its settings, opens the store, wires the
 * processor (with the demo model until a model is configured) into the HTTP service, prints
 * "listening on http://HOST:PORT" when ready and shuts down gracefully on SIGTERM/SIGINT. */
#include "config.h"

#include <chatkit/auth.h>
#include <chatkit/demo.h>
#include <chatkit/error.h>
#include <chatkit/log.h>
#include <chatkit/server.h>
#include <chatkit/service.h>
#include <chatkit/store.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct app {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  ck_service *svc;
  ck_log *log;
  int signals;
} app;

static void service_done(void *ud) {
  app *a = ud;
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  if (++a->signals > 1) {
    /* A second signal means "now": the store is consistent after every write. */
    ck_log_event(a->log, CK_LOG_WARN, "second signal, exiting now", (const char *)NULL);
    exit(1);
  }
  ck_log_event(a->log, CK_LOG_INFO, "shutting down", "signal",
               signum == SIGTERM ? "SIGTERM" : "SIGINT", (const char *)NULL);
  ck_service_shutdown(a->svc, service_done, a);
}

int main(int argc, char **argv) {
  app_config cfg;
  int rc = app_config_load(&cfg, argc, argv);
  if (rc != 0)
    return rc == 1 ? 0 : rc;

  ck_log_level level;
  if (ck_log_level_parse(cfg.log_level, &level) != 0) {
    fprintf(stderr,
            "chatkit-server: invalid log level \"%s\": expected debug, info, warn, "
            "error or off\n",
            cfg.log_level);
    return 2;
  }
  ck_log_format format;
  if (strcmp(cfg.log_format, "json") == 0) {
    format = CK_LOG_JSON;
  } else if (strcmp(cfg.log_format, "logfmt") == 0) {
    format = CK_LOG_LOGFMT;
  } else {
    fprintf(stderr, "chatkit-server: invalid log format \"%s\": expected json or logfmt\n",
            cfg.log_format);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  app a;
  memset(&a, 0, sizeof(a));
  a.log = ck_log_new(stderr, level, format);
  char errbuf[512] = "";
  ck_store *store = NULL;
  rc = ck_store_open_url(cfg.store, &store, errbuf, sizeof(errbuf));
  if (rc != CK_OK) {
    fprintf(stderr, "chatkit-server: cannot open store \"%s\": %s\n", cfg.store,
            errbuf[0] ? errbuf : ck_strerror(rc));
    ck_log_free(a.log);
    return 2;
  }

  /* Authentication: a JWT verifier, or everyone is the anonymous user. */
  ck_jwt_verifier *jwt = NULL;
  if (strcmp(cfg.auth, "jwt") == 0) {
    ck_jwt_config jcfg = {.hs256_secret = cfg.jwt_secret,
                          .public_key_file = cfg.jwt_public_key,
                          .jwks_url = cfg.jwt_jwks_url,
                          .issuer = cfg.jwt_issuer,
                          .audience = cfg.jwt_audience,
                          .user_claim = cfg.jwt_user_claim,
                          .log = a.log};
    rc = ck_jwt_verifier_new(&jcfg, &jwt, errbuf, sizeof(errbuf));
    if (rc != CK_OK) {
      fprintf(stderr, "chatkit-server: invalid JWT settings: %s\n", errbuf);
      ck_store_free(store);
      ck_log_free(a.log);
      return 2;
    }
    ck_log_event(a.log, CK_LOG_INFO, "auth: jwt", "secret", cfg.jwt_secret[0] ? "set" : NULL,
                 "public_key", cfg.jwt_public_key[0] ? cfg.jwt_public_key : NULL, "jwks_url",
                 cfg.jwt_jwks_url[0] ? cfg.jwt_jwks_url : NULL, "issuer",
                 cfg.jwt_issuer[0] ? cfg.jwt_issuer : NULL, "audience",
                 cfg.jwt_audience[0] ? cfg.jwt_audience : NULL, "user_claim", cfg.jwt_user_claim,
                 (const char *)NULL);
  } else {
    ck_log_event(a.log, CK_LOG_WARN, "auth disabled: every request is the anonymous user",
                 (const char *)NULL);
  }

  bool model_configured = cfg.openai_api_key[0] || cfg.openai_base_url[0] || cfg.model[0];
  if (model_configured)
    ck_log_event(a.log, CK_LOG_WARN,
                 "a model is configured but the model client is not built yet; the demo model "
                 "answers",
                 (const char *)NULL);
  ck_demo_config dcfg = {cfg.demo_tokens, cfg.demo_delay_ms};
  ck_demo *demo = ck_demo_new(&dcfg);
  ck_server_config scfg;
  memset(&scfg, 0, sizeof(scfg));
  scfg.store = store;
  scfg.handlers = ck_demo_handlers(demo);
  scfg.stream_lease_ms = cfg.stream_lease_ms > 0 ? cfg.stream_lease_ms : -1;
  ck_server *server = ck_server_new(&scfg);

  uv_loop_init(&a.loop);
  ck_service_config svcfg;
  memset(&svcfg, 0, sizeof(svcfg));
  svcfg.server = server;
  svcfg.store = store;
  svcfg.path = cfg.path;
  svcfg.workers = cfg.workers;
  svcfg.cors_origins = cfg.cors_origins;
  svcfg.shutdown_grace_ms = cfg.shutdown_grace_ms;
  svcfg.http.max_body_bytes = (size_t)cfg.max_body_bytes;
  svcfg.log = a.log;
  svcfg.auth = jwt ? ck_jwt_service_auth : NULL;
  svcfg.auth_ud = jwt;
  a.svc = (demo && server) ? ck_service_new(&a.loop, &svcfg) : NULL;
  if (a.svc == NULL) {
    fprintf(stderr, "chatkit-server: out of memory\n");
    return 1;
  }
  ck_demo_attach(demo, a.svc);
  rc = ck_service_listen(a.svc, cfg.host, cfg.port);
  if (rc != CK_OK) {
    fprintf(stderr, "chatkit-server: cannot listen on %s:%d: %s\n", cfg.host, cfg.port,
            rc == CK_EINVAL ? "not a numeric IPv4/IPv6 address" : "address in use or not allowed");
    return 2;
  }
  uv_signal_init(&a.loop, &a.sigterm);
  uv_signal_init(&a.loop, &a.sigint);
  a.sigterm.data = a.sigint.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);

  int port = ck_service_port(a.svc);
  bool v6 = strchr(cfg.host, ':') != NULL;
  printf(v6 ? "listening on http://[%s]:%d\n" : "listening on http://%s:%d\n", cfg.host, port);
  fflush(stdout);
  char port_s[16];
  snprintf(port_s, sizeof(port_s), "%d", port);
  ck_log_event(a.log, CK_LOG_INFO, "listening", "host", cfg.host, "port", port_s, "store",
               store->name, "model", model_configured ? "demo (model client pending)" : "demo",
               (const char *)NULL);

  uv_run(&a.loop, UV_RUN_DEFAULT);
  uv_loop_close(&a.loop);
  ck_server_free(server);
  ck_demo_free(demo);
  ck_store_free(store);
  ck_jwt_verifier_free(jwt);
  ck_log_event(a.log, CK_LOG_INFO, "stopped", (const char *)NULL);
  ck_log_free(a.log);
  return 0;
}
