/* The shared store suite (see store_suite.h). */
#include "support/store_suite.h"

#include <chatkit/error.h>
#include <chatkit/json.h>
#include <chatkit/mem.h>

#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* What the backend's test program passed in. */
typedef struct suite_env {
  ck_store *(*open_fresh)(void *ud);
  void (*cleanup)(void *ud);
  void *ud;
} suite_env;

/* One case's state: a fresh store and an arena for what it loads. */
typedef struct fx {
  const suite_env *env;
  ck_store *s;
  ck_arena *a;
} fx;

static const ck_ctx ALICE = {.user_id = "alice"};
static const ck_ctx BOB = {.user_id = "bob"};

static int fx_setup(void **state) {
  const suite_env *env = *state;
  fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->env = env;
  f->s = env->open_fresh(env->ud);
  f->a = ck_arena_new(0);
  assert_non_null(f->s);
  assert_non_null(f->a);
  *state = f;
  return 0;
}

static int fx_teardown(void **state) {
  fx *f = *state;
  ck_store_free(f->s);
  if (f->env->cleanup != NULL)
    f->env->cleanup(f->env->ud);
  ck_arena_free(f->a);
  free(f);
  return 0;
}

/* ---- Helpers ------------------------------------------------------------------------------- */

static ck_json *J(fx *f, const char *text) {
  ck_json *v = NULL;
  ck_json_error err;
  int rc = ck_json_parse(f->a, text, strlen(text), 0, &v, &err);
  if (rc != CK_OK)
    fail_msg("test JSON does not parse (%s): %s", err.message, text);
  return v;
}

static const char *thread_text(fx *f, const char *id, const char *created_at) {
  return ck_arena_printf(f->a,
                         "{\"title\":\"T %s\",\"id\":\"%s\",\"created_at\":\"%s\","
                         "\"status\":{\"type\":\"active\"},\"metadata\":{}}",
                         id, id, created_at);
}

static const char *item_text(fx *f, const char *thread, const char *id, const char *created_at,
                             const char *type) {
  return ck_arena_printf(
      f->a,
      "{\"id\":\"%s\",\"thread_id\":\"%s\",\"created_at\":\"%s\",\"type\":\"%s\","
      "\"content\":[{\"type\":\"input_text\",\"text\":\"%s\"}]}",
      id, thread, created_at, type, id);
}

static void save_thread(fx *f, const ck_ctx *ctx, const char *id, const char *created_at) {
  assert_int_equal(f->s->vt->save_thread(f->s, J(f, thread_text(f, id, created_at)), ctx), CK_OK);
}

static void add_item(fx *f, const ck_ctx *ctx, const char *thread, const char *id,
                     const char *created_at) {
  const char *t = item_text(f, thread, id, created_at, "user_message");
  assert_int_equal(f->s->vt->add_thread_item(f->s, thread, J(f, t), ctx), CK_OK);
}

static const char *dump(fx *f, const ck_json *v) {
  const char *s = ck_json_dumps(f->a, v, NULL);
  assert_non_null(s);
  return s;
}

/* The ids of a page's records joined with ','. */
static const char *page_ids(fx *f, const ck_page *p) {
  ck_buf b;
  ck_buf_init(&b, 1 << 20);
  for (size_t i = 0; i < ck_json_array_size(p->data); i++) {
    if (i > 0)
      assert_int_equal(ck_buf_putc(&b, ','), CK_OK);
    /* Backends may hand items back as RAW canonical text (store.h). */
    const char *id =
        ck_json_object_get_str(ck_json_expand(f->a, ck_json_array_get(p->data, i)), "id");
    assert_non_null(id);
    assert_int_equal(ck_buf_puts(&b, id), CK_OK);
  }
  const char *s = ck_arena_strdup(f->a, b.len ? b.data : "");
  ck_buf_free(&b);
  return s;
}

static const char *items_page(fx *f, const ck_ctx *ctx, const char *thread, const char *after,
                              int limit, ck_order order, ck_page *p) {
  assert_int_equal(f->s->vt->load_thread_items(f->s, f->a, thread, after, limit, order, ctx, p),
                   CK_OK);
  return page_ids(f, p);
}

static const char *all_items(fx *f, const ck_ctx *ctx, const char *thread, ck_order order) {
  ck_page p;
  const char *ids = items_page(f, ctx, thread, NULL, 1000, order, &p);
  assert_false(p.has_more);
  return ids;
}

static const char *threads_page(fx *f, const ck_ctx *ctx, const char *after, int limit,
                                ck_order order, ck_page *p) {
  assert_int_equal(f->s->vt->load_threads(f->s, f->a, limit, after, order, ctx, p), CK_OK);
  return page_ids(f, p);
}

/* ---- Threads ------------------------------------------------------------------------------- */

static void test_thread_roundtrip(void **state) {
  fx *f = *state;
  static const char *const texts[] = {
      "{\"title\":\"Hello\",\"id\":\"thr_1\",\"created_at\":\"2025-01-01T00:00:00\","
      "\"status\":{\"type\":\"active\"},\"metadata\":{}}",
      /* A null title is omitted, never written as null. */
      "{\"id\":\"thr_2\",\"created_at\":\"2025-01-02T03:04:05.678901\","
      "\"status\":{\"type\":\"locked\",\"reason\":\"maintenance\"},\"metadata\":{}}",
      "{\"title\":\"x\",\"id\":\"thr_3\",\"created_at\":\"2025-01-02T03:04:05Z\","
      "\"status\":{\"type\":\"closed\"},\"allowed_image_domains\":[\"a.example\",\"b.example\"],"
      "\"metadata\":{\"k\":[1,2.5,-0.0,1e-7,null,true,{\"deep\":\"\\u0001\\n\xc3\xa9\"}],"
      "\"big\":123456789012345678901234567890}}",
      "{\"title\":\"\",\"id\":\"thr_4\",\"created_at\":\"2025-01-02T03:04:05.120000-05:00\","
      "\"status\":{\"type\":\"active\"},\"allowed_image_domains\":[],\"metadata\":{}}",
  };
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
    ck_json *t = J(f, texts[i]);
    assert_int_equal(f->s->vt->save_thread(f->s, t, &ALICE), CK_OK);
    ck_json *back = NULL;
    const char *id = ck_json_object_get_str(t, "id");
    assert_int_equal(f->s->vt->load_thread(f->s, f->a, id, &ALICE, &back), CK_OK);
    assert_string_equal(dump(f, back), texts[i]);
  }
  ck_page p;
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_ASC, &p),
                      "thr_1,thr_3,thr_2,thr_4");
  assert_string_equal(dump(f, ck_json_array_get(p.data, 1)), texts[2]);
}

static void test_thread_save_twice_updates(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  const char *v2 = "{\"title\":\"renamed\",\"id\":\"thr_1\",\"created_at\":\"2025-01-01T00:00:00\","
                   "\"status\":{\"type\":\"closed\",\"reason\":\"done\"},\"metadata\":{\"a\":1}}";
  assert_int_equal(f->s->vt->save_thread(f->s, J(f, v2), &ALICE), CK_OK);
  ck_json *back;
  assert_int_equal(f->s->vt->load_thread(f->s, f->a, "thr_1", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), v2);
  ck_page p;
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_DESC, &p), "thr_1");
}

static void test_thread_missing(void **state) {
  fx *f = *state;
  ck_json *back = (ck_json *)1;
  assert_int_equal(f->s->vt->load_thread(f->s, f->a, "thr_nope", &ALICE, &back), CK_ENOTFOUND);
  assert_null(back);
  /* Deleting what does not exist is silent. */
  assert_int_equal(f->s->vt->delete_thread(f->s, "thr_nope", &ALICE), CK_OK);
  ck_page p;
  assert_string_equal(threads_page(f, &ALICE, NULL, 20, CK_ORDER_DESC, &p), "");
  assert_false(p.has_more);
  assert_null(p.after);
}

/* Threads are ordered by their created_at (as an instant), ties by creation order, and a
 * thread whose created_at is changed by a later save moves with it. */
static void test_thread_order(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "t_c", "2025-01-01T00:00:02");
  save_thread(f, &ALICE, "t_a", "2025-01-01T00:00:00");
  save_thread(f, &ALICE, "t_b1", "2025-01-01T00:00:01");
  save_thread(f, &ALICE, "t_b2", "2025-01-01T00:00:01");
  save_thread(f, &ALICE, "t_off", "2025-01-01T01:00:00+02:00"); /* 2024-12-31T23:00Z */
  ck_page p;
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_ASC, &p),
                      "t_off,t_a,t_b1,t_b2,t_c");
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_DESC, &p),
                      "t_c,t_b2,t_b1,t_a,t_off");
  save_thread(f, &ALICE, "t_off", "2025-01-01T00:00:03Z");
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_ASC, &p),
                      "t_a,t_b1,t_b2,t_c,t_off");
  /* A thread moved onto an equal timestamp keeps its creation order among the ties: t_a was
   * created before t_b1, so it sorts first, and t_c (created first of all) before t_b1. */
  save_thread(f, &ALICE, "t_a", "2025-01-01T00:00:01");
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_ASC, &p),
                      "t_a,t_b1,t_b2,t_c,t_off");
  save_thread(f, &ALICE, "t_c", "2025-01-01T00:00:01");
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_ASC, &p),
                      "t_c,t_a,t_b1,t_b2,t_off");
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_DESC, &p),
                      "t_off,t_b2,t_b1,t_a,t_c");
}

/* The reference's threads.list example: 25 threads, pages of 20 then 5. */
static void test_threads_paging_25(void **state) {
  fx *f = *state;
  char id[16], ts[32];
  for (int i = 1; i <= 25; i++) {
    snprintf(id, sizeof(id), "thr_%04d", i);
    snprintf(ts, sizeof(ts), "2025-01-01T00:%02d:00", i);
    save_thread(f, &ALICE, id, ts);
  }
  ck_page p;
  const char *ids = threads_page(f, &ALICE, NULL, 20, CK_ORDER_DESC, &p);
  assert_int_equal(ck_json_array_size(p.data), 20);
  assert_true(strncmp(ids, "thr_0025,thr_0024,", 18) == 0);
  assert_true(p.has_more);
  assert_string_equal(p.after, "thr_0006");
  ids = threads_page(f, &ALICE, p.after, 20, CK_ORDER_DESC, &p);
  assert_string_equal(ids, "thr_0005,thr_0004,thr_0003,thr_0002,thr_0001");
  assert_false(p.has_more);
  assert_null(p.after);

  ids = threads_page(f, &ALICE, "", 20, CK_ORDER_ASC, &p);
  assert_true(strncmp(ids, "thr_0001,thr_0002,", 18) == 0);
  assert_string_equal(p.after, "thr_0020");
  ids = threads_page(f, &ALICE, p.after, 20, CK_ORDER_ASC, &p);
  assert_string_equal(ids, "thr_0021,thr_0022,thr_0023,thr_0024,thr_0025");
  assert_false(p.has_more);

  assert_int_equal(f->s->vt->load_threads(f->s, f->a, 20, "thr_9999", CK_ORDER_DESC, &ALICE, &p),
                   CK_ENOTFOUND);
}

/* ---- Items --------------------------------------------------------------------------------- */

static void test_item_roundtrip(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  const char *text =
      "{\"id\":\"msg_1\",\"thread_id\":\"thr_1\",\"created_at\":\"2025-01-01T00:00:01\","
      "\"type\":\"widget\",\"widget\":{\"type\":\"Card\",\"children\":[{\"type\":\"Text\","
      "\"value\":\"\xf0\x9f\x98\x80 \\\"q\\\" \\\\ /\"}]},\"copy_text\":\"c\",\"n\":1.0}";
  assert_int_equal(f->s->vt->add_thread_item(f->s, "thr_1", J(f, text), &ALICE), CK_OK);
  ck_json *back;
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_1", "msg_1", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), text);
  ck_page p;
  assert_string_equal(items_page(f, &ALICE, "thr_1", NULL, 20, CK_ORDER_ASC, &p), "msg_1");
  assert_string_equal(dump(f, ck_json_array_get(p.data, 0)), text);

  /* Loads are copies: changing one does not change the store. */
  assert_int_equal(ck_json_object_set(back, "type", ck_json_str(f->a, "changed")), CK_OK);
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_1", "msg_1", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), text);
}

static void test_items_order(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  add_item(f, &ALICE, "thr_1", "m3", "2025-01-01T00:00:03");
  add_item(f, &ALICE, "thr_1", "m1", "2025-01-01T00:00:01");
  add_item(f, &ALICE, "thr_1", "m2a", "2025-01-01T00:00:02");
  add_item(f, &ALICE, "thr_1", "m2b", "2025-01-01T00:00:02");
  add_item(f, &ALICE, "thr_1", "m2c", "2025-01-01T00:00:02.000000");
  add_item(f, &ALICE, "thr_1", "m0", "2025-01-01T01:00:00+02:00"); /* 2024-12-31T23:00Z */
  add_item(f, &ALICE, "thr_1", "m1z", "2025-01-01T00:00:01.5Z");
  add_item(f, &ALICE, "thr_1", "m1n", "2024-12-31T19:00:01.000001-05:00"); /* 00:00:01.000001Z */
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_ASC), "m0,m1,m1n,m1z,m2a,m2b,m2c,m3");
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_DESC), "m3,m2c,m2b,m2a,m1z,m1n,m1,m0");
}

static void test_items_paging(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  add_item(f, &ALICE, "thr_1", "i1", "2025-01-01T00:00:01");
  add_item(f, &ALICE, "thr_1", "i2", "2025-01-01T00:00:02");
  add_item(f, &ALICE, "thr_1", "i3", "2025-01-01T00:00:02");
  add_item(f, &ALICE, "thr_1", "i4", "2025-01-01T00:00:04");
  add_item(f, &ALICE, "thr_1", "i5", "2025-01-01T00:00:05");
  ck_page p;
  assert_string_equal(items_page(f, &ALICE, "thr_1", NULL, 2, CK_ORDER_ASC, &p), "i1,i2");
  assert_true(p.has_more);
  assert_string_equal(p.after, "i2");
  assert_string_equal(items_page(f, &ALICE, "thr_1", p.after, 2, CK_ORDER_ASC, &p), "i3,i4");
  assert_string_equal(p.after, "i4");
  assert_string_equal(items_page(f, &ALICE, "thr_1", p.after, 2, CK_ORDER_ASC, &p), "i5");
  assert_false(p.has_more);
  assert_null(p.after);
  assert_string_equal(items_page(f, &ALICE, "thr_1", "i5", 2, CK_ORDER_ASC, &p), "");
  assert_false(p.has_more);

  assert_string_equal(items_page(f, &ALICE, "thr_1", "", 3, CK_ORDER_DESC, &p), "i5,i4,i3");
  assert_true(p.has_more);
  assert_string_equal(p.after, "i3");
  assert_string_equal(items_page(f, &ALICE, "thr_1", p.after, 3, CK_ORDER_DESC, &p), "i2,i1");
  assert_false(p.has_more);
  assert_null(p.after);

  /* A page that ends exactly at the last record has nothing more. */
  assert_string_equal(items_page(f, &ALICE, "thr_1", "i2", 3, CK_ORDER_ASC, &p), "i3,i4,i5");
  assert_false(p.has_more);
  assert_null(p.after);

  /* limit <= 0: an empty page; has_more still tells whether records follow the cursor, and
   * there is no last record to name. */
  assert_string_equal(items_page(f, &ALICE, "thr_1", NULL, 0, CK_ORDER_ASC, &p), "");
  assert_true(p.has_more);
  assert_null(p.after);
  assert_string_equal(items_page(f, &ALICE, "thr_1", "i5", 0, CK_ORDER_ASC, &p), "");
  assert_false(p.has_more);
  assert_string_equal(items_page(f, &ALICE, "thr_1", NULL, -5, CK_ORDER_DESC, &p), "");
  assert_null(p.after);

  /* An unknown cursor is not found, in both orders. */
  assert_int_equal(
      f->s->vt->load_thread_items(f->s, f->a, "thr_1", "nope", 2, CK_ORDER_ASC, &ALICE, &p),
      CK_ENOTFOUND);
  assert_int_equal(
      f->s->vt->load_thread_items(f->s, f->a, "thr_1", "nope", 2, CK_ORDER_DESC, &ALICE, &p),
      CK_ENOTFOUND);
}

static void test_items_missing_thread(void **state) {
  fx *f = *state;
  ck_page p;
  ck_json *it = J(f, item_text(f, "thr_x", "m1", "2025-01-01T00:00:00", "user_message"));
  ck_json *back;
  assert_int_equal(
      f->s->vt->load_thread_items(f->s, f->a, "thr_x", NULL, 20, CK_ORDER_ASC, &ALICE, &p),
      CK_ENOTFOUND);
  assert_int_equal(f->s->vt->add_thread_item(f->s, "thr_x", it, &ALICE), CK_ENOTFOUND);
  assert_int_equal(f->s->vt->save_item(f->s, "thr_x", it, &ALICE), CK_ENOTFOUND);
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_x", "m1", &ALICE, &back), CK_ENOTFOUND);
  assert_int_equal(f->s->vt->delete_thread_item(f->s, "thr_x", "m1", &ALICE), CK_OK);

  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_1", "m1", &ALICE, &back), CK_ENOTFOUND);
  assert_int_equal(f->s->vt->delete_thread_item(f->s, "thr_1", "m1", &ALICE), CK_OK);
  /* An item id is only found in its own thread. */
  save_thread(f, &ALICE, "thr_2", "2025-01-01T00:00:00");
  add_item(f, &ALICE, "thr_2", "m1", "2025-01-01T00:00:01");
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_1", "m1", &ALICE, &back), CK_ENOTFOUND);
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_ASC), "");
}

/* add_thread_item and save_item both upsert; a replaced item keeps its place (and ordering
 * key) even when its created_at and type changed; a new id goes by its own created_at. */
static void check_replace(fx *f,
                          int (*op)(ck_store *, const char *, const ck_json *, const ck_ctx *)) {
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  add_item(f, &ALICE, "thr_1", "a", "2025-01-01T00:00:01");
  add_item(f, &ALICE, "thr_1", "b", "2025-01-01T00:00:02");
  add_item(f, &ALICE, "thr_1", "c", "2025-01-01T00:00:03");
  const char *nb = item_text(f, "thr_1", "b", "2025-01-01T00:00:09", "assistant_message");
  assert_int_equal(op(f->s, "thr_1", J(f, nb), &ALICE), CK_OK);
  const char *na = item_text(f, "thr_1", "a", "2024-01-01T00:00:00", "widget");
  assert_int_equal(op(f->s, "thr_1", J(f, na), &ALICE), CK_OK);
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_ASC), "a,b,c");
  ck_json *back;
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_1", "b", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), nb);
  /* The replaced item's key is still 00:00:02, so a new item at 00:00:02.5 follows it. */
  const char *nd = item_text(f, "thr_1", "d", "2025-01-01T00:00:02.500000", "user_message");
  assert_int_equal(op(f->s, "thr_1", J(f, nd), &ALICE), CK_OK);
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_ASC), "a,b,d,c");
  ck_page p;
  assert_string_equal(items_page(f, &ALICE, "thr_1", "b", 1, CK_ORDER_ASC, &p), "d");
  assert_string_equal(items_page(f, &ALICE, "thr_1", NULL, 20, CK_ORDER_ASC, &p), "a,b,d,c");
  assert_string_equal(dump(f, ck_json_array_get(p.data, 0)), na);
  assert_string_equal(dump(f, ck_json_array_get(p.data, 1)), nb);
}

static void test_add_item_replaces(void **state) {
  fx *f = *state;
  check_replace(f, f->s->vt->add_thread_item);
}

static void test_save_item_replaces(void **state) {
  fx *f = *state;
  check_replace(f, f->s->vt->save_item);
}

static void test_delete_item(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  add_item(f, &ALICE, "thr_1", "a", "2025-01-01T00:00:01");
  add_item(f, &ALICE, "thr_1", "b", "2025-01-01T00:00:02");
  add_item(f, &ALICE, "thr_1", "c", "2025-01-01T00:00:03");
  assert_int_equal(f->s->vt->delete_thread_item(f->s, "thr_1", "b", &ALICE), CK_OK);
  assert_int_equal(f->s->vt->delete_thread_item(f->s, "thr_1", "b", &ALICE), CK_OK);
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_ASC), "a,c");
  ck_json *back;
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_1", "b", &ALICE, &back), CK_ENOTFOUND);
  ck_page p;
  assert_int_equal(
      f->s->vt->load_thread_items(f->s, f->a, "thr_1", "b", 20, CK_ORDER_ASC, &ALICE, &p),
      CK_ENOTFOUND);
  /* Re-adding a deleted id inserts it anew by its created_at. */
  add_item(f, &ALICE, "thr_1", "b", "2025-01-01T00:00:05");
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_ASC), "a,c,b");
}

static void test_delete_thread(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  save_thread(f, &ALICE, "thr_2", "2025-01-01T00:00:01");
  add_item(f, &ALICE, "thr_1", "a", "2025-01-01T00:00:01");
  add_item(f, &ALICE, "thr_1", "b", "2025-01-01T00:00:02");
  add_item(f, &ALICE, "thr_2", "a", "2025-01-01T00:00:01");
  const char *att = "{\"id\":\"atc_1\",\"type\":\"file\",\"name\":\"f.txt\","
                    "\"mime_type\":\"text/plain\",\"thread_id\":\"thr_1\",\"metadata\":{}}";
  assert_int_equal(f->s->vt->save_attachment(f->s, J(f, att), &ALICE), CK_OK);
  assert_int_equal(f->s->vt->delete_thread(f->s, "thr_1", &ALICE), CK_OK);
  ck_json *back;
  ck_page p;
  assert_int_equal(f->s->vt->load_thread(f->s, f->a, "thr_1", &ALICE, &back), CK_ENOTFOUND);
  assert_int_equal(
      f->s->vt->load_thread_items(f->s, f->a, "thr_1", NULL, 20, CK_ORDER_ASC, &ALICE, &p),
      CK_ENOTFOUND);
  assert_int_equal(f->s->vt->load_item(f->s, f->a, "thr_1", "a", &ALICE, &back), CK_ENOTFOUND);
  assert_string_equal(threads_page(f, &ALICE, NULL, 20, CK_ORDER_ASC, &p), "thr_2");
  assert_string_equal(all_items(f, &ALICE, "thr_2", CK_ORDER_ASC), "a");
  /* Attachments outlive the thread. */
  assert_int_equal(f->s->vt->load_attachment(f->s, f->a, "atc_1", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), att);
  /* A thread re-created with the same id starts without items. */
  save_thread(f, &ALICE, "thr_1", "2025-01-01T00:00:00");
  assert_string_equal(all_items(f, &ALICE, "thr_1", CK_ORDER_ASC), "");
}

/* ---- Attachments --------------------------------------------------------------------------- */

static void test_attachments(void **state) {
  fx *f = *state;
  const char *a1 = "{\"id\":\"atc_1\",\"type\":\"image\",\"name\":\"p.png\",\"mime_type\":"
                   "\"image/png\",\"preview_url\":\"https://example.com/p.png\","
                   "\"metadata\":{\"bucket\":\"b\",\"key\":[1,{\"x\":null}]}}";
  const char *a1b = "{\"id\":\"atc_1\",\"type\":\"image\",\"name\":\"p.png\",\"mime_type\":"
                    "\"image/png\",\"preview_url\":\"https://example.com/p.png\","
                    "\"thread_id\":\"thr_1\",\"metadata\":{\"bucket\":\"b\"}}";
  const char *a2 = "{\"id\":\"atc_2\",\"type\":\"file\",\"name\":\"f\",\"mime_type\":"
                   "\"text/plain\",\"metadata\":{}}";
  ck_json *back;
  assert_int_equal(f->s->vt->load_attachment(f->s, f->a, "atc_1", &ALICE, &back), CK_ENOTFOUND);
  assert_int_equal(f->s->vt->save_attachment(f->s, J(f, a1), &ALICE), CK_OK);
  assert_int_equal(f->s->vt->save_attachment(f->s, J(f, a2), &ALICE), CK_OK);
  assert_int_equal(f->s->vt->load_attachment(f->s, f->a, "atc_1", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), a1);
  assert_int_equal(f->s->vt->save_attachment(f->s, J(f, a1b), &ALICE), CK_OK);
  assert_int_equal(f->s->vt->load_attachment(f->s, f->a, "atc_1", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), a1b);
  assert_int_equal(f->s->vt->delete_attachment(f->s, "atc_1", &ALICE), CK_OK);
  assert_int_equal(f->s->vt->load_attachment(f->s, f->a, "atc_1", &ALICE, &back), CK_ENOTFOUND);
  assert_int_equal(f->s->vt->delete_attachment(f->s, "atc_1", &ALICE), CK_OK);
  assert_int_equal(f->s->vt->load_attachment(f->s, f->a, "atc_2", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), a2);
}

/* ---- Validation ---------------------------------------------------------------------------- */

static void test_invalid_records(void **state) {
  fx *f = *state;
  const ck_store_vtable *vt = f->s->vt;
  assert_int_equal(vt->save_thread(f->s, J(f, "[]"), &ALICE), CK_EINVAL);
  assert_int_equal(vt->save_thread(f->s, J(f, "{\"created_at\":\"2025-01-01\"}"), &ALICE),
                   CK_EINVAL);
  assert_int_equal(
      vt->save_thread(f->s, J(f, "{\"id\":\"\",\"created_at\":\"2025-01-01\"}"), &ALICE),
      CK_EINVAL);
  assert_int_equal(
      vt->save_thread(f->s, J(f, "{\"id\":\"t\",\"created_at\":\"yesterday\"}"), &ALICE),
      CK_EINVAL);
  assert_int_equal(vt->save_thread(f->s, J(f, "{\"id\":\"t\"}"), &ALICE), CK_EINVAL);
  /* A date alone is a valid created_at. */
  assert_int_equal(
      vt->save_thread(f->s, J(f, "{\"id\":\"t\",\"created_at\":\"2025-01-01\"}"), &ALICE), CK_OK);
  assert_int_equal(
      vt->add_thread_item(f->s, "t", J(f, "{\"id\":\"i\",\"created_at\":\"2025-01-01\"}"), &ALICE),
      CK_EINVAL);
  assert_int_equal(vt->save_item(f->s, "t", J(f, "{\"id\":\"i\",\"type\":\"x\"}"), &ALICE),
                   CK_EINVAL);
  assert_int_equal(vt->save_attachment(f->s, J(f, "{\"name\":\"x\"}"), &ALICE), CK_EINVAL);
  assert_int_equal(vt->save_attachment(f->s, J(f, "\"atc\""), &ALICE), CK_EINVAL);
  assert_string_equal(all_items(f, &ALICE, "t", CK_ORDER_ASC), "");
}

static void test_ping(void **state) {
  fx *f = *state;
  assert_int_equal(f->s->vt->ping(f->s), CK_OK);
  assert_non_null(f->s->name);
}

/* ---- User isolation ------------------------------------------------------------------------ */

static void test_isolation(void **state) {
  fx *f = *state;
  const ck_store_vtable *vt = f->s->vt;
  save_thread(f, &ALICE, "thr_a", "2025-01-01T00:00:00");
  add_item(f, &ALICE, "thr_a", "m1", "2025-01-01T00:00:01");
  const char *att = "{\"id\":\"atc_a\",\"type\":\"file\",\"name\":\"f\",\"mime_type\":"
                    "\"text/plain\",\"metadata\":{\"secret\":1}}";
  assert_int_equal(vt->save_attachment(f->s, J(f, att), &ALICE), CK_OK);
  save_thread(f, &BOB, "thr_b", "2025-01-01T00:00:05");

  ck_json *back;
  ck_page p;
  ck_json *item = J(f, item_text(f, "thr_a", "m2", "2025-01-01T00:00:02", "user_message"));
  ck_json *item1 = J(f, item_text(f, "thr_a", "m1", "2025-01-01T00:00:02", "assistant_message"));
  /* Bob sees none of Alice's records, through any operation. */
  assert_int_equal(vt->load_thread(f->s, f->a, "thr_a", &BOB, &back), CK_ENOTFOUND);
  assert_string_equal(threads_page(f, &BOB, NULL, 20, CK_ORDER_ASC, &p), "thr_b");
  assert_int_equal(vt->load_threads(f->s, f->a, 20, "thr_a", CK_ORDER_ASC, &BOB, &p), CK_ENOTFOUND);
  assert_int_equal(vt->load_thread_items(f->s, f->a, "thr_a", NULL, 20, CK_ORDER_ASC, &BOB, &p),
                   CK_ENOTFOUND);
  assert_int_equal(vt->load_item(f->s, f->a, "thr_a", "m1", &BOB, &back), CK_ENOTFOUND);
  assert_int_equal(vt->add_thread_item(f->s, "thr_a", item, &BOB), CK_ENOTFOUND);
  assert_int_equal(vt->save_item(f->s, "thr_a", item1, &BOB), CK_ENOTFOUND);
  assert_int_equal(vt->delete_thread_item(f->s, "thr_a", "m1", &BOB), CK_OK);
  assert_int_equal(vt->delete_thread(f->s, "thr_a", &BOB), CK_OK);
  assert_int_equal(vt->save_thread(f->s, J(f, thread_text(f, "thr_a", "2030-01-01")), &BOB),
                   CK_ENOTFOUND);
  assert_int_equal(vt->load_attachment(f->s, f->a, "atc_a", &BOB, &back), CK_ENOTFOUND);
  assert_int_equal(vt->save_attachment(f->s, J(f, "{\"id\":\"atc_a\",\"metadata\":{}}"), &BOB),
                   CK_ENOTFOUND);
  assert_int_equal(vt->delete_attachment(f->s, "atc_a", &BOB), CK_OK);

  /* Alice's records are untouched. */
  assert_int_equal(vt->load_thread(f->s, f->a, "thr_a", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), thread_text(f, "thr_a", "2025-01-01T00:00:00"));
  assert_string_equal(threads_page(f, &ALICE, NULL, 20, CK_ORDER_ASC, &p), "thr_a");
  assert_string_equal(all_items(f, &ALICE, "thr_a", CK_ORDER_ASC), "m1");
  assert_int_equal(vt->load_item(f->s, f->a, "thr_a", "m1", &ALICE, &back), CK_OK);
  assert_string_equal(ck_json_object_get_str(back, "type"), "user_message");
  assert_int_equal(vt->load_attachment(f->s, f->a, "atc_a", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), att);
  assert_int_equal(vt->load_threads(f->s, f->a, 20, "thr_b", CK_ORDER_ASC, &ALICE, &p),
                   CK_ENOTFOUND);

  /* The anonymous user (no context, NULL or "" user id) is one more, separate user. */
  const ck_ctx anon_null = {.user_id = NULL};
  const ck_ctx anon_empty = {.user_id = ""};
  save_thread(f, &anon_null, "thr_anon", "2025-01-01T00:00:00");
  assert_string_equal(threads_page(f, &anon_empty, NULL, 20, CK_ORDER_ASC, &p), "thr_anon");
  assert_string_equal(threads_page(f, NULL, NULL, 20, CK_ORDER_ASC, &p), "thr_anon");
  assert_int_equal(vt->load_thread(f->s, f->a, "thr_anon", &ALICE, &back), CK_ENOTFOUND);
  assert_int_equal(vt->load_thread(f->s, f->a, "thr_a", NULL, &back), CK_ENOTFOUND);
}

/* ---- Concurrency --------------------------------------------------------------------------- */

#define WORKERS 4
#define OPS 200

typedef struct worker {
  ck_store *s;
  int n;
  int errors;
  int first_error;
} worker;

static void note(worker *w, int rc) {
  if (rc != CK_OK && w->errors++ == 0)
    w->first_error = rc;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  ck_arena *a = ck_arena_new(0);
  const ck_ctx ctx = {.user_id = "alice"};
  char text[512], id[32], tid[32];
  snprintf(tid, sizeof(tid), "thr_w%d", w->n);
  for (int i = 0; i < OPS && a != NULL; i++) {
    ck_arena_reset(a);
    ck_json *v = NULL;
    ck_page p;
    /* Each worker rewrites its own thread and adds items to the shared one. */
    snprintf(text, sizeof(text),
             "{\"id\":\"%s\",\"created_at\":\"2025-01-01T00:00:%02d\",\"status\":"
             "{\"type\":\"active\"},\"metadata\":{\"i\":%d}}",
             tid, w->n, i);
    note(w, ck_json_parse(a, text, strlen(text), 0, &v, NULL));
    note(w, w->s->vt->save_thread(w->s, v, &ctx));
    snprintf(id, sizeof(id), "w%d_%03d", w->n, i);
    snprintf(text, sizeof(text),
             "{\"id\":\"%s\",\"thread_id\":\"thr_shared\",\"created_at\":"
             "\"2025-01-01T00:%02d:%02d\",\"type\":\"user_message\",\"content\":[]}",
             id, i / 60, i % 60);
    note(w, ck_json_parse(a, text, strlen(text), 0, &v, NULL));
    note(w, w->s->vt->add_thread_item(w->s, "thr_shared", v, &ctx));
    note(w, w->s->vt->load_item(w->s, a, "thr_shared", id, &ctx, &v));
    if (v == NULL || strcmp(ck_json_object_get_str(v, "id"), id) != 0)
      note(w, CK_ESTATE);
    note(w, w->s->vt->load_thread_items(w->s, a, "thr_shared", id, 5, CK_ORDER_DESC, &ctx, &p));
    note(w, w->s->vt->load_threads(w->s, a, 3, NULL, CK_ORDER_ASC, &ctx, &p));
    note(w, w->s->vt->load_thread(w->s, a, tid, &ctx, &v));
  }
  if (a == NULL)
    note(w, CK_ENOMEM);
  ck_arena_free(a);
  return NULL;
}

static void test_concurrency(void **state) {
  fx *f = *state;
  save_thread(f, &ALICE, "thr_shared", "2024-01-01T00:00:00");
  pthread_t th[WORKERS];
  worker w[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    w[i] = (worker){.s = f->s, .n = i};
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < WORKERS; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  for (int i = 0; i < WORKERS; i++) {
    if (w[i].errors != 0)
      fail_msg("worker %d: %d errors, first %s", i, w[i].errors, ck_strerror(w[i].first_error));
  }
  /* Walk every item in pages: each appears once, in order, and the total is right. */
  size_t total = 0;
  const char *after = NULL;
  ck_page p;
  do {
    assert_int_equal(
        f->s->vt->load_thread_items(f->s, f->a, "thr_shared", after, 64, CK_ORDER_ASC, &ALICE, &p),
        CK_OK);
    total += ck_json_array_size(p.data);
    after = p.after;
  } while (p.has_more);
  assert_int_equal(total, WORKERS * OPS);
  assert_string_equal(threads_page(f, &ALICE, NULL, 10, CK_ORDER_ASC, &p),
                      "thr_shared,thr_w0,thr_w1,thr_w2,thr_w3");
  ck_json *back;
  assert_int_equal(f->s->vt->load_thread(f->s, f->a, "thr_w2", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, ck_json_object_get(back, "metadata")), "{\"i\":199}");
}

/* ---- Stream leases ------------------------------------------------------------------------- */

/* Sleeps `ms` milliseconds (leases expire on the store's clock, so the wait is real). */
static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void test_lease_exclusive(void **state) {
  fx *f = *state;
  const ck_store_vtable *vt = f->s->vt;
  /* Every backend that ships with the library implements leases. */
  assert_non_null(vt->acquire_stream);
  assert_non_null(vt->release_stream);
  assert_non_null(vt->renew_stream);
  save_thread(f, &ALICE, "thr_l", "2025-01-01T00:00:00");
  assert_int_equal(vt->acquire_stream(f->s, "thr_l", "p1-a", 60000, &ALICE), CK_OK);
  /* Another holder is refused while the lease is valid; the holder itself may take it again
   * (a retried call) and renew it. */
  assert_int_equal(vt->acquire_stream(f->s, "thr_l", "p2-b", 60000, &ALICE), CK_ECONFLICT);
  assert_int_equal(vt->acquire_stream(f->s, "thr_l", "p1-a", 60000, &ALICE), CK_OK);
  assert_int_equal(vt->renew_stream(f->s, "thr_l", "p1-a", 60000, &ALICE), CK_OK);
  assert_int_equal(vt->renew_stream(f->s, "thr_l", "p2-b", 60000, &ALICE), CK_ECONFLICT);
  /* Leases are per thread. */
  assert_int_equal(vt->acquire_stream(f->s, "thr_other", "p2-b", 60000, &ALICE), CK_OK);
  /* A release by someone else changes nothing; the holder's release frees the thread. */
  assert_int_equal(vt->release_stream(f->s, "thr_l", "p2-b", &ALICE), CK_OK);
  assert_int_equal(vt->acquire_stream(f->s, "thr_l", "p2-b", 60000, &ALICE), CK_ECONFLICT);
  assert_int_equal(vt->release_stream(f->s, "thr_l", "p1-a", &ALICE), CK_OK);
  assert_int_equal(vt->renew_stream(f->s, "thr_l", "p1-a", 60000, &ALICE), CK_ECONFLICT);
  assert_int_equal(vt->acquire_stream(f->s, "thr_l", "p2-b", 60000, &ALICE), CK_OK);
  /* Releasing twice, or a lease that never existed, is silent. */
  assert_int_equal(vt->release_stream(f->s, "thr_l", "p2-b", &ALICE), CK_OK);
  assert_int_equal(vt->release_stream(f->s, "thr_l", "p2-b", &ALICE), CK_OK);
  assert_int_equal(vt->release_stream(f->s, "thr_none", "p2-b", &ALICE), CK_OK);
  /* Leases live beside the records: the thread and its items are untouched. */
  ck_json *back;
  assert_int_equal(vt->load_thread(f->s, f->a, "thr_l", &ALICE, &back), CK_OK);
  assert_string_equal(dump(f, back), thread_text(f, "thr_l", "2025-01-01T00:00:00"));
}

/* A holder that stops renewing (a process killed mid-stream) loses the lease after its TTL,
 * and the next acquire takes it over; the old holder then can no longer renew. */
static void test_lease_expiry(void **state) {
  fx *f = *state;
  const ck_store_vtable *vt = f->s->vt;
  assert_int_equal(vt->acquire_stream(f->s, "thr_x", "dead", 150, &ALICE), CK_OK);
  assert_int_equal(vt->acquire_stream(f->s, "thr_x", "next", 60000, &BOB), CK_ECONFLICT);
  sleep_ms(400);
  assert_int_equal(vt->acquire_stream(f->s, "thr_x", "next", 60000, &BOB), CK_OK);
  assert_int_equal(vt->renew_stream(f->s, "thr_x", "dead", 60000, &ALICE), CK_ECONFLICT);
  assert_int_equal(vt->release_stream(f->s, "thr_x", "dead", &ALICE), CK_OK);
  assert_int_equal(vt->acquire_stream(f->s, "thr_x", "third", 60000, &ALICE), CK_ECONFLICT);
  /* Renewing keeps a short lease alive past its first TTL. */
  assert_int_equal(vt->acquire_stream(f->s, "thr_y", "live", 300, &ALICE), CK_OK);
  for (int i = 0; i < 4; i++) {
    sleep_ms(100);
    assert_int_equal(vt->renew_stream(f->s, "thr_y", "live", 300, &ALICE), CK_OK);
  }
  assert_int_equal(vt->acquire_stream(f->s, "thr_y", "other", 300, &ALICE), CK_ECONFLICT);
}

/* Many threads race for one lease: exactly one wins each round. */
#define RACERS 8

typedef struct racer {
  ck_store *s;
  pthread_barrier_t *go;
  char holder[16];
  int rc;
} racer;

static void *racer_main(void *arg) {
  racer *r = arg;
  pthread_barrier_wait(r->go);
  r->rc = r->s->vt->acquire_stream(r->s, "thr_race", r->holder, 60000, &ALICE);
  return NULL;
}

static void test_lease_race(void **state) {
  fx *f = *state;
  for (int round = 0; round < 3; round++) {
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    pthread_t th[RACERS];
    racer r[RACERS];
    for (int i = 0; i < RACERS; i++) {
      r[i] = (racer){.s = f->s, .go = &go};
      snprintf(r[i].holder, sizeof(r[i].holder), "h%d-%d", round, i);
      assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
      assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&go);
    int winners = 0, winner = -1;
    for (int i = 0; i < RACERS; i++) {
      if (r[i].rc == CK_OK) {
        winners++;
        winner = i;
      } else {
        assert_int_equal(r[i].rc, CK_ECONFLICT);
      }
    }
    assert_int_equal(winners, 1);
    assert_int_equal(f->s->vt->release_stream(f->s, "thr_race", r[winner].holder, &ALICE), CK_OK);
  }
}

/* ---- Runner -------------------------------------------------------------------------------- */

typedef struct suite_case {
  const char *name;
  CMUnitTestFunction fn;
} suite_case;

#define CASE(fn)                                                                                   \
  { #fn, fn }

static const suite_case cases[] = {
    CASE(test_thread_roundtrip),
    CASE(test_thread_save_twice_updates),
    CASE(test_thread_missing),
    CASE(test_thread_order),
    CASE(test_threads_paging_25),
    CASE(test_item_roundtrip),
    CASE(test_items_order),
    CASE(test_items_paging),
    CASE(test_items_missing_thread),
    CASE(test_add_item_replaces),
    CASE(test_save_item_replaces),
    CASE(test_delete_item),
    CASE(test_delete_thread),
    CASE(test_attachments),
    CASE(test_invalid_records),
    CASE(test_ping),
    CASE(test_isolation),
    CASE(test_concurrency),
    CASE(test_lease_exclusive),
    CASE(test_lease_expiry),
    CASE(test_lease_race),
};

#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

int ck_test_store_suite(const char *backend_name, ck_store *(*open_fresh)(void *ud),
                        void (*cleanup)(void *ud), void *ud) {
  suite_env env = {.open_fresh = open_fresh, .cleanup = cleanup, .ud = ud};
  struct CMUnitTest tests[CASE_COUNT];
  for (size_t i = 0; i < CASE_COUNT; i++) {
    tests[i] = (struct CMUnitTest){.name = cases[i].name,
                                   .test_func = cases[i].fn,
                                   .setup_func = fx_setup,
                                   .teardown_func = fx_teardown,
                                   .initial_state = &env};
  }
  char group[64];
  snprintf(group, sizeof(group), "store/%s", backend_name);
  return _cmocka_run_group_tests(group, tests, CASE_COUNT, NULL, NULL);
}

/* ---- Two handles on one database ---- */

typedef struct writer_arg {
  ck_store *s;
  int n;
  int errors;
} writer_arg;

static const ck_ctx TWO_USER = {.user_id = "alice"};

/* Writes 100 items into thr_1 through one handle. */
static void *hammer(void *arg) {
  writer_arg *w = arg;
  ck_arena *a = ck_arena_new(0);
  char text[256];
  for (int i = 0; i < 100 && a != NULL; i++) {
    ck_arena_reset(a);
    snprintf(text, sizeof(text),
             "{\"id\":\"h%d_%d\",\"created_at\":\"2025-01-02T00:00:00\",\"type\":\"x\"}", w->n, i);
    ck_json *v = NULL;
    if (ck_json_parse(a, text, strlen(text), 0, &v, NULL) != CK_OK ||
        w->s->vt->add_thread_item(w->s, "thr_1", v, &TWO_USER) != CK_OK)
      w->errors++;
  }
  if (a == NULL)
    w->errors++;
  ck_arena_free(a);
  return NULL;
}

void ck_test_store_two_handles(ck_store *s1, ck_store *s2) {
  static const char thread[] =
      "{\"title\":\"T\",\"id\":\"thr_1\",\"created_at\":\"2025-01-01T00:00:00\","
      "\"status\":{\"type\":\"active\"},\"metadata\":{\"k\":\"v\"}}";
  static const char item[] = "{\"id\":\"msg_1\",\"thread_id\":\"thr_1\",\"created_at\":"
                             "\"2025-01-01T00:00:01\",\"type\":\"user_message\",\"content\":[],"
                             "\"attachments\":[],\"inference_options\":{}}";
  ck_arena *a = ck_arena_new(0);
  assert_non_null(a);
  ck_json *v = NULL;
  ck_page p;
  assert_int_equal(ck_json_parse(a, thread, strlen(thread), 0, &v, NULL), CK_OK);
  assert_int_equal(s1->vt->save_thread(s1, v, &TWO_USER), CK_OK);
  assert_int_equal(s2->vt->load_thread(s2, a, "thr_1", &TWO_USER, &v), CK_OK);
  assert_string_equal(ck_json_dumps(a, v, NULL), thread);
  assert_int_equal(ck_json_parse(a, item, strlen(item), 0, &v, NULL), CK_OK);
  assert_int_equal(s2->vt->add_thread_item(s2, "thr_1", v, &TWO_USER), CK_OK);
  assert_int_equal(s1->vt->load_item(s1, a, "thr_1", "msg_1", &TWO_USER, &v), CK_OK);
  assert_string_equal(ck_json_dumps(a, v, NULL), item);

  /* Both write at once: the database serialises them, nothing is lost. */
  writer_arg w1 = {.s = s1, .n = 1}, w2 = {.s = s2, .n = 2};
  pthread_t t1, t2;
  assert_int_equal(pthread_create(&t1, NULL, hammer, &w1), 0);
  assert_int_equal(pthread_create(&t2, NULL, hammer, &w2), 0);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  assert_int_equal(w1.errors + w2.errors, 0);
  /* INT_MAX as the limit: the limit + 1 a store asks for must not overflow. */
  assert_int_equal(
      s2->vt->load_thread_items(s2, a, "thr_1", NULL, INT_MAX, CK_ORDER_ASC, &TWO_USER, &p), CK_OK);
  assert_int_equal(ck_json_array_size(p.data), 201);
  assert_false(p.has_more);
  assert_int_equal(s2->vt->load_threads(s2, a, INT_MAX, NULL, CK_ORDER_DESC, &TWO_USER, &p), CK_OK);
  assert_int_equal(ck_json_array_size(p.data), 1);

  assert_int_equal(s1->vt->delete_thread(s1, "thr_1", &TWO_USER), CK_OK);
  assert_int_equal(s2->vt->load_thread(s2, a, "thr_1", &TWO_USER, &v), CK_ENOTFOUND);
  ck_arena_free(a);
}
