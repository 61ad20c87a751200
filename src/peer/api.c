/*
 * api.c — parleyd's local HTTP API (docs/API.md): token check, JSON in and
 * out, and the glue from requests to the node (publish, send, subscribe,
 * history, live stream, index listings, status).
 */
#include "peer/node_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_TIMEOUT_MS 600000
#define MAX_STREAM_TOPICS 64

static const char *const json_hdrs[] = {"Cache-Control", "no-store", NULL};

static void respond_json(struct parley_http_req *r, unsigned status,
                         json_t *obj) {
  char *text = json_dumps(obj, JSON_COMPACT);
  json_decref(obj);
  if (text == NULL) {
    parley_http_respond(r, 500, "application/json",
                        "{\"error\":\"out of memory\",\"code\":\"ENOMEM\"}",
                        41, json_hdrs);
    return;
  }
  parley_http_respond(r, status, "application/json", text, strlen(text),
                      json_hdrs);
  free(text);
}

void parley__api_error(struct parley_http_req *r, unsigned status, int code,
                       const char *text) {
  respond_json(r, status,
               json_pack("{s:s, s:s}", "error", text, "code",
                         parley_err_name(code)));
}

static unsigned status_for(int rc) {
  switch (rc) {
  case PARLEY_EINVAL:
  case PARLEY_ETOOBIG:
  case PARLEY_ESYNTAX:
  case PARLEY_ERANGE:
    return 400;
  case PARLEY_ENOTFOUND:
  case PARLEY_EUNKNOWNPEER:
    return 404;
  case PARLEY_ELIMIT:
    return 429;
  case PARLEY_EAUTH:   /* a changed key (trust.c) */
  case PARLEY_EDENIED: /* a private topic we are not a member of */
    return 403;
  case PARLEY_EEXIST:
    return 409;
  case PARLEY_EUNAVAIL:
  case PARLEY_ECANCELED:
    return 503;
  case PARLEY_ETIMEDOUT:
    return 504;
  default:
    return 500;
  }
}

/* ---- message objects ------------------------------------------------------ */

static json_t *msg_json_plain(const struct parley_msg *m);

/* A message object; this node's own sealed direct messages are shown as
 * the plaintext of their sender copy (dm.c).  One that does not open is
 * shown as stored (body_base64 of the envelope) and logged. */
static json_t *msg_json(struct parley_node *n, const struct parley_msg *m) {
  struct parley_msg plain;
  uint8_t *buf = NULL;
  size_t buf_len = 0;
  json_t *o;
  int rc;

  if (m->flags & PARLEY_MSG_PRIVATE) {
    /* Stored sealed under the topic key of its epoch (ptopic.c).  Without
     * that key it is shown as stored, marked "sealed". */
    rc = parley__ptopic_read(n, m, &plain, &buf, &buf_len);
    o = msg_json_plain(rc == 1 ? &plain : m);
    parley__dm_free(buf, buf_len);
    if (o != NULL) {
      json_object_set_new(o, "private", json_true());
      if (rc != 1)
        json_object_set_new(o, "sealed", json_true());
    }
    return o;
  }
  rc = parley__dm_read_sent(n, m, &plain, &buf, &buf_len);

  if (rc < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
               "sent direct message %.*s#%llu does not open: %s",
               (int)m->channel_len, m->channel, (unsigned long long)m->seq,
               parley_strerror(rc));
    return msg_json_plain(m);
  }
  o = msg_json_plain(rc == 1 ? &plain : m);
  parley__dm_free(buf, buf_len);
  return o;
}

static json_t *msg_json_plain(const struct parley_msg *m) {
  char id[MSG_ID_HEX], from[PARLEY_ID_TEXT_LEN + 1];
  json_t *o;

  parley__msg_id(m->publisher, m->channel, m->seq, id);
  parley_id_encode(m->publisher, from);
  o = json_object();
  if (o == NULL)
    return NULL;
  json_object_set_new(o, "id", json_string(id));
  if (m->channel[0] == '@') {
    json_object_set_new(o, "topic", json_null());
    json_object_set_new(o, "to", json_string(m->channel + 1));
  } else {
    json_object_set_new(o, "topic", json_stringn(m->channel, m->channel_len));
  }
  json_object_set_new(o, "from", json_string(from));
  json_object_set_new(o, "seq", json_integer((json_int_t)m->seq));
  json_object_set_new(o, "ts", json_integer((json_int_t)m->ts_ms));
  if (!(m->flags & PARLEY_MSG_BINARY) &&
      parley_utf8_valid(m->body, m->body_len)) {
    json_object_set_new(o, "body",
                        json_stringn((const char *)m->body, m->body_len));
  } else {
    size_t blen = sodium_base64_encoded_len(m->body_len,
                                            sodium_base64_VARIANT_ORIGINAL);
    char *b64 = parley_malloc(blen);
    if (b64 == NULL) {
      json_decref(o);
      return NULL;
    }
    sodium_bin2base64(b64, blen, m->body, m->body_len,
                      sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(o, "body_base64", json_string(b64));
    parley_free(b64);
  }
  json_object_set_new(o, "direction", json_string(m->outgoing ? "out" : "in"));
  return o;
}

static int append_line(struct parley_buf *b, json_t *o) {
  char *text;
  int rc;
  if (o == NULL)
    return PARLEY_ENOMEM;
  text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (text == NULL)
    return PARLEY_ENOMEM;
  rc = parley_buf_append(b, text, strlen(text));
  if (rc == PARLEY_OK)
    rc = parley_buf_append(b, "\n", 1);
  free(text);
  return rc;
}

static void respond_ndjson(struct parley_http_req *r, struct parley_buf *b) {
  parley_http_respond(r, 200, "application/x-ndjson",
                      b->data ? (const void *)b->data : (const void *)"",
                      b->len, json_hdrs);
  parley_buf_close(b);
}

/* ---- live stream ------------------------------------------------------------ */

static void streamer_free(struct parley_node *n, struct streamer *s) {
  if (s->prev)
    s->prev->next = s->next;
  else if (n->streamers == s)
    n->streamers = s->next;
  if (s->next)
    s->next->prev = s->prev;
  for (size_t i = 0; i < s->ntopics; i++)
    parley_free(s->topics[i]);
  parley_free(s->topics);
  parley_free(s);
}

static void streamer_gone(void *data, struct parley_http_req *r) {
  struct streamer *s = data;
  streamer_free(s->node, s);
}

static int stream_wants(const struct streamer *s, const struct parley_msg *m) {
  if (s->ntopics == 0 || m->channel[0] == '@')
    return 1;
  for (size_t i = 0; i < s->ntopics; i++)
    if (strcmp(s->topics[i], m->channel) == 0)
      return 1;
  return 0;
}

static void stream_send(struct parley_node *n, struct streamer *s,
                        const char *data, size_t len) {
  if (parley_http_stream_write(s->req, data, len) < 0) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "stream client too slow; ended");
    parley_http_set_close_cb(s->req, NULL, NULL);
    streamer_free(n, s);
  }
}

void parley__api_stream_msg(struct parley_node *n, const struct parley_msg *m) {
  struct streamer *s, *next;
  struct parley_buf b;
  json_t *o;
  char *text;

  if (n->streamers == NULL)
    return;
  o = msg_json(n, m);
  text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (text == NULL)
    return;
  parley_buf_init(&b, strlen(text) + 16);
  if (parley_buf_appendf(&b, "data: %s\n\n", text) == PARLEY_OK) {
    for (s = n->streamers; s; s = next) {
      next = s->next;
      if (stream_wants(s, m))
        stream_send(n, s, (const char *)b.data, b.len);
    }
  }
  parley_buf_close(&b);
  free(text);
}

void parley__api_keepalive(struct parley_node *n) {
  struct streamer *s, *next;
  for (s = n->streamers; s; s = next) {
    next = s->next;
    stream_send(n, s, ": keepalive\n\n", 13);
  }
}

void parley__api_close_streams(struct parley_node *n) {
  while (n->streamers) {
    struct streamer *s = n->streamers;
    parley_http_set_close_cb(s->req, NULL, NULL);
    parley_http_stream_end(s->req);
    streamer_free(n, s);
  }
}

struct topic_collect {
  struct streamer *s;
  int err;
};

static void collect_topic(void *ctx, const char *k, const char *v) {
  struct topic_collect *c = ctx;
  char **nt;
  if (strcmp(k, "topic") != 0 || c->err || v == NULL)
    return;
  if (c->s->ntopics >= MAX_STREAM_TOPICS) {
    c->err = PARLEY_ELIMIT;
    return;
  }
  nt = parley_realloc(c->s->topics, (c->s->ntopics + 1) * sizeof *nt);
  if (nt == NULL) {
    c->err = PARLEY_ENOMEM;
    return;
  }
  c->s->topics = nt;
  nt[c->s->ntopics] = parley_strdup(v);
  if (nt[c->s->ntopics] == NULL) {
    c->err = PARLEY_ENOMEM;
    return;
  }
  c->s->ntopics++;
}

static void api_stream(struct parley_node *n, struct parley_http_req *r) {
  struct streamer *s = parley_calloc(1, sizeof *s);
  struct topic_collect c;

  if (s == NULL) {
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  s->node = n;
  s->req = r;
  c.s = s;
  c.err = 0;
  parley_http_query_each(r, collect_topic, &c);
  if (c.err) {
    parley__api_error(r, 400, c.err, "too many topics");
    for (size_t i = 0; i < s->ntopics; i++)
      parley_free(s->topics[i]);
    parley_free(s->topics);
    parley_free(s);
    return;
  }
  if (parley_http_stream_start(r, 200, "text/event-stream") < 0) {
    for (size_t i = 0; i < s->ntopics; i++)
      parley_free(s->topics[i]);
    parley_free(s->topics);
    parley_free(s);
    parley__api_error(r, 500, PARLEY_ENOMEM, "cannot start the stream");
    return;
  }
  s->next = n->streamers;
  if (n->streamers)
    n->streamers->prev = s;
  n->streamers = s;
  parley_http_set_close_cb(r, streamer_gone, s);
  stream_send(n, s, ": connected\n\n", 13);
}

/* ---- request bodies --------------------------------------------------------- */

static json_t *parse_body(struct parley_http_req *r) {
  size_t len;
  const uint8_t *body = parley_http_body(r, &len);
  json_error_t err;
  json_t *o;

  o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &err);
  if (o == NULL || !json_is_object(o)) {
    char msg[300];
    snprintf(msg, sizeof msg, "request body is not a JSON object: %s",
             o ? "wrong type" : err.text);
    json_decref(o);
    parley__api_error(r, 400, PARLEY_ESYNTAX, msg);
    return NULL;
  }
  return o;
}

static int get_timeout(json_t *o, uint64_t *out) {
  json_t *t = json_object_get(o, "timeout_ms");
  if (t == NULL) {
    *out = DEFAULT_TIMEOUT_MS;
    return PARLEY_OK;
  }
  if (!json_is_integer(t) || json_integer_value(t) < 0 ||
      json_integer_value(t) > MAX_TIMEOUT_MS)
    return PARLEY_ERANGE;
  *out = (uint64_t)json_integer_value(t);
  return PARLEY_OK;
}

/* Extracts the payload: "body" (text) or "body_base64" (binary).
 * OUT: *buf (caller frees), *len, *flags gets PARLEY_MSG_BINARY. */
static int get_payload(struct parley_node *n, json_t *o, uint8_t **buf,
                       size_t *len, uint32_t *flags, const char **why) {
  json_t *b = json_object_get(o, "body");
  json_t *b64 = json_object_get(o, "body_base64");

  if ((b == NULL) == (b64 == NULL)) {
    *why = "exactly one of body and body_base64 is required";
    return PARLEY_EINVAL;
  }
  if (b != NULL) {
    if (!json_is_string(b)) {
      *why = "body must be a string";
      return PARLEY_EINVAL;
    }
    *len = json_string_length(b);
    if (*len > n->cfg.max_message) {
      *why = "message larger than max-message";
      return PARLEY_ETOOBIG;
    }
    *buf = parley_malloc(*len ? *len : 1);
    if (*buf == NULL)
      return PARLEY_ENOMEM;
    memcpy(*buf, json_string_value(b), *len);
    if (!parley_utf8_valid(*buf, *len)) /* e.g. an embedded NUL */
      *flags |= PARLEY_MSG_BINARY;
    return PARLEY_OK;
  }
  if (!json_is_string(b64)) {
    *why = "body_base64 must be a string";
    return PARLEY_EINVAL;
  }
  *len = json_string_length(b64) / 4 * 3 + 3;
  if (*len > (size_t)n->cfg.max_message + 3) {
    *why = "message larger than max-message";
    return PARLEY_ETOOBIG;
  }
  *buf = parley_malloc(*len);
  if (*buf == NULL)
    return PARLEY_ENOMEM;
  if (sodium_base642bin(*buf, *len, json_string_value(b64),
                        json_string_length(b64), NULL, len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    parley_free(*buf);
    *buf = NULL;
    *why = "body_base64 is not valid base64";
    return PARLEY_EINVAL;
  }
  if (*len > n->cfg.max_message) {
    parley_free(*buf);
    *buf = NULL;
    *why = "message larger than max-message";
    return PARLEY_ETOOBIG;
  }
  *flags |= PARLEY_MSG_BINARY;
  return PARLEY_OK;
}

/* ---- publish and send ------------------------------------------------------- */

static json_t *id_array(struct ackwait *w, int which) {
  json_t *a = json_array();
  char id[PARLEY_ID_TEXT_LEN + 1];
  for (uint32_t i = 0; i < w->nsubs; i++) {
    int take = which == 0 ? 1
               : which == 1 ? (w->acked[i] && !w->refused[i])
               : which == 2 ? !w->acked[i]
                            : w->refused[i];
    if (!take)
      continue;
    parley_id_encode(w->subs[i], id);
    json_array_append_new(a, json_string(id));
  }
  return a;
}

/* Per-subscriber outcome of a synchronous publish. */
static json_t *sync_results(struct ackwait *w) {
  json_t *a = json_array();
  char id[PARLEY_ID_TEXT_LEN + 1];
  for (uint32_t i = 0; i < w->nsubs; i++) {
    json_t *o = json_object();
    parley_id_encode(w->subs[i], id);
    json_object_set_new(o, "id", json_string(id));
    if (!w->acked[i]) {
      json_object_set_new(o, "status", json_string("timeout"));
    } else if (w->refused[i]) {
      json_object_set_new(o, "status", json_string("refused"));
      json_object_set_new(o, "error",
                          json_string(parley_strerror(-(int)w->status[i])));
      json_object_set_new(o, "latency_ms", json_integer(w->lat_ms[i]));
    } else {
      json_object_set_new(o, "status", json_string("stored"));
      json_object_set_new(o, "latency_ms", json_integer(w->lat_ms[i]));
    }
    json_array_append_new(a, o);
  }
  return a;
}

void parley__api_publish_result(struct parley_node *n, struct ackwait *w,
                                int timed_out) {
  json_t *o = json_object();
  unsigned status = 200;
  int all = w->nacked == w->nsubs;
  char id[MSG_ID_HEX];

  parley__msg_id(n->id.pk, w->channel, w->seq, id);
  json_object_set_new(o, "id", json_string(id));
  json_object_set_new(o, "seq", json_integer((json_int_t)w->seq));
  if (w->direct) {
    json_object_set_new(o, "to", json_string(w->channel + 1));
    json_object_set_new(o, "acked", json_boolean(all && !w->refused[0]));
    if (w->refused[0])
      json_object_set_new(o, "error", json_string("recipient refused it"));
    status = all ? (w->refused[0] ? 502 : 200) : 504;
  } else {
    json_object_set_new(o, "topic", json_string(w->channel));
    json_object_set_new(o, "mode",
                        json_string(w->ack_mode == MODE_SYNC  ? "sync"
                                    : w->ack_mode == MODE_ACK ? "ack"
                                                              : "async"));
    json_object_set_new(o, "subscribers", id_array(w, 0));
    if (w->ack_mode == MODE_SYNC)
      json_object_set_new(o, "results", sync_results(w));
    if (w->ack_mode) {
      json_object_set_new(o, "acked", id_array(w, 1));
      json_object_set_new(o, "pending", id_array(w, 2));
      json_object_set_new(o, "refused", id_array(w, 3));
      if (!all && timed_out)
        status = 504;
      for (uint32_t i = 0; i < w->nsubs && status == 200; i++)
        if (w->refused[i])
          status = 502;
    }
  }
  if (status == 502 && !w->direct)
    json_object_set_new(o, "error",
                        json_string("some subscribers refused the message "
                                    "(see \"refused\"; not retried)"));
  else if (status != 200 && !w->direct)
    json_object_set_new(o, "error",
                        json_string("not every subscriber acknowledged in "
                                    "time; the rest stay queued"));
  else if (status == 504)
    json_object_set_new(o, "error",
                        json_string("not acknowledged in time; queued"));
  respond_json(w->req, status, o);
}

static void api_publish(struct parley_node *n, struct parley_http_req *r) {
  json_t *o = parse_body(r), *t, *mode;
  const char *topic, *why = "bad request";
  uint8_t *body = NULL;
  size_t len = 0;
  uint32_t flags = 0;
  uint64_t timeout;
  int ack_mode = 0, rc;

  if (o == NULL)
    return;
  t = json_object_get(o, "topic");
  mode = json_object_get(o, "mode");
  topic = json_is_string(t) ? json_string_value(t) : NULL;
  if (topic == NULL || !parley_topic_valid(topic, strlen(topic),
                                           n->cfg.max_topic)) {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_EINVAL,
                      "topic must be 1-128 printable ASCII characters without "
                      "spaces, not starting with '@'");
    return;
  }
  if (mode != NULL) {
    const char *ms = json_is_string(mode) ? json_string_value(mode) : "";
    if (strcmp(ms, "ack") == 0)
      ack_mode = MODE_ACK;
    else if (strcmp(ms, "sync") == 0)
      ack_mode = MODE_SYNC;
    else if (strcmp(ms, "async") != 0) {
      json_decref(o);
      parley__api_error(r, 400, PARLEY_EINVAL,
                        "mode must be \"async\", \"ack\" or \"sync\"");
      return;
    }
  }
  if (get_timeout(o, &timeout) < 0) {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_ERANGE, "bad timeout_ms");
    return;
  }
  rc = get_payload(n, o, &body, &len, &flags, &why);
  if (rc < 0) {
    json_decref(o);
    parley__api_error(r, status_for(rc), rc, why);
    return;
  }
  rc = parley__publish(n, r, topic, body, len, flags, ack_mode, timeout);
  json_decref(o);
  parley_free(body);
  if (rc == 1)
    parley_http_suspend(r);
  else if (rc < 0)
    parley__api_error(r, status_for(rc), rc,
                      rc == PARLEY_ELIMIT ? "outbox full" : parley_strerror(rc));
}

struct send_wait {
  struct parley_node *n;
  struct parley_http_req *req;
  uint8_t *body;
  size_t len;
  uint32_t flags;
  uint64_t timeout;
  char channel[CHANNEL_MAX];
};

static void send_wait_gone(void *data, struct parley_http_req *r) {
  ((struct send_wait *)data)->req = NULL;
}

/* Answers a refused send: a changed key gets trust.c's loud text. */
static void send_error(struct parley_node *n, struct parley_http_req *r,
                       const char *channel, int rc) {
  uint8_t pk[32];
  struct rpeer *p = NULL;
  char text[512];

  if (rc == PARLEY_EAUTH && parley_id_decode(channel + 1, pk) == PARLEY_OK)
    p = parley__node_peer(n, pk, 0);
  if (p != NULL && p->impostor) {
    parley__trust_refusal(n, p, text, sizeof text);
    parley__api_error(r, 403, rc, text);
    return;
  }
  parley__api_error(r, status_for(rc), rc,
                    rc == PARLEY_ELIMIT ? "outbox full" : parley_strerror(rc));
}

static void do_send(struct parley_node *n, struct parley_http_req *r,
                    const char *channel, const uint8_t *body, size_t len,
                    uint32_t flags, uint64_t timeout) {
  int rc = parley__publish(n, r, channel, body, len,
                           flags | PARLEY_MSG_DIRECT, 1, timeout);
  if (rc == 1)
    return; /* answered once acked; caller suspended or will */
  if (rc < 0)
    send_error(n, r, channel, rc);
}

static void on_send_lookup(struct parley_node *n, struct icreq *q, int rc,
                           const struct parley_frame *f) {
  struct send_wait *sw = q->ctx;
  if (sw->req) {
    parley_http_set_close_cb(sw->req, NULL, NULL);
    if (rc == PARLEY_OK && f && f->type == PARLEY_FRAME_PEERS &&
        f->u.list.list.count == 1) {
      const uint8_t *cur = f->u.list.list.raw;
      size_t left = f->u.list.list.raw_len;
      struct parley_wire_peer wp;
      /* Learn its name and address first: a key claiming a trusted
       * peer's name is refused before anything is sealed to it. */
      if (parley_wire_peer_next(&cur, &left, &wp))
        (void)parley__ic_learn_peer(n, &wp);
      do_send(n, sw->req, sw->channel, sw->body, sw->len, sw->flags,
              sw->timeout);
    }
    else if (rc == PARLEY_OK || rc == PARLEY_EUNKNOWNPEER)
      parley__api_error(sw->req, 404, PARLEY_EUNKNOWNPEER, "unknown peer");
    else
      parley__api_error(sw->req, 503, PARLEY_EUNAVAIL,
                        "index unreachable and the peer is not known locally");
  }
  parley_free(sw->body);
  parley_free(sw);
}

static void api_send(struct parley_node *n, struct parley_http_req *r) {
  json_t *o = parse_body(r), *to;
  const char *why = "bad request", *tos;
  uint8_t pk[32], *body = NULL;
  char channel[CHANNEL_MAX], addr[128], name[128];
  int64_t seen;
  size_t len = 0;
  uint32_t flags = 0;
  uint64_t timeout;
  struct send_wait *sw;
  int rc;

  if (o == NULL)
    return;
  to = json_object_get(o, "to");
  tos = json_is_string(to) ? json_string_value(to) : "";
  if (parley_id_decode(tos, pk) < 0) {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_EINVAL, "\"to\" is not a peer id");
    return;
  }
  if (memcmp(pk, n->id.pk, 32) == 0) {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_EINVAL, "cannot send to yourself");
    return;
  }
  if (get_timeout(o, &timeout) < 0) {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_ERANGE, "bad timeout_ms");
    return;
  }
  rc = get_payload(n, o, &body, &len, &flags, &why);
  json_decref(o);
  if (rc < 0) {
    parley__api_error(r, status_for(rc), rc, why);
    return;
  }
  parley__direct_channel(pk, channel);
  /* Known peers (seen live, or in the peer cache) get the message queued
   * even while offline; a key nobody has ever seen is asked of the index. */
  if (parley__node_peer(n, pk, 0) != NULL ||
      parley_store_peer_get(n->store, pk, addr, name, &seen) == PARLEY_OK) {
    struct rpeer *p = parley__node_peer(n, pk, 1);
    if (p && p->addr[0] == '\0' &&
        parley_store_peer_get(n->store, pk, addr, name, &seen) == PARLEY_OK) {
      snprintf(p->addr, sizeof p->addr, "%.*s", (int)(sizeof p->addr - 1),
               addr);
      snprintf(p->name, sizeof p->name, "%.*s", (int)(sizeof p->name - 1),
               name);
    }
    if (p != NULL)
      parley__trust_eval(n, p, NULL, NULL);
    rc = parley__publish(n, r, channel, body, len, flags | PARLEY_MSG_DIRECT,
                         1, timeout);
    parley_free(body);
    if (rc == 1)
      parley_http_suspend(r);
    else if (rc < 0)
      send_error(n, r, channel, rc);
    return;
  }
  sw = parley_calloc(1, sizeof *sw);
  if (sw == NULL) {
    parley_free(body);
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  sw->n = n;
  sw->req = r;
  sw->body = body;
  sw->len = len;
  sw->flags = flags;
  sw->timeout = timeout;
  snprintf(sw->channel, sizeof sw->channel, "%s", channel);
  rc = parley__ic_request(n, PARLEY_FRAME_LOOKUP, NULL, pk, on_send_lookup, sw);
  if (rc < 0) {
    parley_free(body);
    parley_free(sw);
    parley__api_error(r, 503, PARLEY_EUNAVAIL,
                      "index unreachable and the peer is not known locally");
    return;
  }
  parley_http_set_close_cb(r, send_wait_gone, sw);
  parley_http_suspend(r);
}

/* ---- subscriptions ------------------------------------------------------------ */

struct req_wait {
  struct parley_http_req *req;
  int subscribe;
  char topic[CHANNEL_MAX];
};

static void req_wait_gone(void *data, struct parley_http_req *r) {
  ((struct req_wait *)data)->req = NULL;
}

static void sub_result(struct parley_http_req *r, const char *topic, int on,
                       const char *index_state) {
  respond_json(r, 200,
               json_pack("{s:s, s:b, s:s}", "topic", topic, "subscribed", on,
                         "index", index_state));
}

static void on_sub_reply(struct parley_node *n, struct icreq *q, int rc,
                         const struct parley_frame *f) {
  struct req_wait *w = q->ctx;
  if (rc == PARLEY_EDENIED && w->subscribe) {
    /* A private topic we are not a member of: not subscribed here
     * either, or every registration would ask again. */
    (void)parley_map_del(&n->subs, w->topic, strlen(w->topic));
    if (parley__node_tx(n) == PARLEY_OK &&
        parley_store_sub_remove(n->store, w->topic) < 0)
      PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "unsubscribe %s: %s", w->topic,
                 parley_store_errmsg(n->store));
    parley__sync_subscribed(n, w->topic, 0);
  }
  if (w->req) {
    parley_http_set_close_cb(w->req, NULL, NULL);
    if (rc == PARLEY_OK)
      sub_result(w->req, w->topic, w->subscribe, "confirmed");
    else if (rc == PARLEY_EUNAVAIL || rc == PARLEY_ECANCELED)
      sub_result(w->req, w->topic, w->subscribe, "pending");
    else
      parley__api_error(w->req, status_for(rc), rc, parley_strerror(rc));
  }
  parley_free(w);
}

static void api_subscribe(struct parley_node *n, struct parley_http_req *r,
                          int subscribe) {
  json_t *o = parse_body(r), *t;
  const char *topic;
  struct req_wait *w;
  int rc;

  if (o == NULL)
    return;
  t = json_object_get(o, "topic");
  topic = json_is_string(t) ? json_string_value(t) : NULL;
  if (topic == NULL ||
      !parley_topic_valid(topic, strlen(topic), n->cfg.max_topic)) {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_EINVAL, "bad topic name");
    return;
  }
  rc = parley__subscribe_local(n, topic, subscribe);
  if (rc < 0) {
    json_decref(o);
    parley__api_error(r, status_for(rc), rc,
                      rc == PARLEY_ELIMIT      ? "too many subscriptions"
                      : rc == PARLEY_ENOTFOUND ? "not subscribed"
                                               : parley_strerror(rc));
    return;
  }
  w = parley_calloc(1, sizeof *w);
  if (w == NULL) {
    json_decref(o);
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  w->req = r;
  w->subscribe = subscribe;
  snprintf(w->topic, sizeof w->topic, "%s", topic);
  json_decref(o);
  rc = parley__ic_request(
      n, subscribe ? PARLEY_FRAME_SUBSCRIBE : PARLEY_FRAME_UNSUBSCRIBE,
      w->topic, NULL, on_sub_reply, w);
  if (rc < 0) {
    /* Saved locally; sent when the index is back. */
    sub_result(r, w->topic, subscribe, "pending");
    parley_free(w);
    return;
  }
  parley_http_set_close_cb(r, req_wait_gone, w);
  parley_http_suspend(r);
}

static void api_subscriptions(struct parley_node *n, struct parley_http_req *r) {
  struct parley_map_iter it;
  struct parley_map_entry *e;
  struct parley_buf b;

  parley_buf_init(&b, 16u * 1024 * 1024);
  parley_map_iter_init(&it, &n->subs);
  while ((e = parley_map_iter_next(&it)) != NULL)
    if (append_line(&b, json_pack("{s:s}", "topic", (const char *)e->key)) < 0)
      break;
  respond_ndjson(r, &b);
}

/* ---- history -------------------------------------------------------------------- */

static int history_row(void *ctx, const struct parley_msg *m) {
  struct parley_buf *b = ((void **)ctx)[0];
  struct parley_node *n = ((void **)ctx)[1];
  return append_line(b, msg_json(n, m)) < 0 ? PARLEY_ETOOBIG : 0;
}

static int query_i64(struct parley_http_req *r, const char *name, int64_t *out) {
  const char *v = parley_http_query(r, name);
  uint64_t u;
  if (v == NULL)
    return 0;
  if (parley_parse_u64(v, 0, INT64_MAX, &u) < 0)
    return PARLEY_EINVAL;
  *out = (int64_t)u;
  return 1;
}

static void api_messages(struct parley_node *n, struct parley_http_req *r) {
  struct parley_query q;
  struct parley_buf b;
  uint8_t from[32];
  const char *v;
  int64_t limit = 0;
  void *ctx[2];
  int rc;

  memset(&q, 0, sizeof q);
  q.since_ms = INT64_MIN;
  q.until_ms = INT64_MAX;
  q.channel = parley_http_query(r, "topic");
  if (q.channel && q.channel[0] == '\0')
    q.channel = NULL;
  if (q.channel &&
      !parley_topic_valid(q.channel, strlen(q.channel), PARLEY_MAX_TOPIC)) {
    parley__api_error(r, 400, PARLEY_EINVAL, "bad topic name");
    return;
  }
  v = parley_http_query(r, "direct");
  q.direct_only = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
  v = parley_http_query(r, "from");
  if (v) {
    if (parley_id_decode(v, from) < 0) {
      parley__api_error(r, 400, PARLEY_EINVAL, "from is not a peer id");
      return;
    }
    q.from = from;
  }
  if (query_i64(r, "since", &q.since_ms) < 0 ||
      query_i64(r, "until", &q.until_ms) < 0 ||
      query_i64(r, "limit", &limit) < 0 || limit > 1000000) {
    parley__api_error(r, 400, PARLEY_EINVAL,
                      "since, until and limit must be non-negative integers");
    return;
  }
  q.limit = (uint32_t)limit;
  q.search = parley_http_query(r, "search");
  if (q.search && q.search[0] == '\0')
    q.search = NULL;
  parley_buf_init(&b, 64u * 1024 * 1024);
  ctx[0] = &b;
  ctx[1] = n;
  rc = parley_store_query(n->store, &q, history_row, ctx);
  if (rc < 0 && rc != PARLEY_ETOOBIG) {
    parley_buf_close(&b);
    parley__api_error(r, 500, rc, parley_store_errmsg(n->store));
    return;
  }
  respond_ndjson(r, &b);
}

/* ---- index listings -------------------------------------------------------------- */

/* "trusted" (a pinned key), "changed" (another key claiming a pinned
 * name or address: noted through trust.c, which logs it loudly), "self"
 * or "unverified", for one peer of the index's listing. */
static const char *peer_trust(struct parley_node *n,
                              const struct parley_wire_peer *wp) {
  char name[PARLEY_MAX_NAME + 1], addr[PARLEY_MAX_ADDR + 1];
  struct rpeer *p;

  if (memcmp(wp->key, n->id.pk, 32) == 0)
    return "self";
  if (parley__trust_find(n, wp->key) != NULL)
    return "trusted";
  if (wp->name.len > PARLEY_MAX_NAME || wp->addr.len > PARLEY_MAX_ADDR)
    return "unverified";
  memcpy(name, wp->name.ptr, wp->name.len);
  name[wp->name.len] = '\0';
  memcpy(addr, wp->addr.ptr, wp->addr.len);
  addr[wp->addr.len] = '\0';
  if (parley__trust_conflict(n, wp->key, name, addr) == NULL)
    return "unverified";
  p = parley__ic_learn_peer(n, wp); /* evaluates it: logged, refused */
  if (p != NULL)
    parley__trust_eval(n, p, name, addr);
  return "changed";
}

static void on_list_reply(struct parley_node *n, struct icreq *q, int rc,
                          const struct parley_frame *f) {
  struct req_wait *w = q->ctx;
  struct parley_buf b;
  const uint8_t *cur;
  size_t left;

  if (w->req == NULL) {
    parley_free(w);
    return;
  }
  parley_http_set_close_cb(w->req, NULL, NULL);
  if (rc < 0 || f == NULL) {
    parley__api_error(w->req, rc == PARLEY_EUNAVAIL ? 503 : status_for(rc),
                      rc < 0 ? rc : PARLEY_EPROTO,
                      rc == PARLEY_EUNAVAIL ? "index unreachable"
                                            : parley_strerror(rc));
    parley_free(w);
    return;
  }
  parley_buf_init(&b, 64u * 1024 * 1024);
  cur = f->u.list.list.raw;
  left = f->u.list.list.raw_len;
  if (f->type == PARLEY_FRAME_PEERS) {
    struct parley_wire_peer wp;
    char id[PARLEY_ID_TEXT_LEN + 1];
    while (parley_wire_peer_next(&cur, &left, &wp)) {
      const char *trust = peer_trust(n, &wp);
      parley_id_encode(wp.key, id);
      if (append_line(&b, json_pack("{s:s, s:s%, s:s%, s:I, s:s}", "id", id,
                                    "name", wp.name.ptr, wp.name.len, "addr",
                                    wp.addr.ptr, wp.addr.len, "last_seen",
                                    (json_int_t)wp.last_seen_ms, "trust",
                                    trust)) < 0)
        break;
    }
  } else if (f->type == PARLEY_FRAME_TOPICS) {
    struct parley_wire_topic wt;
    while (parley_wire_topic_next(&cur, &left, &wt))
      if (append_line(&b, json_pack("{s:s%, s:I}", "topic", wt.topic.ptr,
                                    wt.topic.len, "subscribers",
                                    (json_int_t)wt.subscribers)) < 0)
        break;
  }
  respond_ndjson(w->req, &b);
  parley_free(w);
}

static void api_list(struct parley_node *n, struct parley_http_req *r,
                     uint8_t type) {
  struct req_wait *w = parley_calloc(1, sizeof *w);
  int rc;
  if (w == NULL) {
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  w->req = r;
  rc = parley__ic_request(n, type, NULL, NULL, on_list_reply, w);
  if (rc < 0) {
    parley_free(w);
    parley__api_error(r, 503, PARLEY_EUNAVAIL, "index unreachable");
    return;
  }
  parley_http_set_close_cb(r, req_wait_gone, w);
  parley_http_suspend(r);
}

/* ---- status and metrics ----------------------------------------------------------- */

static void api_status(struct parley_node *n, struct parley_http_req *r) {
  json_t *o = json_object(), *subs = json_array(), *idx = json_object();
  struct parley_map_iter it;
  struct parley_map_entry *e;
  uint64_t count = 0;

  parley_map_iter_init(&it, &n->subs);
  while ((e = parley_map_iter_next(&it)) != NULL)
    json_array_append_new(subs, json_string((const char *)e->key));
  if (parley_store_count_messages(n->store, &count) < 0)
    count = 0;
  json_object_set_new(idx, "addr",
                      json_string(n->cfg.index[n->icur % n->cfg.nindex]));
  json_object_set_new(idx, "connected", json_boolean(n->registered));
  json_object_set_new(o, "id", json_string(n->id_text));
  json_object_set_new(o, "name", json_string(n->name));
  json_object_set_new(o, "addr", json_string(n->addr));
  json_object_set_new(o, "api", json_string(n->api_addr));
  json_object_set_new(o, "index", idx);
  json_object_set_new(o, "subscriptions", subs);
  json_object_set_new(o, "links",
                      json_integer((json_int_t)parley_net_stats(n->net)->links_open));
  json_object_set_new(o, "outbox", json_integer((json_int_t)n->outbox_depth));
  json_object_set_new(o, "messages", json_integer((json_int_t)count));
  json_object_set_new(o, "uptime_ms",
                      json_integer((json_int_t)(parley_mono_ms() - n->started_ms)));
  json_object_set_new(o, "version", json_string(PARLEY_VERSION_STRING));
  respond_json(r, 200, o);
}

static void api_metrics(struct parley_node *n, struct parley_http_req *r) {
  struct parley_buf b;
  parley_buf_init(&b, 16u * 1024 * 1024);
  if (parley__api_metrics(n, &b) < 0) {
    parley_buf_close(&b);
    parley__api_error(r, 500, PARLEY_ENOMEM, "metrics too large");
    return;
  }
  parley_http_respond(r, 200, "text/plain; version=0.0.4", b.data, b.len,
                      NULL);
  parley_buf_close(&b);
}

/* ---- dispatch ------------------------------------------------------------------------ */

static int authorized(const struct parley_node *n, struct parley_http_req *r) {
  const char *h = parley_http_header(r, "Authorization");
  size_t tl = strlen(n->token);
  if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
    return 0;
  h += 7;
  if (strlen(h) != tl)
    return 0;
  return sodium_memcmp(h, n->token, tl) == 0;
}

struct route_entry {
  const char *method;
  const char *path;
  void (*fn)(struct parley_node *n, struct parley_http_req *r);
};

static void api_id(struct parley_node *n, struct parley_http_req *r) {
  respond_json(r, 200, json_pack("{s:s}", "id", n->id_text));
}
static void api_sub(struct parley_node *n, struct parley_http_req *r) {
  api_subscribe(n, r, 1);
}
static void api_unsub(struct parley_node *n, struct parley_http_req *r) {
  api_subscribe(n, r, 0);
}
static void api_peers(struct parley_node *n, struct parley_http_req *r) {
  api_list(n, r, PARLEY_FRAME_LIST_PEERS);
}
static void api_topics(struct parley_node *n, struct parley_http_req *r) {
  api_list(n, r, PARLEY_FRAME_LIST_TOPICS);
}

/* POST /v1/history {"topic","keep"}: a topic without history (keep false)
 * is neither stored nor acknowledged as stored on this peer. */
static void api_history(struct parley_node *n, struct parley_http_req *r) {
  json_t *o = parse_body(r), *keep;
  const char *topic;
  int rc;

  if (o == NULL)
    return;
  topic = json_string_value(json_object_get(o, "topic"));
  keep = json_object_get(o, "keep");
  if (topic == NULL || !json_is_boolean(keep)) {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_EINVAL,
                      "want {\"topic\": NAME, \"keep\": true|false}");
    return;
  }
  rc = parley__topic_history(n, topic, json_is_true(keep));
  if (rc < 0)
    parley__api_error(r, status_for(rc), rc,
                      rc == PARLEY_EINVAL ? "bad topic name"
                                          : parley_strerror(rc));
  else
    respond_json(r, 200, json_pack("{s:s, s:b}", "topic", topic, "history",
                                   json_is_true(keep)));
  json_decref(o);
}

static const struct route_entry routes[] = {
    {"GET", "/v1/status", api_status},
    {"GET", "/v1/id", api_id},
    {"POST", "/v1/subscribe", api_sub},
    {"POST", "/v1/unsubscribe", api_unsub},
    {"GET", "/v1/subscriptions", api_subscriptions},
    {"POST", "/v1/publish", api_publish},
    {"POST", "/v1/send", api_send},
    {"GET", "/v1/messages", api_messages},
    {"GET", "/v1/stream", api_stream},
    {"GET", "/v1/peers", api_peers},
    {"GET", "/v1/topics", api_topics},
    {"GET", "/v1/verify", parley__api_verify},
    {"POST", "/v1/trust", parley__api_trust},
    {"POST", "/v1/untrust", parley__api_untrust},
    {"GET", "/v1/trusted", parley__api_trusted},
    {"GET", "/metrics", api_metrics},
    {"POST", "/v1/private/create", parley__api_private},
    {"POST", "/v1/private/grant", parley__api_private},
    {"POST", "/v1/private/revoke", parley__api_private},
    {"POST", "/v1/private/rotate", parley__api_private},
    {"GET", "/v1/private", parley__api_private},
    {"POST", "/v1/history", api_history},
};

void parley__api_handler(void *ctx, struct parley_http_req *r) {
  struct parley_node *n = ctx;
  const char *method = parley_http_method(r), *path = parley_http_path(r);
  int path_known = 0;

  if (n->closing) {
    parley__api_error(r, 503, PARLEY_ECANCELED, "daemon shutting down");
    return;
  }
  if (!authorized(n, r)) {
    PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "API request without a valid token");
    parley__api_error(r, 401, PARLEY_EDENIED, "missing or wrong API token");
    return;
  }
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (strcmp(routes[i].path, path) != 0)
      continue;
    path_known = 1;
    if (strcmp(routes[i].method, method) == 0) {
      routes[i].fn(n, r);
      return;
    }
  }
  if (path_known)
    parley__api_error(r, 405, PARLEY_EINVAL, "method not allowed");
  else
    parley__api_error(r, 404, PARLEY_ENOTFOUND, "no such endpoint");
}

/* ---- shared with api_trust.c ------------------------------------------------ */

void parley__api_respond_json(struct parley_http_req *r, unsigned status,
                              json_t *obj) {
  respond_json(r, status, obj);
}

json_t *parley__api_parse_body(struct parley_http_req *r) {
  return parse_body(r);
}

int parley__api_append_line(struct parley_buf *b, json_t *o) {
  return append_line(b, o);
}

void parley__api_respond_ndjson(struct parley_http_req *r,
                                struct parley_buf *b) {
  respond_ndjson(r, b);
}

unsigned parley__api_status_for(int rc) { return status_for(rc); }
