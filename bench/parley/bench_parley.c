/*
 * bench_parley: Parley on the comparative-benchmark contract
 * (bench/README.md, "Comparative benchmarks"; bench/common/bench_common.h).
 *
 * Every process is a full Parley peer embedded through libparley
 * (include/parley/parley.h): its own identity, store and libuv loop, links
 * encrypted and mutually authenticated (Noise XX), every message signed
 * into the publisher's hash chain or sealed, registered with a real
 * parley-index given by --broker HOST:PORT.
 *
 * Modes:
 *   nohist  topics without history (parley_set_history 0): fire-and-forget
 *           fan-out, nothing stored; the honest best for thr, fanout, rtt,
 *           big and topics.
 *   stored  the default topic setting: publisher and subscriber store every
 *           message (SQLite, one transaction per loop turn), fire-and-forget.
 *   ack     acknowledged delivery: each subscriber stores the message
 *           before it acknowledges; the publisher keeps --window in flight.
 *           The ack workload is acknowledged whatever the mode.
 *   *_os    stored_os, ack_os: the same with --sync os (commits written to
 *           the OS, synced at checkpoints: they survive a crash of the
 *           process, not of the machine), as Mosquitto's and JetStream's
 *           defaults do; without _os every commit is fsynced.
 *
 * The driver calls pub_send in a tight loop; the loop is run every run_every sends
 * and whenever more than BACKLOG_HIGH bytes wait on the links, so the
 * publisher is paced by the network instead of overrunning the links'
 * queues (which would drop fire-and-forget messages, counted as loss).
 */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE 1
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "parley/parley.h"

#define BACKLOG_HIGH (8u << 20)
/* Publishes between two runs of the loop.  Each run seals what every link
 * queued into records and writes once per link, so a larger batch means
 * fewer, larger writes.  About 1000 frames a turn suits one-to-one and
 * one-to-eight (1024 publishes); with many topics spread over many links
 * (the topics workload: 50 subscriber processes, about one frame per
 * publish spread over all links) a batch of 4096 keeps each write from
 * carrying a single message.  Measured on the bench machine: topics went
 * from 0.13 M to 1.7 M deliveries/s going from 64 to 4096; fan-out was
 * fastest at 1024. */
#define RUN_EVERY 1024u
#define RUN_EVERY_TOPICS 4096u
/* ... or after this many bytes published, whichever comes first: 1024 big
 * messages would overrun a link's queue (64 MiB) before the loop ran. */
#define RUN_EVERY_BYTES (1u << 20)

struct peer {
    uv_loop_t loop;
    struct parley *p;
    char dir[64];
    char broker[80];
    int nohist;
    int acked;                 /* mode ack */
    unsigned inflight, window; /* acked publishes not answered yet */
    unsigned failed;           /* acked publishes that did not complete */
    unsigned sends, run_every;
    size_t unsent;           /* bytes published since the loop last ran */
    unsigned last_topic;
    char last_name[BENCH_TOPIC_LEN + 1];
    /* subscriber */
    struct bench_sub *sub;
    unsigned unsub_left;
    /* round trip */
    const char *in_topic, *out_topic;
    uint8_t *rbuf;
    size_t rcap, rlen;
    int got;
    uv_timer_t timer;
    int timer_on, timed_out;
};

static int mode_is(const struct bench_opts *o, const char *m)
{
    return o->mode != NULL && strcmp(o->mode, m) == 0;
}

/* The store's commits go to the OS only (--sync os) in the *_os modes. */
static int mode_os(const struct bench_opts *o)
{
    size_t n = o->mode != NULL ? strlen(o->mode) : 0;
    return n > 3 && strcmp(o->mode + n - 3, "_os") == 0;
}

static int mode_acked(const struct bench_opts *o)
{
    return o->workload == BENCH_W_ACK || mode_is(o, "ack") || mode_is(o, "ack_os");
}

static const char *config(const struct bench_opts *o)
{
    if (mode_acked(o))
        return mode_os(o) ? "noise_xx+chain,stored_before_ack,sync=os,peer_rate=unlimited"
                          : "noise_xx+chain,stored_before_ack,sync=fsync,peer_rate=unlimited";
    if (o->mode == NULL || mode_is(o, "nohist"))
        return "noise_xx,no_history,peer_rate=unlimited";
    return mode_os(o) ? "noise_xx+chain,stored_sqlite,sync=os,peer_rate=unlimited"
                      : "noise_xx+chain,stored_sqlite,sync=fsync,peer_rate=unlimited";
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int peer_open(struct peer *pe, const struct bench_ctx *c, const char *name)
{
    struct parley_options opt;
    int rc;

    /* The ack workload is acknowledged whatever the mode says. */
    pe->acked = mode_acked(c->o);
    pe->nohist = !pe->acked && (c->o->mode == NULL || mode_is(c->o, "nohist"));
    pe->window = c->o->window ? c->o->window : 256;
    snprintf(pe->broker, sizeof pe->broker, "%s:%u", c->o->host, c->o->port);
    snprintf(pe->dir, sizeof pe->dir, "/tmp/bench-parley-XXXXXX");
    if (mkdtemp(pe->dir) == NULL) {
        fprintf(stderr, "bench_parley: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    uv_loop_init(&pe->loop);
    memset(&opt, 0, sizeof opt);
    opt.loop = &pe->loop;
    opt.data_dir = pe->dir;
    opt.index = pe->broker;
    opt.name = name;
    opt.max_message = (uint32_t)(c->o->size > (1u << 20) ? c->o->size + 4096 : 0);
    /* The per-peer rate limit (10 000 messages/s by default) guards
     * against floods; a benchmark between cooperating processes lifts it,
     * as one would between trusted services. */
    opt.peer_rate = 100000000u;
    opt.sync_os = mode_os(c->o);
    rc = parley_open(&opt, &pe->p);
    if (rc < 0) {
        fprintf(stderr, "bench_parley: parley_open: %s\n", parley_errstr(rc));
        return -1;
    }
    /* Registered with the index before anything is published. */
    for (int i = 0; i < 20000 && !parley_ready(pe->p); i++) {
        uv_run(&pe->loop, UV_RUN_NOWAIT);
        if (!parley_ready(pe->p))
            bench_sleep_ms(1);
    }
    if (!parley_ready(pe->p)) {
        fprintf(stderr, "bench_parley: not registered with %s\n", pe->broker);
        return -1;
    }
    return 0;
}

static int set_topic(struct peer *pe, const char *topic)
{
    int rc = parley_set_history(pe->p, topic, pe->nohist ? 0 : 1);
    if (rc < 0)
        fprintf(stderr, "bench_parley: history of %s: %s\n", topic, parley_errstr(rc));
    return rc < 0 ? -1 : 0;
}

static void peer_close(struct peer *pe)
{
    if (pe->p != NULL) {
        parley_close(pe->p);
        pe->p = NULL;
        uv_run(&pe->loop, UV_RUN_DEFAULT); /* until the node's handles closed */
        if (pe->timer_on)
            uv_close((uv_handle_t *)&pe->timer, NULL);
        uv_run(&pe->loop, UV_RUN_DEFAULT);
        uv_loop_close(&pe->loop);
    }
    if (pe->dir[0] != '\0')
        nftw(pe->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(pe->rbuf);
    free(pe);
}

/* ---- publisher ------------------------------------------------------------ */

static void on_acked(void *ctx, int status, unsigned subs, unsigned acked, unsigned refused)
{
    struct peer *pe = ctx;
    pe->inflight--;
    if (status != 0) {
        if (pe->failed++ == 0)
            fprintf(stderr, "bench_parley: acknowledged publish: %s (%u of %u subscribers "
                    "acked, %u refused)\n", parley_errstr(status), acked, subs, refused);
    }
}

static int pub_open(const struct bench_ctx *c, void **st)
{
    struct peer *pe = calloc(1, sizeof *pe);
    char name[BENCH_TOPIC_LEN + 1];
    unsigned nt = c->o->workload == BENCH_W_TOPICS ? c->o->topics : 1;

    if (pe == NULL || peer_open(pe, c, "bench-pub") < 0)
        goto fail;
    pe->run_every = c->o->workload == BENCH_W_TOPICS ? RUN_EVERY_TOPICS : RUN_EVERY;
    for (unsigned t = 0; t < nt; t++) {
        bench_topic_name(t, name);
        if (set_topic(pe, name) < 0)
            goto fail;
    }
    *st = pe;
    return 0;
fail:
    if (pe != NULL)
        peer_close(pe);
    return -1;
}

static int pump(struct peer *pe)
{
    uv_run(&pe->loop, UV_RUN_NOWAIT);
    while (parley_backlog(pe->p) > BACKLOG_HIGH)
        uv_run(&pe->loop, UV_RUN_ONCE);
    /* A full window drains by an eighth before publishing resumes: each
     * loop turn (one store transaction) carries a batch, and the
     * subscriber stores the previous batches meanwhile (draining to half
     * left the two sides mostly taking turns). */
    if (pe->acked && pe->inflight >= pe->window)
        while (pe->inflight > pe->window - pe->window / 8)
            uv_run(&pe->loop, UV_RUN_ONCE);
    return 0;
}

static int pub_send(void *st, unsigned topic, const void *buf, size_t len)
{
    struct peer *pe = st;
    char name[BENCH_TOPIC_LEN + 1];
    int rc;

    /* Topic names are written once per change of topic, not per message. */
    if (topic != pe->last_topic || pe->last_name[0] == '\0') {
        bench_topic_name(topic, pe->last_name);
        pe->last_topic = topic;
    }
    memcpy(name, pe->last_name, sizeof name);
    if (pe->acked) {
        pe->inflight++;
        rc = parley_publish(pe->p, name, buf, len, PARLEY_MODE_ACK, 30000, on_acked, pe);
        if (rc < 0)
            pe->inflight--;
    } else {
        rc = parley_publish(pe->p, name, buf, len, PARLEY_MODE_ASYNC, 0, NULL, NULL);
    }
    if (rc < 0) {
        fprintf(stderr, "bench_parley: publish: %s\n", parley_errstr(rc));
        return -1;
    }
    pe->unsent += len;
    if (pe->acked ? pe->inflight >= pe->window
                  : ++pe->sends % pe->run_every == 0 || pe->unsent >= RUN_EVERY_BYTES) {
        pe->unsent = 0;
        return pump(pe);
    }
    return 0;
}

static int pub_flush(void *st)
{
    struct peer *pe = st;
    uv_run(&pe->loop, UV_RUN_NOWAIT);
    while (parley_backlog(pe->p) > 0 || (pe->acked && pe->inflight > 0))
        uv_run(&pe->loop, UV_RUN_ONCE);
    if (pe->failed > 0) {
        fprintf(stderr, "bench_parley: %u acknowledged publishes failed\n", pe->failed);
        pe->failed = 0;
        return -1;
    }
    return 0;
}

static void pub_close(void *st)
{
    peer_close(st);
}

/* ---- subscriber ----------------------------------------------------------- */

static void on_sub_msg(void *ctx, const struct parley_message *m)
{
    struct peer *pe = ctx;
    if (bench_sub_on_msg(pe->sub, m->body, m->len))
        uv_stop(&pe->loop);
}

static void on_unsub(void *ctx, int status)
{
    (void)status;
    ((struct peer *)ctx)->unsub_left--;
}

static int sub_run(const struct bench_ctx *c, struct bench_sub *s)
{
    struct peer *pe = calloc(1, sizeof *pe);
    char name[BENCH_TOPIC_LEN + 1];
    int rc = -1;

    if (pe == NULL)
        return -1;
    pe->sub = s;
    if (peer_open(pe, c, "bench-sub") < 0)
        goto out;
    parley_on_message(pe->p, on_sub_msg, pe);
    for (unsigned i = 0; i < c->ntopics; i++) {
        bench_topic_name(c->topics[i], name);
        if (set_topic(pe, name) < 0 || parley_subscribe(pe->p, name, NULL, NULL) < 0)
            goto out;
    }
    while (!bench_sub_done(s))
        uv_run(&pe->loop, UV_RUN_DEFAULT); /* stopped by on_sub_msg */
    /* Leave the topics, so that the next run's publisher does not wait for
     * this peer (the index would otherwise keep it until its lease ends);
     * this also lets the acknowledgements of the last messages leave. */
    pe->unsub_left = c->ntopics;
    for (unsigned i = 0; i < c->ntopics; i++) {
        bench_topic_name(c->topics[i], name);
        if (parley_unsubscribe(pe->p, name, on_unsub, pe) < 0)
            pe->unsub_left--;
    }
    for (int i = 0; i < 5000 && pe->unsub_left > 0; i++) {
        uv_run(&pe->loop, UV_RUN_NOWAIT);
        if (pe->unsub_left > 0)
            bench_sleep_ms(1);
    }
    rc = 0;
out:
    peer_close(pe);
    return rc;
}

/* ---- round trip ----------------------------------------------------------- */

static void on_rtt_msg(void *ctx, const struct parley_message *m)
{
    struct peer *pe = ctx;
    if (pe->got || m->topic == NULL || strcmp(m->topic, pe->in_topic) != 0)
        return;
    pe->rlen = m->len < pe->rcap ? m->len : pe->rcap;
    memcpy(pe->rbuf, m->body, pe->rlen);
    pe->got = 1;
    uv_stop(&pe->loop);
}

static int rtt_open(const struct bench_ctx *c, int side, void **st)
{
    struct peer *pe = calloc(1, sizeof *pe);

    if (pe == NULL)
        return -1;
    pe->in_topic = side == 0 ? "ping" : "pong";
    pe->out_topic = side == 0 ? "pong" : "ping";
    pe->rcap = c->o->size + 64;
    pe->rbuf = malloc(pe->rcap);
    if (pe->rbuf == NULL || peer_open(pe, c, side == 0 ? "bench-echo" : "bench-client") < 0 ||
        set_topic(pe, "ping") < 0 || set_topic(pe, "pong") < 0) {
        peer_close(pe);
        return -1;
    }
    parley_on_message(pe->p, on_rtt_msg, pe);
    if (parley_subscribe(pe->p, pe->in_topic, NULL, NULL) < 0) {
        peer_close(pe);
        return -1;
    }
    uv_timer_init(&pe->loop, &pe->timer);
    pe->timer.data = pe;
    pe->timer_on = 1;
    *st = pe;
    return 0;
}

static int rtt_send(void *st, const void *buf, size_t len)
{
    struct peer *pe = st;
    int rc = parley_publish(pe->p, pe->out_topic, buf, len, PARLEY_MODE_ASYNC, 0, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "bench_parley: publish: %s\n", parley_errstr(rc));
        return -1;
    }
    uv_run(&pe->loop, UV_RUN_NOWAIT); /* write it now */
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct peer *pe = t->data;
    pe->timed_out = 1;
    uv_stop(&pe->loop);
}

static int rtt_recv(void *st, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct peer *pe = st;

    pe->timed_out = 0;
    if (!pe->got) {
        uv_timer_start(&pe->timer, on_timeout, (uint64_t)timeout_ms, 0);
        while (!pe->got && !pe->timed_out)
            uv_run(&pe->loop, UV_RUN_DEFAULT);
        uv_timer_stop(&pe->timer);
    }
    if (!pe->got)
        return 1;
    *len = pe->rlen < cap ? pe->rlen : cap;
    memcpy(buf, pe->rbuf, *len);
    pe->got = 0;
    return 0;
}

static void rtt_close(void *st)
{
    struct peer *pe = st;

    /* Leave the topic so that the next run does not publish to us. */
    pe->unsub_left = 1;
    if (parley_unsubscribe(pe->p, pe->in_topic, on_unsub, pe) < 0)
        pe->unsub_left = 0;
    for (int i = 0; i < 2000 && pe->unsub_left > 0; i++) {
        uv_run(&pe->loop, UV_RUN_NOWAIT);
        if (pe->unsub_left > 0)
            bench_sleep_ms(1);
    }
    peer_close(pe);
}

static const struct bench_ops ops = {
    .system = "parley",
    .workloads = "thr fanout rtt ack big topics",
    .modes = "nohist stored stored_os ack ack_os",
    .lossy = "",
    .broker = "parley",
    .config = config,
    .pub_open = pub_open,
    .pub_send = pub_send,
    .pub_flush = pub_flush,
    .pub_close = pub_close,
    .sub_run = sub_run,
    .rtt_open = rtt_open,
    .rtt_send = rtt_send,
    .rtt_recv = rtt_recv,
    .rtt_close = rtt_close,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &ops);
}
