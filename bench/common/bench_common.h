/* bench_common: the shared driver of the comparative benchmark programs.
 *
 * Every bench_<system> program (bench/anchors/bench_<system>.c, later bench_parley) is a
 * small table of system-specific operations (struct bench_ops) handed to
 * bench_main(), which parses the common flags, forks the publisher and
 * subscriber PROCESSES (never threads), runs the workload, collects the
 * counters through a shared anonymous mapping and prints exactly one line
 *
 *   RESULT system=... workload=... mode=... key=value ...
 *
 * on stdout. The flags, workloads, message layout and RESULT keys are the
 * contract written down in bench/README.md ("Comparative benchmarks").
 *
 * Process model. The parent only forks and waits: it never opens a socket
 * or initialises a messaging library (several of them start threads, which
 * do not survive fork()). Children talk over 127.0.0.1. Ports of
 * brokerless systems are chosen by the kernel (bind to port 0) in the
 * binding child and handed to the connecting child through the shared
 * mapping (bench_port_set / bench_port_wait).
 *
 * Message layout (the first BENCH_HDR bytes of every payload; the rest is
 * filler up to --size):
 *   [0]      type: BENCH_DATA, BENCH_WARM or BENCH_END
 *   [1..3]   zero
 *   [4..7]   topic index, little endian u32
 *   [8..15]  sequence number, little endian u64
 *   [16..23] send time, CLOCK_MONOTONIC ns, little endian u64 (rtt only)
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_HDR 24u
#define BENCH_DATA 1u
#define BENCH_WARM 2u
#define BENCH_END 3u
#define BENCH_MAX_PROCS 256u
#define BENCH_MAX_TOPICS 100000u
#define BENCH_TOPIC_LEN 6u /* "t00042": fixed width, so no name prefixes another */

enum bench_workload {
    BENCH_W_THR,    /* 1 publisher -> 1 subscriber, fire and forget */
    BENCH_W_FANOUT, /* 1 publisher -> --subs subscriber processes */
    BENCH_W_RTT,    /* one message at a time, there and back */
    BENCH_W_ACK,    /* acknowledged publish, subscriber must get all */
    BENCH_W_BIG,    /* like thr with 64 KiB messages */
    BENCH_W_TOPICS, /* --topics topics, --subs subscribers in --procs processes */
    BENCH_W_COUNT
};

/* Parsed command line (bench_main fills it; the ops only read it). */
struct bench_opts {
    enum bench_workload workload;
    const char *mode;       /* one of ops->modes; default: the first */
    size_t size;            /* payload bytes, >= BENCH_HDR */
    unsigned subs;          /* fanout: processes; topics: subscribers */
    unsigned procs;         /* topics: subscriber processes */
    unsigned topics;        /* topics: number of topics */
    double seconds;         /* measured time */
    uint64_t count;         /* stop after this many messages (0: by time) */
    unsigned window;        /* ack: publishes in flight */
    double timeout;         /* whole run, seconds; then everything is killed */
    char host[64];          /* --broker HOST:PORT */
    unsigned port;
};

/* What one subscriber process knows while it runs. Counters are updated by
 * bench_sub_on_msg, which may be called from several threads at once. */
struct bench_sub;

/* Context handed to every operation. */
struct bench_ctx {
    const struct bench_opts *o;
    unsigned proc;            /* subscriber process index (sub side) */
    const unsigned *topics;   /* sub side: topics this process subscribes */
    unsigned ntopics;
};

/* The system-specific part. Every function returns 0 on success and -1 on
 * failure after printing a one-line reason to stderr. Unused workloads may
 * leave their functions NULL. */
struct bench_ops {
    const char *system;    /* "zmq" */
    const char *workloads; /* space separated subset of: thr fanout rtt ack big topics */
    const char *modes;     /* space separated; the first is the honest best */
    const char *lossy;     /* space separated modes allowed to lose messages ("" for none) */
    const char *broker;    /* "none", "nats", "mqtt" or "redis" */
    /* config note for the table: no spaces (e.g. "xpub_nodrop,hwm=100000") */
    const char *(*config)(const struct bench_opts *o);

    /* Publisher process. pub_send may block (back pressure). pub_flush
     * pushes out anything buffered and, for acknowledged modes, waits for
     * every acknowledgement. */
    int (*pub_open)(const struct bench_ctx *c, void **st);
    int (*pub_send)(void *st, unsigned topic, const void *buf, size_t len);
    int (*pub_flush)(void *st);
    void (*pub_close)(void *st);

    /* Subscriber process: connect, subscribe to c->topics, then hand every
     * received payload to bench_sub_on_msg until it returns 1; close. */
    int (*sub_run)(const struct bench_ctx *c, struct bench_sub *s);

    /* Round trip. side 0 = echo server, side 1 = client. rtt_recv returns
     * 0 with a message, 1 on timeout, -1 on error. */
    int (*rtt_open)(const struct bench_ctx *c, int side, void **st);
    int (*rtt_send)(void *st, const void *buf, size_t len);
    int (*rtt_recv)(void *st, void *buf, size_t cap, size_t *len, int timeout_ms);
    void (*rtt_close)(void *st);
};

/* Runs the program: parse argv, fork, measure, print RESULT. Returns the
 * exit status for main(): 0 ok, 1 run failed, 2 bad flags or unsupported. */
int bench_main(int argc, char **argv, const struct bench_ops *ops);

/* Subscriber side: account one received payload (after any system-level
 * topic prefix was stripped). Returns 1 once END arrived on every topic of
 * this process, 0 otherwise. Thread safe. */
int bench_sub_on_msg(struct bench_sub *s, const void *buf, size_t len);
/* 1 once the subscriber has finished (for threads that wait on callbacks). */
int bench_sub_done(const struct bench_sub *s);

/* Port hand-off between the processes of one run. idx < 4. bench_port_wait
 * returns 0 when the port is known, -1 after the run's timeout. */
void bench_port_set(unsigned idx, unsigned port);
int bench_port_wait(unsigned idx, unsigned *port);
/* Publisher: tell subscribers that pub_open finished (e.g. a JetStream
 * stream exists). Subscribers may wait for it; -1 on timeout. */
void bench_pub_ready_set(void);
int bench_pub_ready_wait(void);

/* Helpers. */
uint64_t bench_now_ns(void);
void bench_sleep_ms(unsigned ms);
/* Writes the topic name of idx ("t00042", NUL terminated) into out. */
void bench_topic_name(unsigned idx, char out[BENCH_TOPIC_LEN + 1]);
/* Topic index from a name written by bench_topic_name; -1 if malformed. */
long bench_topic_parse(const char *name, size_t len);
const char *bench_workload_name(enum bench_workload w);
/* Little-endian accessors for the header. */
void bench_put_u32(uint8_t *p, uint32_t v);
void bench_put_u64(uint8_t *p, uint64_t v);
uint32_t bench_get_u32(const uint8_t *p);
uint64_t bench_get_u64(const uint8_t *p);

#endif
