/* The SQLite store: the shared suite plus what only a file-backed store has (persistence,
 * schema versions, several handles on one file). Every database lives in a fresh mkdtemp
 * directory that is removed at the end. */
#include <chatkit/error.h>
#include <chatkit/json.h>
#include <chatkit/store.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "support/store_suite.h"

/* The temporary directory and the database the current case uses. */
typedef struct tmp {
  char dir[64];
  char path[128];
  int n;
} tmp;

static void remove_db(const char *path) {
  char p[160];
  unlink(path);
  snprintf(p, sizeof(p), "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof(p), "%s-shm", path);
  unlink(p);
}

static ck_store *open_fresh(void *ud) {
  tmp *t = ud;
  snprintf(t->path, sizeof(t->path), "%s/suite-%d.db", t->dir, t->n++);
  ck_store *s = NULL;
  char err[256] = "";
  if (ck_store_sqlite_open(t->path, &s, err, sizeof(err)) != CK_OK)
    print_error("open %s: %s\n", t->path, err);
  return s;
}

static void cleanup(void *ud) {
  tmp *t = ud;
  remove_db(t->path);
}

static ck_json *parse(ck_arena *a, const char *text) {
  ck_json *v = NULL;
  assert_int_equal(ck_json_parse(a, text, strlen(text), 0, &v, NULL), CK_OK);
  return v;
}

static ck_store *open_ok(const char *path) {
  ck_store *s = NULL;
  char err[256] = "";
  int rc = ck_store_sqlite_open(path, &s, err, sizeof(err));
  if (rc != CK_OK)
    fail_msg("open %s: %s (%s)", path, err, ck_strerror(rc));
  assert_string_equal(s->name, "sqlite");
  return s;
}

/* Runs one SQL statement on the file directly, as another program would. */
static void raw_sql(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg("%s: %s", sql, msg);
  sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static const char *raw_text(ck_arena *a, const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  const char *v = ck_arena_strdup(a, (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static const char THREAD[] =
    "{\"title\":\"T\",\"id\":\"thr_1\",\"created_at\":\"2025-01-01T00:00:00\","
    "\"status\":{\"type\":\"active\"},\"metadata\":{\"k\":\"v\"}}";
static const char ITEM[] = "{\"id\":\"msg_1\",\"thread_id\":\"thr_1\",\"created_at\":"
                           "\"2025-01-01T00:00:01\",\"type\":\"user_message\",\"content\":[],"
                           "\"attachments\":[],\"inference_options\":{}}";
static const char ATT[] = "{\"id\":\"atc_1\",\"type\":\"file\",\"name\":\"f\",\"mime_type\":"
                          "\"text/plain\",\"metadata\":{\"m\":1}}";
static const ck_ctx ALICE = {.user_id = "alice"};

static void test_reopen_keeps_data(void **state) {
  tmp *t = *state;
  ck_arena *a = ck_arena_new(0);
  snprintf(t->path, sizeof(t->path), "%s/reopen.db", t->dir);
  ck_store *s = open_ok(t->path);
  assert_int_equal(s->vt->save_thread(s, parse(a, THREAD), &ALICE), CK_OK);
  assert_int_equal(s->vt->add_thread_item(s, "thr_1", parse(a, ITEM), &ALICE), CK_OK);
  assert_int_equal(s->vt->save_attachment(s, parse(a, ATT), &ALICE), CK_OK);
  ck_store_free(s);

  s = open_ok(t->path);
  ck_json *v;
  assert_int_equal(s->vt->load_thread(s, a, "thr_1", &ALICE, &v), CK_OK);
  assert_string_equal(ck_json_dumps(a, v, NULL), THREAD);
  assert_int_equal(s->vt->load_item(s, a, "thr_1", "msg_1", &ALICE, &v), CK_OK);
  assert_string_equal(ck_json_dumps(a, v, NULL), ITEM);
  assert_int_equal(s->vt->load_attachment(s, a, "atc_1", &ALICE, &v), CK_OK);
  assert_string_equal(ck_json_dumps(a, v, NULL), ATT);
  /* New records still sort after the old ones: the insertion counter survived too. */
  const char *item2 = "{\"id\":\"msg_2\",\"created_at\":\"2025-01-01T00:00:01\",\"type\":\"x\"}";
  assert_int_equal(s->vt->add_thread_item(s, "thr_1", parse(a, item2), &ALICE), CK_OK);
  ck_page p;
  assert_int_equal(s->vt->load_thread_items(s, a, "thr_1", NULL, 1, CK_ORDER_DESC, &ALICE, &p),
                   CK_OK);
  assert_string_equal(ck_json_object_get_str(ck_json_expand(a, ck_json_array_get(p.data, 0)), "id"),
                      "msg_2");
  ck_store_free(s);
  remove_db(t->path);
  ck_arena_free(a);
}

static void test_schema_and_pragmas(void **state) {
  tmp *t = *state;
  ck_arena *a = ck_arena_new(0);
  snprintf(t->path, sizeof(t->path), "%s/schema.db", t->dir);
  ck_store *s = open_ok(t->path);
  assert_int_equal(s->vt->ping(s), CK_OK);
  ck_store_free(s);
  assert_int_equal(raw_int(t->path, "SELECT version FROM schema_version"), 2);
  assert_int_equal(raw_int(t->path, "SELECT count(*) FROM schema_version"), 1);
  assert_string_equal(raw_text(a, t->path, "PRAGMA journal_mode"), "wal");
  /* Opening again does not re-run migrations. */
  s = open_ok(t->path);
  ck_store_free(s);
  assert_int_equal(raw_int(t->path, "SELECT version FROM schema_version"), 2);
  remove_db(t->path);
  ck_arena_free(a);
}

static void test_newer_schema_refused(void **state) {
  tmp *t = *state;
  snprintf(t->path, sizeof(t->path), "%s/newer.db", t->dir);
  ck_store_free(open_ok(t->path));
  raw_sql(t->path, "UPDATE schema_version SET version = 99");
  ck_store *s = (ck_store *)1;
  char err[256] = "";
  assert_int_equal(ck_store_sqlite_open(t->path, &s, err, sizeof(err)), CK_ESTORE);
  assert_null(s);
  assert_non_null(strstr(err, "schema version 99"));
  assert_non_null(strstr(err, "newer"));
  /* Refusing must not have changed the file. */
  assert_int_equal(raw_int(t->path, "SELECT version FROM schema_version"), 99);
  remove_db(t->path);
}

static void test_open_errors(void **state) {
  tmp *t = *state;
  ck_store *s = NULL;
  char err[256] = "";
  snprintf(t->path, sizeof(t->path), "%s/missing/dir/x.db", t->dir);
  assert_int_equal(ck_store_sqlite_open(t->path, &s, err, sizeof(err)), CK_ESTORE);
  assert_null(s);
  assert_non_null(strstr(err, "cannot open"));
  /* A file that is not a database. */
  snprintf(t->path, sizeof(t->path), "%s/junk.db", t->dir);
  FILE *fp = fopen(t->path, "w");
  assert_non_null(fp);
  fputs("this is not an SQLite database, not even close, padding padding padding padding", fp);
  fclose(fp);
  assert_int_equal(ck_store_sqlite_open(t->path, &s, err, sizeof(err)), CK_ESTORE);
  assert_null(s);
  remove_db(t->path);
}

/* A record whose text was damaged behind the store's back is a store failure. */
static void test_corrupt_record(void **state) {
  tmp *t = *state;
  ck_arena *a = ck_arena_new(0);
  snprintf(t->path, sizeof(t->path), "%s/corrupt.db", t->dir);
  ck_store *s = open_ok(t->path);
  assert_int_equal(s->vt->save_thread(s, parse(a, THREAD), &ALICE), CK_OK);
  raw_sql(t->path, "UPDATE threads SET json = '{\"id\":'");
  ck_json *v;
  assert_int_equal(s->vt->load_thread(s, a, "thr_1", &ALICE, &v), CK_ESTORE);
  ck_store_free(s);
  remove_db(t->path);
  ck_arena_free(a);
}

/* Two handles on one file behave like two processes sharing the database. */
static void test_two_handles(void **state) {
  tmp *t = *state;
  snprintf(t->path, sizeof(t->path), "%s/shared.db", t->dir);
  ck_store *s1 = open_ok(t->path);
  ck_store *s2 = open_ok(t->path);
  ck_test_store_two_handles(s1, s2);
  assert_int_equal(raw_int(t->path, "SELECT count(*) FROM items"), 0);
  ck_store_free(s1);
  ck_store_free(s2);
  remove_db(t->path);
}

/* A version 1 database (before stream leases) is upgraded in place when opened, keeping its
 * records, and two handles on one file (two processes) see each other's leases. */
static void test_upgrade_from_v1(void **state) {
  tmp *t = *state;
  ck_arena *a = ck_arena_new(0);
  snprintf(t->path, sizeof(t->path), "%s/v1.db", t->dir);
  ck_store *s = open_ok(t->path);
  assert_int_equal(s->vt->save_thread(s, parse(a, THREAD), &ALICE), CK_OK);
  ck_store_free(s);
  raw_sql(t->path, "DROP TABLE stream_leases");
  raw_sql(t->path, "UPDATE schema_version SET version = 1");
  ck_store *s1 = open_ok(t->path);
  ck_store *s2 = open_ok(t->path);
  assert_int_equal(raw_int(t->path, "SELECT version FROM schema_version"), 2);
  ck_json *v;
  assert_int_equal(s1->vt->load_thread(s1, a, "thr_1", &ALICE, &v), CK_OK);
  assert_int_equal(s1->vt->acquire_stream(s1, "thr_1", "proc1-s", 60000, &ALICE), CK_OK);
  assert_int_equal(s2->vt->acquire_stream(s2, "thr_1", "proc2-s", 60000, &ALICE), CK_ECONFLICT);
  assert_int_equal(s1->vt->release_stream(s1, "thr_1", "proc1-s", &ALICE), CK_OK);
  assert_int_equal(s2->vt->acquire_stream(s2, "thr_1", "proc2-s", 60000, &ALICE), CK_OK);
  ck_store_free(s1);
  ck_store_free(s2);
  remove_db(t->path);
  ck_arena_free(a);
}

/* "sqlite:PATH" creates the missing parent directories. */
static void test_open_url(void **state) {
  tmp *t = *state;
  char url[160];
  char err[256] = "";
  snprintf(url, sizeof(url), "sqlite:%s/u/v/w.db", t->dir);
  ck_store *s = NULL;
  assert_int_equal(ck_store_open_url(url, &s, err, sizeof(err)), CK_OK);
  assert_string_equal(s->name, "sqlite");
  ck_store_free(s);
  /* Opening again with the directories in place works too. */
  assert_int_equal(ck_store_open_url(url, &s, err, sizeof(err)), CK_OK);
  ck_store_free(s);
  snprintf(t->path, sizeof(t->path), "%s/u/v/w.db", t->dir);
  remove_db(t->path);
  snprintf(t->path, sizeof(t->path), "%s/u/v", t->dir);
  assert_int_equal(rmdir(t->path), 0);
  snprintf(t->path, sizeof(t->path), "%s/u", t->dir);
  assert_int_equal(rmdir(t->path), 0);
}

int main(void) {
  tmp t = {.n = 0};
  snprintf(t.dir, sizeof(t.dir), "/tmp/ck-store-test-XXXXXX");
  if (mkdtemp(t.dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  int failed = ck_test_store_suite("sqlite", open_fresh, cleanup, &t);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate(test_reopen_keeps_data, &t),
      cmocka_unit_test_prestate(test_schema_and_pragmas, &t),
      cmocka_unit_test_prestate(test_newer_schema_refused, &t),
      cmocka_unit_test_prestate(test_open_errors, &t),
      cmocka_unit_test_prestate(test_corrupt_record, &t),
      cmocka_unit_test_prestate(test_two_handles, &t),
      cmocka_unit_test_prestate(test_upgrade_from_v1, &t),
      cmocka_unit_test_prestate(test_open_url, &t),
  };
  failed += cmocka_run_group_tests_name("store/sqlite-extras", tests, NULL, NULL);
  if (rmdir(t.dir) != 0) {
    perror("rmdir (a test left files behind)");
    failed++;
  }
  return failed;
}
