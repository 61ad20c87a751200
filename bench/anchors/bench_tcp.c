/* bench_tcp: the physical-limit row. Raw TCP over 127.0.0.1 with fixed-size
 * records (no framing, no topics): the publisher packs records into 256 KiB
 * writes, the subscriber reads 256 KiB at a time and slices records; the
 * round trip writes and reads one record with TCP_NODELAY. */
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IOBUF (256u * 1024u)

struct tcp {
    int fd;
    uint8_t *buf; /* publisher: pending output; reader: input */
    size_t cap, len;
};

static const char *tcp_config(const struct bench_opts *o)
{
    return o->workload == BENCH_W_RTT ? "tcp_nodelay,blocking_rw" : "256KiB_writes,blocking";
}

static int set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Listens on 127.0.0.1 (kernel-chosen port), publishes the port under idx
 * and accepts one connection. */
static int listen_accept(unsigned idx)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
        perror("bench_tcp: listen");
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    bench_port_set(idx, ntohs(a.sin_port));
    struct pollfd p = {lfd, POLLIN, 0};
    int fd = -1;
    if (poll(&p, 1, 30000) == 1)
        fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        fprintf(stderr, "bench_tcp: accept failed or timed out\n");
    close(lfd);
    if (fd >= 0)
        set_nodelay(fd);
    return fd;
}

static int connect_port(unsigned idx)
{
    unsigned port;
    if (bench_port_wait(idx, &port) < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bench_tcp: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    set_nodelay(fd);
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            perror("bench_tcp: write");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static struct tcp *tcp_new(int fd, size_t cap)
{
    struct tcp *t = calloc(1, sizeof *t);
    if (t != NULL)
        t->buf = malloc(cap);
    if (t == NULL || t->buf == NULL) {
        if (t != NULL)
            free(t);
        close(fd);
        fprintf(stderr, "bench_tcp: out of memory\n");
        return NULL;
    }
    t->fd = fd;
    t->cap = cap;
    return t;
}

static void tcp_free(void *st)
{
    struct tcp *t = st;
    if (t == NULL)
        return;
    close(t->fd);
    free(t->buf);
    free(t);
}

/* ---- publisher / subscriber ------------------------------------------- */

static int tcp_pub_open(const struct bench_ctx *c, void **st)
{
    int fd = listen_accept(0);
    if (fd < 0)
        return -1;
    *st = tcp_new(fd, IOBUF > c->o->size ? IOBUF : c->o->size);
    return *st ? 0 : -1;
}

static int tcp_pub_flush(void *st)
{
    struct tcp *t = st;
    int rc = write_all(t->fd, t->buf, t->len);
    t->len = 0;
    return rc;
}

static int tcp_pub_send(void *st, unsigned topic, const void *buf, size_t len)
{
    struct tcp *t = st;
    if (t->len + len > t->cap && tcp_pub_flush(t) < 0)
        return -1;
    memcpy(t->buf + t->len, buf, len);
    t->len += len;
    return 0;
}

static int tcp_sub_run(const struct bench_ctx *c, struct bench_sub *s)
{
    int fd = connect_port(0);
    if (fd < 0)
        return -1;
    struct tcp *t = tcp_new(fd, IOBUF > 2 * c->o->size ? IOBUF : 2 * c->o->size);
    if (t == NULL)
        return -1;
    size_t rec = c->o->size;
    int rc = 0, done = 0;
    for (;;) {
        ssize_t r = read(t->fd, t->buf + t->len, t->cap - t->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                perror("bench_tcp: read");
            rc = done ? 0 : -1;
            break;
        }
        t->len += (size_t)r;
        size_t off = 0;
        for (; t->len - off >= rec; off += rec)
            if (!done)
                done = bench_sub_on_msg(s, t->buf + off, rec);
        memmove(t->buf, t->buf + off, t->len - off);
        t->len -= off;
        /* after END keep reading until the publisher closes (EOF) */
    }
    tcp_free(t);
    return rc;
}

/* ---- round trip ------------------------------------------------------- */

static int tcp_rtt_open(const struct bench_ctx *c, int side, void **st)
{
    int fd = side == 0 ? listen_accept(0) : connect_port(0);
    if (fd < 0)
        return -1;
    *st = tcp_new(fd, c->o->size);
    return *st ? 0 : -1;
}

static int tcp_rtt_send(void *st, const void *buf, size_t len)
{
    struct tcp *t = st;
    return write_all(t->fd, buf, len);
}

/* Reads exactly one record (t->cap bytes). */
static int tcp_rtt_recv(void *st, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct tcp *t = st;
    while (t->len < t->cap) {
        if (t->len == 0) {
            struct pollfd p = {t->fd, POLLIN, 0};
            int n = poll(&p, 1, timeout_ms);
            if (n == 0)
                return 1;
            if (n < 0 && errno != EINTR)
                return -1;
        }
        ssize_t r = read(t->fd, t->buf + t->len, t->cap - t->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "bench_tcp: connection closed\n");
            return -1;
        }
        t->len += (size_t)r;
    }
    if (cap < t->cap)
        return -1;
    memcpy(buf, t->buf, t->cap);
    *len = t->cap;
    t->len = 0;
    return 0;
}

static const struct bench_ops tcp_ops = {
    .system = "tcp",
    .workloads = "thr rtt big",
    .modes = "default",
    .lossy = "",
    .broker = "none",
    .config = tcp_config,
    .pub_open = tcp_pub_open,
    .pub_send = tcp_pub_send,
    .pub_flush = tcp_pub_flush,
    .pub_close = tcp_free,
    .sub_run = tcp_sub_run,
    .rtt_open = tcp_rtt_open,
    .rtt_send = tcp_rtt_send,
    .rtt_recv = tcp_rtt_recv,
    .rtt_close = tcp_free,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &tcp_ops);
}
