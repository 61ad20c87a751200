#!/usr/bin/env python3
"""Benchmark: index registration rate, registry size and index memory at
10 000 and 100 000 registered peers (not a test: it measures and prints).

Three modes, each on fresh data directories, for each peer count N:

  single   one index; N simulated peers (bench's parley_loadgen: each with
           its own identity and secure link) register and keep their links,
           heartbeating every lease/3;
  cluster  the same against the leader of a 3-node cluster;
  drop     one index with a long lease (1 h); each simulated peer closes its
           link right after its OK, so the index holds N registrations and
           leases but only the dialling window's links (registry and leases
           alone; and the only way to reach more registered peers than a
           process may have file descriptors).

For every run:

  1. starts the index (--max-links N+100) and reads the (leader's) VmRSS
     from /proc/PID/status once it is idle: "before";
  2. runs parley_loadgen; once it reports all N registered, waits 2 s and
     reads /metrics (parley_index_peers, _leases, _links_open) and VmRSS of
     the leader and of a follower (registry only): "held";
  3. single and cluster: then every peer re-registers --rereg times over
     its open link with a new address (registry change, log append and
     fsync or Raft commit, no handshake): "re-reg/s";
  4. after the load generator exits reads VmRSS again: "closed" (glibc
     keeps freed memory, so this is an upper bound);
  5. measures the data directory: registry.snap + registry.log for a
     single node (after a top-up that makes the regstore compact when the
     log is just short of its 10 000-entry threshold), raft/ for a cluster
     node (and the newest Raft snapshot's size).

A count whose links do not fit the file-descriptor limit (each of the
index and the load generator needs one per link; this script raises its
soft limit to the hard limit, and the children inherit it) is run in
single and cluster mode at the largest count that fits instead, and said
so.  Prints one table per mode, the per-peer slopes, an estimate for
N connected peers where N did not fit (the drop run's RSS per peer at N
plus the per-link cost: single minus drop, per peer, at the largest count
both ran), and the physical limit of registrations with a new link each:
plain TCP connections with the same two round trips and no encryption
(bench/conn_tcp.c).

  python3 bench/index_scale.py [--bin ./build] [--peers 10000,100000]
                               [--concurrency 64] [--hold 8] [--rereg 5]
                               [--modes single,drop,cluster]
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FD_SPARE = 100  # descriptors the index and the load generator need besides links
DROP_LEASE = "3600"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build"),
                    help="build directory with parley-index and "
                         "parley_loadgen (default ./build; use a release "
                         "build)")
    ap.add_argument("--peers", default="10000,100000",
                    help="comma-separated peer counts (default 10000,100000)")
    ap.add_argument("--concurrency", type=int, default=64,
                    help="loadgen links between dial and OK at once")
    ap.add_argument("--hold", type=int, default=8,
                    help="seconds the loadgen keeps its peers after the last "
                         "registered (default 8)")
    ap.add_argument("--rereg", type=int, default=5,
                    help="re-REGISTERs per peer over the open links after "
                         "all registered (default 5; 0 = none)")
    ap.add_argument("--modes", default="single,drop,cluster")
    return ap.parse_args()


ARGS = parse_args()
os.environ["PARLEY_BIN"] = os.path.abspath(ARGS.bin)
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
import harness as h  # noqa: E402

LOADGEN = os.path.join(h.BIN, "parley_loadgen")


def raise_fds():
    """The index processes inherit our limit: raise it to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metrics(node):
    # Through the harness, which adds a bearer token where the index's HTTP
    # API requires one.
    text = node.get("/metrics")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, val = line.rpartition(" ")
            try:
                out[name] = float(val)
            except ValueError:
                pass
    return out


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def fsize(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def newest_snapshot(raft_dir):
    """(name, bytes) of the raft snapshot with the highest index."""
    best = None
    for f in os.listdir(raft_dir):
        m = re.match(r"snapshot-(\d+)-(\d+)-\d+$", f)
        if m:
            key = (int(m.group(1)), int(m.group(2)))
            if best is None or key > best[0]:
                best = (key, f)
    if best is None:
        return "-", 0
    return best[1], fsize(os.path.join(raft_dir, best[1]))


def run_loadgen(target, n, on_all, prefix="load", hold=None, base=20000,
                quiet=False, extra=()):
    """Runs parley_loadgen; calls on_all() once it says all are registered
    (while its links are still open); returns the RESULT fields."""
    argv = [LOADGEN, "--index", target, "--peers", str(n), "--hold",
            str(ARGS.hold if hold is None else hold), "--concurrency",
            str(ARGS.concurrency), "--prefix", prefix, "--base-port",
            str(base)] + list(extra)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=sys.stderr,
                         stdin=subprocess.DEVNULL)
    result = {}
    for raw in p.stdout:
        line = raw.decode().rstrip()
        if (line.startswith("all ") and not quiet) or \
                line.startswith("fd limit") or line.startswith("timed out") \
                or (line.startswith("re-registered") and not quiet):
            print("    loadgen: %s" % line, flush=True)
        if line.startswith("all ") and on_all is not None:
            on_all()
        if line.startswith("dial->OK") and not quiet:
            print("    loadgen: %s" % line, flush=True)
        if line.startswith("RESULT "):
            result = dict(kv.split("=", 1) for kv in line.split()[1:])
    p.wait()
    if p.returncode != 0:
        print("    loadgen exited %d" % p.returncode, flush=True)
    return result


def index_flags(n, lease=None):
    """--max-links above n and, where the index limits connections and
    handshakes per address, limits that simulated peers dialling from a
    few loopback addresses do not hit."""
    flags = ["--max-links", str(n + 100)]
    if lease:
        flags += ["--lease", lease]
    helptext = subprocess.run([os.path.join(h.BIN, "parley-index"), "--help"],
                              capture_output=True, text=True).stdout
    for f in ("--conn-burst", "--conn-rate", "--handshake-burst",
              "--handshake-rate"):
        if f in helptext:
            flags += [f, "1000000"]
    return flags


def settle():
    time.sleep(1.5)


def rereg_flags():
    # The "held" reading is taken 2 s after the last first OK: start the
    # re-registrations after it.
    if ARGS.rereg <= 0:
        return []
    return ["--rereg", str(ARGS.rereg), "--rereg-after", "4"]


def measure_single(n, drop=False):
    idx = h.Index(extra=index_flags(n, DROP_LEASE if drop else None),
                  name="index-%d" % n)
    pid = idx.p.pid
    settle()
    row = {"n": n, "before": rss_kib(pid)}

    def held():
        time.sleep(2.0)
        m = metrics(idx)
        row["held"] = rss_kib(pid)
        row["peers"] = int(m.get("parley_index_peers", 0))
        row["links"] = int(m.get("parley_index_links_open", 0))
        row["leases"] = int(m.get("parley_index_leases", 0))
    extra = ["--drop"] if drop else rereg_flags()
    res = run_loadgen(idx.addr, n, held, hold=0 if drop else None,
                      extra=extra)
    time.sleep(1.0)
    row["closed"] = rss_kib(pid)
    row["rate"] = float(res.get("rate", 0))
    row["rereg"] = float(res.get("rereg_rate", 0))
    row["lat"] = res.get("lat_median_ms", "?")
    row["log"] = fsize(os.path.join(idx.data, "registry.log"))
    m = metrics(idx)
    entries = int(m.get("parley_index_regstore_log_entries", 0))
    # The regstore compacts once its log passes 10 000 entries: a few more
    # registrations near the threshold produce registry.snap.
    extra_peers = 10001 - entries
    row["snap_peers"] = 0
    if 0 < extra_peers <= 1000:
        run_loadgen(idx.addr, extra_peers, None, prefix="topup", hold=0,
                    base=40000, quiet=True)
        h.wait_until(lambda: fsize(os.path.join(idx.data, "registry.snap")),
                     10, what="registry.snap")
    if fsize(os.path.join(idx.data, "registry.snap")):
        row["snap_peers"] = int(metrics(idx).get("parley_index_peers", 0))
    row["snap"] = fsize(os.path.join(idx.data, "registry.snap"))
    row["data"] = du(idx.data)
    idx.stop()
    return row


def measure_cluster(n):
    cl = h.Cluster(3, extra=index_flags(n))
    leader = cl.wait_leader()
    follower = [x for x in cl.nodes.values() if x is not leader][0]
    settle()
    row = {"n": n, "before": rss_kib(leader.p.pid),
           "f_before": rss_kib(follower.p.pid)}

    def held():
        time.sleep(2.0)
        m = metrics(leader)
        row["held"] = rss_kib(leader.p.pid)
        row["f_held"] = rss_kib(follower.p.pid)
        row["peers"] = int(m.get("parley_index_peers", 0))
        row["links"] = int(m.get("parley_index_links_open", 0))
        row["leases"] = int(m.get("parley_index_leases", 0))
        fm = metrics(follower)
        row["f_peers"] = int(fm.get("parley_index_peers", 0))
    res = run_loadgen(leader.listen, n, held, extra=rereg_flags())
    time.sleep(1.0)
    row["closed"] = rss_kib(leader.p.pid)
    row["rate"] = float(res.get("rate", 0))
    row["rereg"] = float(res.get("rereg_rate", 0))
    row["lat"] = res.get("lat_median_ms", "?")
    raft = os.path.join(leader.data, "raft")
    row["data"] = du(raft)
    row["snap_name"], row["snap"] = newest_snapshot(raft)
    row["f_data"] = du(os.path.join(follower.data, "raft"))
    cl.stop_all()
    return row


def kib(x):
    return "%.1f MiB" % (x / 1024.0)


def per_peer(r):
    return (r["held"] - r["before"]) / float(r["n"])


def report(mode, rows):
    print()
    print("== %s ==" % {"single": "single node (links held)",
                        "drop": "single node, links closed after OK "
                                "(registry and leases only; lease 1 h)",
                        "cluster": "3-node cluster (leader; links held; "
                                   "lease 10 s)"}[mode])
    print("%7s %9s %9s %6s %10s %10s %10s %9s %11s %11s" % (
        "peers", "reg/s", "re-reg/s", "lat ms", "RSS before", "RSS held",
        "RSS closed", "KiB/peer", "data bytes", "snap bytes"))
    for r in rows:
        print("%7d %9.0f %9s %6s %10s %10s %10s %9.2f %11d %11d" % (
            r["n"], r["rate"], "%.0f" % r["rereg"] if r.get("rereg") else "-",
            r["lat"], kib(r["before"]), kib(r["held"]), kib(r["closed"]),
            per_peer(r), r["data"], r["snap"]))
    for r in rows:
        line = "  N=%d: metrics while held: peers=%d leases=%d links_open=%d" \
            % (r["n"], r["peers"], r["leases"], r["links"])
        if "f_held" in r:
            line += "; follower RSS %s -> %s (%.2f KiB/peer), peers=%d, " \
                "raft dir %d bytes; leader's newest snapshot %s" % (
                    kib(r["f_before"]), kib(r["f_held"]),
                    (r["f_held"] - r["f_before"]) / float(r["n"]),
                    r["f_peers"], r["f_data"], r["snap_name"])
            m = re.match(r"snapshot-\d+-(\d+)-", r["snap_name"])
            if m and r["snap"]:
                line += " (%d bytes at index %s)" % (r["snap"], m.group(1))
        else:
            line += "; registry.log %d bytes" % r["log"]
            if r["snap"]:
                line += "; registry.snap %d bytes holding %d peers " \
                    "(%.1f bytes/peer)" % (r["snap"], r["snap_peers"],
                                           r["snap"] / float(r["snap_peers"]))
        print(line)
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        dn = float(b["n"] - a["n"])
        if dn > 0:
            print("  slope %d -> %d peers: RSS held %.2f KiB/peer, RSS "
                  "closed %.2f KiB/peer" % (
                      a["n"], b["n"], (b["held"] - a["held"]) / dn,
                      (b["closed"] - a["closed"]) / dn))
            if "f_held" in a:
                print("  slope (follower, registry only): %.2f KiB/peer" % (
                    (b["f_held"] - a["f_held"]) / dn))


def estimate(results, wanted, cap):
    """N connected peers that did not fit: drop's RSS per peer at N plus
    the per-link cost at the largest count both single and drop ran."""
    single = {r["n"]: r for r in results.get("single", [])}
    drop = {r["n"]: r for r in results.get("drop", [])}
    both = sorted(set(single) & set(drop))
    if not both:
        return
    m = both[-1]
    link = per_peer(single[m]) - per_peer(drop[m])
    for n in wanted:
        if n + FD_SPARE <= cap or n not in drop:
            continue
        print()
        print("estimate for %d connected peers (the fd limit %d allows at "
              "most %d links): %.2f KiB/peer registry and leases at %d "
              "(drop) + %.2f KiB/peer per link (single - drop at %d) = "
              "%.2f KiB/peer" % (n, cap, cap - FD_SPARE, per_peer(drop[n]),
                                 n, link, m, per_peer(drop[n]) + link))


def main():
    for b in ("parley-index", "parley_loadgen"):
        if not os.access(os.path.join(h.BIN, b), os.X_OK):
            sys.exit("no %s in %s (build first, or pass --bin)" % (b, h.BIN))
    soft, hard = raise_fds()
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    print("machine: %d CPUs (%s); fd limit %d/%d; binaries in %s" % (
        os.cpu_count(), model, soft, hard, h.BIN))
    wanted = [int(x) for x in ARGS.peers.split(",") if x]
    cap = soft
    results = {}
    for mode in ARGS.modes.split(","):
        counts = []
        for n in wanted:
            if mode != "drop" and n + FD_SPARE > cap:
                n2 = cap - FD_SPARE
                print("%s: %d links do not fit the fd limit %d: running %d "
                      "instead" % (mode, n, cap, n2), flush=True)
                n = n2
            if n not in counts:
                counts.append(n)
        if mode == "drop":
            # The per-link estimate needs a drop run at the largest count
            # single could hold.
            for n in results.get("single", []):
                if n["n"] not in counts:
                    counts.append(n["n"])
            counts.sort()
        rows = []
        for n in counts:
            print("%s, %d peers ..." % (mode, n), flush=True)
            if mode == "cluster":
                rows.append(measure_cluster(n))
            else:
                rows.append(measure_single(n, drop=(mode == "drop")))
        results[mode] = rows
        report(mode, rows)
    estimate(results, wanted, cap)
    tcp_limit()
    return 0


def tcp_limit():
    """The physical limit row: plain TCP on loopback, a new connection with
    the two round trips of a registration each, at the load generator's
    concurrency, no encryption (bench/conn_tcp.c).  Median of 3 runs of
    20 000 connections (more from one source address would run into
    TIME_WAIT ports)."""
    prog = os.path.join(h.BIN, "conn_tcp")
    if not os.access(prog, os.X_OK):
        print("\n(no conn_tcp in %s: no TCP limit row)" % h.BIN)
        return
    rates = []
    for _ in range(3):
        out = subprocess.run([prog, "--conns", "20000", "--concurrency",
                              str(ARGS.concurrency), "--rounds", "2"],
                             capture_output=True, text=True, timeout=300)
        m = re.search(r"rate=([0-9.]+)", out.stdout)
        if out.returncode != 0 or not m:
            print("\nconn_tcp failed (exit %d): %s" % (
                out.returncode, (out.stdout + out.stderr).strip()[-300:]))
            return
        rates.append(float(m.group(1)))
        time.sleep(2)  # let the previous run's TIME_WAIT ports age a little
    rates.sort()
    print("\nphysical limit, plain TCP (conn_tcp: new connection, 2 round "
          "trips, close; concurrency %d): median %.0f connections/s "
          "(runs %s)" % (ARGS.concurrency, rates[1],
                         ", ".join("%.0f" % r for r in rates)))


if __name__ == "__main__":
    sys.exit(main())
