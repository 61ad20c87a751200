/* bench_int: private declarations shared by bench_common.c (flags,
 * processes, RESULT line) and bench_drive.c (the publisher, subscriber and
 * round-trip drivers that run inside the child processes). */
#ifndef BENCH_INT_H
#define BENCH_INT_H

#include "bench_common.h"

#include <stdatomic.h>

/* One subscriber process's counters, in the shared mapping. */
struct bench_shm_sub {
    /* own cache lines: subscriber processes write these concurrently */
    _Alignas(128) _Atomic uint64_t received; /* DATA payloads of the right size and topic */
    _Atomic uint64_t bytes;    /* their payload bytes */
    _Atomic uint64_t last_ns;  /* receipt time of the last DATA (every 64th) */
    _Atomic uint64_t bad;      /* wrong size, unknown type or foreign topic */
    _Atomic int warm;          /* WARM seen on every topic of the process */
    _Atomic int fenced;        /* the WARM fence seen on every topic */
    _Atomic int done;          /* END seen on every topic of the process */
};

/* The anonymous shared mapping of one run (created by the parent before
 * forking; children only touch it through the helpers). */
struct bench_shm {
    _Atomic unsigned port[4];
    _Atomic int pub_ready;
    _Atomic uint64_t pub_start_ns; /* just before the first DATA */
    _Atomic uint64_t pub_end_ns;   /* after the last DATA was flushed */
    _Atomic uint64_t sent;         /* DATA messages published */
    _Atomic uint64_t deadline_ns;  /* run timeout, absolute */
    /* round trip results, written by the client */
    uint64_t rtt_samples;
    double rtt_secs;
    double rtt_p[7]; /* min p50 p90 p99 p99.9 max mean, microseconds */
    struct bench_shm_sub sub[BENCH_MAX_PROCS];
};

extern struct bench_shm *bench__shm;

/* Number of subscriber processes for the workload. */
unsigned bench__nprocs(const struct bench_opts *o);
/* Topic count used by the publisher (1 unless workload topics). */
unsigned bench__ntopics(const struct bench_opts *o);
/* Topics of subscriber process p: writes up to cap indices into out and
 * returns how many (see README "topics"). */
unsigned bench__proc_topics(const struct bench_opts *o, unsigned p, unsigned *out, unsigned cap);

/* Child bodies; each returns the child's exit status. */
int bench__run_pub(const struct bench_ops *ops, const struct bench_opts *o);
int bench__run_sub(const struct bench_ops *ops, const struct bench_opts *o, unsigned proc);
int bench__run_rtt(const struct bench_ops *ops, const struct bench_opts *o, int side);

/* 1 if w is one of the space-separated words of list. */
int bench__word_in(const char *list, const char *w);

/* Writes a message header into buf (len >= BENCH_HDR). */
void bench__hdr(uint8_t *buf, unsigned type, unsigned topic, uint64_t seq, uint64_t ts);

#endif
