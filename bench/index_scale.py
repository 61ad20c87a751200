#!/usr/bin/env python3
"""Benchmark: registry size and index memory at 1 000 and 10 000 registered
peers (not a test: it measures and prints).

For each mode (a single-node index, then a 3-node cluster) and each peer
count N, on fresh data directories:

  1. starts the index (every node with --max-links N+100) and reads the
     (leader's) VmRSS from /proc/PID/status once it is idle: "before";
  2. runs bench's parley_loadgen: N simulated peers, each with its own
     identity and secure link, REGISTER then HEARTBEAT every lease/3;
  3. once the loadgen reports all N registered, waits 2 s and reads
     /metrics (parley_index_peers, _leases, _links_open) and VmRSS of the
     leader (links + leases + registry) and of a follower (registry only):
     "held";
  4. after the loadgen exits (its links closed) reads VmRSS again:
     "closed" (glibc may keep freed memory, so this is an upper bound);
  5. measures the data directory: registry.snap + registry.log for the
     single node (after a top-up registration that makes the regstore
     compact when the log is near its 10 000-entry threshold), raft/ for a
     cluster node (segments + snapshots; the newest snapshot's size too).

Prints one table per mode and the per-peer slope between the two counts.
Usage:

  python3 bench/index_scale.py [--bin ./build] [--peers 1000,10000]
                               [--concurrency 64] [--modes single,cluster]
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


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build"),
                    help="build directory with parley-index and "
                         "parley_loadgen (default ./build; use a release "
                         "build)")
    ap.add_argument("--peers", default="1000,10000",
                    help="comma-separated peer counts (default 1000,10000)")
    ap.add_argument("--concurrency", type=int, default=64,
                    help="loadgen links between dial and OK at once")
    ap.add_argument("--hold", type=int, default=8,
                    help="seconds the loadgen keeps its peers after the last "
                         "registered (default 8)")
    ap.add_argument("--modes", default="single,cluster")
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
                quiet=False):
    """Runs parley_loadgen; calls on_all() once it says all are registered
    (while its links are still open); returns the RESULT fields."""
    argv = [LOADGEN, "--index", target, "--peers", str(n), "--hold",
            str(ARGS.hold if hold is None else hold), "--concurrency",
            str(ARGS.concurrency), "--prefix", prefix, "--base-port",
            str(base)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=sys.stderr,
                         stdin=subprocess.DEVNULL)
    result = {}
    for raw in p.stdout:
        line = raw.decode().rstrip()
        if (line.startswith("all ") and not quiet) or \
                line.startswith("fd limit") or line.startswith("timed out"):
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


def index_flags(n):
    """--max-links above n and, where the index limits connections and
    handshakes per address, limits that 10 000 simulated peers dialling from
    127.0.0.1 do not hit (the load generator is one address)."""
    flags = ["--max-links", str(n + 100)]
    helptext = subprocess.run([os.path.join(h.BIN, "parley-index"), "--help"],
                              capture_output=True, text=True).stdout
    for f in ("--conn-burst", "--conn-rate", "--handshake-burst",
              "--handshake-rate"):
        if f in helptext:
            flags += [f, "1000000"]
    return flags


def settle():
    time.sleep(1.5)


def measure_single(n):
    idx = h.Index(extra=index_flags(n), name="index-%d" % n)
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
    res = run_loadgen(idx.addr, n, held)
    time.sleep(1.0)
    row["closed"] = rss_kib(pid)
    row["rate"] = float(res.get("rate", 0))
    row["lat"] = res.get("lat_median_ms", "?")
    row["log"] = fsize(os.path.join(idx.data, "registry.log"))
    m = metrics(idx)
    entries = int(m.get("parley_index_regstore_log_entries", 0))
    # The regstore compacts once its log passes 10 000 entries: a few more
    # registrations near the threshold produce registry.snap.
    extra = 10001 - entries
    row["snap_peers"] = 0
    if 0 < extra <= 1000:
        run_loadgen(idx.addr, extra, None, prefix="topup", hold=0,
                    base=40000, quiet=True)
        h.wait_until(lambda: fsize(os.path.join(idx.data, "registry.snap")),
                     10, what="registry.snap")
        row["snap_peers"] = int(metrics(idx).get("parley_index_peers",
                                                      0))
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
    res = run_loadgen(leader.listen, n, held)
    time.sleep(1.0)
    row["closed"] = rss_kib(leader.p.pid)
    row["rate"] = float(res.get("rate", 0))
    row["lat"] = res.get("lat_median_ms", "?")
    raft = os.path.join(leader.data, "raft")
    row["data"] = du(raft)
    row["snap_name"], row["snap"] = newest_snapshot(raft)
    row["f_data"] = du(os.path.join(follower.data, "raft"))
    cl.stop_all()
    return row


def kib(x):
    return "%.1f MiB" % (x / 1024.0)


def report(mode, rows):
    print()
    print("== %s ==" % mode)
    print("%7s %9s %6s %10s %10s %10s %9s %11s %11s" % (
        "peers", "reg/s", "lat ms", "RSS before", "RSS held", "RSS closed",
        "KiB/peer", "data bytes", "snap bytes"))
    for r in rows:
        per = (r["held"] - r["before"]) / float(r["n"])
        print("%7d %9.0f %6s %10s %10s %10s %9.2f %11d %11d" % (
            r["n"], r["rate"], r["lat"], kib(r["before"]), kib(r["held"]),
            kib(r["closed"]), per, r["data"], r["snap"]))
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
                # One entry per registration, plus a configuration entry
                # and a barrier per leadership: about index - 2 peers.
                npeers = int(m.group(1)) - 2
                line += " (%d bytes at index %s: about %.1f bytes/peer)" % (
                    r["snap"], m.group(1), r["snap"] / float(npeers))
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
        print("  slope %d -> %d peers: RSS held %.2f KiB/peer, RSS closed "
              "%.2f KiB/peer" % (a["n"], b["n"], (b["held"] - a["held"]) / dn,
                                 (b["closed"] - a["closed"]) / dn))
        if "f_held" in a:
            print("  slope (follower, registry only): %.2f KiB/peer" % (
                (b["f_held"] - a["f_held"]) / dn))


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
    counts = [int(x) for x in ARGS.peers.split(",") if x]
    for mode in ARGS.modes.split(","):
        rows = []
        for n in counts:
            print("%s, %d peers ..." % (mode, n), flush=True)
            rows.append(measure_single(n) if mode == "single"
                        else measure_cluster(n))
        report("single node" if mode == "single" else
               "3-node cluster (leader; lease 10 s)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
