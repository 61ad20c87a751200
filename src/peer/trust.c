/*
 * trust.c — keys the user pinned with `parley trust`, and what happens
 * when another key claims one of them.
 *
 * A peer id is its Ed25519 key, so a key cannot "change" under an id; what
 * can change is the key behind a name or an address.  A pin records a key
 * with an optional contact name (unique among pins) and the address last
 * seen for it.  Whenever this node learns what a key calls itself (its
 * HELLO on a link, the index's REGISTER data in subscriber lists, lookups
 * and peer listings), the key is checked against the pins: a different key
 * under a pinned name or at a pinned address is an impostor.  It is logged
 * once at ERROR ("key changed for trusted peer NAME: pinned X, offered Y -
 * refusing"), counted, marked in `parley peers`, and every message from it
 * and every send to it is refused until it stops making the claim or the
 * user changes the pins.  The pinned key itself keeps working.
 */
#include "peer/node_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "crypto/safety.h"

/* More pins than anybody compares safety numbers for; bounds the linear
 * scans below. */
#define TRUST_MAX_PINS 4096

static int load_pin(void *ctx, const struct parley_store_pin *sp) {
  struct parley_node *n = ctx;
  struct trust_pin *tp;

  if (n->npins >= TRUST_MAX_PINS)
    return 0;
  if (n->npins == n->cap_pins) {
    size_t cap = n->cap_pins ? n->cap_pins * 2 : 16;
    struct trust_pin *v = parley_realloc(n->pins, cap * sizeof *v);
    if (v == NULL)
      return PARLEY_ENOMEM;
    n->pins = v;
    n->cap_pins = cap;
  }
  tp = &n->pins[n->npins++];
  memset(tp, 0, sizeof *tp);
  memcpy(tp->pk, sp->pk, 32);
  snprintf(tp->name, sizeof tp->name, "%.*s", (int)PARLEY_MAX_NAME, sp->name);
  snprintf(tp->addr, sizeof tp->addr, "%.*s", (int)PARLEY_MAX_ADDR, sp->addr);
  snprintf(tp->safety, sizeof tp->safety, "%s", sp->safety);
  tp->since_ms = sp->since_ms;
  return 0;
}

int parley__trust_load(struct parley_node *n) {
  n->npins = 0;
  return parley_store_pin_list(n->store, load_pin, n);
}

void parley__trust_free(struct parley_node *n) {
  parley_free(n->pins);
  n->pins = NULL;
  n->npins = n->cap_pins = 0;
}

const struct trust_pin *parley__trust_find(const struct parley_node *n,
                                           const uint8_t pk[32]) {
  for (size_t i = 0; i < n->npins; i++)
    if (memcmp(n->pins[i].pk, pk, 32) == 0)
      return &n->pins[i];
  return NULL;
}

const struct trust_pin *parley__trust_conflict(const struct parley_node *n,
                                               const uint8_t pk[32],
                                               const char *name,
                                               const char *addr) {
  if (parley__trust_find(n, pk) != NULL)
    return NULL;
  for (size_t i = 0; i < n->npins; i++) {
    const struct trust_pin *tp = &n->pins[i];
    if (name && name[0] && tp->name[0] && strcmp(name, tp->name) == 0)
      return tp;
    if (addr && addr[0] && tp->addr[0] && strcmp(addr, tp->addr) == 0)
      return tp;
  }
  return NULL;
}

/* Re-reads the pins from the store (after a change). */
static int reload(struct parley_node *n) {
  int rc = parley__trust_load(n);
  if (rc < 0)
    PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "cannot read pinned keys: %s",
               parley_strerror(rc));
  parley__trust_eval_all(n);
  return rc;
}

int parley__trust_pin(struct parley_node *n, const uint8_t pk[32],
                      const char *name, const char *addr) {
  struct parley_store_pin sp;
  char safety[PARLEY_SAFETY_TEXT_LEN + 1];
  const struct trust_pin *old = parley__trust_find(n, pk);
  int rc;

  if (strlen(name) > PARLEY_MAX_NAME || strlen(addr) > PARLEY_MAX_ADDR)
    return PARLEY_EINVAL;
  if (old == NULL && n->npins >= TRUST_MAX_PINS)
    return PARLEY_ELIMIT;
  parley_safety_number(n->id.pk, pk, safety);
  memset(&sp, 0, sizeof sp);
  sp.pk = pk;
  sp.name = name;
  sp.addr = addr;
  sp.safety = safety;
  sp.since_ms = parley_now_ms();
  rc = parley__node_tx(n);
  if (rc == PARLEY_OK)
    rc = parley_store_pin_put(n->store, &sp);
  if (rc < 0)
    return rc;
  {
    char id[PARLEY_ID_TEXT_LEN + 1];
    parley_id_encode(pk, id);
    PARLEY_LOG(&n->log, PARLEY_LOG_INFO, "pinned the key of %s%s%s%s", id,
               name[0] ? " as \"" : "", name, name[0] ? "\"" : "");
  }
  return reload(n);
}

int parley__trust_unpin(struct parley_node *n, const uint8_t pk[32]) {
  int rc = parley__node_tx(n);
  if (rc == PARLEY_OK)
    rc = parley_store_pin_del(n->store, pk);
  if (rc < 0)
    return rc;
  return reload(n);
}

void parley__trust_refusal(const struct parley_node *n, const struct rpeer *p,
                           char *out, size_t cap) {
  const struct trust_pin *tp = parley__trust_find(n, p->impostor_of);
  char pinned[PARLEY_ID_TEXT_LEN + 1];

  parley_id_encode(p->impostor_of, pinned);
  if (tp != NULL && tp->name[0])
    snprintf(out, cap,
             "key changed for trusted peer %s: pinned %s, offered %s - "
             "refusing",
             tp->name, pinned, p->id);
  else
    snprintf(out, cap,
             "key changed for trusted peer at %s: pinned %s, offered %s - "
             "refusing",
             tp != NULL ? tp->addr : p->addr, pinned, p->id);
}

/* 1 if some pin has this contact name. */
static int name_pinned(const struct parley_node *n, const char *name) {
  for (size_t i = 0; i < n->npins; i++)
    if (strcmp(n->pins[i].name, name) == 0)
      return 1;
  return 0;
}

void parley__trust_eval(struct parley_node *n, struct rpeer *p,
                        const char *name, const char *addr) {
  const struct trust_pin *own = parley__trust_find(n, p->pk);
  const struct trust_pin *tp;
  char text[PARLEY_MAX_NAME + PARLEY_MAX_ADDR + 2 * PARLEY_ID_TEXT_LEN + 96];

  if (name == NULL)
    name = p->name;
  if (addr == NULL)
    addr = p->addr;
  if (own != NULL) {
    struct trust_pin *w = &n->pins[own - n->pins];
    /* The pinned key itself: remember where it is now, so that another
     * key showing up there later is noticed; a pin made without a name
     * takes the first one the key announces (unless another pin has it). */
    p->impostor = 0;
    if (own->name[0] == '\0' && name[0] && strlen(name) <= PARLEY_MAX_NAME &&
        !name_pinned(n, name)) {
      struct parley_store_pin sp;
      memset(&sp, 0, sizeof sp);
      sp.pk = own->pk;
      sp.name = name;
      sp.addr = own->addr;
      sp.safety = own->safety;
      if (parley__node_tx(n) == PARLEY_OK &&
          parley_store_pin_put(n->store, &sp) == PARLEY_OK) {
        snprintf(w->name, sizeof w->name, "%s", name);
        PARLEY_LOG(&n->log, PARLEY_LOG_INFO,
                   "trusted %s announces the name \"%s\": pinned with it",
                   p->id, name);
      }
    }
    if (addr[0] && strcmp(addr, own->addr) != 0 &&
        strlen(addr) <= PARLEY_MAX_ADDR) {
      snprintf(w->addr, sizeof w->addr, "%s", addr);
      if (parley__node_tx(n) < 0 ||
          parley_store_pin_addr(n->store, p->pk, addr) < 0)
        PARLEY_LOG(&n->log, PARLEY_LOG_WARN,
                   "cannot record the address of trusted %s", p->id);
    }
    return;
  }
  tp = parley__trust_conflict(n, p->pk, name, addr);
  if (tp == NULL) {
    /* It may have claimed it under an earlier name only. */
    tp = parley__trust_conflict(n, p->pk, p->name, p->addr);
  }
  if (tp == NULL) {
    if (p->impostor)
      PARLEY_LOG(&n->log, PARLEY_LOG_INFO,
                 "%s no longer claims a trusted peer's name or address",
                 p->id);
    p->impostor = 0;
    return;
  }
  if (p->impostor && memcmp(p->impostor_of, tp->pk, 32) == 0)
    return; /* known already, logged once */
  p->impostor = 1;
  memcpy(p->impostor_of, tp->pk, 32);
  n->m.key_changed++;
  parley__trust_refusal(n, p, text, sizeof text);
  PARLEY_LOG(&n->log, PARLEY_LOG_ERROR, "%s", text);
}

void parley__trust_eval_all(struct parley_node *n) {
  struct parley_map_iter it;
  struct parley_map_entry *e;

  parley_map_iter_init(&it, &n->peers);
  while ((e = parley_map_iter_next(&it)) != NULL)
    parley__trust_eval(n, e->value, NULL, NULL);
}
