/* libFuzzer harness for the binary's config file: libyaml's events turned into a JSON tree
 * with line numbers (app/yaml.c), then the settings sections read from that tree
 * (app/config.c). The input is written to a file in /dev/shm (or TMPDIR) because the loader
 * takes a path, as the binary does. It must never crash, leak or hang; a bad file is answered
 * with exit code 2 and a message, never anything else. The model, tools and agents sections
 * are then checked with app_agents_check, which validates them as the binary does but starts
 * and contacts nothing (building them for real may start MCP server processes named by the
 * file). Build with -DCK_FUZZ=ON (clang); run with -close_fd_mask=2 to silence the loader's
 * messages. */
/* By relative path: app/ is not an include directory, since app/yaml.h would shadow libyaml's
 * <yaml.h>. */
#include "../app/agents.h"
#include "../app/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scratch file's path, chosen once: libFuzzer gives a harness no other place for state. */
static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  snprintf(path, sizeof(path), "%s/ck-fuzz-config-%ld.yaml", dir ? dir : "/tmp", (long)getpid());
  /* Settings from the environment would be applied on top of the file; start clean. */
  unsetenv("CHATKIT_CONFIG");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    abort();
  if (size > 0 && fwrite(data, 1, size, f) != size)
    abort();
  fclose(f);
  char arg0[] = "chatkit-server", arg1[] = "--config";
  char *argv[] = {arg0, arg1, path, NULL};
  app_config cfg;
  int rc = app_config_load(&cfg, 3, argv);
  if (rc != 0 && rc != 2)
    abort(); /* 1 means --help/--version, which a file cannot ask for */
  if (rc == 0 && app_model_configured(&cfg)) {
    rc = app_agents_check(&cfg);
    if (rc != 0 && rc != 2)
      abort();
  }
  app_config_free(&cfg);
  unlink(path);
  return 0;
}
