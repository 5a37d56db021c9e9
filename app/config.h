/* The binary's settings: defaults, then the config file, then the environment (with .env),
 * then the command line, each overriding the one before. */
#ifndef CK_APP_CONFIG_H
#define CK_APP_CONFIG_H

#include <stdbool.h>

typedef struct app_config {
  char host[256];
  int port;
  char store[1024];
  char config_file[1024];
  char log_level[16];
  char log_format[16];
  char cors_origins[1024];
  char path[128];
  int workers;
  int demo_tokens;
  int demo_delay_ms;
  int shutdown_grace_ms;
  int stream_lease_ms; /* 0: streams take no lease */
  long max_body_bytes;
  char openai_api_key[512]; /* never logged */
  char openai_base_url[512];
  char model[128];
  char auth[16];             /* "none" or "jwt" */
  char jwt_secret[1024];     /* never logged */
  char jwt_public_key[1024]; /* a PEM file */
  char jwt_jwks_url[2048];
  char jwt_issuer[512];
  char jwt_audience[512];
  char jwt_user_claim[128];
  char api[32];             /* "responses" | "chat_completions" | "" (auto) */
  char instructions[4096];  /* the default agent's system prompt */
  struct app_yaml *yaml;    /* the config file, for the agent sections (or NULL) */
  bool metrics;             /* serve GET /metrics */
  int rate_limit_rpm;       /* requests per minute per user; 0: no limit */
  int rate_limit_burst;     /* 0: rate_limit_rpm */
  int max_streams_per_user; /* 0: no limit */
  int max_streams;          /* 0: no limit */
  int max_stream_seconds;   /* 0: no limit */
  bool check;               /* --check: validate everything, start nothing, exit */
} app_config;

/** Frees what app_config_load allocated. */
void app_config_free(app_config *cfg);

/** Fills `cfg` from all sources. Returns 0, 1 when the program should exit 0 (after --help or
 * --version), or 2 after printing a clear message for a bad value. */
int app_config_load(app_config *cfg, int argc, char **argv);

/** Reads KEY=VALUE lines from `path` into the environment without overriding variables that
 * are already set. A missing file is fine. Returns 0, or 2 after printing a message for a
 * malformed line. */
int app_dotenv_load(const char *path);

#endif
