/* bench_zmq: ZeroMQ PUB/SUB over tcp://127.0.0.1.
 *
 * Modes:
 *   nodrop  (honest best) XPUB with ZMQ_XPUB_NODROP=1 and SNDHWM = RCVHWM =
 *           HWM (100000): a full pipe blocks the publisher instead of
 *           dropping, so nothing is lost;
 *   default PUB/SUB with default options (HWM 1000): drops when a
 *           subscriber falls behind (reported as loss).
 * Single-topic workloads subscribe to "" and send bare payloads; the topics
 * workload prefixes each message with its topic name ("t00042") and
 * subscribes to names (ZeroMQ matches prefixes). Round trip: each process
 * binds its own XPUB (nodrop) and connects a SUB to the other's. */
#include "bench_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define HWM 100000

struct zb {
    void *ctx;
    void *pub; /* publisher / rtt: own XPUB */
    void *sub; /* rtt: SUB connected to the peer */
    int topics; /* prefix messages with the topic name */
    int rcvtimeo;
    uint8_t *scratch; /* topic + payload */
};

static int nodrop(const struct bench_opts *o)
{
    return strcmp(o->mode, "nodrop") == 0;
}

static const char *zb_config(const struct bench_opts *o)
{
    if (!nodrop(o))
        return "pub/sub,default_hwm=1000";
    return o->workload == BENCH_W_RTT ? "xpub_nodrop,hwm=100000,pub/sub_each_way"
                                      : "xpub_nodrop,sndhwm=rcvhwm=100000";
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_zmq: %s: %s\n", what, zmq_strerror(zmq_errno()));
    return -1;
}

static int setint(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v);
}

static void zb_free(void *st)
{
    struct zb *z = st;
    if (z == NULL)
        return;
    if (z->pub)
        zmq_close(z->pub);
    if (z->sub)
        zmq_close(z->sub);
    if (z->ctx)
        zmq_ctx_term(z->ctx);
    free(z->scratch);
    free(z);
}

static struct zb *zb_new(const struct bench_opts *o)
{
    struct zb *z = calloc(1, sizeof *z);
    if (z == NULL)
        return NULL;
    z->ctx = zmq_ctx_new();
    z->topics = o->workload == BENCH_W_TOPICS;
    z->rcvtimeo = -2;
    if (z->topics)
        z->scratch = malloc(o->size + BENCH_TOPIC_LEN + 1);
    if (z->ctx == NULL || (z->topics && z->scratch == NULL)) {
        zb_free(z);
        return NULL;
    }
    return z;
}

/* Binds a publisher socket on a kernel-chosen port and publishes it. */
static void *bind_pub(struct zb *z, const struct bench_opts *o, unsigned idx)
{
    void *s = zmq_socket(z->ctx, nodrop(o) ? ZMQ_XPUB : ZMQ_PUB);
    if (s == NULL) {
        fail("socket");
        return NULL;
    }
    char ep[128];
    size_t eplen = sizeof ep;
    unsigned port = 0;
    if (setint(s, ZMQ_LINGER, 2000) < 0 ||
        (nodrop(o) && (setint(s, ZMQ_XPUB_NODROP, 1) < 0 || setint(s, ZMQ_SNDHWM, HWM) < 0)) ||
        zmq_bind(s, "tcp://127.0.0.1:*") < 0 ||
        zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &eplen) < 0) {
        fail("bind");
        zmq_close(s);
        return NULL;
    }
    const char *colon = strrchr(ep, ':');
    if (colon != NULL)
        port = (unsigned)strtoul(colon + 1, NULL, 10);
    if (port == 0) {
        fprintf(stderr, "bench_zmq: cannot parse endpoint %s\n", ep);
        zmq_close(s);
        return NULL;
    }
    bench_port_set(idx, port);
    return s;
}

static void *connect_sub(struct zb *z, const struct bench_opts *o, unsigned idx,
                         const unsigned *topics, unsigned ntopics)
{
    unsigned port;
    char ep[64], name[BENCH_TOPIC_LEN + 1];
    if (bench_port_wait(idx, &port) < 0)
        return NULL;
    void *s = zmq_socket(z->ctx, ZMQ_SUB);
    if (s == NULL) {
        fail("socket");
        return NULL;
    }
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", port);
    if (setint(s, ZMQ_LINGER, 0) < 0 || (nodrop(o) && setint(s, ZMQ_RCVHWM, HWM) < 0) ||
        zmq_connect(s, ep) < 0)
        goto bad;
    if (!z->topics) {
        if (zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) < 0)
            goto bad;
    } else {
        for (unsigned i = 0; i < ntopics; i++) {
            bench_topic_name(topics[i], name);
            if (zmq_setsockopt(s, ZMQ_SUBSCRIBE, name, BENCH_TOPIC_LEN) < 0)
                goto bad;
        }
    }
    return s;
bad:
    fail("sub socket");
    zmq_close(s);
    return NULL;
}

/* ---- publisher / subscriber ------------------------------------------- */

static int zb_pub_open(const struct bench_ctx *c, void **st)
{
    struct zb *z = zb_new(c->o);
    if (z == NULL)
        return fail("context");
    z->pub = bind_pub(z, c->o, 0);
    if (z->pub == NULL) {
        zb_free(z);
        return -1;
    }
    *st = z;
    return 0;
}

static int zb_pub_send(void *st, unsigned topic, const void *buf, size_t len)
{
    struct zb *z = st;
    const void *p = buf;
    if (z->topics) {
        bench_topic_name(topic, (char *)z->scratch);
        memcpy(z->scratch + BENCH_TOPIC_LEN, buf, len);
        p = z->scratch;
        len += BENCH_TOPIC_LEN;
    }
    while (zmq_send(z->pub, p, len, 0) < 0) {
        if (zmq_errno() != EINTR)
            return fail("send");
    }
    return 0;
}

static int zb_pub_flush(void *st)
{
    return 0; /* the I/O thread writes as soon as it can */
}

static int zb_sub_run(const struct bench_ctx *c, struct bench_sub *s)
{
    struct zb *z = zb_new(c->o);
    if (z == NULL)
        return fail("context");
    z->sub = connect_sub(z, c->o, 0, c->topics, c->ntopics);
    int rc = z->sub ? 0 : -1;
    size_t skip = z->topics ? BENCH_TOPIC_LEN : 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (rc == 0) {
        if (zmq_msg_recv(&m, z->sub, 0) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            rc = fail("recv");
            break;
        }
        size_t n = zmq_msg_size(&m);
        if (n < skip)
            n = skip; /* counted as malformed below */
        if (bench_sub_on_msg(s, (const uint8_t *)zmq_msg_data(&m) + skip, n - skip))
            break;
    }
    zmq_msg_close(&m);
    zb_free(z);
    return rc;
}

/* ---- round trip ------------------------------------------------------- */

static int zb_rtt_open(const struct bench_ctx *c, int side, void **st)
{
    struct zb *z = zb_new(c->o);
    if (z == NULL)
        return fail("context");
    unsigned zero = 0;
    z->topics = 0;
    z->pub = bind_pub(z, c->o, (unsigned)side);
    if (z->pub != NULL)
        z->sub = connect_sub(z, c->o, (unsigned)(1 - side), &zero, 1);
    if (z->sub == NULL) {
        zb_free(z);
        return -1;
    }
    *st = z;
    return 0;
}

static int zb_rtt_send(void *st, const void *buf, size_t len)
{
    return zb_pub_send(st, 0, buf, len);
}

static int zb_rtt_recv(void *st, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct zb *z = st;
    if (z->rcvtimeo != timeout_ms) {
        if (setint(z->sub, ZMQ_RCVTIMEO, timeout_ms) < 0)
            return fail("rcvtimeo");
        z->rcvtimeo = timeout_ms;
    }
    for (;;) {
        int n = zmq_recv(z->sub, buf, cap, 0);
        if (n >= 0) {
            *len = (size_t)n > cap ? cap : (size_t)n;
            return 0;
        }
        if (zmq_errno() == EAGAIN)
            return 1;
        if (zmq_errno() != EINTR)
            return fail("recv");
    }
}

static const struct bench_ops zb_ops = {
    .system = "zmq",
    .workloads = "thr fanout rtt big topics",
    .modes = "nodrop default",
    .lossy = "default",
    .broker = "none",
    .config = zb_config,
    .pub_open = zb_pub_open,
    .pub_send = zb_pub_send,
    .pub_flush = zb_pub_flush,
    .pub_close = zb_free,
    .sub_run = zb_sub_run,
    .rtt_open = zb_rtt_open,
    .rtt_send = zb_rtt_send,
    .rtt_recv = zb_rtt_recv,
    .rtt_close = zb_free,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &zb_ops);
}
