/*
 * ptopic_owner.c — the owner's side of private topics and their local
 * HTTP API (docs/API.md, "Private topics"):
 *
 *   POST /v1/private/create {"topic"}          make the topic private, ours
 *   POST /v1/private/grant  {"topic","peer"}   add a member
 *   POST /v1/private/revoke {"topic","peer"}   remove one, rotate the key
 *   POST /v1/private/rotate {"topic"}          new key, same members
 *   GET  /v1/private?topic=T                   owner, epoch, members, keys
 *
 * Each action is a short chain of index requests (struct ptopic_op):
 * fetch the access list (so the grant counter and epoch are current),
 * send the signed grant (TOPIC_CTL), then deliver key blobs (KEY_PUT), one
 * per member who needs the key, each signed by us.  The HTTP request is
 * answered when the chain ends.  If the daemon stops half-way through a
 * revoke (grant applied, keys not all delivered), the members lack the new
 * epoch's key until the owner runs rotate.
 */
#include "peer/ptopic_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "wire/acl_wire.h"

enum op_kind { OP_CREATE, OP_GRANT, OP_REVOKE, OP_ROTATE, OP_SHOW };

struct ptopic_op {
  struct ptopic_op *next;
  struct parley_node *n;
  struct parley_http_req *req; /* NULL once the client went away */
  enum op_kind kind;
  char topic[CHANNEL_MAX];
  uint8_t member[32];          /* GRANT / REVOKE */
  uint32_t epoch;              /* epoch in force after the grant */
  uint32_t puts_left, puts_failed;
  int last_err;
  int done;
};

static const char *const kind_name[] = {"create", "grant", "revoke",
                                        "rotate", "show"};

/* ---- op lifetime ------------------------------------------------------------ */

static void op_gone(void *data, struct parley_http_req *r) {
  (void)r;
  ((struct ptopic_op *)data)->req = NULL;
}

static void op_unlink_free(struct ptopic_op *op) {
  struct ptopic_op **pp;
  for (pp = &op->n->ptopic_ops; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == op) {
      *pp = op->next;
      break;
    }
  }
  parley_free(op);
}

void parley__ptopic_ops_free(struct parley_node *n) {
  while (n->ptopic_ops != NULL) {
    struct ptopic_op *op = n->ptopic_ops;
    n->ptopic_ops = op->next;
    parley_free(op);
  }
}

/* Ends the op with an error answer (and logs it). */
static void op_fail(struct ptopic_op *op, int rc, const char *why) {
  struct parley_node *n = op->n;
  PARLEY_LOG(&n->log, PARLEY_LOG_WARN, "private topic %s: %s: %s (%s)",
             op->topic, kind_name[op->kind], why, parley_strerror(rc));
  if (op->req != NULL) {
    parley_http_set_close_cb(op->req, NULL, NULL);
    parley__api_error(op->req, parley__api_status_for(rc), rc, why);
  }
  op_unlink_free(op);
}

static json_t *ids_json(uint8_t (*pks)[32], uint32_t n) {
  json_t *a = json_array();
  char id[PARLEY_ID_TEXT_LEN + 1];
  for (uint32_t i = 0; a != NULL && i < n; i++) {
    parley_id_encode(pks[i], id);
    json_array_append_new(a, json_string(id));
  }
  return a;
}

/* The topic as this peer knows it (after a fresh MEMBERS). */
static json_t *topic_json(struct parley_node *n, const struct ptopic *pt) {
  char owner[PARLEY_ID_TEXT_LEN + 1];
  json_t *o = json_object(), *keys = json_array();

  if (o == NULL || keys == NULL) {
    json_decref(o);
    json_decref(keys);
    return NULL;
  }
  parley_id_encode(pt->owner, owner);
  for (size_t i = 0; i < pt->nkeys; i++)
    json_array_append_new(keys, json_integer(pt->keys[i].epoch));
  json_object_set_new(o, "topic", json_string(pt->topic));
  json_object_set_new(o, "owner", json_string(owner));
  json_object_set_new(o, "owned",
                      json_boolean(memcmp(pt->owner, n->id.pk, 32) == 0));
  json_object_set_new(o, "epoch", json_integer(pt->epoch));
  json_object_set_new(o, "grants", json_integer((json_int_t)pt->counter));
  json_object_set_new(o, "member", json_boolean(pt->member));
  json_object_set_new(o, "members", ids_json(pt->members, pt->nmembers));
  json_object_set_new(o, "keys_held", keys);
  return o;
}

static void op_done(struct ptopic_op *op) {
  struct parley_node *n = op->n;
  struct ptopic *pt = parley__pt_get(n, op->topic, 0);

  if (op->puts_failed > 0) {
    op_fail(op, op->last_err,
            "grant applied, but some keys were not delivered: run rotate");
    return;
  }
  PARLEY_LOG(&n->log, PARLEY_LOG_INFO, "private topic %s: %s done (epoch %u)",
             op->topic, kind_name[op->kind], (unsigned)op->epoch);
  if (op->req != NULL) {
    json_t *o = pt != NULL ? topic_json(n, pt) : NULL;
    parley_http_set_close_cb(op->req, NULL, NULL);
    if (o == NULL) {
      parley__api_error(op->req, 500, PARLEY_ENOMEM, "out of memory");
    } else {
      if (op->kind != OP_SHOW)
        json_object_set_new(o, "action", json_string(kind_name[op->kind]));
      parley__api_respond_json(op->req, op->kind == OP_CREATE ? 201 : 200, o);
    }
  }
  op_unlink_free(op);
}

/* ---- key delivery --------------------------------------------------------------- */

static void on_key_put(struct parley_node *n, struct icreq *q, int rc,
                       const struct parley_frame *f) {
  struct ptopic_op *op = q->ctx;
  (void)n;
  (void)f;
  if (rc < 0) {
    op->puts_failed++;
    op->last_err = rc;
  }
  if (--op->puts_left == 0)
    op_done(op);
}

/* Seals k for member and sends it as a KEY_PUT signed by us.  Our own
 * blob is also stored locally at once (the index keeps only two). */
static int put_key(struct ptopic_op *op, const struct parley_topic_key *k,
                   const uint8_t member[32]) {
  struct parley_node *n = op->n;
  struct parley_groupkey_blob b;
  struct parley_acl_key_put m;
  uint8_t blob[PARLEY_GROUPKEY_BLOB_MAX];
  uint8_t signed_data[PARLEY_ACL_KEY_PUT_SIGNED_MAX], sig[64];
  uint8_t frame[4 + 2 + PARLEY_ACL_BLOB_MAX + 64];
  size_t blen = 0, slen = 0, flen = 0;
  int rc = parley_groupkey_seal(&n->id, op->topic, k, member, &b);

  if (rc == PARLEY_OK)
    rc = parley_groupkey_blob_encode(&b, blob, sizeof blob, &blen);
  if (rc == PARLEY_OK)
    rc = parley_acl_key_put_signed_data(blob, blen, signed_data,
                                        sizeof signed_data, &slen);
  if (rc < 0)
    return rc;
  parley_identity_sign(&n->id, signed_data, slen, sig);
  if (memcmp(member, n->id.pk, 32) == 0) {
    rc = parley__node_tx(n);
    if (rc == PARLEY_OK)
      rc = parley_store_topic_key_put(n->store, op->topic, k->epoch, blob,
                                      blen);
    if (rc < 0)
      return rc;
  }
  memset(&m, 0, sizeof m);
  m.blob = blob;
  m.blob_len = blen;
  m.sig = sig;
  rc = parley_acl_key_put_encode(&m, frame, sizeof frame, &flen);
  if (rc == PARLEY_OK)
    rc = parley__ic_request_opaque(n, PARLEY_FRAME_KEY_PUT, op->topic, frame,
                                   flen, on_key_put, op);
  if (rc == PARLEY_OK)
    op->puts_left++;
  return rc;
}

/* After a grant applied: which members get which key. */
static void deliver_keys(struct ptopic_op *op) {
  struct parley_node *n = op->n;
  struct ptopic *pt = parley__pt_get(n, op->topic, 0);
  struct parley_topic_key fresh;
  const struct parley_topic_key *k;
  int rc = PARLEY_OK;

  if (pt == NULL) {
    op_fail(op, PARLEY_ENOMEM, "topic record lost");
    return;
  }
  if (op->kind == OP_GRANT) {
    /* The newcomer reads from the current epoch on. */
    k = parley__pt_key(pt, op->epoch);
    if (k == NULL) {
      op_fail(op, PARLEY_EUNAVAIL,
              "member added, but we hold no key of the current epoch: run "
              "rotate");
      return;
    }
    if (!parley__pt_is_member(pt, op->member)) {
      uint8_t(*grown)[32] =
          parley_malloc((size_t)(pt->nmembers + 1) * sizeof *grown);
      if (grown != NULL) {
        if (pt->nmembers > 0)
          memcpy(grown, pt->members, (size_t)pt->nmembers * 32);
        memcpy(grown[pt->nmembers], op->member, 32);
        parley_free(pt->members);
        pt->members = grown;
        pt->nmembers++;
      }
    }
    rc = put_key(op, k, op->member);
  } else {
    /* CREATE (epoch 1), REVOKE and ROTATE (epoch + 1): a fresh key for
     * every remaining member, ourselves included, never for the revoked
     * one. */
    rc = parley_groupkey_generate(&fresh, op->epoch);
    if (rc == PARLEY_OK)
      rc = parley__pt_add_key(pt, &fresh);
    if (rc == PARLEY_OK && op->kind == OP_REVOKE) {
      for (uint32_t i = 0; i < pt->nmembers; i++) {
        if (memcmp(pt->members[i], op->member, 32) == 0) {
          memmove(pt->members[i], pt->members[i + 1],
                  (size_t)(pt->nmembers - i - 1) * 32);
          pt->nmembers--;
          break;
        }
      }
    }
    pt->epoch = op->epoch;
    for (uint32_t i = 0; rc == PARLEY_OK && i < pt->nmembers; i++)
      rc = put_key(op, &fresh, pt->members[i]);
    parley_groupkey_wipe(&fresh);
  }
  if (rc < 0) {
    op->puts_failed++;
    op->last_err = rc;
  }
  if (op->puts_left == 0)
    op_done(op);
}

/* ---- the grant ------------------------------------------------------------------- */

static void on_grant(struct parley_node *n, struct icreq *q, int rc,
                     const struct parley_frame *f) {
  struct ptopic_op *op = q->ctx;
  struct ptopic *pt = parley__pt_get(n, op->topic, 0);

  (void)f;
  if (rc < 0) {
    op_fail(op, rc, rc == PARLEY_EEXIST
                        ? "the topic exists already (private, or public with "
                          "other subscribers)"
                        : "the index refused the grant");
    return;
  }
  if (pt == NULL) {
    op_fail(op, PARLEY_ENOMEM, "topic record lost");
    return;
  }
  if (op->kind == OP_CREATE) {
    uint8_t(*self)[32] = parley_malloc(32);
    if (self == NULL) {
      op_fail(op, PARLEY_ENOMEM, "out of memory");
      return;
    }
    memcpy(self[0], n->id.pk, 32);
    parley_free(pt->members);
    pt->members = self;
    pt->nmembers = 1;
    memcpy(pt->owner, n->id.pk, 32);
    pt->owner_known = 1;
    pt->member = 1;
    pt->state = PT_PRIVATE;
    pt->counter = 0;
  }
  pt->counter++;
  pt->epoch = op->epoch;
  deliver_keys(op);
}

static void send_grant(struct ptopic_op *op, uint8_t action) {
  struct parley_node *n = op->n;
  struct ptopic *pt = parley__pt_get(n, op->topic, 1);
  struct parley_grant g;
  struct parley_acl_topic_ctl m;
  uint8_t grant[PARLEY_GRANT_MAX_LEN], frame[4 + 2 + PARLEY_ACL_GRANT_MAX];
  size_t glen, flen;
  int rc;

  if (pt == NULL) {
    op_fail(op, PARLEY_ENOMEM, "out of memory");
    return;
  }
  memset(&g, 0, sizeof g);
  g.action = action;
  snprintf(g.topic, sizeof g.topic, "%s", op->topic);
  memcpy(g.member_pk,
         action == PARLEY_GRANT_ADD || action == PARLEY_GRANT_REVOKE
             ? op->member
             : n->id.pk,
         32);
  g.epoch = op->epoch;
  g.issued_ms = (uint64_t)parley_now_ms();
  g.counter = action == PARLEY_GRANT_CREATE ? 1 : pt->counter + 1;
  rc = parley_groupkey_grant_sign(&n->id, &g);
  if (rc == PARLEY_OK)
    rc = parley_groupkey_grant_encode(&g, grant, sizeof grant, &glen);
  if (rc == PARLEY_OK) {
    memset(&m, 0, sizeof m);
    m.grant = grant;
    m.grant_len = glen;
    rc = parley_acl_topic_ctl_encode(&m, frame, sizeof frame, &flen);
  }
  if (rc == PARLEY_OK)
    rc = parley__ic_request_opaque(n, PARLEY_FRAME_TOPIC_CTL, op->topic,
                                   frame, flen, on_grant, op);
  if (rc < 0)
    op_fail(op, rc, rc == PARLEY_EUNAVAIL ? "index not reachable"
                                          : "cannot send the grant");
}

/* The fresh access list arrived: check the action makes sense, then go. */
static void on_list(struct parley_node *n, struct icreq *q, int rc,
                    const struct parley_frame *f) {
  struct ptopic_op *op = q->ctx;
  struct ptopic *pt = parley__pt_get(n, op->topic, 1);

  if (pt == NULL) {
    op_fail(op, PARLEY_ENOMEM, "out of memory");
    return;
  }
  if (rc == PARLEY_ENOTFOUND) {
    op_fail(op, rc, "not a private topic");
    return;
  }
  if (rc == PARLEY_EDENIED) {
    pt->member = 0;
    op_fail(op, rc, "not a member of this private topic");
    return;
  }
  if (rc == PARLEY_OK)
    rc = parley__take_members(n, pt, f);
  if (rc < 0) {
    op_fail(op, rc, "cannot read the topic's access list");
    return;
  }
  if (op->kind == OP_SHOW) {
    op_done(op);
    return;
  }
  if (memcmp(pt->owner, n->id.pk, 32) != 0) {
    op_fail(op, PARLEY_EDENIED, "only the topic's owner can change it");
    return;
  }
  if (op->kind == OP_GRANT) {
    if (parley__pt_is_member(pt, op->member)) {
      op_fail(op, PARLEY_EEXIST, "already a member");
      return;
    }
    op->epoch = pt->epoch;
    send_grant(op, PARLEY_GRANT_ADD);
    return;
  }
  if (op->kind == OP_REVOKE &&
      (!parley__pt_is_member(pt, op->member) ||
       memcmp(op->member, n->id.pk, 32) == 0)) {
    op_fail(op, PARLEY_ENOTFOUND,
            memcmp(op->member, n->id.pk, 32) == 0
                ? "the owner cannot be revoked"
                : "not a member");
    return;
  }
  if (pt->epoch == UINT32_MAX) {
    op_fail(op, PARLEY_ERANGE, "epoch counter exhausted");
    return;
  }
  op->epoch = pt->epoch + 1;
  send_grant(op, op->kind == OP_REVOKE ? PARLEY_GRANT_REVOKE
                                       : PARLEY_GRANT_ROTATE);
}

/* ---- HTTP ------------------------------------------------------------------------ */

static void start(struct parley_node *n, struct parley_http_req *r,
                  enum op_kind kind, const char *topic,
                  const uint8_t *member) {
  struct ptopic_op *op = parley_calloc(1, sizeof *op);
  int rc;

  if (op == NULL) {
    parley__api_error(r, 500, PARLEY_ENOMEM, "out of memory");
    return;
  }
  op->n = n;
  op->req = r;
  op->kind = kind;
  snprintf(op->topic, sizeof op->topic, "%s", topic);
  if (member != NULL)
    memcpy(op->member, member, 32);
  op->next = n->ptopic_ops;
  n->ptopic_ops = op;
  parley_http_set_close_cb(r, op_gone, op);
  parley_http_suspend(r);
  if (kind == OP_CREATE) {
    op->epoch = 1;
    send_grant(op, PARLEY_GRANT_CREATE);
    return;
  }
  rc = parley__send_members_get(n, topic, on_list, op);
  if (rc < 0)
    op_fail(op, rc, rc == PARLEY_EUNAVAIL ? "index not reachable"
                                          : "cannot ask the index");
}

void parley__api_private(struct parley_node *n, struct parley_http_req *r) {
  const char *path = parley_http_path(r), *topic = NULL, *peer = NULL;
  enum op_kind kind;
  uint8_t member[32];
  json_t *o = NULL;

  if (strcmp(path, "/v1/private") == 0) {
    kind = OP_SHOW;
    topic = parley_http_query(r, "topic");
  } else {
    const char *verb = path + strlen("/v1/private/");
    kind = strcmp(verb, "create") == 0   ? OP_CREATE
           : strcmp(verb, "grant") == 0  ? OP_GRANT
           : strcmp(verb, "revoke") == 0 ? OP_REVOKE
                                         : OP_ROTATE;
    o = parley__api_parse_body(r);
    if (o == NULL)
      return; /* answered */
    topic = json_string_value(json_object_get(o, "topic"));
    peer = json_string_value(json_object_get(o, "peer"));
  }
  if (topic == NULL ||
      !parley_topic_valid(topic, strlen(topic), n->cfg.max_topic) ||
      topic[0] == '@') {
    json_decref(o);
    parley__api_error(r, 400, PARLEY_EINVAL, "bad or missing \"topic\"");
    return;
  }
  if (kind == OP_GRANT || kind == OP_REVOKE) {
    if (peer == NULL || parley_id_decode(peer, member) < 0) {
      json_decref(o);
      parley__api_error(r, 400, PARLEY_EINVAL, "\"peer\" is not a peer id");
      return;
    }
    if (memcmp(member, n->id.pk, 32) == 0) {
      json_decref(o);
      parley__api_error(r, 400, PARLEY_EINVAL,
                        "the owner is always a member");
      return;
    }
  }
  if (!n->registered) {
    json_decref(o);
    parley__api_error(r, 503, PARLEY_EUNAVAIL,
                      "not registered with an index: private topics are "
                      "managed through it");
    return;
  }
  start(n, r, kind, topic,
        kind == OP_GRANT || kind == OP_REVOKE ? member : NULL);
  json_decref(o);
}
