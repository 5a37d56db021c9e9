/* MCP tools as agent tools: each tool of a server becomes a ck_tool_def whose fn forwards the
 * call to the server and turns the result into the text the model reads. */
#include "agent/mcp_internal.h"

#include <chatkit/error.h>

#include <string.h>

/* The model APIs accept function names of at most 64 characters. */
#define MAX_TOOL_NAME 64
/* A tool answer larger than this is cut: it would flood the model's context anyway. */
#define MAX_TOOL_TEXT ((size_t)1024 * 1024)

typedef struct mcp_tool {
  ck_mcp *m;
  const char *remote; /* the server's name for the tool */
} mcp_tool;

/* The text the model gets from a tools/call result. */
static const char *result_text(ck_arena *a, const ck_json *result) {
  const ck_json *content = ck_json_object_get(result, "content");
  ck_buf b;
  ck_buf_init(&b, MAX_TOOL_TEXT);
  bool any = false, full = false;
  for (size_t i = 0; i < ck_json_array_size(content) && !full; i++) {
    const ck_json *c = ck_json_array_get(content, i);
    const char *type = ck_json_object_get_str(c, "type");
    const ck_json *text = ck_json_object_get(c, "text");
    if (type == NULL || strcmp(type, "text") != 0 || !ck_json_is_string(text))
      continue;
    if (any && ck_buf_putc(&b, '\n') != CK_OK)
      break;
    const char *s = ck_json_str_value(text);
    size_t n = ck_json_str_len(text), room = MAX_TOOL_TEXT - b.len;
    if (n > room) {
      /* Keep what fits, cut before a UTF-8 sequence so the text stays valid. */
      n = room;
      while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
      full = true;
    }
    if (ck_buf_append(&b, s, n) != CK_OK)
      break;
    any = true;
  }
  const char *out = NULL;
  if (any) {
    out = ck_arena_strndup(a, b.data ? b.data : "", b.len);
  } else if (ck_json_object_get(result, "structuredContent") != NULL) {
    out = ck_json_dumps(a, ck_json_object_get(result, "structuredContent"), NULL);
  } else if (ck_json_array_size(content) > 0) {
    out = ck_json_dumps(a, content, NULL); /* images, resources: the model sees what came */
  } else {
    out = "";
  }
  ck_buf_free(&b);
  return out;
}

static int call_mcp_tool(void *ud, ck_tool_ctx *t, const ck_json *arguments) {
  mcp_tool *mt = ud;
  ck_arena *a = ck_tool_arena(t);
  ck_json *result = NULL;
  bool is_error = true;
  int rc = ck_mcp_call_tool(mt->m, a, mt->remote, arguments, &result, &is_error);
  const char *text = result ? result_text(a, result) : NULL;
  if (text == NULL)
    return ck_tool_error(t, rc != CK_OK ? ck_strerror(rc) : "out of memory");
  if (rc != CK_OK || is_error)
    return ck_tool_error(t, text);
  return ck_tool_result_text(t, text);
}

/* "<prefix>__<name>" with characters outside [a-zA-Z0-9_-] as '_', at most 64 of them. */
static char *tool_name(ck_arena *a, const char *prefix, const char *name) {
  char *s = prefix ? ck_arena_printf(a, "%s__%s", prefix, name) : ck_arena_strdup(a, name);
  if (s == NULL)
    return NULL;
  size_t n = 0;
  for (; s[n] != '\0' && n < MAX_TOOL_NAME; n++) {
    char c = s[n];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      s[n] = '_';
  }
  s[n] = '\0';
  return s;
}

int ck_mcp_tools(ck_mcp *m, ck_arena *a, const char *prefix, ck_tool_def **defs, size_t *n) {
  if (m == NULL || a == NULL || defs == NULL || n == NULL)
    return CK_EINVAL;
  *defs = NULL;
  *n = 0;
  ck_json *tools = NULL;
  int rc = ck_mcp_list_tools(m, a, &tools);
  if (rc != CK_OK)
    return rc;
  size_t count = ck_json_array_size(tools);
  ck_tool_def *out = ck_arena_calloc(a, (count ? count : 1) * sizeof(*out));
  if (out == NULL)
    return CK_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    const ck_json *t = ck_json_array_get(tools, i);
    const char *remote = ck_json_object_get_str(t, "name");
    char *name = tool_name(a, prefix, remote);
    mcp_tool *mt = ck_arena_alloc(a, sizeof(*mt));
    if (name == NULL || mt == NULL)
      return CK_ENOMEM;
    bool clash = name[0] == '\0';
    for (size_t j = 0; j < k && !clash; j++)
      clash = strcmp(out[j].name, name) == 0;
    if (clash)
      continue;
    mt->m = m;
    mt->remote = remote;
    const char *desc = ck_json_object_get_str(t, "description");
    if (desc == NULL)
      desc = ck_json_object_get_str(t, "title");
    const ck_json *schema = ck_json_object_get(t, "inputSchema");
    out[k].name = name;
    out[k].description = desc;
    out[k].parameters_json = ck_json_is_object(schema) ? ck_json_dumps(a, schema, NULL) : NULL;
    out[k].fn = call_mcp_tool;
    out[k].ud = mt;
    out[k].client = false;
    k++;
  }
  *defs = out;
  *n = k;
  return CK_OK;
}
