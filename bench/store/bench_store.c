/*
 * bench_store.c — the peer store alone (src/store/store.h), without links,
 * crypto or a second process: messages put in transactions of one loop
 * turn's size, then history queries.  It is for A/B of store changes: the
 * acknowledged workload of bench_parley puts two processes, the network and
 * the hash chain around the same inserts, and varies by 10-20 % from run
 * to run on a shared machine; this varies less.  It prints figures and
 * fails only on errors, never on a figure.
 *
 * usage: bench_store [--messages N] [--batch B] [--body BYTES]
 *                    [--channels C] [--publishers P] [--outgoing] [--text]
 *                    [--sync full|os] [--queries Q] [--runs R]
 *
 * Each run opens a new store in a fresh directory under $TMPDIR (or /tmp)
 * and removes it afterwards.  Messages go round-robin over the channels
 * and publishers (each with its own seq), so with several of either they
 * interleave the way many topics on one peer do.  --outgoing stores them
 * as this peer's own (the publisher's side), otherwise as received (the
 * subscriber's side, with its duplicate checks); --text gives them text
 * bodies, which the full-text index takes.  Queries ask for the newest
 * 50 messages of a random channel.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "store/store.h"
#include "wire/wire.h"

#define MAX_RUNS 15
#define MAX_CHANNELS 1000
#define MAX_PUBLISHERS 255

struct opts {
  unsigned long messages, batch, body, channels, publishers, queries, runs;
  int outgoing, text, sync_os;
};

struct result {
  double put_rate;   /* messages per second */
  double bytes;      /* on disk per message, after close */
  double query_us;   /* per query */
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench_store [--messages N] [--batch B] [--body BYTES]\n"
          "                   [--channels C] [--publishers P] [--outgoing]\n"
          "                   [--text] [--sync full|os] [--queries Q]"
          " [--runs R]\n");
  return 2;
}

/* Reads a positive count for flag into *v; 0 on success. */
static int count_arg(const char *flag, const char *s, unsigned long lo,
                     unsigned long hi, unsigned long *v) {
  char *end;
  unsigned long x;

  if (s == NULL)
    return -1;
  x = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || x < lo || x > hi) {
    fprintf(stderr, "bench_store: %s wants %lu..%lu\n", flag, lo, hi);
    return -1;
  }
  *v = x;
  return 0;
}

static int parse(int argc, char **argv, struct opts *o) {
  o->messages = 200000;
  o->batch = 480; /* messages per commit in the acknowledged workload */
  o->body = 128;
  o->channels = 1;
  o->publishers = 1;
  o->queries = 2000;
  o->runs = 3;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0, takes = 1;
    if (strcmp(a, "--messages") == 0)
      rc = count_arg(a, v, 1, 100000000, &o->messages);
    else if (strcmp(a, "--batch") == 0)
      rc = count_arg(a, v, 1, 1000000, &o->batch);
    else if (strcmp(a, "--body") == 0)
      rc = count_arg(a, v, 1, 65536, &o->body);
    else if (strcmp(a, "--channels") == 0)
      rc = count_arg(a, v, 1, MAX_CHANNELS, &o->channels);
    else if (strcmp(a, "--publishers") == 0)
      rc = count_arg(a, v, 1, MAX_PUBLISHERS, &o->publishers);
    else if (strcmp(a, "--queries") == 0)
      rc = count_arg(a, v, 0, 10000000, &o->queries);
    else if (strcmp(a, "--runs") == 0)
      rc = count_arg(a, v, 1, MAX_RUNS, &o->runs);
    else if (strcmp(a, "--sync") == 0 && v != NULL &&
             (strcmp(v, "full") == 0 || strcmp(v, "os") == 0))
      o->sync_os = strcmp(v, "os") == 0;
    else if (strcmp(a, "--outgoing") == 0)
      o->outgoing = 1, takes = 0;
    else if (strcmp(a, "--text") == 0)
      o->text = 1, takes = 0;
    else
      rc = -1;
    if (rc < 0)
      return usage();
    i += takes;
  }
  return 0;
}

/* Size of regular file dir/name, 0 if absent. */
static double file_size(const char *dir, const char *name) {
  char p[4200];
  struct stat st;

  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &st) == 0 ? (double)st.st_size : 0.0;
}

static void remove_dir(const char *dir) {
  static const char *const names[] = {"store.db", "store.db-wal",
                                      "store.db-shm"};
  char p[4200];

  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    unlink(p);
  }
  rmdir(dir);
}

static int count_row(void *ctx, const struct parley_msg *m) {
  (void)m;
  ++*(unsigned long *)ctx;
  return 0;
}

/* Puts o->messages messages, o->batch per transaction.  OUT: *secs. */
static int fill(struct parley_store *s, const struct opts *o, uint64_t *seqs,
                double *secs) {
  uint8_t pk[32], chain[32], *body = malloc(o->body);
  char channel[32];
  struct parley_msg m;
  double t0;
  int rc = PARLEY_OK;

  if (body == NULL)
    return PARLEY_ENOMEM;
  for (unsigned long i = 0; i < o->body; i++)
    body[i] = o->text ? (uint8_t)('a' + i % 26) : (uint8_t)(i * 7);
  if (o->text)
    for (unsigned long i = 7; i < o->body; i += 8)
      body[i] = ' ';
  memset(chain, 0xC5, sizeof chain);
  memset(&m, 0, sizeof m);
  m.publisher = pk;
  m.channel = channel;
  m.body = body;
  m.body_len = o->body;
  m.flags = o->text ? 0 : PARLEY_MSG_BINARY;
  m.outgoing = o->outgoing;
  m.chain = chain;
  t0 = now_s();
  for (unsigned long i = 0; rc == PARLEY_OK && i < o->messages;) {
    rc = parley_store_begin(s);
    for (unsigned long k = 0; rc == PARLEY_OK && k < o->batch &&
                              i < o->messages;
         k++, i++) {
      unsigned long c = i % o->channels, p = (i / o->channels) % o->publishers;
      memset(pk, (int)(p + 1), sizeof pk);
      m.channel_len = (size_t)snprintf(channel, sizeof channel, "topic-%lu", c);
      m.seq = ++seqs[p * o->channels + c];
      m.ts_ms = 1700000000000 + (int64_t)i;
      m.stored_ms = m.ts_ms;
      rc = parley_store_put_message(s, &m, NULL);
    }
    if (rc == PARLEY_OK)
      rc = parley_store_commit(s);
  }
  *secs = now_s() - t0;
  free(body);
  return rc;
}

/* Runs o->queries history queries.  OUT: *us per query. */
static int query(struct parley_store *s, const struct opts *o, double *us) {
  char channel[32];
  struct parley_query q;
  unsigned long rows = 0;
  double t0 = now_s();
  int rc = PARLEY_OK;

  memset(&q, 0, sizeof q);
  q.since_ms = INT64_MIN;
  q.until_ms = INT64_MAX;
  q.limit = 50;
  q.channel = channel;
  srand(7);
  for (unsigned long i = 0; rc == PARLEY_OK && i < o->queries; i++) {
    snprintf(channel, sizeof channel, "topic-%lu",
             (unsigned long)rand() % o->channels);
    rc = parley_store_query(s, &q, count_row, &rows);
  }
  *us = o->queries ? (now_s() - t0) * 1e6 / (double)o->queries : 0.0;
  if (rc == PARLEY_OK && o->queries > 0 && rows == 0)
    rc = PARLEY_ENOTFOUND; /* the queries found nothing: a bug */
  return rc;
}

static int run(const struct opts *o, struct result *r) {
  const char *tmp = getenv("TMPDIR");
  char dir[4096], path[4200];
  struct parley_store *s = NULL;
  uint64_t *seqs = calloc(o->channels * o->publishers, sizeof *seqs);
  double secs = 0;
  int rc;

  snprintf(dir, sizeof dir, "%s/bench-store-XXXXXX",
           tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
  if (seqs == NULL || mkdtemp(dir) == NULL) {
    free(seqs);
    return PARLEY_EIO;
  }
  snprintf(path, sizeof path, "%s/store.db", dir);
  rc = parley_store_open(path, NULL, &s);
  if (rc == PARLEY_OK)
    rc = parley_store_set_sync(s, o->sync_os ? PARLEY_STORE_SYNC_OS
                                             : PARLEY_STORE_SYNC_FULL);
  if (rc == PARLEY_OK)
    rc = fill(s, o, seqs, &secs);
  if (rc == PARLEY_OK)
    rc = query(s, o, &r->query_us);
  if (rc < 0 && s != NULL)
    fprintf(stderr, "bench_store: %s\n", parley_store_errmsg(s));
  if (s != NULL)
    parley_store_close(s); /* checkpoints the WAL into store.db */
  r->put_rate = secs > 0 ? (double)o->messages / secs : 0.0;
  r->bytes = (file_size(dir, "store.db") + file_size(dir, "store.db-wal")) /
             (double)o->messages;
  remove_dir(dir);
  free(seqs);
  return rc;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, unsigned long n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  struct opts o;
  double put[MAX_RUNS], bytes[MAX_RUNS], q[MAX_RUNS];
  int rc;

  memset(&o, 0, sizeof o);
  if (parse(argc, argv, &o) != 0)
    return 2;
  printf("store: %lu messages of %lu bytes, %lu per transaction, %lu"
         " channel(s), %lu publisher(s), %s, %s, sync %s\n",
         o.messages, o.body, o.batch, o.channels, o.publishers,
         o.outgoing ? "outgoing" : "received", o.text ? "text" : "binary",
         o.sync_os ? "os" : "full");
  for (unsigned long i = 0; i < o.runs; i++) {
    struct result r;
    memset(&r, 0, sizeof r);
    rc = run(&o, &r);
    if (rc < 0) {
      fprintf(stderr, "bench_store: run %lu: %s\n", i + 1,
              parley_strerror(rc));
      return 1;
    }
    printf("  run %lu/%lu  put %.0f msg/s  %.0f bytes/msg  query %.1f us\n",
           i + 1, o.runs, r.put_rate, r.bytes, r.query_us);
    put[i] = r.put_rate;
    bytes[i] = r.bytes;
    q[i] = r.query_us;
  }
  printf("median: put %.0f msg/s, %.0f bytes/msg on disk, newest 50 of a"
         " channel %.1f us\n",
         median(put, o.runs), median(bytes, o.runs), median(q, o.runs));
  return 0;
}
