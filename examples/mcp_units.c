/* mcp_units: a complete MCP server in one small file, offering one tool, convert_temperature.
 *
 * The Model Context Protocol (https://modelcontextprotocol.io) lets an agent use tools that
 * live in another program. Over the stdio transport the agent starts the program and they
 * exchange JSON-RPC 2.0 messages, one JSON object per line: requests go to our stdin, answers
 * come from our stdout. This file shows how little a server needs to take part:
 *
 *   initialize                 -> our protocol version, capabilities and name
 *   notifications/initialized  -> nothing (notifications have no "id" and get no answer)
 *   tools/list                 -> the tools, each with a JSON Schema of its arguments
 *   tools/call                 -> the tool's result as content parts (here one text part)
 *   anything else              -> JSON-RPC error -32601 "Method not found"
 *
 * chatkit-server starts it from examples/weather.yaml (`command: [build/examples/mcp_units]`)
 * and offers its tools to the model as "units__<tool>". Try it by hand:
 *
 *   printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":
 *     "convert_temperature","arguments":{"value":20,"from":"C","to":"F"}}}' |
 * build/examples/mcp_units
 *
 * stdout belongs to the protocol: anything else printed there would corrupt the stream, so
 * diagnostics go to stderr (which the client passes on to its own log).
 */
#include <chatkit/error.h>
#include <chatkit/json.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The protocol revision we implement. A client asking for another one gets ours in the answer
 * and decides whether it can live with it (chatkit-server asks for this one). */
#define PROTOCOL_VERSION "2025-06-18"

/* What tools/list answers. The inputSchema is what the model sees as the tool's parameters,
 * so the descriptions are written for the model. */
static const char TOOLS_JSON[] =
    "[{\"name\":\"convert_temperature\","
    "\"description\":\"Converts a temperature between degrees Celsius (C) and Fahrenheit (F).\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{"
    "\"value\":{\"type\":\"number\",\"description\":\"The temperature to convert\"},"
    "\"from\":{\"type\":\"string\",\"enum\":[\"C\",\"F\"],\"description\":\"Its unit\"},"
    "\"to\":{\"type\":\"string\",\"enum\":[\"C\",\"F\"],\"description\":\"The wanted unit\"}},"
    "\"required\":[\"value\",\"from\",\"to\"]}}]";

/* Writes one message as one line and flushes, since the client waits for it. */
static int send_message(ck_arena *a, const ck_json *msg) {
  size_t len = 0;
  char *text = ck_json_dumps(a, msg, &len);
  if (text == NULL)
    return -1;
  if (fwrite(text, 1, len, stdout) != len || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
    return -1;
  return 0;
}

/* {"jsonrpc":"2.0","id":ID} with a "result" or an "error" added by the callers below. */
static ck_json *envelope(ck_arena *a, const ck_json *id) {
  ck_json *r = ck_json_object(a);
  if (r == NULL || ck_json_object_set(r, "jsonrpc", ck_json_str(a, "2.0")) != CK_OK ||
      ck_json_object_set(r, "id", id ? ck_json_copy(a, id) : ck_json_null(a)) != CK_OK)
    return NULL;
  return r;
}

static int send_result(ck_arena *a, const ck_json *id, ck_json *result) {
  ck_json *r = envelope(a, id);
  if (r == NULL || result == NULL || ck_json_object_set(r, "result", result) != CK_OK)
    return -1;
  return send_message(a, r);
}

static int send_error(ck_arena *a, const ck_json *id, int code, const char *message) {
  ck_json *r = envelope(a, id);
  ck_json *e = ck_json_object(a);
  if (r == NULL || e == NULL || ck_json_object_set(e, "code", ck_json_int(a, code)) != CK_OK ||
      ck_json_object_set(e, "message", ck_json_str(a, message)) != CK_OK ||
      ck_json_object_set(r, "error", e) != CK_OK)
    return -1;
  return send_message(a, r);
}

/* A tools/call result: {"content":[{"type":"text","text":TEXT}]}, with "isError": true when the
 * tool itself failed. Tool failures are results, not JSON-RPC errors, so that the model reads
 * them and can correct its arguments. */
static ck_json *text_result(ck_arena *a, const char *text, bool is_error) {
  ck_json *part = ck_json_object(a);
  ck_json *content = ck_json_array(a);
  ck_json *result = ck_json_object(a);
  if (part == NULL || content == NULL || result == NULL || text == NULL ||
      ck_json_object_set(part, "type", ck_json_str(a, "text")) != CK_OK ||
      ck_json_object_set(part, "text", ck_json_str(a, text)) != CK_OK ||
      ck_json_array_append(content, part) != CK_OK ||
      ck_json_object_set(result, "content", content) != CK_OK)
    return NULL;
  if (is_error && ck_json_object_set(result, "isError", ck_json_bool(a, true)) != CK_OK)
    return NULL;
  return result;
}

/* 'C' or 'F' for "C", "c", "F" or "f"; 0 for anything else. */
static char unit_of(const char *s) {
  if (s == NULL || s[0] == '\0' || s[1] != '\0')
    return 0;
  char u = (char)toupper((unsigned char)s[0]);
  return u == 'C' || u == 'F' ? u : 0;
}

/* The tool itself. */
static ck_json *convert_temperature(ck_arena *a, const ck_json *args) {
  const ck_json *value = ck_json_object_get(args, "value");
  char from = unit_of(ck_json_object_get_str(args, "from"));
  char to = unit_of(ck_json_object_get_str(args, "to"));
  if (!ck_json_is_number(value) || from == 0 || to == 0)
    return text_result(
        a, "expected {\"value\": <number>, \"from\": \"C\"|\"F\", \"to\": \"C\"|\"F\"}", true);
  double v = ck_json_number_value(value);
  double out = v;
  if (from == 'C' && to == 'F')
    out = v * 9.0 / 5.0 + 32.0;
  else if (from == 'F' && to == 'C')
    out = (v - 32.0) * 5.0 / 9.0;
  /* One decimal is what a person wants to read; %g prints the input as given ("20", "98.6"). */
  return text_result(a, ck_arena_printf(a, "%g °%c = %.1f °%c", v, from, out, to), false);
}

/* Answers one message. Returns -1 only when stdout is gone, which ends the program. */
static int handle(ck_arena *a, const char *line, size_t len) {
  ck_json *msg = NULL;
  if (ck_json_parse(a, line, len, 0, &msg, NULL) != CK_OK || !ck_json_is_object(msg))
    return send_error(a, NULL, -32700, "Parse error");
  const char *method = ck_json_object_get_str(msg, "method");
  const ck_json *id = ck_json_object_get(msg, "id");
  const ck_json *params = ck_json_object_get(msg, "params");
  if (method == NULL)
    /* An answer to a request of ours; we never send any, so there is nothing to match. */
    return 0;
  if (id == NULL)
    /* A notification (notifications/initialized, notifications/cancelled...): no answer. Our
     * calls finish at once, so there is nothing to cancel either. */
    return 0;

  if (strcmp(method, "initialize") == 0) {
    ck_json *result = NULL;
    const char *text = "{\"protocolVersion\":\"" PROTOCOL_VERSION "\","
                       "\"capabilities\":{\"tools\":{}},"
                       "\"serverInfo\":{\"name\":\"mcp-units\",\"version\":\"1.0.0\"}}";
    if (ck_json_parse(a, text, strlen(text), 0, &result, NULL) != CK_OK)
      return -1;
    return send_result(a, id, result);
  }
  if (strcmp(method, "ping") == 0)
    return send_result(a, id, ck_json_object(a));
  if (strcmp(method, "tools/list") == 0) {
    ck_json *tools = NULL;
    ck_json *result = ck_json_object(a);
    if (result == NULL ||
        ck_json_parse(a, TOOLS_JSON, strlen(TOOLS_JSON), 0, &tools, NULL) != CK_OK ||
        ck_json_object_set(result, "tools", tools) != CK_OK)
      return -1;
    return send_result(a, id, result);
  }
  if (strcmp(method, "tools/call") == 0) {
    const char *name = ck_json_object_get_str(params, "name");
    if (name == NULL || strcmp(name, "convert_temperature") != 0)
      return send_error(a, id, -32602, "Unknown tool");
    return send_result(a, id, convert_temperature(a, ck_json_object_get(params, "arguments")));
  }
  return send_error(a, id, -32601, "Method not found");
}

int main(void) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = 0;
  /* The client closes our stdin to ask us to leave: read until end of file. */
  while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      n--;
    if (n == 0)
      continue;
    /* One arena per message: everything the answer needed is freed in one step. */
    ck_arena *a = ck_arena_new(0);
    if (a == NULL) {
      fprintf(stderr, "mcp_units: out of memory\n");
      rc = 1;
      break;
    }
    if (handle(a, line, (size_t)n) != 0) {
      fprintf(stderr, "mcp_units: cannot write to stdout, exiting\n");
      rc = 1;
    }
    ck_arena_free(a);
  }
  free(line);
  return rc;
}
