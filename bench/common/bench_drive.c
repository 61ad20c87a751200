/* bench_drive: what runs inside the child processes — the publisher loop,
 * the subscriber's accounting and the round-trip client and echo server —
 * on top of a system's struct bench_ops (see bench_common.h). */
#include "bench_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAG_OWN 1u
#define FLAG_WARM 2u
#define FLAG_END 4u
#define FLAG_FENCE 8u
#define SEQ_FENCE 1u /* sequence number of a WARM that is a fence */

struct bench_sub {
    const struct bench_opts *o;
    struct bench_shm_sub *m;
    _Atomic unsigned char *flags; /* per topic index: FLAG_* */
    unsigned nflags;
    unsigned ntopics; /* topics of this process */
    _Atomic unsigned warm_n;
    _Atomic unsigned fence_n;
    _Atomic unsigned end_n;
    _Atomic int done;
};

static int deadline_passed(void)
{
    return bench_now_ns() > atomic_load(&bench__shm->deadline_ns);
}

/* ---- subscriber ------------------------------------------------------- */

int bench_sub_on_msg(struct bench_sub *s, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (len < BENCH_HDR) {
        atomic_fetch_add_explicit(&s->m->bad, 1, memory_order_relaxed);
        return atomic_load(&s->done);
    }
    uint32_t topic = bench_get_u32(p + 4);
    if (topic >= s->nflags || !(atomic_load_explicit(&s->flags[topic], memory_order_relaxed) &
                                FLAG_OWN)) {
        atomic_fetch_add_explicit(&s->m->bad, 1, memory_order_relaxed);
        return atomic_load(&s->done);
    }
    unsigned old;
    switch (p[0]) {
    case BENCH_DATA:
        if (len != s->o->size) {
            atomic_fetch_add_explicit(&s->m->bad, 1, memory_order_relaxed);
            break;
        }
        /* The clock is read every 64th message (a clock read per message
         * was a tenth of a fast subscriber's time, whatever the system):
         * last_ns is then at most 63 message-times early, a few parts per
         * million of a run. */
        if ((atomic_fetch_add_explicit(&s->m->received, 1, memory_order_relaxed) & 63) == 0)
            atomic_store_explicit(&s->m->last_ns, bench_now_ns(), memory_order_relaxed);
        atomic_fetch_add_explicit(&s->m->bytes, len, memory_order_relaxed);
        return 0;
    case BENCH_WARM:
        if (bench_get_u64(p + 8) == SEQ_FENCE) {
            old = atomic_fetch_or(&s->flags[topic], FLAG_FENCE);
            if (!(old & FLAG_FENCE) && atomic_fetch_add(&s->fence_n, 1) + 1 == s->ntopics)
                atomic_store(&s->m->fenced, 1);
            break;
        }
        old = atomic_fetch_or(&s->flags[topic], FLAG_WARM);
        if (!(old & FLAG_WARM) && atomic_fetch_add(&s->warm_n, 1) + 1 == s->ntopics)
            atomic_store(&s->m->warm, 1);
        break;
    case BENCH_END:
        old = atomic_fetch_or(&s->flags[topic], FLAG_END);
        if (!(old & FLAG_END) && atomic_fetch_add(&s->end_n, 1) + 1 == s->ntopics) {
            atomic_store(&s->done, 1);
            atomic_store(&s->m->done, 1);
        }
        break;
    default:
        atomic_fetch_add_explicit(&s->m->bad, 1, memory_order_relaxed);
        break;
    }
    return atomic_load(&s->done);
}

int bench_sub_done(const struct bench_sub *s)
{
    return atomic_load(&s->done);
}

int bench__run_sub(const struct bench_ops *ops, const struct bench_opts *o, unsigned proc)
{
    unsigned total = bench__ntopics(o);
    unsigned *topics = calloc(total, sizeof *topics);
    struct bench_sub s;
    memset(&s, 0, sizeof s);
    s.flags = calloc(total, sizeof *s.flags);
    if (topics == NULL || s.flags == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    s.o = o;
    s.m = &bench__shm->sub[proc];
    s.nflags = total;
    s.ntopics = bench__proc_topics(o, proc, topics, total);
    for (unsigned i = 0; i < s.ntopics; i++)
        atomic_store(&s.flags[topics[i]], FLAG_OWN);
    struct bench_ctx c = {o, proc, topics, s.ntopics};
    int rc = ops->sub_run(&c, &s);
    if (rc == 0 && !bench_sub_done(&s)) {
        fprintf(stderr, "bench: subscriber %u returned before END\n", proc);
        rc = -1;
    }
    free(topics);
    free(s.flags);
    return rc == 0 ? 0 : 1;
}

/* ---- publisher -------------------------------------------------------- */

enum phase { PH_WARM, PH_FENCE, PH_DONE };

static unsigned count_flag(unsigned np, enum phase ph)
{
    unsigned n = 0;
    for (unsigned i = 0; i < np; i++) {
        const struct bench_shm_sub *m = &bench__shm->sub[i];
        n += ph == PH_WARM ? atomic_load(&m->warm)
             : ph == PH_FENCE ? atomic_load(&m->fenced) : atomic_load(&m->done);
    }
    return n;
}

/* Sends one message of the given type to every topic, then flushes. */
static int send_round(const struct bench_ops *ops, void *st, uint8_t *buf,
                      const struct bench_opts *o, unsigned type, uint64_t seq)
{
    unsigned nt = bench__ntopics(o);
    for (unsigned t = 0; t < nt; t++) {
        bench__hdr(buf, type, t, seq, 0);
        if (ops->pub_send(st, t, buf, o->size) < 0)
            return -1;
    }
    return ops->pub_flush(st);
}

/* Sends a round of (type, seq) and waits until every subscriber process
 * reached phase ph. A lossy mode may drop the round, so there it is
 * repeated every 50 ms; a lossless mode sends it once (repeats would only
 * add to the backlog being measured). A send that fails stops the repeats
 * (a finished subscriber may have closed its connection); a subscriber
 * that then never gets there fails the run at the deadline. */
static int round_until(const struct bench_ops *ops, void *st, uint8_t *buf,
                       const struct bench_opts *o, unsigned type, uint64_t seq, enum phase ph,
                       int lossy)
{
    unsigned np = bench__nprocs(o);
    int send = 1;
    while (count_flag(np, ph) < np) {
        if (deadline_passed()) {
            fprintf(stderr, "bench: subscribers stuck in phase %d (%u of %u)\n", (int)ph,
                    count_flag(np, ph), np);
            for (unsigned i = 0; i < np; i++)
                fprintf(stderr, "bench: subscriber %u: %llu received\n", i,
                        (unsigned long long)atomic_load(&bench__shm->sub[i].received));
            return -1;
        }
        if (send && send_round(ops, st, buf, o, type, seq) < 0)
            send = 0;
        if (!lossy)
            send = 0;
        for (unsigned i = 0; i < 50 && count_flag(np, ph) < np; i++)
            bench_sleep_ms(1);
    }
    return 0;
}

static int pub_loop(const struct bench_ops *ops, void *st, uint8_t *buf,
                    const struct bench_opts *o, int lossy)
{
    unsigned np = bench__nprocs(o), nt = bench__ntopics(o);

    /* Warm-up: WARM to every topic every 5 ms until every subscriber
     * process saw WARM on all its topics (connections up, subscriptions
     * propagated); at most 30 s. Then a fence: one more round that each
     * process must see on all its topics, so the backlog of warm-up
     * messages is drained before the clock starts. */
    uint64_t warm_until = bench_now_ns() + 30000000000u;
    while (count_flag(np, PH_WARM) < np) {
        if (deadline_passed() || bench_now_ns() > warm_until) {
            fprintf(stderr, "bench: subscribers not ready after warm-up (%u of %u)\n",
                    count_flag(np, PH_WARM), np);
            return -1;
        }
        if (send_round(ops, st, buf, o, BENCH_WARM, 0) < 0)
            return -1;
        bench_sleep_ms(5);
    }
    if (round_until(ops, st, buf, o, BENCH_WARM, SEQ_FENCE, PH_FENCE, lossy) < 0)
        return -1;

    uint64_t start = bench_now_ns(), seq = 0;
    uint64_t stop = start + (uint64_t)(o->seconds * 1e9);
    atomic_store(&bench__shm->pub_start_ns, start);
    for (int running = 1; running;) {
        for (unsigned k = 0; k < 64; k++) {
            unsigned t = nt == 1 ? 0 : (unsigned)(seq % nt);
            bench__hdr(buf, BENCH_DATA, t, seq, 0);
            if (ops->pub_send(st, t, buf, o->size) < 0)
                return -1;
            seq++;
            if (o->count != 0 && seq >= o->count) {
                running = 0;
                break;
            }
        }
        if (o->count == 0 && bench_now_ns() >= stop)
            running = 0;
    }
    if (ops->pub_flush(st) < 0)
        return -1;
    atomic_store(&bench__shm->sent, seq);
    atomic_store(&bench__shm->pub_end_ns, bench_now_ns());

    /* END on every topic; subscribers finish once they saw it on all. */
    return round_until(ops, st, buf, o, BENCH_END, 0, PH_DONE, lossy);
}

int bench__run_pub(const struct bench_ops *ops, const struct bench_opts *o)
{
    uint8_t *buf = malloc(o->size);
    if (buf == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    memset(buf, 0xa5, o->size);
    struct bench_ctx c = {o, 0, NULL, 0};
    void *st = NULL;
    int rc = ops->pub_open(&c, &st);
    if (rc == 0) {
        bench_pub_ready_set();
        rc = pub_loop(ops, st, buf, o, bench__word_in(ops->lossy, o->mode));
        ops->pub_close(st);
    }
    free(buf);
    return rc == 0 ? 0 : 1;
}

/* ---- round trip ------------------------------------------------------- */

struct samples {
    uint32_t *v; /* nanoseconds */
    size_t n, cap;
};

static int samples_add(struct samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        if (cap > ((size_t)1 << 28))
            return 0; /* enough samples: stop recording, keep running */
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct(const struct samples *s, double q)
{
    size_t rank = (size_t)ceil(q * (double)s->n);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return (double)s->v[rank - 1] / 1e3;
}

/* Waits for a reply of the given type (and, for DATA, sequence number).
 * Returns 0, 1 on timeout, -1 on error. */
static int await_reply(const struct bench_ops *ops, void *st, uint8_t *rbuf, size_t cap,
                       unsigned type, uint64_t seq, int timeout_ms)
{
    uint64_t until = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        size_t len = 0;
        uint64_t now = bench_now_ns();
        if (now >= until)
            return 1;
        int left = (int)((until - now) / 1000000u) + 1;
        int rc = ops->rtt_recv(st, rbuf, cap, &len, left);
        if (rc != 0)
            return rc;
        if (len >= BENCH_HDR && rbuf[0] == type && (type != BENCH_DATA ||
                                                    bench_get_u64(rbuf + 8) == seq))
            return 0;
    }
}

static int rtt_client(const struct bench_ops *ops, void *st, const struct bench_opts *o,
                      uint8_t *buf, uint8_t *rbuf)
{
    size_t cap = o->size + 64;
    int rc;
    /* Warm-up: WARM pings until one comes back (slow joiners drop a few). */
    for (uint64_t k = 0;; k++) {
        if (deadline_passed()) {
            fprintf(stderr, "bench: echo server never answered\n");
            return -1;
        }
        bench__hdr(buf, BENCH_WARM, 0, k, 0);
        if (ops->rtt_send(st, buf, o->size) < 0)
            return -1;
        rc = await_reply(ops, st, rbuf, cap, BENCH_WARM, 0, 100);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
    }

    struct samples s = {NULL, 0, 0};
    double warm_s = o->seconds * 0.1 < 0.05 ? 0.05 : o->seconds * 0.1;
    uint64_t t_warm_end = bench_now_ns() + (uint64_t)(warm_s * 1e9), t_start = 0, t_stop = 0;
    int measuring = 0;
    for (uint64_t seq = 0;; seq++) {
        uint64_t t0 = bench_now_ns();
        if (!measuring && t0 >= t_warm_end) {
            measuring = 1;
            t_start = t0;
            t_stop = t0 + (uint64_t)(o->seconds * 1e9);
        }
        if (measuring && (o->count ? s.n >= o->count : t0 >= t_stop))
            break;
        bench__hdr(buf, BENCH_DATA, 0, seq, t0);
        if (ops->rtt_send(st, buf, o->size) < 0)
            goto fail;
        rc = await_reply(ops, st, rbuf, cap, BENCH_DATA, seq, 5000);
        if (rc != 0) {
            if (rc > 0)
                fprintf(stderr, "bench: round trip %llu got no reply in 5 s\n",
                        (unsigned long long)seq);
            goto fail;
        }
        uint64_t t1 = bench_now_ns();
        if (measuring && samples_add(&s, t1 - t0) < 0)
            goto fail;
    }
    double secs = (double)(bench_now_ns() - t_start) / 1e9;

    bench__hdr(buf, BENCH_END, 0, 0, 0);
    if (ops->rtt_send(st, buf, o->size) < 0 ||
        await_reply(ops, st, rbuf, cap, BENCH_END, 0, 5000) != 0) {
        fprintf(stderr, "bench: echo server did not confirm END\n");
        goto fail;
    }
    if (s.n == 0) {
        fprintf(stderr, "bench: no round trips measured\n");
        goto fail;
    }
    qsort(s.v, s.n, sizeof *s.v, cmp_u32);
    double sum = 0;
    for (size_t i = 0; i < s.n; i++)
        sum += s.v[i];
    struct bench_shm *m = bench__shm;
    m->rtt_samples = s.n;
    m->rtt_secs = secs;
    m->rtt_p[0] = (double)s.v[0] / 1e3;
    m->rtt_p[1] = pct(&s, 0.50);
    m->rtt_p[2] = pct(&s, 0.90);
    m->rtt_p[3] = pct(&s, 0.99);
    m->rtt_p[4] = pct(&s, 0.999);
    m->rtt_p[5] = (double)s.v[s.n - 1] / 1e3;
    m->rtt_p[6] = sum / (double)s.n / 1e3;
    free(s.v);
    return 0;
fail:
    free(s.v);
    return -1;
}

static int rtt_server(const struct bench_ops *ops, void *st, const struct bench_opts *o,
                      uint8_t *rbuf)
{
    size_t cap = o->size + 64;
    for (;;) {
        size_t len = 0;
        int rc = ops->rtt_recv(st, rbuf, cap, &len, 200);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            if (deadline_passed()) {
                fprintf(stderr, "bench: echo server never got END\n");
                return -1;
            }
            continue;
        }
        if (ops->rtt_send(st, rbuf, len) < 0)
            return -1;
        if (len >= 1 && rbuf[0] == BENCH_END)
            return 0;
    }
}

int bench__run_rtt(const struct bench_ops *ops, const struct bench_opts *o, int side)
{
    uint8_t *buf = malloc(o->size), *rbuf = malloc(o->size + 64);
    int rc = -1;
    if (buf == NULL || rbuf == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        goto out;
    }
    memset(buf, 0xa5, o->size);
    struct bench_ctx c = {o, (unsigned)side, NULL, 0};
    void *st = NULL;
    if (ops->rtt_open(&c, side, &st) < 0)
        goto out;
    rc = side == 0 ? rtt_server(ops, st, o, rbuf) : rtt_client(ops, st, o, buf, rbuf);
    ops->rtt_close(st);
out:
    free(buf);
    free(rbuf);
    return rc == 0 ? 0 : 1;
}
