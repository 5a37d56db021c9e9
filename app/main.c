/* chatkit-server: the ready-to-run binary. It reads its settings, opens the store, wires the
 * processor (with the demo model until a model is configured) into the HTTP service, prints
 * "listening on http://HOST:PORT" when ready and shuts down gracefully on SIGTERM/SIGINT. */
#include "agents.h"
#include "config.h"

#include <chatkit/auth.h>
#include <chatkit/demo.h>
#include <chatkit/error.h>
#include <chatkit/log.h>
#include <chatkit/metrics.h>
#include <chatkit/server.h>
#include <chatkit/service.h>
#include <chatkit/store.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

typedef struct app {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  ck_service *svc;
  ck_log *log;
  app_agents *agents; /* NULL with the demo model */
  bool signals_on;    /* the signal handles are initialised */
  int signals;
} app;

static void service_done(void *ud) {
  app *a = ud;
  /* The model client holds loop handles; freeing it lets the loop run out of work. */
  app_agents_stop(a->agents);
  if (a->signals_on) {
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
  }
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

static int parse_log_settings(const app_config *cfg, ck_log_level *level, ck_log_format *format) {
  if (ck_log_level_parse(cfg->log_level, level) != 0) {
    fprintf(stderr,
            "chatkit-server: invalid log level \"%s\": expected debug, info, warn, "
            "error or off\n",
            cfg->log_level);
    return 2;
  }
  if (strcmp(cfg->log_format, "json") == 0) {
    *format = CK_LOG_JSON;
  } else if (strcmp(cfg->log_format, "logfmt") == 0) {
    *format = CK_LOG_LOGFMT;
  } else {
    fprintf(stderr, "chatkit-server: invalid log format \"%s\": expected json or logfmt\n",
            cfg->log_format);
    return 2;
  }
  return 0;
}

/* The descriptor table is sized for this many descriptors at start-up, at most. */
#define APP_FD_TABLE_MAX 65536

/* Prepares the process for many connections, before any thread exists. The soft limit on open
 * descriptors is raised to the hard one (a default soft limit of 1024 would refuse the 1,021st
 * connection though the system allows more). Then the kernel's descriptor table is grown to that
 * size once: Linux grows it by doubling as descriptors are opened, and in a process with threads
 * each growth waits for an RCU grace period (milliseconds on a VM), which stalled the first
 * burst of a thousand connections by about 30 ms. Growing it here, while the process has one
 * thread, costs 8 bytes of kernel memory per descriptor and no wait. Returns the limit. */
static long prepare_descriptors(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  long limit = rl.rlim_cur == RLIM_INFINITY ? APP_FD_TABLE_MAX : (long)rl.rlim_cur;
  long top = (limit < APP_FD_TABLE_MAX ? limit : APP_FD_TABLE_MAX) - 1;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && top > fd) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)top);
    if (high >= 0)
      close(high);
  }
  if (fd >= 0)
    close(fd);
  return limit;
}

int main(int argc, char **argv) {
  app_config cfg;
  app a;
  memset(&a, 0, sizeof(a));
  ck_store *store = NULL;
  ck_jwt_verifier *jwt = NULL;
  ck_metrics *metrics = NULL;
  ck_demo *demo = NULL;
  ck_server *server = NULL;
  bool loop_on = false;
  int exit_code = 0;
  char errbuf[512] = "";
  ck_log_level level;
  ck_log_format format;

  int rc = app_config_load(&cfg, argc, argv);
  if (rc != 0) {
    exit_code = rc == 1 ? 0 : rc;
    goto done;
  }
  if ((exit_code = parse_log_settings(&cfg, &level, &format)) != 0)
    goto done;
  if (cfg.check) {
    /* Everything app_agents_build would refuse, without starting or contacting anything. */
    exit_code = app_model_configured(&cfg) ? app_agents_check(&cfg) : 0;
    if (exit_code == 0)
      printf("configuration ok\n");
    goto done;
  }
  signal(SIGPIPE, SIG_IGN);
  long fd_limit = prepare_descriptors();
  a.log = ck_log_new(stderr, level, format);
  rc = ck_store_open_url(cfg.store, &store, errbuf, sizeof(errbuf));
  if (rc != CK_OK) {
    fprintf(stderr, "chatkit-server: cannot open store \"%s\": %s\n", cfg.store,
            errbuf[0] ? errbuf : ck_strerror(rc));
    exit_code = 2;
    goto done;
  }
  /* Metrics: the registry, and every store call timed through a wrapper that owns the store. */
  if (cfg.metrics) {
    metrics = ck_metrics_new();
    ck_store *timed = metrics ? ck_store_metrics_wrap(store, metrics) : NULL;
    if (timed == NULL) {
      fprintf(stderr, "chatkit-server: out of memory\n");
      exit_code = 1;
      goto done;
    }
    store = timed;
  }

  /* Authentication: a JWT verifier, or everyone is the anonymous user. */
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
      exit_code = 2;
      goto done;
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

  bool model_configured = app_model_configured(&cfg);
  ck_demo_config dcfg = {cfg.demo_tokens, cfg.demo_delay_ms};
  demo = ck_demo_new(&dcfg);
  ck_server_config scfg;
  memset(&scfg, 0, sizeof(scfg));
  scfg.store = store;
  scfg.handlers = ck_demo_handlers(demo);
  scfg.stream_lease_ms = cfg.stream_lease_ms > 0 ? cfg.stream_lease_ms : -1;
  server = ck_server_new(&scfg);

  uv_loop_init(&a.loop);
  loop_on = true;
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
  svcfg.metrics = metrics;
  /* The binary's 0 means "no limit"; the service's is a negative value. */
  svcfg.rate_limit_rpm = cfg.rate_limit_rpm > 0 ? cfg.rate_limit_rpm : -1;
  svcfg.rate_limit_burst = cfg.rate_limit_burst;
  svcfg.max_streams_per_user = cfg.max_streams_per_user > 0 ? cfg.max_streams_per_user : -1;
  svcfg.max_streams = cfg.max_streams > 0 ? cfg.max_streams : -1;
  svcfg.max_stream_seconds = cfg.max_stream_seconds > 0 ? cfg.max_stream_seconds : -1;
  a.svc = (demo && server) ? ck_service_new(&a.loop, &svcfg) : NULL;
  if (a.svc == NULL) {
    fprintf(stderr, "chatkit-server: out of memory\n");
    exit_code = 1;
    goto done;
  }
  ck_demo_attach(demo, a.svc);
  if (model_configured) {
    exit_code = app_agents_build(&cfg, &a.loop, a.svc, a.log, metrics, &a.agents);
    if (exit_code != 0)
      goto stop;
    ck_server_set_handlers(server, app_agents_handlers(a.agents));
  }
  rc = ck_service_listen(a.svc, cfg.host, cfg.port);
  if (rc != CK_OK) {
    fprintf(stderr, "chatkit-server: cannot listen on %s:%d: %s\n", cfg.host, cfg.port,
            rc == CK_EINVAL ? "not a numeric IPv4/IPv6 address" : "address in use or not allowed");
    exit_code = 2;
    goto stop;
  }
  uv_signal_init(&a.loop, &a.sigterm);
  uv_signal_init(&a.loop, &a.sigint);
  a.signals_on = true;
  a.sigterm.data = a.sigint.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);

  int port = ck_service_port(a.svc);
  bool v6 = strchr(cfg.host, ':') != NULL;
  printf(v6 ? "listening on http://[%s]:%d\n" : "listening on http://%s:%d\n", cfg.host, port);
  fflush(stdout);
  char port_s[16], fds_s[24];
  snprintf(port_s, sizeof(port_s), "%d", port);
  snprintf(fds_s, sizeof(fds_s), "%ld", fd_limit);
  ck_log_event(a.log, CK_LOG_INFO, "listening", "host", cfg.host, "port", port_s, "max_fds", fds_s,
               "store", store->name, "model",
               model_configured ? (cfg.model[0] ? cfg.model : "configured") : "demo",
               (const char *)NULL);
  uv_run(&a.loop, UV_RUN_DEFAULT);
  goto done;

stop:
  /* Start-up failed after the service existed: close it the normal way so nothing leaks. */
  ck_service_shutdown(a.svc, service_done, &a);
  uv_run(&a.loop, UV_RUN_DEFAULT);
done:
  if (loop_on)
    uv_loop_close(&a.loop);
  app_agents_free(a.agents);
  ck_server_free(server);
  ck_demo_free(demo);
  ck_store_free(store);
  ck_metrics_free(metrics);
  ck_jwt_verifier_free(jwt);
  if (exit_code == 0)
    ck_log_event(a.log, CK_LOG_INFO, "stopped", (const char *)NULL);
  ck_log_free(a.log);
  app_config_free(&cfg);
  return exit_code;
}
