/* bench_redis: Redis pub/sub through redis-server on 127.0.0.1 (--broker
 * HOST:PORT), with the C client hiredis.
 *
 * The publisher pipelines PUBLISH commands: it appends up to PIPELINE
 * commands (or 1 MiB of payload), writes them in one go and then reads
 * their replies. A subscriber connection sends one SUBSCRIBE for all its
 * channels ("t00000", topics: its share of "t00000".."t00999") and reads
 * "message" pushes. bench.py starts redis-server without persistence and
 * with "client-output-buffer-limit pubsub 0 0 0", so a slow subscriber is
 * not disconnected and nothing may be lost. Round trip: per side one
 * subscribed connection and one connection to PUBLISH on. */
#include "bench_common.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIPELINE 256u
#define PIPELINE_BYTES (1024u * 1024u)

struct rd {
    redisContext *pub, *sub;
    char (*names)[BENCH_TOPIC_LEN + 1];
    unsigned nnames;
    unsigned pending;     /* PUBLISH replies not read yet */
    size_t pending_bytes;
    const char *out_chan; /* rtt */
};

static const char *redis_config(const struct bench_opts *o)
{
    if (o->workload == BENCH_W_RTT)
        return "pubsub,one_publish_at_a_time,no_persistence";
    return "pubsub,pipeline=256,no_persistence,pubsub_buffer_unlimited";
}

static int fail_ctx(const char *what, const redisContext *c)
{
    fprintf(stderr, "bench_redis: %s: %s\n", what, c && c->err ? c->errstr : "unexpected reply");
    return -1;
}

static void rd_free(void *st)
{
    struct rd *r = st;
    if (r == NULL)
        return;
    if (r->pub)
        redisFree(r->pub);
    if (r->sub)
        redisFree(r->sub);
    free(r->names);
    free(r);
}

static redisContext *connect_one(const struct bench_opts *o)
{
    redisContext *c = redisConnect(o->host, (int)o->port);
    if (c == NULL || c->err) {
        fail_ctx("connect", c);
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

static struct rd *rd_new(const struct bench_opts *o)
{
    struct rd *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    unsigned nt = o->workload == BENCH_W_TOPICS ? o->topics : 2;
    r->names = calloc(nt, sizeof *r->names);
    if (r->names == NULL) {
        free(r);
        return NULL;
    }
    r->nnames = nt;
    for (unsigned i = 0; i < nt; i++)
        bench_topic_name(i, r->names[i]);
    return r;
}

/* Sends one SUBSCRIBE for the given channels and waits for its n
 * confirmations. */
static int subscribe(struct rd *r, const unsigned *topics, unsigned n)
{
    const char **argv = calloc(n + 1, sizeof *argv);
    size_t *lens = calloc(n + 1, sizeof *lens);
    int rc = 0;
    if (argv == NULL || lens == NULL) {
        rc = -1;
        goto out;
    }
    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    for (unsigned i = 0; i < n; i++) {
        argv[i + 1] = r->names[topics[i]];
        lens[i + 1] = BENCH_TOPIC_LEN;
    }
    if (redisAppendCommandArgv(r->sub, (int)n + 1, argv, lens) != REDIS_OK) {
        rc = fail_ctx("subscribe", r->sub);
        goto out;
    }
    for (unsigned i = 0; i < n && rc == 0; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(r->sub, (void **)&rep) != REDIS_OK || rep == NULL ||
            rep->type != REDIS_REPLY_ARRAY)
            rc = fail_ctx("subscribe reply", r->sub);
        if (rep)
            freeReplyObject(rep);
    }
out:
    free(argv);
    free(lens);
    return rc;
}

/* If rep is a pub/sub "message" push, returns its payload. */
static const char *message_payload(const redisReply *rep, size_t *len)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") != 0 ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return NULL;
    *len = rep->element[2]->len;
    return rep->element[2]->str;
}

/* ---- publisher -------------------------------------------------------- */

static int redis_pub_open(const struct bench_ctx *c, void **st)
{
    struct rd *r = rd_new(c->o);
    if (r == NULL || (r->pub = connect_one(c->o)) == NULL) {
        rd_free(r);
        return -1;
    }
    *st = r;
    return 0;
}

/* Writes the pipelined commands and reads all their replies. */
static int redis_pub_flush(void *st)
{
    struct rd *r = st;
    for (; r->pending > 0; r->pending--) {
        redisReply *rep = NULL;
        if (redisGetReply(r->pub, (void **)&rep) != REDIS_OK || rep == NULL ||
            rep->type != REDIS_REPLY_INTEGER) {
            if (rep)
                freeReplyObject(rep);
            return fail_ctx("publish reply", r->pub);
        }
        freeReplyObject(rep);
    }
    r->pending_bytes = 0;
    return 0;
}

static int redis_pub_send(void *st, unsigned topic, const void *buf, size_t len)
{
    struct rd *r = st;
    if (redisAppendCommand(r->pub, "PUBLISH %s %b", r->names[topic < r->nnames ? topic : 0], buf,
                           len) != REDIS_OK)
        return fail_ctx("publish", r->pub);
    r->pending++;
    r->pending_bytes += len;
    if (r->pending >= PIPELINE || r->pending_bytes >= PIPELINE_BYTES)
        return redis_pub_flush(r);
    return 0;
}

/* ---- subscriber ------------------------------------------------------- */

static int redis_sub_run(const struct bench_ctx *c, struct bench_sub *s)
{
    struct rd *r = rd_new(c->o);
    int rc = -1;
    if (r == NULL || (r->sub = connect_one(c->o)) == NULL)
        goto out;
    if (subscribe(r, c->topics, c->ntopics) < 0)
        goto out;
    for (;;) {
        redisReply *rep = NULL;
        size_t len = 0;
        if (redisGetReply(r->sub, (void **)&rep) != REDIS_OK || rep == NULL) {
            fail_ctx("read", r->sub);
            goto out;
        }
        const char *p = message_payload(rep, &len);
        int done = p ? bench_sub_on_msg(s, p, len) : 0;
        freeReplyObject(rep);
        if (done)
            break;
    }
    rc = 0;
out:
    rd_free(r);
    return rc;
}

/* ---- round trip ------------------------------------------------------- */

static int redis_rtt_open(const struct bench_ctx *c, int side, void **st)
{
    struct rd *r = rd_new(c->o);
    unsigned in = side == 0 ? 0 : 1;
    if (r == NULL || (r->pub = connect_one(c->o)) == NULL ||
        (r->sub = connect_one(c->o)) == NULL || subscribe(r, &in, 1) < 0) {
        rd_free(r);
        return -1;
    }
    r->out_chan = r->names[side == 0 ? 1 : 0];
    *st = r;
    return 0;
}

static int redis_rtt_send(void *st, const void *buf, size_t len)
{
    struct rd *r = st;
    int done = 0;
    if (redis_pub_flush(r) < 0) /* the previous PUBLISH's reply */
        return -1;
    if (redisAppendCommand(r->pub, "PUBLISH %s %b", r->out_chan, buf, len) != REDIS_OK)
        return fail_ctx("publish", r->pub);
    r->pending = 1;
    while (!done)
        if (redisBufferWrite(r->pub, &done) != REDIS_OK)
            return fail_ctx("write", r->pub);
    return 0;
}

static int redis_rtt_recv(void *st, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct rd *r = st;
    uint64_t until = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        redisReply *rep = NULL;
        if (redisReaderGetReply(r->sub->reader, (void **)&rep) != REDIS_OK)
            return fail_ctx("parse", r->sub);
        if (rep != NULL) {
            size_t l = 0;
            const char *p = message_payload(rep, &l);
            if (p != NULL) {
                *len = l > cap ? cap : l;
                memcpy(buf, p, *len);
            }
            freeReplyObject(rep);
            if (p != NULL)
                return 0;
            continue;
        }
        uint64_t now = bench_now_ns();
        if (now >= until)
            return 1;
        struct pollfd pfd = {r->sub->fd, POLLIN, 0};
        int n = poll(&pfd, 1, (int)((until - now) / 1000000u) + 1);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0 && redisBufferRead(r->sub) != REDIS_OK)
            return fail_ctx("read", r->sub);
    }
}

static const struct bench_ops redis_ops = {
    .system = "redis",
    .workloads = "thr fanout rtt big topics",
    .modes = "default",
    .lossy = "",
    .broker = "redis",
    .config = redis_config,
    .pub_open = redis_pub_open,
    .pub_send = redis_pub_send,
    .pub_flush = redis_pub_flush,
    .pub_close = rd_free,
    .sub_run = redis_sub_run,
    .rtt_open = redis_rtt_open,
    .rtt_send = redis_rtt_send,
    .rtt_recv = redis_rtt_recv,
    .rtt_close = rd_free,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &redis_ops);
}
