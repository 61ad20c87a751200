/*
 * server_acl.c — the index's side of private topics (docs/PROTOCOL.md
 * section 16): TOPIC_CTL and KEY_PUT become registry commands (proposed
 * through Raft on a cluster, judged by the registry on every node), KEY_GET
 * and MEMBERS are answered from the local registry to members only, and
 * every membership change is pushed as an ACL_EVENT to the topic's
 * watchers and to its connected members.
 *
 * The index never sees a topic key: it stores and forwards key blobs that
 * are sealed to each member, and it checks the owner's signature on every
 * grant and blob so that a malicious peer cannot change who is a member.
 */
#include <string.h>

#include "core/alloc.h"
#include "crypto/groupkey.h"
#include "index/server_int.h"
#include "wire/acl_wire.h"

static void acl_reply_error(struct ix_conn *c, uint32_t req, int code,
                            const char *text) {
  parley__index_reply(c, req, code, text, 0, 0);
}

/* Copies a wire topic into a NUL-terminated buffer; 0 if it is not a valid
 * topic name. */
static int topic_copy(struct parley_str t, char out[PARLEY_MAX_TOPIC + 1]) {
  if (!parley_topic_valid(t.ptr, t.len, PARLEY_DEFAULT_MAX_TOPIC))
    return 0;
  memcpy(out, t.ptr, t.len);
  out[t.len] = '\0';
  return 1;
}

static const char *grant_text(int rc) {
  switch (rc) {
  case PARLEY_EDENIED:
    return "not the topic's owner, or the member is not a member";
  case PARLEY_EEXIST:
    return "the topic exists already (private, or public with subscribers)";
  case PARLEY_ENOTFOUND:
    return "no such private topic";
  case PARLEY_ERANGE:
    return "stale grant counter (replayed or reordered statement)";
  case PARLEY_EPROTO:
    return "grant does not follow the topic's epoch or membership";
  case PARLEY_ECRYPTO:
    return "bad owner signature";
  case PARLEY_ELIMIT:
    return "too many members or private topics";
  default:
    return parley_strerror(rc);
  }
}

/* Runs a GRANT or KEY_PUT command: proposed on a cluster (the reply comes
 * once it is committed), applied and logged on a single node (the reply
 * is held until the turn's sync). */
static void run_cmd(struct ix_conn *c, uint32_t req,
                    const struct parley_reg_cmd *cmd) {
  struct parley_index *idx = c->idx;
  int rc;

  if (!parley__index_writable(idx)) {
    parley__index_redirect(c, req);
    return;
  }
  rc = parley_registry_check(idx->reg, cmd);
  if (rc == PARLEY_OK && idx->cons != NULL) {
    rc = parley__index_propose(idx, c, req, cmd);
    if (rc == PARLEY_OK)
      return;
  } else if (rc == PARLEY_OK) {
    rc = parley__index_submit(idx, cmd);
  }
  if (rc == PARLEY_ENOTLEADER) {
    parley__index_redirect(c, req);
    return;
  }
  if (rc < 0) {
    idx->st.acl_refused++;
    acl_reply_error(c, req, rc, grant_text(rc));
    return;
  }
  parley__index_reply(c, req, 0, NULL, 0, 1);
}

static int on_topic_ctl(struct ix_conn *c, const struct parley_frame *f) {
  struct parley_acl_topic_ctl m;
  struct parley_reg_cmd cmd;
  int rc = parley_acl_topic_ctl_decode(f->u.opaque.data, f->u.opaque.len, &m);

  if (rc < 0)
    return PARLEY_EPROTO;
  rc = parley_reg_cmd_grant(&cmd, c->pk, parley_now_ms(), m.grant,
                            m.grant_len);
  if (rc < 0) {
    acl_reply_error(c, m.req, rc, "malformed grant");
    return PARLEY_OK;
  }
  run_cmd(c, m.req, &cmd);
  return PARLEY_OK;
}

static int on_key_put(struct ix_conn *c, const struct parley_frame *f) {
  struct parley_acl_key_put m;
  struct parley_reg_cmd cmd;
  int rc = parley_acl_key_put_decode(f->u.opaque.data, f->u.opaque.len, &m);

  if (rc < 0)
    return PARLEY_EPROTO;
  rc = parley_reg_cmd_key_put(&cmd, c->pk, parley_now_ms(), m.blob,
                              m.blob_len, m.sig);
  if (rc < 0) {
    acl_reply_error(c, m.req, rc, "malformed key blob");
    return PARLEY_OK;
  }
  run_cmd(c, m.req, &cmd);
  return PARLEY_OK;
}

/* Sends an encoded sub-codec payload as an opaque frame of type. */
static void send_opaque(struct ix_conn *c, uint8_t type, const uint8_t *p,
                        size_t len) {
  struct parley_frame f;
  memset(&f, 0, sizeof f);
  f.type = type;
  f.u.opaque.data = p;
  f.u.opaque.len = len;
  parley__index_send(c, &f);
}

struct keys_walk {
  struct parley_acl_keys *k;
  uint32_t min_epoch;
};

static int keys_add(void *ctx, uint32_t epoch, const uint8_t *blob,
                    size_t len) {
  struct keys_walk *w = ctx;
  if (epoch < w->min_epoch || w->k->count >= PARLEY_ACL_MAX_KEYS)
    return 0;
  w->k->keys[w->k->count].ptr = blob;
  w->k->keys[w->k->count].len = len;
  w->k->count++;
  return 0;
}

/* Members only, so that the index tells nobody else even that a member has
 * keys.  A non-member (or a public topic) gets EDENIED / ENOTFOUND. */
static int member_gate(struct ix_conn *c, uint32_t req, const char *topic,
                       struct parley_reg_acl *acl) {
  if (parley_registry_topic_acl(c->idx->reg, topic, acl) < 0) {
    acl_reply_error(c, req, PARLEY_ENOTFOUND, "not a private topic");
    return 0;
  }
  if (!parley_registry_is_member(c->idx->reg, topic, c->pk)) {
    c->idx->st.acl_refused++;
    acl_reply_error(c, req, PARLEY_EDENIED, "not a member of this topic");
    return 0;
  }
  return 1;
}

static int on_key_get(struct ix_conn *c, const struct parley_frame *f) {
  struct parley_acl_key_get m;
  struct parley_acl_keys k;
  struct parley_reg_acl acl;
  struct keys_walk w;
  char topic[PARLEY_MAX_TOPIC + 1];
  uint8_t *buf;
  size_t need;
  int rc = parley_acl_key_get_decode(f->u.opaque.data, f->u.opaque.len, &m);

  if (rc < 0)
    return PARLEY_EPROTO;
  if (!topic_copy(m.topic, topic)) {
    acl_reply_error(c, m.req, PARLEY_EINVAL, "invalid topic");
    return PARLEY_OK;
  }
  if (!member_gate(c, m.req, topic, &acl))
    return PARLEY_OK;
  memset(&k, 0, sizeof k);
  k.req = m.req;
  k.topic = m.topic;
  k.epoch = acl.epoch;
  w.k = &k;
  w.min_epoch = m.min_epoch;
  (void)parley_registry_foreach_key(c->idx->reg, topic, c->pk, keys_add, &w);
  rc = parley_acl_keys_encode(&k, NULL, 0, &need);
  if (rc != PARLEY_ETOOBIG && rc < 0) {
    acl_reply_error(c, m.req, PARLEY_EINTERNAL, "cannot encode KEYS");
    return PARLEY_OK;
  }
  buf = parley_malloc(need);
  if (buf == NULL) {
    acl_reply_error(c, m.req, PARLEY_ENOMEM, NULL);
    return PARLEY_OK;
  }
  rc = parley_acl_keys_encode(&k, buf, need, &need);
  if (rc == PARLEY_OK)
    send_opaque(c, PARLEY_FRAME_KEYS, buf, need);
  else
    acl_reply_error(c, m.req, PARLEY_EINTERNAL, "cannot encode KEYS");
  parley_free(buf);
  return PARLEY_OK;
}

struct members_walk {
  uint8_t *out;
  uint32_t n, cap;
};

static int members_add(void *ctx, const uint8_t pk[32]) {
  struct members_walk *w = ctx;
  if (w->n >= w->cap)
    return 1;
  memcpy(w->out + (size_t)w->n * 32, pk, 32);
  w->n++;
  return 0;
}

static int on_members_get(struct ix_conn *c, const struct parley_frame *f) {
  struct parley_acl_members_get m;
  struct parley_acl_members out;
  struct parley_reg_acl acl;
  struct members_walk w;
  char topic[PARLEY_MAX_TOPIC + 1];
  uint8_t *list, *buf;
  size_t need;
  int rc =
      parley_acl_members_get_decode(f->u.opaque.data, f->u.opaque.len, &m);

  if (rc < 0)
    return PARLEY_EPROTO;
  if (!topic_copy(m.topic, topic)) {
    acl_reply_error(c, m.req, PARLEY_EINVAL, "invalid topic");
    return PARLEY_OK;
  }
  if (!member_gate(c, m.req, topic, &acl))
    return PARLEY_OK;
  if (acl.members == 0 || acl.members > PARLEY_ACL_MAX_MEMBERS) {
    acl_reply_error(c, m.req, PARLEY_EINTERNAL, "member count out of range");
    return PARLEY_OK;
  }
  list = parley_malloc((size_t)acl.members * 32);
  if (list == NULL) {
    acl_reply_error(c, m.req, PARLEY_ENOMEM, NULL);
    return PARLEY_OK;
  }
  w.out = list;
  w.n = 0;
  w.cap = acl.members;
  (void)parley_registry_foreach_member(c->idx->reg, topic, members_add, &w);
  memset(&out, 0, sizeof out);
  out.req = m.req;
  out.topic = m.topic;
  out.owner = acl.owner;
  out.epoch = acl.epoch;
  out.counter = acl.counter;
  out.count = w.n;
  out.members = list;
  rc = parley_acl_members_encode(&out, NULL, 0, &need);
  buf = rc == PARLEY_ETOOBIG || rc == PARLEY_OK ? parley_malloc(need) : NULL;
  if (buf != NULL &&
      parley_acl_members_encode(&out, buf, need, &need) == PARLEY_OK)
    send_opaque(c, PARLEY_FRAME_MEMBERS, buf, need);
  else
    acl_reply_error(c, m.req, buf == NULL ? PARLEY_ENOMEM : PARLEY_EINTERNAL,
                    "cannot answer MEMBERS");
  parley_free(buf);
  parley_free(list);
  return PARLEY_OK;
}

int parley__index_acl_frame(struct ix_conn *c, const struct parley_frame *f) {
  c->idx->st.acl_requests++;
  switch (f->type) {
  case PARLEY_FRAME_TOPIC_CTL:
    return on_topic_ctl(c, f);
  case PARLEY_FRAME_KEY_PUT:
    return on_key_put(c, f);
  case PARLEY_FRAME_KEY_GET:
    return on_key_get(c, f);
  case PARLEY_FRAME_MEMBERS_GET:
    return on_members_get(c, f);
  default:
    return PARLEY_EPROTO;
  }
}

/* ---- events --------------------------------------------------------------- */

struct event_walk {
  struct parley_index *idx;
  const uint8_t *payload;
  size_t len;
};

static void event_send(struct parley_index *idx, struct ix_conn *c,
                       const uint8_t *p, size_t len) {
  idx->st.acl_events++;
  send_opaque(c, PARLEY_FRAME_ACL_EVENT, p, len);
}

static int event_member(void *ctx, const uint8_t pk[32]) {
  struct event_walk *w = ctx;
  struct ix_conn *c = parley_map_get(&w->idx->by_pk, pk, 32);
  if (c != NULL)
    event_send(w->idx, c, w->payload, w->len);
  return 0;
}

void parley__index_acl_change(struct parley_index *idx,
                              const struct parley_reg_change *ch) {
  struct parley_acl_event ev;
  struct event_walk w;
  struct ix_topic *t;
  struct ix_conn *c;
  uint8_t buf[1 + PARLEY_MAX_TOPIC + 1 + 32 + 4];
  size_t len;

  memset(&ev, 0, sizeof ev);
  switch (ch->kind) {
  case PARLEY_REG_ACL_CREATE:
    ev.kind = PARLEY_ACL_EV_CREATE;
    break;
  case PARLEY_REG_MEMBER_ADD:
    ev.kind = PARLEY_ACL_EV_ADD;
    break;
  case PARLEY_REG_MEMBER_DEL:
    ev.kind = PARLEY_ACL_EV_REVOKE;
    break;
  case PARLEY_REG_ACL_ROTATE:
    ev.kind = PARLEY_ACL_EV_ROTATE;
    break;
  case PARLEY_REG_MEMBER_KEY:
    ev.kind = PARLEY_ACL_EV_KEY;
    break;
  default:
    return;
  }
  ev.topic.ptr = ch->topic;
  ev.topic.len = strlen(ch->topic);
  ev.member = ch->member;
  ev.epoch = ch->epoch;
  if (parley_acl_event_encode(&ev, buf, sizeof buf, &len) < 0)
    return;
  w.idx = idx;
  w.payload = buf;
  w.len = len;
  /* A key blob concerns its member only. */
  if (ev.kind == PARLEY_ACL_EV_KEY) {
    (void)event_member(&w, ch->member);
    return;
  }
  /* Every connected member, then the revoked one, then watchers that are
   * none of those (publishers' routes learn the topic changed). */
  (void)parley_registry_foreach_member(idx->reg, ch->topic, event_member, &w);
  if (ev.kind == PARLEY_ACL_EV_REVOKE)
    (void)event_member(&w, ch->member);
  t = parley_map_get(&idx->topics, ch->topic, strlen(ch->topic));
  if (t != NULL) {
    struct parley_map_iter it;
    struct parley_map_entry *e;
    parley_map_iter_init(&it, &t->watchers);
    while ((e = parley_map_iter_next(&it)) != NULL) {
      c = e->value;
      if (parley_registry_is_member(idx->reg, ch->topic, c->pk) ||
          memcmp(c->pk, ch->member, 32) == 0)
        continue;
      event_send(idx, c, buf, len);
    }
  }
}
