/* bench_mqtt: MQTT 3.1.1 through mosquitto on 127.0.0.1 (--broker
 * HOST:PORT), with the C client libmosquitto driven by mosquitto_loop()
 * in the calling thread (no library thread: a publish is written at once).
 *
 * QoS 0 for thr, fanout, rtt, big and topics; the publisher waits while
 * the client has unwritten packets (mosquitto_want_write), so it is paced
 * by TCP instead of queueing without bound. The broker is configured by
 * bench.py not to drop (max_queued_messages 0), so nothing may be lost.
 * ack: QoS 1 both ways, at most --window publishes awaiting PUBACK
 * (MOSQ_OPT_SEND_MAXIMUM too); libmosquitto acknowledges a received QoS 1
 * message itself, before the message callback runs. */
#include "bench_common.h"

#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mq {
    struct mosquitto *m;
    char (*names)[BENCH_TOPIC_LEN + 1];
    unsigned nnames;
    int qos;
    unsigned window;
    uint64_t published, acked;
    int connected, conn_rc;
    int suback_wait;
    struct bench_sub *s;  /* subscriber */
    int done;
    uint8_t *rbuf;        /* rtt: last message */
    size_t rcap, rlen;
    int have;
    const char *out_topic;
};

static const char *mqtt_config(const struct bench_opts *o)
{
    static char buf[128];
    if (o->workload == BENCH_W_ACK) {
        snprintf(buf, sizeof buf, "qos1,window=%u,broker_in_memory,lib_acks_before_callback",
                 o->window);
        return buf;
    }
    return o->workload == BENCH_W_RTT ? "qos0,mosquitto_loop" : "qos0,broker_no_drop";
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "bench_mqtt: %s: %s\n", what, mosquitto_strerror(rc));
    return -1;
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
    struct mq *q = arg;
    q->connected = 1;
    q->conn_rc = rc;
}

static void on_publish(struct mosquitto *m, void *arg, int mid)
{
    struct mq *q = arg;
    q->acked++;
}

static void on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
    struct mq *q = arg;
    q->suback_wait--;
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    struct mq *q = arg;
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    if (q->s != NULL) {
        if (bench_sub_on_msg(q->s, msg->payload, len))
            q->done = 1;
        return;
    }
    q->rlen = len > q->rcap ? q->rcap : len;
    memcpy(q->rbuf, msg->payload, q->rlen);
    q->have = 1;
}

static void mq_free(void *st)
{
    struct mq *q = st;
    if (q == NULL)
        return;
    if (q->m) {
        mosquitto_disconnect(q->m);
        mosquitto_destroy(q->m);
    }
    free(q->names);
    free(q->rbuf);
    free(q);
    mosquitto_lib_cleanup();
}

/* One mosquitto_loop step; -1 (with a message) if the connection broke. */
static int step(struct mq *q, int timeout_ms)
{
    int rc = mosquitto_loop(q->m, timeout_ms, 1);
    return rc == MOSQ_ERR_SUCCESS ? 0 : fail("loop", rc);
}

static struct mq *mq_connect(const struct bench_opts *o, const char *role)
{
    char id[64];
    struct mq *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    unsigned nt = o->workload == BENCH_W_TOPICS ? o->topics : 2;
    q->names = calloc(nt, sizeof *q->names);
    if (q->names == NULL) {
        free(q);
        return NULL;
    }
    q->nnames = nt;
    for (unsigned i = 0; i < nt; i++)
        bench_topic_name(i, q->names[i]);
    q->qos = o->workload == BENCH_W_ACK ? 1 : 0;
    q->window = o->window;
    mosquitto_lib_init();
    snprintf(id, sizeof id, "bench-%s-%ld", role, (long)getpid());
    q->m = mosquitto_new(id, true, q);
    if (q->m == NULL) {
        fprintf(stderr, "bench_mqtt: mosquitto_new failed\n");
        mq_free(q);
        return NULL;
    }
    mosquitto_connect_callback_set(q->m, on_connect);
    mosquitto_publish_callback_set(q->m, on_publish);
    mosquitto_subscribe_callback_set(q->m, on_subscribe);
    mosquitto_message_callback_set(q->m, on_message);
    int rc = MOSQ_ERR_SUCCESS;
    if (q->qos == 1)
        rc = mosquitto_int_option(q->m, MOSQ_OPT_SEND_MAXIMUM, (int)o->window);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect(q->m, o->host, (int)o->port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fail("connect", rc);
        mq_free(q);
        return NULL;
    }
    while (!q->connected) {
        if (step(q, 100) < 0) {
            mq_free(q);
            return NULL;
        }
    }
    if (q->conn_rc != 0) {
        fprintf(stderr, "bench_mqtt: broker refused: %s\n", mosquitto_connack_string(q->conn_rc));
        mq_free(q);
        return NULL;
    }
    return q;
}

static int subscribe(struct mq *q, const unsigned *topics, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int rc = mosquitto_subscribe(q->m, NULL, q->names[topics[i]], q->qos);
        if (rc != MOSQ_ERR_SUCCESS)
            return fail("subscribe", rc);
        q->suback_wait++;
    }
    while (q->suback_wait > 0)
        if (step(q, 100) < 0)
            return -1;
    return 0;
}

/* ---- publisher -------------------------------------------------------- */

static int mqtt_pub_open(const struct bench_ctx *c, void **st)
{
    *st = mq_connect(c->o, "pub");
    return *st ? 0 : -1;
}

static int drain_writes(struct mq *q)
{
    while (mosquitto_want_write(q->m))
        if (step(q, 100) < 0)
            return -1;
    return 0;
}

static int mqtt_pub_send(void *st, unsigned topic, const void *buf, size_t len)
{
    struct mq *q = st;
    int rc = mosquitto_publish(q->m, NULL, q->names[topic < q->nnames ? topic : 0], (int)len, buf,
                               q->qos, false);
    if (rc != MOSQ_ERR_SUCCESS)
        return fail("publish", rc);
    q->published++;
    if (q->qos == 1)
        while (q->published - q->acked >= q->window)
            if (step(q, 100) < 0)
                return -1;
    return drain_writes(q);
}

static int mqtt_pub_flush(void *st)
{
    struct mq *q = st;
    if (drain_writes(q) < 0)
        return -1;
    while (q->acked < q->published && q->qos == 1)
        if (step(q, 100) < 0)
            return -1;
    return 0;
}

/* ---- subscriber ------------------------------------------------------- */

static int mqtt_sub_run(const struct bench_ctx *c, struct bench_sub *s)
{
    struct mq *q = mq_connect(c->o, "sub");
    if (q == NULL)
        return -1;
    q->s = s;
    int rc = subscribe(q, c->topics, c->ntopics);
    while (rc == 0 && !q->done)
        rc = step(q, 100);
    mq_free(q);
    return rc;
}

/* ---- round trip ------------------------------------------------------- */

static int mqtt_rtt_open(const struct bench_ctx *c, int side, void **st)
{
    struct mq *q = mq_connect(c->o, side == 0 ? "echo" : "rtt");
    if (q == NULL)
        return -1;
    unsigned in = side == 0 ? 0 : 1;
    q->out_topic = q->names[side == 0 ? 1 : 0];
    q->rcap = c->o->size + 64;
    q->rbuf = malloc(q->rcap);
    if (q->rbuf == NULL || subscribe(q, &in, 1) < 0) {
        mq_free(q);
        return -1;
    }
    *st = q;
    return 0;
}

static int mqtt_rtt_send(void *st, const void *buf, size_t len)
{
    struct mq *q = st;
    int rc = mosquitto_publish(q->m, NULL, q->out_topic, (int)len, buf, 0, false);
    if (rc != MOSQ_ERR_SUCCESS)
        return fail("publish", rc);
    return drain_writes(q);
}

static int mqtt_rtt_recv(void *st, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct mq *q = st;
    uint64_t until = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (!q->have) {
        uint64_t now = bench_now_ns();
        if (now >= until)
            return 1;
        if (step(q, (int)((until - now) / 1000000u) + 1) < 0)
            return -1;
    }
    q->have = 0;
    *len = q->rlen > cap ? cap : q->rlen;
    memcpy(buf, q->rbuf, *len);
    return 0;
}

static const struct bench_ops mqtt_ops = {
    .system = "mqtt",
    .workloads = "thr fanout rtt ack big topics",
    .modes = "default",
    .lossy = "",
    .broker = "mqtt",
    .config = mqtt_config,
    .pub_open = mqtt_pub_open,
    .pub_send = mqtt_pub_send,
    .pub_flush = mqtt_pub_flush,
    .pub_close = mq_free,
    .sub_run = mqtt_sub_run,
    .rtt_open = mqtt_rtt_open,
    .rtt_send = mqtt_rtt_send,
    .rtt_recv = mqtt_rtt_recv,
    .rtt_close = mq_free,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &mqtt_ops);
}
