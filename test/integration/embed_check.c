/*
 * embed_check.c — drives libparley (include/parley/parley.h) the way an
 * application would: two embedded peers on one loop, against a real index
 * (test_embed.py starts it and passes its address).
 *
 *   parley_embed_check INDEX_ADDR DATA_DIR_A DATA_DIR_B
 *
 * B subscribes to "embed"; once both are registered, A publishes N text
 * messages fire-and-forget, one binary message acknowledged, and one
 * message on a topic nobody subscribes to; B's message callback checks
 * bodies, order, publisher key and flags.  Prints one line per check and
 * "embed ok" at the end; exit 0 only if every check held within 20 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

#define N_ASYNC 200

struct state {
  uv_loop_t loop;
  struct parley *a, *b;
  uv_timer_t tick, deadline;
  int stage;
  int sub_status;    /* 1 + status once B's subscribe answered */
  int sub_sent;      /* the subscribe made once registered */
  int got_text;      /* messages of the async run, in order */
  int got_binary;
  int got_ticks;     /* messages on the topic without history */
  int ack_status;    /* 1 + status of the acked publish */
  unsigned ack_subs, ack_acked;
  int empty_status;  /* 1 + status of the publish nobody hears */
  unsigned empty_subs;
  int failures;
  uint8_t a_key[32];
};

static void check(struct state *s, int ok, const char *what) {
  printf("%s %s\n", ok ? "ok" : "FAIL", what);
  if (!ok)
    s->failures++;
}

static void on_message(void *ctx, const struct parley_message *m) {
  struct state *s = ctx;
  char want[64];

  if (m->topic != NULL && strcmp(m->topic, "ticks") == 0) {
    snprintf(want, sizeof want, "tick %d", s->got_ticks);
    if (m->len != strlen(want) || memcmp(m->body, want, m->len) != 0)
      s->failures++;
    s->got_ticks++;
    return;
  }
  if (m->topic == NULL || strcmp(m->topic, "embed") != 0) {
    check(s, 0, "message on the subscribed topic only");
    return;
  }
  if (m->binary) {
    static const uint8_t bin[4] = {0x00, 0xff, 0x10, 0x80};
    check(s, m->len == 4 && memcmp(m->body, bin, 4) == 0,
          "binary body intact");
    s->got_binary++;
    return;
  }
  snprintf(want, sizeof want, "message %d", s->got_text);
  if (m->len != strlen(want) || memcmp(m->body, want, m->len) != 0) {
    printf("FAIL got '%.*s', want '%s'\n", (int)m->len,
           (const char *)m->body, want);
    s->failures++;
  }
  if (s->got_text == 0)
    check(s, m->seq >= 1 && m->ts_ms > 0, "seq and ts set");
  s->got_text++;
}

static void on_sub(void *ctx, int status) {
  ((struct state *)ctx)->sub_status = 1 + status;
}

static void on_ack(void *ctx, int status, unsigned subs, unsigned acked,
                   unsigned refused) {
  struct state *s = ctx;
  (void)refused;
  s->ack_status = 1 + status;
  s->ack_subs = subs;
  s->ack_acked = acked;
}

static void on_empty(void *ctx, int status, unsigned subs, unsigned acked,
                     unsigned refused) {
  struct state *s = ctx;
  (void)acked;
  (void)refused;
  s->empty_status = 1 + status;
  s->empty_subs = subs;
}

static void finish(struct state *s) {
  uv_timer_stop(&s->tick);
  uv_timer_stop(&s->deadline);
  uv_close((uv_handle_t *)&s->tick, NULL);
  uv_close((uv_handle_t *)&s->deadline, NULL);
  parley_close(s->a);
  parley_close(s->b);
  s->a = s->b = NULL;
}

static void on_tick(uv_timer_t *t) {
  struct state *s = t->data;
  static const uint8_t bin[4] = {0x00, 0xff, 0x10, 0x80};
  char text[64];

  switch (s->stage) {
  case 0: /* both registered, B's subscription confirmed */
    if (!parley_ready(s->a) || !parley_ready(s->b))
      return;
    if (!s->sub_sent) {
      /* Again, now that the index answers (idempotent there). */
      s->sub_sent = 1;
      s->sub_status = 0;
      check(s, parley_set_history(s->a, "ticks", 0) == 0 &&
                   parley_set_history(s->b, "ticks", 0) == 0,
            "history off for ticks");
      check(s, parley_set_history(s->a, "@x", 0) < 0,
            "history of a direct channel refused");
      check(s, parley_subscribe(s->b, "ticks", NULL, NULL) == 0,
            "subscribe to ticks");
      check(s, parley_subscribe(s->b, "embed", on_sub, s) == 0,
            "subscribe again once registered");
      return;
    }
    if (s->sub_status == 0)
      return;
    check(s, s->sub_status == 1, "subscribe confirmed by the index");
    for (int i = 0; i < N_ASYNC; i++) {
      snprintf(text, sizeof text, "message %d", i);
      if (parley_publish(s->a, "embed", text, strlen(text),
                         PARLEY_MODE_ASYNC, 0, NULL, NULL) != 0)
        s->failures++;
    }
    check(s, parley_publish(s->a, "embed", bin, sizeof bin, PARLEY_MODE_ACK,
                            5000, on_ack, s) == 0,
          "acked publish accepted");
    check(s, parley_publish(s->a, "nobody-listens", "x", 1, PARLEY_MODE_ACK,
                            1000, on_empty, s) == 0,
          "publish without subscribers accepted");
    check(s, parley_publish(s->a, "@nope", "x", 1, PARLEY_MODE_ASYNC, 0,
                            NULL, NULL) < 0,
          "direct channel refused as a topic");
    check(s, parley_publish(s->a, "", "x", 1, PARLEY_MODE_ASYNC, 0, NULL,
                            NULL) < 0,
          "empty topic refused");
    for (int i = 0; i < N_ASYNC; i++) {
      snprintf(text, sizeof text, "tick %d", i);
      if (parley_publish(s->a, "ticks", text, strlen(text),
                         PARLEY_MODE_ASYNC, 0, NULL, NULL) != 0)
        s->failures++;
    }
    check(s, parley_publish(s->a, "ticks", "x", 1, PARLEY_MODE_ACK, 0, NULL,
                            NULL) < 0,
          "acknowledged publish refused on a topic without history");
    s->stage = 1;
    return;
  case 1:
    if (s->got_text < N_ASYNC || s->got_binary < 1 || s->ack_status == 0 ||
        s->empty_status == 0 || s->got_ticks < N_ASYNC)
      return;
    check(s, s->got_text == N_ASYNC, "every async message, in order");
    check(s, s->got_ticks == N_ASYNC,
          "every message without history, in order");
    check(s, s->ack_status == 1 && s->ack_subs == 1 && s->ack_acked == 1,
          "acked publish: one subscriber, acknowledged");
    check(s, s->empty_status == 1 && s->empty_subs == 0,
          "publish to nobody completes with no subscribers");
    check(s, strlen(parley_id(s->a)) == 52, "52-character id");
    s->stage = 2;
    finish(s);
    return;
  default:
    return;
  }
}

static void on_deadline(uv_timer_t *t) {
  struct state *s = t->data;
  printf("FAIL timed out at stage %d (text %d/%d, ticks %d, binary %d, "
         "ack %d, empty %d)\n",
         s->stage, s->got_text, N_ASYNC, s->got_ticks, s->got_binary,
         s->ack_status, s->empty_status);
  s->failures++;
  finish(s);
}

int main(int argc, char **argv) {
  static struct state s;
  struct parley_options o;
  int rc;

  if (argc != 4) {
    fprintf(stderr, "usage: %s INDEX DATA_A DATA_B\n", argv[0]);
    return 2;
  }
  uv_loop_init(&s.loop);
  memset(&o, 0, sizeof o);
  o.loop = &s.loop;
  o.index = argv[1];
  o.data_dir = argv[2];
  o.name = "embed-a";
  rc = parley_open(&o, &s.a);
  if (rc == 0) {
    o.data_dir = argv[3];
    o.name = "embed-b";
    rc = parley_open(&o, &s.b);
  }
  if (rc != 0) {
    fprintf(stderr, "parley_open: %s\n", parley_errstr(rc));
    return 1;
  }
  /* Not registered yet: kept, and reported as such at once. */
  check(&s, parley_subscribe(s.b, "embed", on_sub, &s) == 0 &&
                s.sub_status == 1,
        "subscribe before registration kept");
  check(&s, parley_subscribe(s.b, "bad topic\n", NULL, NULL) < 0,
        "invalid topic refused");
  parley_on_message(s.b, on_message, &s);
  uv_timer_init(&s.loop, &s.tick);
  uv_timer_init(&s.loop, &s.deadline);
  s.tick.data = s.deadline.data = &s;
  uv_timer_start(&s.tick, on_tick, 20, 20);
  uv_timer_start(&s.deadline, on_deadline, 20000, 0);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&s.loop);
  check(&s, rc == 0, "every handle closed");
  if (s.failures == 0)
    printf("embed ok\n");
  return s.failures == 0 ? 0 : 1;
}
