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
} app_config;

/** Fills `cfg` from all sources. Returns 0, 1 when the program should exit 0 (after --help or
 * --version), or 2 after printing a clear message for a bad value. */
int app_config_load(app_config *cfg, int argc, char **argv);

/** Reads KEY=VALUE lines from `path` into the environment without overriding variables that
 * are already set. A missing file is fine. Returns 0, or 2 after printing a message for a
 * malformed line. */
int app_dotenv_load(const char *path);

#endif
