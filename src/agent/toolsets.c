/* MCP tool sets that follow their server's changes (see toolsets.h). */
#include "agent/toolsets.h"

#include <chatkit/error.h>
#include <chatkit/mcp.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct ck__toolset {
  atomic_int refs; /* the source's, while current, and one per turn using it */
  ck_arena *a;     /* the defs, their names and the MCP forwarding state */
  ck_tool_def *defs;
  size_t n;
  uint64_t gen; /* the server's tools generation before the list was fetched */
};

struct ck__source {
  ck_mcp *m;
  const char *prefix;
  ck__toolset *cur;       /* loop thread only */
  atomic_int refs;        /* the agent's, and a running refresh's */
  atomic_bool refreshing; /* a refresh is on a worker or on its way back */
  bool closed;            /* loop thread only: the agent is gone */
  ck_service *svc;        /* of the running refresh */
  ck__toolset *next;      /* the refresh's result, handed from the worker to the loop */
};

/* Lists the server's tools into a new set (blocks). NULL on failure. */
static ck__toolset *toolset_list(ck_mcp *m, const char *prefix, int *rc) {
  ck__toolset *t = calloc(1, sizeof(*t));
  ck_arena *a = t ? ck_arena_new(4096) : NULL;
  if (a == NULL) {
    free(t);
    *rc = CK_ENOMEM;
    return NULL;
  }
  t->a = a;
  t->gen = ck_mcp_tools_generation(m);
  *rc = ck_mcp_tools(m, a, prefix, &t->defs, &t->n);
  if (*rc != CK_OK) {
    ck_arena_free(a);
    free(t);
    return NULL;
  }
  atomic_init(&t->refs, 1);
  return t;
}

void ck__toolset_release(ck__toolset *t) {
  if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
    return;
  ck_arena_free(t->a);
  free(t);
}

const ck_tool_def *ck__toolset_defs(const ck__toolset *t, size_t *n) {
  *n = t->n;
  return t->defs;
}

static void source_release(ck__source *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  ck__toolset_release(s->cur);
  ck__toolset_release(s->next);
  free(s);
}

int ck__sources_new(const ck_agent_def *def, ck__source ***out) {
  *out = NULL;
  if (def->nmcp == 0)
    return CK_OK;
  ck__source **src = calloc(def->nmcp, sizeof(*src));
  if (src == NULL)
    return CK_ENOMEM;
  int rc = CK_OK;
  for (size_t i = 0; i < def->nmcp && rc == CK_OK; i++) {
    ck__source *s = calloc(1, sizeof(*s));
    if (s == NULL) {
      rc = CK_ENOMEM;
      break;
    }
    src[i] = s;
    s->m = def->mcp[i];
    s->prefix = def->mcp_prefixes ? def->mcp_prefixes[i] : NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->refreshing, false);
    s->cur = s->m ? toolset_list(s->m, s->prefix, &rc) : NULL;
    if (s->m == NULL)
      rc = CK_EINVAL;
  }
  if (rc != CK_OK) {
    ck__sources_free(src, def->nmcp);
    return rc;
  }
  *out = src;
  return CK_OK;
}

void ck__sources_free(ck__source **src, size_t n) {
  for (size_t i = 0; src != NULL && i < n; i++) {
    if (src[i] == NULL)
      continue;
    src[i]->closed = true;
    source_release(src[i]);
  }
  free(src);
}

/* Loop side of a refresh: the new set replaces the current one (turns holding the old one keep
 * it until they end). A failed refresh keeps the old set; the next turn tries again. */
static void refresh_done(void *ud) {
  ck__source *s = ud;
  ck__toolset *t = s->next;
  s->next = NULL;
  atomic_store(&s->refreshing, false);
  if (t != NULL && !s->closed) {
    ck__toolset_release(s->cur);
    s->cur = t;
  } else {
    ck__toolset_release(t);
  }
  source_release(s);
}

/* Worker side: list the tools again (this may block on the server). */
static void refresh_job(void *ud) {
  ck__source *s = ud;
  int rc = CK_OK;
  s->next = toolset_list(s->m, s->prefix, &rc);
  if (ck_service_post(s->svc, refresh_done, s) != CK_OK) {
    /* Out of memory: drop the result without touching the loop's state; a later turn tries
     * again. */
    ck__toolset_release(s->next);
    s->next = NULL;
    atomic_store(&s->refreshing, false);
    source_release(s);
  }
}

void ck__sources_snapshot(ck__source **src, size_t n, ck_service *svc, ck__toolset **out) {
  for (size_t i = 0; i < n; i++) {
    ck__source *s = src[i];
    out[i] = s->cur;
    if (s->cur != NULL)
      atomic_fetch_add(&s->cur->refs, 1);
    bool stale = s->cur == NULL || ck_mcp_tools_generation(s->m) != s->cur->gen;
    if (!stale || s->closed || atomic_exchange(&s->refreshing, true))
      continue;
    s->svc = svc;
    atomic_fetch_add(&s->refs, 1);
    if (ck_service_submit(svc, refresh_job, s) != CK_OK) {
      atomic_store(&s->refreshing, false);
      source_release(s);
    }
  }
}
