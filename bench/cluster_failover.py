#!/usr/bin/env python3
"""Benchmark: failover of a 3-node parley-index cluster (not a test: it
asserts nothing about timing, it measures and prints).

Starts a 3-node cluster and 2 real parleyd peers on 127.0.0.1 (through
test/integration/harness.py), then --kills times:

  1. SIGKILLs the current leader (t0 = just before the signal);
  2. measures (a) the time until a survivor's GET /v1/cluster names a new
     leader (polled every 2 ms on both survivors), and (b) for each peer,
     the time until its GET /v1/status (the JSON `parley status --json`
     prints) shows "index": {"connected": true} on another node than the
     killed one, i.e. the peer re-registered with the new leader (polled
     every 5 ms);
  3. restarts the killed node on its data directory and waits until it
     follows the leader and has applied the leader's commit index (the
     catch-up time is printed too), then waits 1 s before the next kill.

Prints one row per kill, then median, min and max (worst) of each figure
and the raw values.  Usage:

  python3 bench/cluster_failover.py [--kills 10] [--bin ./build]
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10,
                    help="leader kills to measure (default 10)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build"),
                    help="build directory with parley-index, parleyd, parley "
                         "(default ./build; use a release build)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for each event before giving up")
    return ap.parse_args()


ARGS = parse_args()
os.environ["PARLEY_BIN"] = os.path.abspath(ARGS.bin)
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
import harness as h  # noqa: E402


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    build = "?"
    try:
        with open(os.path.join(h.BIN, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    build = line.split("=", 1)[1].strip()
                if line.startswith("PARLEY_SANITIZE:") and \
                        line.strip().endswith("=ON"):
                    build += "+sanitizers"
    except OSError:
        pass
    return "%d CPUs (%s), build %s in %s" % (os.cpu_count(), model, build,
                                              h.BIN)


def peer_status(peer):
    req = urllib.request.Request("http://%s/v1/status" % peer.api)
    req.add_header("Authorization", "Bearer %s" % peer.token())
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.loads(r.read().decode())


def cluster_view(node):
    # Through the harness, which adds a bearer token where the index's HTTP
    # API requires one.
    return json.loads(node.get("/v1/cluster", timeout=2))


class Poll(threading.Thread):
    """Calls fn() every interval seconds until it returns true or the
    deadline passes; .elapsed is seconds since t0 at the first true."""

    def __init__(self, fn, t0, interval, timeout):
        super().__init__(daemon=True)
        self.fn, self.t0 = fn, t0
        self.interval, self.timeout = interval, timeout
        self.elapsed = None
        self.result = None

    def run(self):
        while time.monotonic() - self.t0 < self.timeout:
            try:
                r = self.fn()
            except Exception:  # noqa: BLE001 - down, starting, refused
                r = None
            if r:
                self.elapsed = time.monotonic() - self.t0
                self.result = r
                return
            time.sleep(self.interval)


def summary(name, values_ms):
    if not values_ms:
        return "%-34s no samples" % name
    return "%-34s median %7.1f  min %7.1f  max (worst) %7.1f  n=%d" % (
        name, statistics.median(values_ms), min(values_ms), max(values_ms),
        len(values_ms))


def main():
    for b in ("parley-index", "parleyd", "parley"):
        if not os.access(os.path.join(h.BIN, b), os.X_OK):
            sys.exit("no %s in %s (build first, or pass --bin)" % (b, h.BIN))
    print("machine: %s" % machine())
    cluster = h.Cluster(3)
    leader = cluster.wait_leader()
    for n in cluster.nodes.values():
        getattr(n, "token", None)  # mint API tokens now, not while timing
    peers = [h.Peer(cluster.index_arg(), "bench%d" % i) for i in range(2)]
    for p in peers:
        h.wait_until(lambda p=p: peer_status(p)["index"]["connected"], 30,
                     what="%s registered" % p.name)
    print("cluster: nodes %s, leader node %d; peers %s on %s" % (
        ", ".join("%d=%s" % (n.node_id, n.listen)
                  for n in cluster.nodes.values()),
        leader.node_id, ", ".join(p.name for p in peers),
        ", ".join(peer_status(p)["index"]["addr"] for p in peers)))
    print()
    print("%4s %6s %6s %12s %s %12s" % (
        "kill", "killed", "new", "election ms",
        " ".join("%12s" % ("%s ms" % p.name) for p in peers), "catch-up ms"))

    elections, moves, moves_worst, catchups = [], [], [], []
    rows = []
    failures = 0
    for k in range(1, ARGS.kills + 1):
        leader = cluster.wait_leader(timeout=ARGS.timeout)
        old = leader
        survivors = [n for n in cluster.nodes.values() if n is not old]

        def new_leader():
            for n in survivors:
                v = cluster_view(n)
                if v["leader"] and v["leader"]["id"] != old.node_id:
                    return v["leader"]["id"]
            return None

        def moved(p):
            def fn():
                st = peer_status(p)["index"]
                return st["connected"] and st["addr"] != old.listen
            return fn

        t0 = time.monotonic()
        old.p.kill()  # SIGKILL, as harness's kill() but without its wait
        polls = [Poll(new_leader, t0, 0.002, ARGS.timeout)] + \
                [Poll(moved(p), t0, 0.005, ARGS.timeout) for p in peers]
        for t in polls:
            t.start()
        for t in polls:
            t.join()
        old.kill()  # reaps the process, closes its log
        el = polls[0].elapsed
        mv = [t.elapsed for t in polls[1:]]
        if el is None or None in mv:
            failures += 1
        # Restart the killed node and wait until it has caught up.
        t1 = time.monotonic()
        old.restart()
        cur = cluster.wait_leader(timeout=ARGS.timeout)

        def caught_up():
            mine = cluster_view(old)
            lead = cluster_view(cur)
            return mine["leader"] and mine["leader"]["id"] == cur.node_id \
                and mine["last_applied"] >= lead["commit_index"]
        h.wait_until(caught_up, ARGS.timeout, interval=0.01,
                     what="node %d caught up" % old.node_id)
        cu = time.monotonic() - t1
        ms = lambda x: x * 1000 if x is not None else None  # noqa: E731
        row = (k, old.node_id, polls[0].result or 0, ms(el),
               [ms(x) for x in mv], ms(cu))
        rows.append(row)
        print("%4d %6d %6s %12s %s %12.0f" % (
            k, old.node_id, row[2] or "-",
            "%.1f" % row[3] if el is not None else "timeout",
            " ".join("%12s" % ("%.1f" % x if x is not None else "timeout")
                     for x in row[4]), row[5]), flush=True)
        if el is not None:
            elections.append(row[3])
        good = [x for x in row[4] if x is not None]
        moves.extend(good)
        if good:
            moves_worst.append(max(good))
        catchups.append(row[5])
        time.sleep(1.0)  # let the restarted follower settle

    print()
    print(summary("new leader reported (failover)", elections))
    print(summary("peer re-registered elsewhere", moves))
    print(summary("  slower of the 2 peers per kill", moves_worst))
    print(summary("killed node caught up (restart)", catchups))
    print()
    print("raw failover ms:   %s" % " ".join("%.1f" % x for x in elections))
    print("raw peer move ms:  %s" % " ".join("%.1f" % x for x in moves))
    print("raw catch-up ms:   %s" % " ".join("%.0f" % x for x in catchups))
    if failures:
        print("%d kill(s) had an event that did not happen within %.0f s"
              % (failures, ARGS.timeout))
    for p in peers:
        p.stop()
    cluster.stop_all()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
