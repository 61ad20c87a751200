/* bench_nng: NNG pub0/sub0 over tcp://127.0.0.1.
 *
 * NNG's pub/sub has no back pressure: pub0 drops when a pipe's send queue
 * is full and sub0 drops when its receive queue is full. So both modes may
 * lose messages, and the table reports the loss:
 *   bigbuf  (best) NNG_OPT_SENDBUF = NNG_OPT_RECVBUF = 8192 (the maximum);
 *   default default options.
 * Single-topic workloads subscribe to "" and send bare payloads; the topics
 * workload prefixes each message with its topic name and subscribes to
 * names. Round trip: each process listens with its own pub0 and dials a
 * sub0 to the other's. */
#include "bench_common.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIGBUF 8192

struct nb {
    nng_socket pub, sub;
    int has_pub, has_sub;
    int topics;
    int rcvtimeo;
    uint8_t *scratch;
};

static int bigbuf(const struct bench_opts *o)
{
    return strcmp(o->mode, "bigbuf") == 0;
}

static const char *nb_config(const struct bench_opts *o)
{
    if (!bigbuf(o))
        return "pub0/sub0,default_buffers,drops_when_full";
    return o->workload == BENCH_W_RTT ? "pub0/sub0_each_way,sendbuf=recvbuf=8192"
                                      : "pub0/sub0,sendbuf=recvbuf=8192(max),drops_when_full";
}

static int fail(const char *what, int rv)
{
    fprintf(stderr, "bench_nng: %s: %s\n", what, nng_strerror(rv));
    return -1;
}

static void nb_free(void *st)
{
    struct nb *n = st;
    if (n == NULL)
        return;
    if (n->has_pub)
        nng_close(n->pub);
    if (n->has_sub)
        nng_close(n->sub);
    free(n->scratch);
    free(n);
}

static struct nb *nb_new(const struct bench_opts *o)
{
    struct nb *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->topics = o->workload == BENCH_W_TOPICS;
    n->rcvtimeo = -2;
    if (n->topics && (n->scratch = malloc(o->size + BENCH_TOPIC_LEN)) == NULL) {
        free(n);
        return NULL;
    }
    return n;
}

static int open_pub(struct nb *n, const struct bench_opts *o, unsigned idx)
{
    nng_listener l;
    int port = 0, rv = nng_pub0_open(&n->pub);
    if (rv != 0)
        return fail("pub0_open", rv);
    n->has_pub = 1;
    if (bigbuf(o) && (rv = nng_socket_set_int(n->pub, NNG_OPT_SENDBUF, BIGBUF)) != 0)
        return fail("sendbuf", rv);
    if ((rv = nng_listen(n->pub, "tcp://127.0.0.1:0", &l, 0)) != 0)
        return fail("listen", rv);
    if ((rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0)
        return fail("bound port", rv);
    bench_port_set(idx, (unsigned)port);
    return 0;
}

static int open_sub(struct nb *n, const struct bench_opts *o, unsigned idx,
                    const unsigned *topics, unsigned ntopics)
{
    unsigned port;
    char url[64], name[BENCH_TOPIC_LEN + 1];
    if (bench_port_wait(idx, &port) < 0)
        return -1;
    int rv = nng_sub0_open(&n->sub);
    if (rv != 0)
        return fail("sub0_open", rv);
    n->has_sub = 1;
    if (bigbuf(o) && (rv = nng_socket_set_int(n->sub, NNG_OPT_RECVBUF, BIGBUF)) != 0)
        return fail("recvbuf", rv);
    if (!n->topics) {
        rv = nng_socket_set(n->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    } else {
        for (unsigned i = 0; i < ntopics && rv == 0; i++) {
            bench_topic_name(topics[i], name);
            rv = nng_socket_set(n->sub, NNG_OPT_SUB_SUBSCRIBE, name, BENCH_TOPIC_LEN);
        }
    }
    if (rv != 0)
        return fail("subscribe", rv);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", port);
    if ((rv = nng_dial(n->sub, url, NULL, 0)) != 0)
        return fail("dial", rv);
    return 0;
}

/* ---- publisher / subscriber ------------------------------------------- */

static int nb_pub_open(const struct bench_ctx *c, void **st)
{
    struct nb *n = nb_new(c->o);
    if (n == NULL)
        return -1;
    if (open_pub(n, c->o, 0) < 0) {
        nb_free(n);
        return -1;
    }
    *st = n;
    return 0;
}

static int nb_pub_send(void *st, unsigned topic, const void *buf, size_t len)
{
    struct nb *n = st;
    void *p = (void *)(uintptr_t)buf;
    if (n->topics) {
        bench_topic_name(topic, (char *)n->scratch); /* NUL lands in the payload area */
        memcpy(n->scratch + BENCH_TOPIC_LEN, buf, len);
        p = n->scratch;
        len += BENCH_TOPIC_LEN;
    }
    int rv = nng_send(n->pub, p, len, 0);
    return rv == 0 ? 0 : fail("send", rv);
}

static int nb_pub_flush(void *st)
{
    return 0;
}

static int nb_sub_run(const struct bench_ctx *c, struct bench_sub *s)
{
    struct nb *n = nb_new(c->o);
    if (n == NULL)
        return -1;
    int rc = open_sub(n, c->o, 0, c->topics, c->ntopics);
    size_t skip = n->topics ? BENCH_TOPIC_LEN : 0;
    while (rc == 0) {
        void *p = NULL;
        size_t sz = 0;
        int rv = nng_recv(n->sub, &p, &sz, NNG_FLAG_ALLOC);
        if (rv != 0) {
            rc = fail("recv", rv);
            break;
        }
        int done = bench_sub_on_msg(s, (uint8_t *)p + (sz < skip ? sz : skip),
                                    sz < skip ? 0 : sz - skip);
        nng_free(p, sz);
        if (done)
            break;
    }
    /* nng 1.5.2's nng_close() on a sub0 socket sometimes hangs while the
     * publisher is still sending (seen here with the topics workload); the
     * socket closes when this process exits, after the measurement. */
    n->has_sub = 0;
    nb_free(n);
    return rc;
}

/* ---- round trip ------------------------------------------------------- */

static int nb_rtt_open(const struct bench_ctx *c, int side, void **st)
{
    struct nb *n = nb_new(c->o);
    if (n == NULL)
        return -1;
    unsigned zero = 0;
    if (open_pub(n, c->o, (unsigned)side) < 0 ||
        open_sub(n, c->o, (unsigned)(1 - side), &zero, 1) < 0) {
        nb_free(n);
        return -1;
    }
    *st = n;
    return 0;
}

static int nb_rtt_send(void *st, const void *buf, size_t len)
{
    return nb_pub_send(st, 0, buf, len);
}

static int nb_rtt_recv(void *st, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct nb *n = st;
    int rv;
    if (n->rcvtimeo != timeout_ms) {
        if ((rv = nng_socket_set_ms(n->sub, NNG_OPT_RECVTIMEO, timeout_ms)) != 0)
            return fail("recvtimeo", rv);
        n->rcvtimeo = timeout_ms;
    }
    size_t sz = cap;
    rv = nng_recv(n->sub, buf, &sz, 0);
    if (rv == NNG_ETIMEDOUT)
        return 1;
    if (rv != 0)
        return fail("recv", rv);
    *len = sz > cap ? cap : sz;
    return 0;
}

static const struct bench_ops nb_ops = {
    .system = "nng",
    .workloads = "thr fanout rtt big topics",
    .modes = "bigbuf default",
    .lossy = "bigbuf default",
    .broker = "none",
    .config = nb_config,
    .pub_open = nb_pub_open,
    .pub_send = nb_pub_send,
    .pub_flush = nb_pub_flush,
    .pub_close = nb_free,
    .sub_run = nb_sub_run,
    .rtt_open = nb_rtt_open,
    .rtt_send = nb_rtt_send,
    .rtt_recv = nb_rtt_recv,
    .rtt_close = nb_free,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &nb_ops);
}
