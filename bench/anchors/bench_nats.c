/* bench_nats: NATS through nats-server on 127.0.0.1 (--broker HOST:PORT),
 * with the C client libnats.
 *
 * Core NATS (thr, fanout, rtt, big, topics): natsConnection_Publish on
 * subject "t00000" (topics: "t00000".."t00999"); async subscriptions with
 * pending limits lifted (natsSubscription_SetPendingLimits(-1, -1)), so the
 * client never drops as a slow consumer; the topics workload uses the
 * library's global delivery pool instead of one thread per subscription.
 * Round trip: SendAsap connections, synchronous subscriptions, subject
 * t00000 towards the echo server and t00001 back.
 *
 * JetStream (ack): the publisher deletes and re-creates stream BENCH
 * (subject bench-ack, used by no other workload; file storage), deletes it
 * again when done, and publishes with js_PublishAsync and at
 * most --window unacknowledged publishes; the subscriber is an ephemeral
 * push consumer with explicit acks (natsMsg_Ack after the message was
 * counted). */
#include "bench_common.h"

#include <nats/nats.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM "BENCH"
/* The ack workload's subject: no other workload publishes on it, so the
 * stream never captures (and stores) their messages. */
#define ACK_SUBJECT "bench-ack"

struct nb {
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub; /* rtt */
    char (*names)[BENCH_TOPIC_LEN + 1];
    unsigned nnames;
    const char *out_subj; /* rtt */
    _Atomic uint64_t pub_errors;
};

static const char *nt_config(const struct bench_opts *o)
{
    static char buf[160];
    switch (o->workload) {
    case BENCH_W_ACK:
        snprintf(buf, sizeof buf,
                 "jetstream,file_storage,publish_async_window=%u,push_consumer,explicit_ack",
                 o->window);
        return buf;
    case BENCH_W_RTT:
        return "core,send_asap,sync_subscriptions";
    case BENCH_W_TOPICS:
        return "core,pending_limits_off,global_delivery_pool";
    default:
        return "core,pending_limits_off";
    }
}

static int fail(const char *what, natsStatus s)
{
    fprintf(stderr, "bench_nats: %s: %s (%s)\n", what, natsStatus_GetText(s),
            nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "-");
    return -1;
}

static void nb_free(void *st)
{
    struct nb *n = st;
    if (n == NULL)
        return;
    if (n->sub)
        natsSubscription_Destroy(n->sub);
    if (n->js)
        jsCtx_Destroy(n->js);
    if (n->nc) {
        natsConnection_Close(n->nc);
        natsConnection_Destroy(n->nc);
    }
    free(n->names);
    free(n);
    nats_Close();
}

static struct nb *nb_connect(const struct bench_opts *o, int asap, int global)
{
    char url[96];
    natsOptions *opts = NULL;
    natsStatus s;
    struct nb *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    unsigned nt = o->workload == BENCH_W_TOPICS ? o->topics : 2;
    n->names = calloc(nt, sizeof *n->names);
    if (n->names == NULL) {
        free(n);
        return NULL;
    }
    n->nnames = nt;
    for (unsigned i = 0; i < nt; i++)
        bench_topic_name(i, n->names[i]);
    snprintf(url, sizeof url, "nats://%s:%u", o->host, o->port);
    s = nats_Open(-1);
    if (s == NATS_OK)
        s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK && asap)
        s = natsOptions_SetSendAsap(opts, true);
    if (s == NATS_OK && global)
        s = natsOptions_UseGlobalMessageDelivery(opts, true);
    if (s == NATS_OK)
        s = natsConnection_Connect(&n->nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        fail("connect", s);
        nb_free(n);
        return NULL;
    }
    return n;
}

/* ---- publisher -------------------------------------------------------- */

static void on_pub_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    struct nb *n = closure;
    if (atomic_fetch_add(&n->pub_errors, 1) == 0)
        fprintf(stderr, "bench_nats: publish not acknowledged: %s\n",
                pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

static int make_stream(struct nb *n, const struct bench_opts *o)
{
    jsOptions jo;
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[1] = {ACK_SUBJECT};
    natsStatus s = jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = o->window;
    jo.PublishAsync.StallWait = 60000;
    jo.PublishAsync.ErrHandler = on_pub_err;
    jo.PublishAsync.ErrHandlerClosure = n;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&n->js, n->nc, &jo);
    if (s != NATS_OK)
        return fail("jetstream context", s);
    js_DeleteStream(n->js, STREAM, NULL, &jerr); /* absent on the first run */
    jsStreamConfig_Init(&sc);
    sc.Name = STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    s = js_AddStream(&si, n->js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "bench_nats: add stream: jetstream error %d\n", (int)jerr);
        return fail("add stream (is nats-server running with -js?)", s);
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

/* Publisher close: the ack run's stream goes with it. */
static void nt_pub_close(void *st)
{
    struct nb *n = st;
    jsErrCode jerr = 0;
    if (n != NULL && n->js != NULL)
        js_DeleteStream(n->js, STREAM, NULL, &jerr);
    nb_free(n);
}

static int nt_pub_open(const struct bench_ctx *c, void **st)
{
    struct nb *n = nb_connect(c->o, 0, 0);
    if (n == NULL)
        return -1;
    if (c->o->workload == BENCH_W_ACK && make_stream(n, c->o) < 0) {
        nb_free(n);
        return -1;
    }
    *st = n;
    return 0;
}

static int nt_pub_send(void *st, unsigned topic, const void *buf, size_t len)
{
    struct nb *n = st;
    const char *subj = n->names[topic < n->nnames ? topic : 0];
    natsStatus s = n->js ? js_PublishAsync(n->js, ACK_SUBJECT, buf, (int)len, NULL)
                         : natsConnection_Publish(n->nc, subj, buf, (int)len);
    return s == NATS_OK ? 0 : fail("publish", s);
}

static int nt_pub_flush(void *st)
{
    struct nb *n = st;
    natsStatus s;
    if (n->js) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        s = js_PublishAsyncComplete(n->js, &po);
        if (s == NATS_OK && atomic_load(&n->pub_errors) > 0)
            return -1;
    } else {
        s = natsConnection_FlushTimeout(n->nc, 60000);
    }
    return s == NATS_OK ? 0 : fail("flush", s);
}

/* ---- subscriber ------------------------------------------------------- */

struct subctx {
    struct bench_sub *s;
    int ack;
};

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct subctx *x = closure;
    bench_sub_on_msg(x->s, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    if (x->ack)
        natsMsg_Ack(msg, NULL);
    natsMsg_Destroy(msg);
}

static int nt_sub_run(const struct bench_ctx *c, struct bench_sub *s)
{
    const struct bench_opts *o = c->o;
    struct subctx x = {s, o->workload == BENCH_W_ACK};
    struct nb *n = nb_connect(o, 0, o->workload == BENCH_W_TOPICS);
    if (n == NULL)
        return -1;
    natsSubscription **subs = calloc(c->ntopics, sizeof *subs);
    natsStatus st = subs ? NATS_OK : NATS_NO_MEMORY;
    int rc = 0;
    if (x.ack && st == NATS_OK) {
        jsSubOptions so;
        jsErrCode jerr = 0;
        if (bench_pub_ready_wait() < 0) {
            rc = -1;
            goto out;
        }
        st = natsConnection_JetStream(&n->js, n->nc, NULL);
        if (st == NATS_OK)
            st = jsSubOptions_Init(&so);
        if (st == NATS_OK) {
            so.Stream = STREAM;
            so.ManualAck = true;
            so.Config.AckPolicy = js_AckExplicit;
            so.Config.MaxAckPending = 65536;
            st = js_Subscribe(&subs[0], n->js, ACK_SUBJECT, on_msg, &x, NULL, &so, &jerr);
        }
        if (st == NATS_OK)
            st = natsSubscription_SetPendingLimits(subs[0], -1, -1);
    } else {
        for (unsigned i = 0; i < c->ntopics && st == NATS_OK; i++) {
            st = natsConnection_Subscribe(&subs[i], n->nc, n->names[c->topics[i]], on_msg, &x);
            if (st == NATS_OK)
                st = natsSubscription_SetPendingLimits(subs[i], -1, -1);
        }
    }
    if (st == NATS_OK)
        st = natsConnection_Flush(n->nc);
    if (st != NATS_OK) {
        rc = fail("subscribe", st);
        goto out;
    }
    while (!bench_sub_done(s)) {
        if (natsConnection_IsClosed(n->nc)) {
            fprintf(stderr, "bench_nats: connection closed\n");
            rc = -1;
            break;
        }
        bench_sleep_ms(1);
    }
out:
    for (unsigned i = 0; subs && i < c->ntopics; i++)
        if (subs[i]) {
            natsSubscription_Unsubscribe(subs[i]);
            natsSubscription_Destroy(subs[i]);
        }
    free(subs);
    nb_free(n);
    return rc;
}

/* ---- round trip ------------------------------------------------------- */

static int nt_rtt_open(const struct bench_ctx *c, int side, void **st)
{
    struct nb *n = nb_connect(c->o, 1, 0);
    if (n == NULL)
        return -1;
    /* the client publishes on t00000 and listens on t00001 */
    n->out_subj = n->names[side == 0 ? 1 : 0];
    natsStatus s = natsConnection_SubscribeSync(&n->sub, n->nc, n->names[side == 0 ? 0 : 1]);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(n->sub, -1, -1);
    if (s == NATS_OK)
        s = natsConnection_Flush(n->nc);
    if (s != NATS_OK) {
        nb_free(n);
        return fail("subscribe", s);
    }
    *st = n;
    return 0;
}

static int nt_rtt_send(void *st, const void *buf, size_t len)
{
    struct nb *n = st;
    natsStatus s = natsConnection_Publish(n->nc, n->out_subj, buf, (int)len);
    return s == NATS_OK ? 0 : fail("publish", s);
}

static int nt_rtt_recv(void *st, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct nb *n = st;
    natsMsg *m = NULL;
    natsStatus s = natsSubscription_NextMsg(&m, n->sub, timeout_ms);
    if (s == NATS_TIMEOUT)
        return 1;
    if (s != NATS_OK)
        return fail("next msg", s);
    size_t l = (size_t)natsMsg_GetDataLength(m);
    *len = l > cap ? cap : l;
    memcpy(buf, natsMsg_GetData(m), *len);
    natsMsg_Destroy(m);
    return 0;
}

static const struct bench_ops nt_ops = {
    .system = "nats",
    .workloads = "thr fanout rtt ack big topics",
    .modes = "default",
    .lossy = "",
    .broker = "nats",
    .config = nt_config,
    .pub_open = nt_pub_open,
    .pub_send = nt_pub_send,
    .pub_flush = nt_pub_flush,
    .pub_close = nt_pub_close,
    .sub_run = nt_sub_run,
    .rtt_open = nt_rtt_open,
    .rtt_send = nt_rtt_send,
    .rtt_recv = nt_rtt_recv,
    .rtt_close = nb_free,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &nt_ops);
}
