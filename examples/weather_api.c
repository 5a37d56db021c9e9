/* weather_api: the web service behind the weather agent's HTTP tool (examples/weather.yaml).
 *
 * chatkit-server calls an HTTP tool by POSTing the model's arguments as JSON, here
 * {"city": "Oslo"}, and gives the model whatever comes back. When the answer carries a
 * "widget" (a Card, ListView or Basic root), the server shows that widget to the user and
 * gives the model the rest of the object, so one answer serves both audiences.
 *
 * The weather is made up but deterministic: the same city always gets the same report, which
 * keeps the example usable without an account at a weather provider (and keeps tests stable).
 * A real service would call one here; nothing else would change.
 *
 *   build/examples/weather_api 8090
 *   curl -s localhost:8090/weather -d '{"city":"Oslo"}'
 *
 * It is built on libchatkit's HTTP layer (chatkit/http.h) only because that is at hand; any
 * web framework in any language serves an HTTP tool equally well.
 */
#include <chatkit/error.h>
#include <chatkit/http.h>
#include <chatkit/json.h>

#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

typedef struct weather_app {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  ck_http_server *http;
} weather_app;

/* A made-up report. */
typedef struct report {
  int temperature_c;
  int humidity_pct;
  const char *conditions;
  const char *badge_color; /* a ChatKit badge colour that suits the conditions */
} report;

/* FNV-1a over the lower-cased name, so "oslo" and "Oslo" get the same weather. */
static uint32_t city_hash(const char *city) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)city; *p != '\0'; p++) {
    h ^= (uint32_t)tolower(*p);
    h *= 16777619u;
  }
  return h;
}

static report make_report(const char *city) {
  static const struct {
    const char *conditions, *color;
  } skies[] = {{"sunny", "warning"},      {"partly cloudy", "info"}, {"cloudy", "secondary"},
               {"light rain", "info"},    {"showers", "info"},       {"thunderstorms", "danger"},
               {"snow", "secondary"},     {"fog", "secondary"},      {"windy", "info"},
               {"clear skies", "success"}};
  uint32_t h = city_hash(city);
  report r;
  r.temperature_c = (int)(h % 36u) - 5; /* -5 .. 30 */
  r.humidity_pct = 30 + (int)((h >> 8) % 61u);
  size_t sky = (h >> 16) % (sizeof(skies) / sizeof(skies[0]));
  r.conditions = skies[sky].conditions;
  r.badge_color = skies[sky].color;
  return r;
}

/* Adds `key: value` to an object; a NULL value (out of memory) is passed on as an error. */
static int set(ck_json *obj, const char *key, ck_json *value) {
  return value == NULL ? CK_ENOMEM : ck_json_object_set(obj, key, value);
}

/* A widget component {"type": TYPE, KEY: VALUE}, the shape of ChatKit's text components. */
static ck_json *component(ck_arena *a, const char *type, const char *key, const char *value) {
  ck_json *c = ck_json_object(a);
  if (c == NULL || set(c, "type", ck_json_str(a, type)) != CK_OK ||
      set(c, key, ck_json_str(a, value)) != CK_OK)
    return NULL;
  return c;
}

/* The card the user sees:
 *
 *   Oslo                      [cloudy]
 *   4 °C
 *   Humidity 71% · made-up data for the example
 */
static ck_json *weather_card(ck_arena *a, const char *city, const report *r) {
  ck_json *badge = component(a, "Badge", "label", r->conditions);
  if (badge == NULL || set(badge, "color", ck_json_str(a, r->badge_color)) != CK_OK)
    return NULL;
  ck_json *title = component(a, "Title", "value", city);
  ck_json *header_children = ck_json_array(a);
  if (header_children == NULL || title == NULL ||
      ck_json_array_append(header_children, title) != CK_OK ||
      ck_json_array_append(header_children, badge) != CK_OK)
    return NULL;
  /* A Row puts the city and the badge on one line, pushed to either side. */
  ck_json *header = ck_json_object(a);
  if (header == NULL || set(header, "type", ck_json_str(a, "Row")) != CK_OK ||
      set(header, "justify", ck_json_str(a, "between")) != CK_OK ||
      set(header, "children", header_children) != CK_OK)
    return NULL;

  ck_json *temp = component(a, "Text", "value", ck_arena_printf(a, "%d °C", r->temperature_c));
  if (temp == NULL || set(temp, "size", ck_json_str(a, "lg")) != CK_OK ||
      set(temp, "weight", ck_json_str(a, "semibold")) != CK_OK)
    return NULL;
  ck_json *caption = component(
      a, "Caption", "value",
      ck_arena_printf(a, "Humidity %d%% · made-up data for the example", r->humidity_pct));

  ck_json *children = ck_json_array(a);
  ck_json *card = ck_json_object(a);
  if (children == NULL || card == NULL || caption == NULL ||
      ck_json_array_append(children, header) != CK_OK ||
      ck_json_array_append(children, temp) != CK_OK ||
      ck_json_array_append(children, caption) != CK_OK ||
      set(card, "type", ck_json_str(a, "Card")) != CK_OK ||
      set(card, "size", ck_json_str(a, "sm")) != CK_OK || set(card, "children", children) != CK_OK)
    return NULL;
  return card;
}

/* The whole answer: the facts for the model, the widget for the user, and copy_text, which
 * becomes what the widget's copy button puts on the clipboard. */
static ck_json *weather_answer(ck_arena *a, const char *city) {
  report r = make_report(city);
  ck_json *out = ck_json_object(a);
  ck_json *card = weather_card(a, city, &r);
  const char *copy = ck_arena_printf(a, "%s: %d °C, %s, humidity %d%%", city, r.temperature_c,
                                     r.conditions, r.humidity_pct);
  if (out == NULL || card == NULL || copy == NULL || set(out, "city", ck_json_str(a, city)) ||
      set(out, "temperature_c", ck_json_int(a, r.temperature_c)) ||
      set(out, "conditions", ck_json_str(a, r.conditions)) ||
      set(out, "humidity_pct", ck_json_int(a, r.humidity_pct)) || set(out, "widget", card) ||
      set(out, "copy_text", ck_json_str(a, copy)))
    return NULL;
  return out;
}

/* Every request ends here, on the loop thread. The answer is computed at once, so the handler
 * responds and releases the request before it returns; a slower service could answer later
 * from another thread (see the lifetime rules in chatkit/http.h). */
static void on_request(ck_http_request *req, void *ud) {
  (void)ud;
  ck_arena *a = req->arena;
  if (strcmp(req->path, "/health") == 0) {
    static const char ok[] = "{\"status\":\"ok\"}";
    ck_http_respond(req, 200, "application/json", ok, strlen(ok), NULL);
  } else if (strcmp(req->path, "/weather") != 0) {
    ck_http_respond_error(req, 404, "not_found", "try POST /weather");
  } else if (strcmp(req->method, "POST") != 0) {
    const ck_http_header allow[] = {{"Allow", "POST"}, {NULL, NULL}};
    static const char body[] =
        "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use POST\"}}";
    ck_http_respond(req, 405, "application/json", body, strlen(body), allow);
  } else {
    ck_json *args = NULL;
    const char *city = NULL;
    if (ck_json_parse(a, req->body, req->body_len, 0, &args, NULL) == CK_OK)
      city = ck_json_object_get_str(args, "city");
    /* The model may leave out a required argument: say so plainly, the tool layer passes the
     * status and this text on to the model, which can then ask the user. */
    if (city == NULL || city[0] == '\0') {
      ck_http_respond_error(req, 400, "invalid_request", "expected {\"city\": \"<name>\"}");
    } else {
      ck_json *answer = weather_answer(a, city);
      size_t len = 0;
      char *body = answer ? ck_json_dumps(a, answer, &len) : NULL;
      if (body != NULL)
        ck_http_respond(req, 200, "application/json", body, len, NULL);
      else
        ck_http_respond_error(req, 500, "internal", "out of memory");
    }
  }
  ck_http_request_release(req);
}

/* SIGINT or SIGTERM: stop accepting, let requests in progress finish, then let the loop run
 * out of work so main() can return. */
static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  weather_app *app = h->data;
  ck_http_server_close(app->http, NULL, NULL);
  app->http = NULL;
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
}

int main(int argc, char **argv) {
  long port = 8090;
  if (argc > 1) {
    char *end = NULL;
    port = strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
      fprintf(stderr, "usage: weather_api [PORT]   (0 picks a free port; default 8090)\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill the service */

  weather_app app;
  memset(&app, 0, sizeof(app));
  if (uv_loop_init(&app.loop) != 0) {
    fprintf(stderr, "weather_api: cannot create the event loop\n");
    return 1;
  }
  app.http = ck_http_server_new(&app.loop, NULL, on_request, &app);
  if (app.http == NULL || ck_http_listen(app.http, "127.0.0.1", (int)port) != CK_OK) {
    fprintf(stderr, "weather_api: cannot listen on 127.0.0.1:%ld\n", port);
    if (app.http != NULL)
      ck_http_server_close(app.http, NULL, NULL);
    uv_run(&app.loop, UV_RUN_DEFAULT);
    uv_loop_close(&app.loop);
    return 1;
  }
  uv_signal_init(&app.loop, &app.sigint);
  uv_signal_init(&app.loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);

  /* Tests and scripts wait for this line to know the port (useful with port 0). */
  printf("listening on http://127.0.0.1:%d\n", ck_http_server_port(app.http));
  fflush(stdout);
  uv_run(&app.loop, UV_RUN_DEFAULT);
  uv_loop_close(&app.loop);
  return 0;
}
