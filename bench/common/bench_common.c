/* bench_common: flags, helpers, process management and the RESULT line of
 * the comparative benchmark programs (see bench_common.h). */
#include "bench_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bench_shm *bench__shm;

static const char *const workload_names[BENCH_W_COUNT] = {
    "thr", "fanout", "rtt", "ack", "big", "topics",
};

const char *bench_workload_name(enum bench_workload w)
{
    return (unsigned)w < BENCH_W_COUNT ? workload_names[w] : "?";
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void bench_put_u32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void bench_put_u64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t bench_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

uint64_t bench_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void bench__hdr(uint8_t *buf, unsigned type, unsigned topic, uint64_t seq, uint64_t ts)
{
    buf[0] = (uint8_t)type;
    buf[1] = buf[2] = buf[3] = 0;
    bench_put_u32(buf + 4, topic);
    bench_put_u64(buf + 8, seq);
    bench_put_u64(buf + 16, ts);
}

void bench_topic_name(unsigned idx, char out[BENCH_TOPIC_LEN + 1])
{
    snprintf(out, BENCH_TOPIC_LEN + 1, "t%05u", idx % BENCH_MAX_TOPICS);
}

long bench_topic_parse(const char *name, size_t len)
{
    if (len != BENCH_TOPIC_LEN || name[0] != 't')
        return -1;
    long v = 0;
    for (size_t i = 1; i < len; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* ---- ports and readiness --------------------------------------------- */

static int past_deadline(void)
{
    return bench_now_ns() > atomic_load(&bench__shm->deadline_ns);
}

void bench_port_set(unsigned idx, unsigned port)
{
    if (idx < 4)
        atomic_store(&bench__shm->port[idx], port);
}

int bench_port_wait(unsigned idx, unsigned *port)
{
    if (idx >= 4)
        return -1;
    while ((*port = atomic_load(&bench__shm->port[idx])) == 0) {
        if (past_deadline()) {
            fprintf(stderr, "bench: timed out waiting for port %u\n", idx);
            return -1;
        }
        bench_sleep_ms(1);
    }
    return 0;
}

void bench_pub_ready_set(void)
{
    atomic_store(&bench__shm->pub_ready, 1);
}

int bench_pub_ready_wait(void)
{
    while (!atomic_load(&bench__shm->pub_ready)) {
        if (past_deadline()) {
            fprintf(stderr, "bench: timed out waiting for the publisher\n");
            return -1;
        }
        bench_sleep_ms(1);
    }
    return 0;
}

/* ---- workload shape --------------------------------------------------- */

unsigned bench__nprocs(const struct bench_opts *o)
{
    switch (o->workload) {
    case BENCH_W_FANOUT:
        return o->subs;
    case BENCH_W_TOPICS:
        return o->procs;
    default:
        return 1;
    }
}

unsigned bench__ntopics(const struct bench_opts *o)
{
    return o->workload == BENCH_W_TOPICS ? o->topics : 1;
}

/* Subscriber j (0 <= j < subs) lives in process j % procs and subscribes to
 * every topic t with t % subs == j; so each topic has exactly one
 * subscriber and each published message is delivered exactly once. */
unsigned bench__proc_topics(const struct bench_opts *o, unsigned p, unsigned *out, unsigned cap)
{
    if (o->workload != BENCH_W_TOPICS) {
        if (cap > 0)
            out[0] = 0;
        return 1;
    }
    unsigned n = 0;
    for (unsigned j = p; j < o->subs; j += o->procs)
        for (unsigned t = j; t < o->topics; t += o->subs)
            if (n < cap)
                out[n++] = t;
    return n;
}

/* ---- flags ------------------------------------------------------------ */

int bench__word_in(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        size_t k = strcspn(p, " ");
        if (k == n && k > 0 && strncmp(p, w, n) == 0)
            return 1;
        p += k;
    }
    return 0;
}

static void usage(FILE *f, const struct bench_ops *ops)
{
    fprintf(f,
            "usage: bench_%s --workload W [--mode M] [--size BYTES] [--subs N]\n"
            "       [--procs P] [--topics T] [--seconds S] [--count N] [--window N]\n"
            "       [--timeout S] [--broker HOST:PORT] | --list\n"
            "workloads: %s\nmodes: %s (lossy: %s)\nbroker: %s\n",
            ops->system, ops->workloads, ops->modes, *ops->lossy ? ops->lossy : "none",
            ops->broker);
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || d < lo || d > hi) {
        fprintf(stderr, "bench: bad value for %s: '%s' (%g..%g)\n", flag, v, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_broker(const char *v, struct bench_opts *o)
{
    const char *colon = strrchr(v, ':');
    double port;
    if (colon == NULL || (size_t)(colon - v) >= sizeof o->host || colon == v)
        goto bad;
    if (parse_num("--broker", colon + 1, 1, 65535, &port) < 0)
        goto bad;
    memcpy(o->host, v, (size_t)(colon - v));
    o->host[colon - v] = '\0';
    o->port = (unsigned)port;
    return 0;
bad:
    fprintf(stderr, "bench: --broker wants HOST:PORT, got '%s'\n", v);
    return -1;
}

/* Returns 0 to run, 1 when --list/--help was served, -1 on bad flags. */
static int parse_flags(int argc, char **argv, const struct bench_ops *ops, struct bench_opts *o)
{
    static char first_mode[32];
    int have_size = 0, have_subs = 0, have_timeout = 0;
    double d;

    memset(o, 0, sizeof *o);
    o->workload = BENCH_W_COUNT;
    o->procs = 50;
    o->topics = 1000;
    o->seconds = 5;
    o->window = 1000;
    size_t fm = strcspn(ops->modes, " ");
    if (fm >= sizeof first_mode)
        fm = sizeof first_mode - 1;
    memcpy(first_mode, ops->modes, fm);
    first_mode[fm] = '\0';
    o->mode = first_mode;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--list") == 0) {
            printf("SYSTEM %s\nWORKLOADS %s\nMODES %s\nLOSSY %s\nBROKER %s\n", ops->system,
                   ops->workloads, ops->modes, ops->lossy, ops->broker);
            return 1;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, ops);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench: unknown flag or missing value: %s\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--workload") == 0) {
            for (int w = 0; w < BENCH_W_COUNT; w++)
                if (strcmp(v, workload_names[w]) == 0)
                    o->workload = (enum bench_workload)w;
            if (o->workload == BENCH_W_COUNT) {
                fprintf(stderr, "bench: unknown workload '%s'\n", v);
                return -1;
            }
        } else if (strcmp(a, "--mode") == 0) {
            if (!bench__word_in(ops->modes, v)) {
                fprintf(stderr, "bench: %s has no mode '%s' (modes: %s)\n", ops->system, v,
                        ops->modes);
                return -1;
            }
            o->mode = v;
        } else if (strcmp(a, "--size") == 0) {
            if (parse_num(a, v, BENCH_HDR, 64.0 * 1024 * 1024, &d) < 0)
                return -1;
            o->size = (size_t)d;
            have_size = 1;
        } else if (strcmp(a, "--subs") == 0) {
            if (parse_num(a, v, 1, BENCH_MAX_TOPICS, &d) < 0)
                return -1;
            o->subs = (unsigned)d;
            have_subs = 1;
        } else if (strcmp(a, "--procs") == 0) {
            if (parse_num(a, v, 1, BENCH_MAX_PROCS, &d) < 0)
                return -1;
            o->procs = (unsigned)d;
        } else if (strcmp(a, "--topics") == 0) {
            if (parse_num(a, v, 1, BENCH_MAX_TOPICS, &d) < 0)
                return -1;
            o->topics = (unsigned)d;
        } else if (strcmp(a, "--seconds") == 0) {
            if (parse_num(a, v, 0.01, 3600, &o->seconds) < 0)
                return -1;
        } else if (strcmp(a, "--count") == 0) {
            if (parse_num(a, v, 0, 1e15, &d) < 0)
                return -1;
            o->count = (uint64_t)d;
        } else if (strcmp(a, "--window") == 0) {
            if (parse_num(a, v, 1, 65535, &d) < 0)
                return -1;
            o->window = (unsigned)d;
        } else if (strcmp(a, "--timeout") == 0) {
            if (parse_num(a, v, 1, 86400, &o->timeout) < 0)
                return -1;
            have_timeout = 1;
        } else if (strcmp(a, "--broker") == 0) {
            if (parse_broker(v, o) < 0)
                return -1;
        } else {
            fprintf(stderr, "bench: unknown flag %s\n", a);
            return -1;
        }
    }
    if (o->workload == BENCH_W_COUNT) {
        usage(stderr, ops);
        return -1;
    }
    if (!have_size)
        o->size = o->workload == BENCH_W_BIG ? 65536 : 128;
    if (!have_subs)
        o->subs = o->workload == BENCH_W_TOPICS ? 100 : 8;
    if (o->workload == BENCH_W_FANOUT && o->subs > BENCH_MAX_PROCS) {
        fprintf(stderr, "bench: --subs at most %u for fanout\n", BENCH_MAX_PROCS);
        return -1;
    }
    if (o->workload == BENCH_W_TOPICS && (o->subs > o->topics || o->procs > o->subs)) {
        fprintf(stderr, "bench: topics needs procs <= subs <= topics\n");
        return -1;
    }
    if (!have_timeout)
        o->timeout = o->seconds * 6 + 60;
    if (strcmp(ops->broker, "none") != 0 && o->port == 0) {
        fprintf(stderr, "bench: %s needs --broker HOST:PORT (a %s server)\n", ops->system,
                ops->broker);
        return -1;
    }
    return 0;
}

/* ---- processes -------------------------------------------------------- */

struct child {
    pid_t pid;
    const char *what;
};

static pid_t spawn(const struct bench_ops *ops, const struct bench_opts *o, int kind, unsigned arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int rc;
    if (kind == 0)
        rc = bench__run_sub(ops, o, arg);
    else if (kind == 1)
        rc = bench__run_pub(ops, o);
    else
        rc = bench__run_rtt(ops, o, (int)arg);
    fflush(NULL);
    _exit(rc);
}

static void kill_all(struct child *ch, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (ch[i].pid > 0)
            kill(ch[i].pid, SIGKILL);
    for (unsigned i = 0; i < n; i++)
        if (ch[i].pid > 0)
            waitpid(ch[i].pid, NULL, 0);
}

/* Waits for every child; on the first failure or the deadline kills the
 * rest. Returns 0 if all exited with status 0. */
static int wait_all(struct child *ch, unsigned n)
{
    unsigned left = n;
    while (left > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno != EINTR) {
            perror("bench: waitpid");
            kill_all(ch, n);
            return -1;
        }
        if (pid <= 0) {
            /* children give up at the deadline and say why; 3 s later the
             * parent stops waiting */
            if (bench_now_ns() > atomic_load(&bench__shm->deadline_ns) + 3000000000u) {
                fprintf(stderr, "bench: timeout, killing the run\n");
                kill_all(ch, n);
                return -1;
            }
            bench_sleep_ms(2);
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            if (ch[i].pid != pid)
                continue;
            ch[i].pid = 0;
            left--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (WIFSIGNALED(status))
                    fprintf(stderr, "bench: %s died with signal %d\n", ch[i].what,
                            WTERMSIG(status));
                else
                    fprintf(stderr, "bench: %s failed (exit %d)\n", ch[i].what,
                            WEXITSTATUS(status));
                kill_all(ch, n);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- result line ------------------------------------------------------ */

static void print_head(const struct bench_ops *ops, const struct bench_opts *o)
{
    printf("RESULT system=%s workload=%s mode=%s size=%zu", ops->system,
           bench_workload_name(o->workload), o->mode, o->size);
    if (o->workload == BENCH_W_FANOUT)
        printf(" subs=%u", o->subs);
    if (o->workload == BENCH_W_TOPICS)
        printf(" topics=%u subs=%u procs=%u", o->topics, o->subs, o->procs);
    if (o->workload == BENCH_W_ACK)
        printf(" window=%u", o->window);
}

static int print_flow(const struct bench_ops *ops, const struct bench_opts *o)
{
    const struct bench_shm *m = bench__shm;
    unsigned np = bench__nprocs(o);
    uint64_t sent = atomic_load(&m->sent), recv = 0, bytes = 0, bad = 0, last = 0;
    for (unsigned i = 0; i < np; i++) {
        recv += atomic_load(&m->sub[i].received);
        bytes += atomic_load(&m->sub[i].bytes);
        bad += atomic_load(&m->sub[i].bad);
        uint64_t l = atomic_load(&m->sub[i].last_ns);
        if (l > last)
            last = l;
    }
    uint64_t start = atomic_load(&m->pub_start_ns);
    uint64_t expect = o->workload == BENCH_W_FANOUT ? sent * o->subs : sent;
    double secs = last > start ? (double)(last - start) / 1e9 : 0;
    double psecs = (double)(atomic_load(&m->pub_end_ns) - start) / 1e9;
    uint64_t lost = expect > recv ? expect - recv : 0;
    uint64_t dup = recv > expect ? recv - expect : 0;

    print_head(ops, o);
    printf(" msgs=%llu sent=%llu expected=%llu lost=%llu dup=%llu bad=%llu"
           " secs=%.4f pub_secs=%.4f rate=%.1f pub_rate=%.1f mbps=%.2f config=%s\n",
           (unsigned long long)recv, (unsigned long long)sent, (unsigned long long)expect,
           (unsigned long long)lost, (unsigned long long)dup, (unsigned long long)bad, secs,
           psecs, secs > 0 ? (double)recv / secs : 0, psecs > 0 ? (double)sent / psecs : 0,
           secs > 0 ? (double)bytes / secs / 1e6 : 0, ops->config(o));
    if (dup > 0 || bad > 0) {
        fprintf(stderr, "bench: %llu duplicate and %llu malformed deliveries\n",
                (unsigned long long)dup, (unsigned long long)bad);
        return 1;
    }
    if (lost > 0 && !bench__word_in(ops->lossy, o->mode)) {
        fprintf(stderr, "bench: mode %s must not lose, lost %llu\n", o->mode,
                (unsigned long long)lost);
        return 1;
    }
    return 0;
}

static void print_rtt(const struct bench_ops *ops, const struct bench_opts *o)
{
    const struct bench_shm *m = bench__shm;
    print_head(ops, o);
    printf(" samples=%llu secs=%.4f rate=%.1f min_us=%.2f p50_us=%.2f p90_us=%.2f"
           " p99_us=%.2f p999_us=%.2f max_us=%.2f mean_us=%.2f config=%s\n",
           (unsigned long long)m->rtt_samples, m->rtt_secs,
           m->rtt_secs > 0 ? (double)m->rtt_samples / m->rtt_secs : 0, m->rtt_p[0], m->rtt_p[1],
           m->rtt_p[2], m->rtt_p[3], m->rtt_p[4], m->rtt_p[5], m->rtt_p[6], ops->config(o));
}

int bench_main(int argc, char **argv, const struct bench_ops *ops)
{
    struct bench_opts o;
    int rc = parse_flags(argc, argv, ops, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    int rtt = o.workload == BENCH_W_RTT;
    if (!bench__word_in(ops->workloads, bench_workload_name(o.workload)) ||
        (rtt && (!ops->rtt_open || !ops->rtt_send || !ops->rtt_recv || !ops->rtt_close)) ||
        (!rtt && (!ops->pub_open || !ops->pub_send || !ops->pub_flush || !ops->pub_close ||
                  !ops->sub_run))) {
        fprintf(stderr, "UNSUPPORTED bench_%s has no workload %s\n", ops->system,
                bench_workload_name(o.workload));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    void *p = mmap(NULL, sizeof *bench__shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        perror("bench: mmap");
        return 1;
    }
    bench__shm = p;
    atomic_store(&bench__shm->deadline_ns, bench_now_ns() + (uint64_t)(o.timeout * 1e9));

    struct child ch[BENCH_MAX_PROCS + 2];
    unsigned n = 0;
    if (o.workload == BENCH_W_RTT) {
        ch[n].what = "echo server";
        ch[n].pid = spawn(ops, &o, 2, 0);
        n += ch[n].pid > 0;
        ch[n].what = "rtt client";
        ch[n].pid = spawn(ops, &o, 2, 1);
        n += ch[n].pid > 0;
        if (n != 2)
            goto fork_failed;
    } else {
        unsigned np = bench__nprocs(&o);
        for (unsigned i = 0; i < np; i++) {
            ch[n].what = "subscriber";
            ch[n].pid = spawn(ops, &o, 0, i);
            if (ch[n].pid < 0)
                goto fork_failed;
            n++;
        }
        ch[n].what = "publisher";
        ch[n].pid = spawn(ops, &o, 1, 0);
        if (ch[n].pid < 0)
            goto fork_failed;
        n++;
    }
    if (wait_all(ch, n) != 0)
        return 1;
    if (o.workload == BENCH_W_RTT) {
        print_rtt(ops, &o);
        return 0;
    }
    return print_flow(ops, &o);

fork_failed:
    perror("bench: fork");
    kill_all(ch, n);
    return 1;
}
