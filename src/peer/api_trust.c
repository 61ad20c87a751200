/*
 * api_trust.c — key verification over the local API (docs/API.md):
 * GET /v1/verify?peer=ID (the safety number to compare out of band),
 * POST /v1/trust {"peer","name"} (pin it), POST /v1/untrust {"peer"},
 * GET /v1/trusted (the pins, NDJSON).
 */
#include "peer/node_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "crypto/safety.h"

/* What this node knows a key calls itself and where it is: the live peer
 * record first, then the peer cache.  OUT: name and addr ("" if unknown;
 * each buffer at least 128 bytes). */
static void known_as(struct parley_node *n, const uint8_t pk[32], char *name,
                     char *addr) {
  struct rpeer *p = parley__node_peer(n, pk, 0);
  char cn[128], ca[128];
  int64_t seen = 0;

  name[0] = addr[0] = '\0';
  if (p != NULL) {
    snprintf(name, 128, "%s", p->name);
    snprintf(addr, 128, "%s", p->addr);
  }
  if ((name[0] == '\0' || addr[0] == '\0') &&
      parley_store_peer_get(n->store, pk, ca, cn, &seen) == PARLEY_OK) {
    if (name[0] == '\0')
      snprintf(name, 128, "%.*s", (int)PARLEY_MAX_NAME, cn);
    if (addr[0] == '\0')
      snprintf(addr, 128, "%.*s", (int)PARLEY_MAX_ADDR, ca);
  }
}

/* The peer id in query "peer" or body field "peer".  Answers 400 itself
 * and returns PARLEY_EINVAL when it is missing or malformed, or is ours. */
static int peer_arg(struct parley_node *n, struct parley_http_req *r,
                    const char *text, uint8_t pk[32]) {
  if (text == NULL || parley_id_decode(text, pk) < 0) {
    parley__api_error(r, 400, PARLEY_EINVAL, "\"peer\" is not a peer id");
    return PARLEY_EINVAL;
  }
  if (memcmp(pk, n->id.pk, 32) == 0) {
    parley__api_error(r, 400, PARLEY_EINVAL,
                      "that is this peer's own id: there is nothing to "
                      "compare");
    return PARLEY_EINVAL;
  }
  return PARLEY_OK;
}

/* {"id","name","safety_number","trusted"} plus, for a key that claims a
 * pinned name or address, "key_changed": true and "pinned": the pinned id. */
static json_t *verify_json(struct parley_node *n, const uint8_t pk[32]) {
  char id[PARLEY_ID_TEXT_LEN + 1], safety[PARLEY_SAFETY_TEXT_LEN + 1];
  char name[128], addr[128];
  const struct trust_pin *tp = parley__trust_find(n, pk);
  const struct trust_pin *other;
  json_t *o = json_object();

  if (o == NULL)
    return NULL;
  parley_id_encode(pk, id);
  parley_safety_number(n->id.pk, pk, safety);
  known_as(n, pk, name, addr);
  json_object_set_new(o, "id", json_string(id));
  json_object_set_new(o, "name",
                      json_string(tp != NULL && tp->name[0] ? tp->name
                                                            : name));
  json_object_set_new(o, "safety_number", json_string(safety));
  json_object_set_new(o, "trusted", json_boolean(tp != NULL));
  other = parley__trust_conflict(n, pk, name, addr);
  if (other != NULL) {
    char pinned[PARLEY_ID_TEXT_LEN + 1];
    parley_id_encode(other->pk, pinned);
    json_object_set_new(o, "key_changed", json_true());
    json_object_set_new(o, "pinned", json_string(pinned));
  }
  return o;
}

void parley__api_verify(struct parley_node *n, struct parley_http_req *r) {
  uint8_t pk[32];
  json_t *o;

  if (peer_arg(n, r, parley_http_query(r, "peer"), pk) < 0)
    return;
  o = verify_json(n, pk);
  if (o == NULL) {
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  parley__api_respond_json(r, 200, o);
}

/* A contact name: 1..PARLEY_MAX_NAME bytes of UTF-8 without control
 * characters. */
static int name_ok(const char *s) {
  size_t len = strlen(s);
  if (len == 0 || len > PARLEY_MAX_NAME || !parley_utf8_valid((const uint8_t *)s, len))
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
      return 0;
  return 1;
}

/* Pins pk under want (NULL: the name it is known by) and answers r. */
static void pin_and_answer(struct parley_node *n, struct parley_http_req *r,
                           const uint8_t pk[32], const char *want) {
  char name[128], addr[128], msg[256];
  json_t *res;
  int rc;

  known_as(n, pk, name, addr);
  if (want != NULL)
    snprintf(name, sizeof name, "%s", want);
  else if (!name_ok(name))
    name[0] = '\0';
  rc = parley__trust_pin(n, pk, name, addr);
  if (rc == PARLEY_EEXIST) {
    snprintf(msg, sizeof msg,
             "the name \"%s\" is pinned to another key (untrust it first)",
             name);
    parley__api_error(r, 409, rc, msg);
    return;
  }
  if (rc < 0) {
    parley__api_error(r, parley__api_status_for(rc), rc,
                      rc == PARLEY_ELIMIT ? "too many pinned keys"
                                          : parley_strerror(rc));
    return;
  }
  res = verify_json(n, pk);
  if (res == NULL) {
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  parley__api_respond_json(r, 200, res);
}

/* A trust request waiting for the index to tell the key's name. */
struct trust_wait {
  struct parley_http_req *req; /* NULL once the client went away */
  uint8_t pk[32];
};

static void trust_wait_gone(void *data, struct parley_http_req *r) {
  (void)r;
  ((struct trust_wait *)data)->req = NULL;
}

static void on_trust_lookup(struct parley_node *n, struct icreq *q, int rc,
                            const struct parley_frame *f) {
  struct trust_wait *tw = q->ctx;

  if (rc == PARLEY_OK && f != NULL && f->type == PARLEY_FRAME_PEERS) {
    const uint8_t *cur = f->u.list.list.raw;
    size_t left = f->u.list.list.raw_len;
    struct parley_wire_peer wp;
    if (parley_wire_peer_next(&cur, &left, &wp) &&
        memcmp(wp.key, tw->pk, 32) == 0)
      (void)parley__ic_learn_peer(n, &wp);
  }
  if (tw->req != NULL) {
    parley_http_set_close_cb(tw->req, NULL, NULL);
    pin_and_answer(n, tw->req, tw->pk, NULL);
  }
  parley_free(tw);
}

void parley__api_trust(struct parley_node *n, struct parley_http_req *r) {
  json_t *o = parley__api_parse_body(r), *jn;
  char name[128], addr[128];
  const char *want = NULL;
  struct trust_wait *tw;
  uint8_t pk[32];

  if (o == NULL)
    return;
  if (peer_arg(n, r, json_string_value(json_object_get(o, "peer")), pk) < 0) {
    json_decref(o);
    return;
  }
  jn = json_object_get(o, "name");
  if (jn != NULL && !json_is_null(jn)) {
    want = json_string_value(jn);
    if (want == NULL || !name_ok(want)) {
      json_decref(o);
      parley__api_error(r, 400, PARLEY_EINVAL,
                        "\"name\" must be 1-64 bytes of text without control "
                        "characters");
      return;
    }
  }
  known_as(n, pk, name, addr);
  if (want != NULL || name[0] != '\0') {
    pin_and_answer(n, r, pk, want);
    json_decref(o);
    return;
  }
  json_decref(o);
  /* Nothing known about the key yet: ask the index what it calls itself,
   * so that the name is pinned with it (without an index, it is pinned
   * without a name and takes the first one it announces). */
  tw = parley_calloc(1, sizeof *tw);
  if (tw == NULL) {
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  tw->req = r;
  memcpy(tw->pk, pk, 32);
  if (parley__ic_request(n, PARLEY_FRAME_LOOKUP, NULL, pk, on_trust_lookup,
                         tw) < 0) {
    parley_free(tw);
    pin_and_answer(n, r, pk, NULL);
    return;
  }
  parley_http_set_close_cb(r, trust_wait_gone, tw);
  parley_http_suspend(r);
}

void parley__api_untrust(struct parley_node *n, struct parley_http_req *r) {
  json_t *o = parley__api_parse_body(r);
  char id[PARLEY_ID_TEXT_LEN + 1];
  uint8_t pk[32];
  int rc;

  if (o == NULL)
    return;
  if (peer_arg(n, r, json_string_value(json_object_get(o, "peer")), pk) < 0) {
    json_decref(o);
    return;
  }
  json_decref(o);
  rc = parley__trust_unpin(n, pk);
  if (rc == PARLEY_ENOTFOUND) {
    parley__api_error(r, 404, rc, "that key is not trusted");
    return;
  }
  if (rc < 0) {
    parley__api_error(r, 500, rc, parley_strerror(rc));
    return;
  }
  parley_id_encode(pk, id);
  parley__api_respond_json(r, 200,
                           json_pack("{s:s, s:b}", "id", id, "trusted", 0));
}

void parley__api_trusted(struct parley_node *n, struct parley_http_req *r) {
  struct parley_buf b;
  char id[PARLEY_ID_TEXT_LEN + 1];

  parley_buf_init(&b, 16u * 1024 * 1024);
  for (size_t i = 0; i < n->npins; i++) {
    const struct trust_pin *tp = &n->pins[i];
    parley_id_encode(tp->pk, id);
    if (parley__api_append_line(
            &b, json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", id, "name",
                          tp->name, "addr", tp->addr, "safety_number",
                          tp->safety, "since", (json_int_t)tp->since_ms)) < 0)
      break;
  }
  parley__api_respond_ndjson(r, &b);
}
