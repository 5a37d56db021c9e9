/* Settings of the chatkit-server binary (see config.h). */
#include "config.h"
#include "yaml.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CK_VERSION
#define CK_VERSION "0.0.0"
#endif

static const char usage[] =
    "Usage: chatkit-server [options]\n"
    "\n"
    "A ChatKit backend: point @openai/chatkit at http://HOST:PORT/chatkit.\n"
    "\n"
    "Options (environment variable in brackets):\n"
    "  --host H             address to listen on [CHATKIT_HOST] (default 127.0.0.1)\n"
    "  --port P             port, 0 picks a free one [CHATKIT_PORT, PORT] (default 8000)\n"
    "  --store URL          memory: | sqlite:PATH | postgres://USER:PASS@HOST:PORT/DB\n"
    "                       [CHATKIT_STORE, DATABASE_URL]\n"
    "                       (default sqlite:./data/chatkit.db)\n"
    "  --config FILE        YAML config file [CHATKIT_CONFIG]\n"
    "  --log-level L        debug | info | warn | error | off [CHATKIT_LOG_LEVEL] (default info)\n"
    "  --log-format F       json | logfmt [CHATKIT_LOG_FORMAT] (default json)\n"
    "  --cors-origins LIST  comma-separated allowed origins, * for any [CHATKIT_CORS_ORIGINS]\n"
    "                       (default http://localhost:3000)\n"
    "  --path P             the ChatKit endpoint [CHATKIT_PATH] (default /chatkit)\n"
    "  --workers N          worker threads for store and handler calls [CHATKIT_WORKERS]\n"
    "                       (default 4)\n"
    "  --max-body-bytes N   largest request body [CHATKIT_MAX_BODY_BYTES] (default 1048576)\n"
    "  --shutdown-grace-ms N  how long streams may finish on SIGTERM (default 10000)\n"
    "  --model NAME         the model [CHATKIT_MODEL] (default gpt-4.1-mini)\n"
    "  --base-url URL       OpenAI-compatible API [OPENAI_BASE_URL] (default OpenAI); the key\n"
    "                       comes from OPENAI_API_KEY\n"
    "  --api STYLE          responses | chat_completions [CHATKIT_API] (default: responses for\n"
    "                       api.openai.com, chat_completions otherwise)\n"
    "  --instructions TEXT  the assistant's system prompt [CHATKIT_INSTRUCTIONS]\n"
    "  --stream-lease-ms N  how long a thread stays locked to a stream without renewal, and\n"
    "                       so after a crash [CHATKIT_STREAM_LEASE_MS] (default 60000, 0: off)\n"
    "  --demo-tokens N      tokens per demo-model reply (default: the reply's length)\n"
    "  --demo-delay-ms D    pause between demo-model tokens (default 30)\n"
    "  --auth MODE          none | jwt [CHATKIT_AUTH] (default: none on a loopback address;\n"
    "                       elsewhere it must be chosen)\n"
    "  --jwt-secret S       HS256 secret, at least 32 bytes [CHATKIT_JWT_SECRET]\n"
    "  --jwt-public-key F   PEM public key or certificate, RSA or EC P-256\n"
    "                       [CHATKIT_JWT_PUBLIC_KEY]\n"
    "  --jwt-jwks-url URL   JWKS of the token issuer [CHATKIT_JWT_JWKS_URL]\n"
    "  --jwt-issuer S       required iss claim [CHATKIT_JWT_ISSUER]\n"
    "  --jwt-audience S     required aud claim [CHATKIT_JWT_AUDIENCE]\n"
    "  --jwt-user-claim C   claim naming the user [CHATKIT_JWT_USER_CLAIM] (default sub)\n"
    "  --metrics B          serve GET /metrics: true | false [CHATKIT_METRICS] (default true)\n"
    "  --rate-limit-rpm N   requests per minute per user, 0 for no limit\n"
    "                       [CHATKIT_RATE_LIMIT_RPM] (default 120)\n"
    "  --rate-limit-burst N requests a user may make at once [CHATKIT_RATE_LIMIT_BURST]\n"
    "                       (default: the per-minute rate)\n"
    "  --max-streams-per-user N  concurrent streams per user, 0 for no limit\n"
    "                       [CHATKIT_MAX_STREAMS_PER_USER] (default 10)\n"
    "  --max-streams N      concurrent streams in all, 0 for no limit [CHATKIT_MAX_STREAMS]\n"
    "                       (default 10000)\n"
    "  --max-stream-seconds N  a longer stream is cancelled, 0 for no limit\n"
    "                       [CHATKIT_MAX_STREAM_SECONDS] (default 1800)\n"
    "  --check              check the settings and the config file (model, tools and agents\n"
    "                       included; no MCP server is started) and exit: 0 when valid,\n"
    "                       2 with a message naming the problem otherwise\n"
    "  --help, --version\n"
    "\n"
    "A .env file in the working directory is read first (it never overrides the environment).\n"
    "With no model configured (OPENAI_API_KEY, OPENAI_BASE_URL or a model in the config file),\n"
    "the built-in demo model answers.\n";

static int bad(const char *what, const char *value, const char *why) {
  fprintf(stderr, "chatkit-server: invalid %s \"%s\": %s\n", what, value, why);
  return 2;
}

static int set_str(char *dst, size_t cap, const char *what, const char *value) {
  if (strlen(value) >= cap)
    return bad(what, value, "too long");
  memcpy(dst, value, strlen(value) + 1);
  return 0;
}

/* Like set_str for secrets: the value is never echoed. */
static int set_secret(char *dst, size_t cap, const char *what, const char *value) {
  if (strlen(value) >= cap) {
    fprintf(stderr, "chatkit-server: invalid %s: too long (at most %zu bytes)\n", what, cap - 1);
    return 2;
  }
  memcpy(dst, value, strlen(value) + 1);
  return 0;
}

static int set_int(int *dst, const char *what, const char *value, long min, long max) {
  char *end = NULL;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
    char why[96];
    snprintf(why, sizeof(why), "expected an integer from %ld to %ld", min, max);
    return bad(what, value, why);
  }
  *dst = (int)v;
  return 0;
}

/* One setting by its canonical name (the long flag without dashes, '-' as '_'). */
static int apply(app_config *cfg, const char *key, const char *value) {
  if (strcmp(key, "host") == 0)
    return set_str(cfg->host, sizeof(cfg->host), "host", value);
  if (strcmp(key, "port") == 0)
    return set_int(&cfg->port, "port", value, 0, 65535);
  if (strcmp(key, "store") == 0)
    return set_str(cfg->store, sizeof(cfg->store), "store", value);
  if (strcmp(key, "log_level") == 0)
    return set_str(cfg->log_level, sizeof(cfg->log_level), "log level", value);
  if (strcmp(key, "log_format") == 0)
    return set_str(cfg->log_format, sizeof(cfg->log_format), "log format", value);
  if (strcmp(key, "cors_origins") == 0)
    return set_str(cfg->cors_origins, sizeof(cfg->cors_origins), "CORS origins", value);
  if (strcmp(key, "path") == 0)
    return set_str(cfg->path, sizeof(cfg->path), "path", value);
  if (strcmp(key, "workers") == 0)
    return set_int(&cfg->workers, "workers", value, 1, 1024);
  if (strcmp(key, "demo_tokens") == 0)
    return set_int(&cfg->demo_tokens, "demo tokens", value, 0, 4096);
  if (strcmp(key, "demo_delay_ms") == 0)
    return set_int(&cfg->demo_delay_ms, "demo delay", value, 0, 60000);
  if (strcmp(key, "stream_lease_ms") == 0)
    return set_int(&cfg->stream_lease_ms, "stream lease", value, 0, 86400000);
  if (strcmp(key, "shutdown_grace_ms") == 0)
    return set_int(&cfg->shutdown_grace_ms, "shutdown grace", value, 0, 3600000);
  if (strcmp(key, "max_body_bytes") == 0) {
    int v = 0;
    int rc = set_int(&v, "max body bytes", value, 1024, 256 * 1024 * 1024);
    cfg->max_body_bytes = v;
    return rc;
  }
  if (strcmp(key, "model") == 0)
    return set_str(cfg->model, sizeof(cfg->model), "model", value);
  if (strcmp(key, "openai_base_url") == 0 || strcmp(key, "base_url") == 0)
    return set_str(cfg->openai_base_url, sizeof(cfg->openai_base_url), "base URL", value);
  if (strcmp(key, "api") == 0) {
    if (strcmp(value, "responses") != 0 && strcmp(value, "chat_completions") != 0)
      return bad("API style", value, "expected responses or chat_completions");
    return set_str(cfg->api, sizeof(cfg->api), "API style", value);
  }
  if (strcmp(key, "instructions") == 0)
    return set_str(cfg->instructions, sizeof(cfg->instructions), "instructions", value);
  if (strcmp(key, "auth") == 0) {
    if (strcmp(value, "none") != 0 && strcmp(value, "jwt") != 0)
      return bad("auth", value, "expected none or jwt");
    return set_str(cfg->auth, sizeof(cfg->auth), "auth", value);
  }
  if (strcmp(key, "jwt_secret") == 0)
    return set_secret(cfg->jwt_secret, sizeof(cfg->jwt_secret), "JWT secret", value);
  if (strcmp(key, "jwt_public_key") == 0)
    return set_str(cfg->jwt_public_key, sizeof(cfg->jwt_public_key), "JWT public key", value);
  if (strcmp(key, "jwt_jwks_url") == 0)
    return set_str(cfg->jwt_jwks_url, sizeof(cfg->jwt_jwks_url), "JWKS URL", value);
  if (strcmp(key, "jwt_issuer") == 0)
    return set_str(cfg->jwt_issuer, sizeof(cfg->jwt_issuer), "JWT issuer", value);
  if (strcmp(key, "jwt_audience") == 0)
    return set_str(cfg->jwt_audience, sizeof(cfg->jwt_audience), "JWT audience", value);
  if (strcmp(key, "jwt_user_claim") == 0)
    return set_str(cfg->jwt_user_claim, sizeof(cfg->jwt_user_claim), "JWT user claim", value);
  if (strcmp(key, "metrics") == 0) {
    if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
      return bad("metrics", value, "expected true or false");
    cfg->metrics = strcmp(value, "true") == 0;
    return 0;
  }
  if (strcmp(key, "rate_limit_rpm") == 0)
    return set_int(&cfg->rate_limit_rpm, "rate limit", value, 0, 1000000);
  if (strcmp(key, "rate_limit_burst") == 0)
    return set_int(&cfg->rate_limit_burst, "rate limit burst", value, 0, 1000000);
  if (strcmp(key, "max_streams_per_user") == 0)
    return set_int(&cfg->max_streams_per_user, "max streams per user", value, 0, 1000000);
  if (strcmp(key, "max_streams") == 0)
    return set_int(&cfg->max_streams, "max streams", value, 0, 1000000);
  if (strcmp(key, "max_stream_seconds") == 0)
    return set_int(&cfg->max_stream_seconds, "max stream seconds", value, 0, 604800);
  return -1;
}

int app_dotenv_load(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  char line[4096];
  int lineno = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
    lineno++;
    char *p = line;
    while (*p == ' ' || *p == '\t')
      p++;
    p[strcspn(p, "\r\n")] = '\0';
    if (*p == '\0' || *p == '#')
      continue;
    if (strncmp(p, "export ", 7) == 0)
      p += 7;
    char *eq = strchr(p, '=');
    if (eq == NULL) {
      fprintf(stderr, "chatkit-server: %s:%d: expected KEY=VALUE\n", path, lineno);
      rc = 2;
      break;
    }
    *eq = '\0';
    char *key = p, *value = eq + 1;
    size_t kl = strlen(key);
    while (kl > 0 && (key[kl - 1] == ' ' || key[kl - 1] == '\t'))
      key[--kl] = '\0';
    size_t vl = strlen(value);
    if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
      value[vl - 1] = '\0';
      value++;
    }
    if (getenv(key) == NULL)
      setenv(key, value, 0);
  }
  fclose(f);
  return rc;
}

/* Top-level keys of the config file that belong to the agent setup (app/agents.c validates
 * them). "model" is also a plain setting when it is a scalar (the model name). */
static bool agent_section(const char *key, const ck_json *v) {
  static const char *const keys[] = {"agents", "tools", "default_agent", "title", "history",
                                     "models", NULL};
  if (strcmp(key, "model") == 0)
    return ck_json_is_object(v);
  for (size_t i = 0; keys[i] != NULL; i++)
    if (strcmp(key, keys[i]) == 0)
      return true;
  return false;
}

/* Applies one scalar of the file; `where` names it in messages ("server.port"). */
static int apply_scalar(app_config *cfg, app_yaml *y, const char *key, const ck_json *v,
                        const char *where) {
  int line = app_yaml_line(y, v);
  if (ck_json_is_object(v) || ck_json_is_array(v)) {
    fprintf(stderr, "chatkit-server: %s:%d: %s must be a single value\n", app_yaml_path(y), line,
            where);
    return 2;
  }
  ck_arena *a = ck_arena_new(256);
  const char *text = ck_json_is_string(v) ? ck_json_str_value(v) : ck_json_dumps(a, v, NULL);
  int r = text ? apply(cfg, key, text) : 2;
  ck_arena_free(a);
  if (r < 0) {
    fprintf(stderr, "chatkit-server: %s:%d: unknown key %s\n", app_yaml_path(y), line, where);
    return 2;
  }
  if (r > 0)
    fprintf(stderr, "chatkit-server: (in %s:%d, key %s)\n", app_yaml_path(y), line, where);
  return r;
}

/* The config file: the settings above at the top level or under server:, plus the agent
 * sections, which are kept for app/agents.c. */
static int load_yaml(app_config *cfg, const char *path) {
  app_yaml *y = NULL;
  int rc = app_yaml_load(path, &y);
  if (rc != 0)
    return rc;
  ck_json *root = app_yaml_root(y);
  if (root != NULL && !ck_json_is_object(root)) {
    fprintf(stderr, "chatkit-server: %s:%d: the config file must be a mapping\n", path,
            app_yaml_line(y, root));
    rc = 2;
  }
  for (size_t i = 0; rc == 0 && i < ck_json_object_size(root); i++) {
    const char *key = ck_json_object_key(root, i);
    const ck_json *v = ck_json_object_value(root, i);
    if (strcmp(key, "server") == 0) {
      if (!ck_json_is_object(v)) {
        fprintf(stderr, "chatkit-server: %s:%d: server must be a mapping\n", path,
                app_yaml_line(y, v));
        rc = 2;
      }
      for (size_t k = 0; rc == 0 && k < ck_json_object_size(v); k++) {
        char where[160];
        snprintf(where, sizeof(where), "server.%.140s", ck_json_object_key(v, k));
        rc = apply_scalar(cfg, y, ck_json_object_key(v, k), ck_json_object_value(v, k), where);
      }
    } else if (!agent_section(key, v)) {
      rc = apply_scalar(cfg, y, key, v, key);
    }
  }
  if (rc != 0) {
    app_yaml_free(y);
    return rc;
  }
  cfg->yaml = y;
  return 0;
}

void app_config_free(app_config *cfg) {
  app_yaml_free(cfg->yaml);
  cfg->yaml = NULL;
}

static void defaults(app_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
  cfg->port = 8000;
  snprintf(cfg->store, sizeof(cfg->store), "sqlite:./data/chatkit.db");
  snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
  snprintf(cfg->log_format, sizeof(cfg->log_format), "json");
  snprintf(cfg->cors_origins, sizeof(cfg->cors_origins), "http://localhost:3000");
  snprintf(cfg->path, sizeof(cfg->path), "/chatkit");
  cfg->workers = 4;
  cfg->demo_delay_ms = 30;
  cfg->shutdown_grace_ms = 10000;
  cfg->stream_lease_ms = 60000;
  cfg->max_body_bytes = 1024 * 1024;
  cfg->auth[0] = '\0'; /* unset: "none" on loopback, refused elsewhere (check_auth) */
  snprintf(cfg->jwt_user_claim, sizeof(cfg->jwt_user_claim), "sub");
  cfg->metrics = true;
  cfg->rate_limit_rpm = 120;
  cfg->max_streams_per_user = 10;
  cfg->max_streams = 10000;
  cfg->max_stream_seconds = 1800;
}

static const struct {
  const char *env;
  const char *key;
} env_map[] = {
    {"CHATKIT_HOST", "host"},
    {"PORT", "port"},
    {"CHATKIT_PORT", "port"},
    {"DATABASE_URL", "store"},
    {"CHATKIT_STORE", "store"},
    {"CHATKIT_LOG_LEVEL", "log_level"},
    {"CHATKIT_LOG_FORMAT", "log_format"},
    {"CHATKIT_CORS_ORIGINS", "cors_origins"},
    {"CHATKIT_PATH", "path"},
    {"CHATKIT_WORKERS", "workers"},
    {"CHATKIT_MAX_BODY_BYTES", "max_body_bytes"},
    {"CHATKIT_STREAM_LEASE_MS", "stream_lease_ms"},
    {"CHATKIT_MODEL", "model"},
    {"OPENAI_BASE_URL", "openai_base_url"},
    {"CHATKIT_API", "api"},
    {"CHATKIT_INSTRUCTIONS", "instructions"},
    {"CHATKIT_AUTH", "auth"},
    {"CHATKIT_JWT_SECRET", "jwt_secret"},
    {"CHATKIT_JWT_PUBLIC_KEY", "jwt_public_key"},
    {"CHATKIT_JWT_JWKS_URL", "jwt_jwks_url"},
    {"CHATKIT_JWT_ISSUER", "jwt_issuer"},
    {"CHATKIT_JWT_AUDIENCE", "jwt_audience"},
    {"CHATKIT_JWT_USER_CLAIM", "jwt_user_claim"},
    {"CHATKIT_METRICS", "metrics"},
    {"CHATKIT_RATE_LIMIT_RPM", "rate_limit_rpm"},
    {"CHATKIT_RATE_LIMIT_BURST", "rate_limit_burst"},
    {"CHATKIT_MAX_STREAMS_PER_USER", "max_streams_per_user"},
    {"CHATKIT_MAX_STREAMS", "max_streams"},
    {"CHATKIT_MAX_STREAM_SECONDS", "max_stream_seconds"},
};

/* Authentication settings must agree: jwt needs a key, and key settings without jwt would
 * silently leave the server open, so both are refused. */
/* Loopback addresses are a developer's machine; anything else may face the network. */
static bool loopback_host(const char *host) {
  return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
         strcmp(host, "localhost") == 0;
}

static int check_auth(app_config *cfg) {
  bool any_key = cfg->jwt_secret[0] || cfg->jwt_public_key[0] || cfg->jwt_jwks_url[0];
  if (cfg->auth[0] == '\0') {
    /* Nobody chose: a server reachable from the network must not silently accept anyone. */
    if (!loopback_host(cfg->host)) {
      fprintf(stderr,
              "chatkit-server: refusing to serve %s without authentication: set --auth jwt with "
              "a key (--jwt-secret, --jwt-public-key or --jwt-jwks-url), or --auth none to "
              "accept anonymous requests on purpose\n",
              cfg->host);
      return 2;
    }
    snprintf(cfg->auth, sizeof(cfg->auth), "none");
  }
  if (strcmp(cfg->auth, "jwt") == 0 && !any_key) {
    fprintf(stderr, "chatkit-server: --auth jwt needs a key source: --jwt-secret, "
                    "--jwt-public-key or --jwt-jwks-url\n");
    return 2;
  }
  if (strcmp(cfg->auth, "none") == 0 && (any_key || cfg->jwt_issuer[0] || cfg->jwt_audience[0])) {
    fprintf(stderr, "chatkit-server: JWT settings are given but --auth is none; set --auth jwt "
                    "(CHATKIT_AUTH=jwt) or remove them\n");
    return 2;
  }
  return 0;
}

int app_config_load(app_config *cfg, int argc, char **argv) {
  defaults(cfg);
  int rc = app_dotenv_load(".env");
  if (rc != 0)
    return rc;
  /* --help, --version and --config first: the file sits below env and flags. */
  const char *config = getenv("CHATKIT_CONFIG");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      return 1;
    }
    if (strcmp(argv[i], "--version") == 0) {
      printf("chatkit-server %s\n", CK_VERSION);
      return 1;
    }
    if (strcmp(argv[i], "--check") == 0)
      cfg->check = true;
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      config = argv[i + 1];
    else if (strncmp(argv[i], "--config=", 9) == 0)
      config = argv[i] + 9;
  }
  if (config != NULL && *config != '\0') {
    if ((rc = set_str(cfg->config_file, sizeof(cfg->config_file), "config", config)) != 0)
      return rc;
    if ((rc = load_yaml(cfg, config)) != 0)
      return rc;
  }
  for (size_t i = 0; i < sizeof(env_map) / sizeof(env_map[0]); i++) {
    const char *v = getenv(env_map[i].env);
    if (v != NULL && *v != '\0' && (rc = apply(cfg, env_map[i].key, v)) != 0) {
      fprintf(stderr, "chatkit-server: (from the environment variable %s)\n", env_map[i].env);
      return rc;
    }
  }
  const char *key = getenv("OPENAI_API_KEY");
  if (key != NULL &&
      (rc = set_str(cfg->openai_api_key, sizeof(cfg->openai_api_key), "OPENAI_API_KEY", key)) != 0)
    return rc;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--check") == 0)
      continue; /* the one option without a value, taken above */
    if (strncmp(arg, "--", 2) != 0) {
      fprintf(stderr, "chatkit-server: unexpected argument \"%s\" (see --help)\n", arg);
      return 2;
    }
    char name[64];
    const char *value = NULL;
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (n >= sizeof(name)) {
      fprintf(stderr, "chatkit-server: unknown option %s (see --help)\n", arg);
      return 2;
    }
    memcpy(name, arg + 2, n);
    name[n] = '\0';
    for (char *p = name; *p; p++)
      if (*p == '-')
        *p = '_';
    if (eq != NULL) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      fprintf(stderr, "chatkit-server: option %s needs a value (see --help)\n", arg);
      return 2;
    }
    if (strcmp(name, "config") == 0)
      continue;
    rc = apply(cfg, name, value);
    if (rc < 0) {
      fprintf(stderr, "chatkit-server: unknown option --%.*s (see --help)\n", (int)n, arg + 2);
      return 2;
    }
    if (rc > 0)
      return rc;
  }
  return check_auth(cfg);
}
