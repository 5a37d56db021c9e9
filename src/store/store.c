/* Backend-independent store entry points: freeing and opening a store from a URL. */
#include <chatkit/error.h>
#include <chatkit/store.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/errbuf.h"

/* The longest directory path we create for "sqlite:PATH" (PATH_MAX on Linux). */
#define STORE_DIR_MAX 4096

void ck_store_free(ck_store *s) {
  if (s == NULL)
    return;
  s->vt->destroy(s);
}

/* Creates `dir` and its missing parents, like `mkdir -p`. An existing directory is fine. */
static int mkdir_p(const char *dir, char *errbuf, size_t errlen) {
  char path[STORE_DIR_MAX];
  size_t n = strlen(dir);
  if (n == 0)
    return CK_OK;
  if (n >= sizeof(path)) {
    ck__errf(errbuf, errlen, "store directory path is too long: %.64s...", dir);
    return CK_EINVAL;
  }
  memcpy(path, dir, n + 1);
  /* Create every prefix that ends just before a '/', then the whole path. Skipping index 0
   * keeps an absolute path's root out of it. */
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0')
      continue;
    char saved = path[i];
    path[i] = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
      ck__errf(errbuf, errlen, "cannot create directory \"%s\": %s", path, strerror(errno));
      return CK_ESTORE;
    }
    path[i] = saved;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    ck__errf(errbuf, errlen, "\"%s\" exists and is not a directory", dir);
    return CK_ESTORE;
  }
  return CK_OK;
}

/* Creates the directory that will hold the database file `path`, if it has one. */
static int make_parent_dir(const char *path, char *errbuf, size_t errlen) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL || slash == path)
    return CK_OK; /* the current directory or "/" */
  size_t n = (size_t)(slash - path);
  char dir[STORE_DIR_MAX];
  if (n >= sizeof(dir)) {
    ck__errf(errbuf, errlen, "store path is too long: %.64s...", path);
    return CK_EINVAL;
  }
  memcpy(dir, path, n);
  dir[n] = '\0';
  return mkdir_p(dir, errbuf, errlen);
}

int ck_store_open_url(const char *url, ck_store **out, char *errbuf, size_t errlen) {
  *out = NULL;
  if (url == NULL)
    url = "";
  if (strcmp(url, "memory:") == 0) {
    *out = ck_store_memory_new();
    return *out != NULL ? CK_OK : CK_ENOMEM;
  }
  if (strncmp(url, "sqlite:", 7) == 0) {
    const char *path = url + 7;
    if (path[0] == '\0') {
      ck__errf(errbuf, errlen, "store URL \"%s\" has no path: expected sqlite:PATH", url);
      return CK_EINVAL;
    }
    int rc = make_parent_dir(path, errbuf, errlen);
    if (rc != CK_OK)
      return rc;
    return ck_store_sqlite_open(path, out, errbuf, errlen);
  }
  /* libpq parses the URL itself (host, port, database, sslmode and the other parameters), so
   * it is passed on as it is; only the scheme decides the backend. */
  if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
    return ck_store_postgres_open(url, 0, out, errbuf, errlen);
  ck__errf(errbuf, errlen,
           "unknown store URL \"%s\": expected memory:, sqlite:PATH or postgres://...", url);
  return CK_EINVAL;
}
