#!/usr/bin/env python3
"""End-to-end test of the dashboard in a real browser (ctest e2e.dashboard).

Starts a 3-node parley-index cluster (--lease 2, an outbox_depth alert rule
with threshold 1), real parleyd peers with traffic on two topics, and one
fake reporting peer (`test_dash --report-client`) whose outbox the test
raises to trigger the alert.  Then runs dashboard.spec.mjs under node:
playwright-core drives Debian's chromium (/usr/bin/chromium; playwright
never downloads a browser here) through the dashboard served by the
leader, checks every panel against /metrics and the API, checks that a
follower's dashboard shows the same cluster-wide figures (taken from the
leader), kills a peer, triggers the alert, and saves screenshots at
1440x900 and 390x844 in $PARLEY_ARTIFACTS (ctest: BUILD/Testing/artifacts).

Needs: chromium (installed with apt-get if missing and running as root;
otherwise the test is skipped with exit code 77 and says why), node >= 20
and npm (playwright-core is installed from test/e2e/package-lock.json), the
built front end (scripts/build-web.sh is run if web/dashboard/dist is
missing).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
import harness as h  # noqa: E402

SKIP = 77
ARTIFACTS = os.environ.get("PARLEY_ARTIFACTS") or os.path.join(
    h.BIN, "Testing", "artifacts")


def log(msg):
    print("e2e: %s" % msg, flush=True)


def find_chromium():
    for c in (os.environ.get("CHROMIUM"), "/usr/bin/chromium",
              shutil.which("chromium"), shutil.which("chromium-browser")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def ensure_chromium():
    c = find_chromium()
    if c:
        return c
    if os.geteuid() != 0:
        log("SKIPPED: chromium is not installed and this user cannot "
            "install it (apt-get install chromium)")
        sys.exit(SKIP)
    log("chromium is missing: apt-get install chromium")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q"],
                 ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install",
                  "-y", "-q", "--no-install-recommends", "chromium"]):
        try:
            subprocess.run(argv, env=env, check=True, timeout=900,
                           stdout=sys.stderr, stderr=sys.stderr)
        except Exception as e:  # noqa: BLE001 - any failure means "skip"
            log("SKIPPED: chromium is missing and could not be installed "
                "(%s)" % e)
            sys.exit(SKIP)
    c = find_chromium()
    if not c:
        log("SKIPPED: chromium is missing and could not be installed")
        sys.exit(SKIP)
    return c


def ensure_node_modules():
    if not shutil.which("node") or not shutil.which("npm"):
        raise SystemExit("e2e: node and npm are needed "
                         "(scripts/build-web.sh installs them)")
    v = subprocess.run(["node", "-p", "process.versions.node"],
                       capture_output=True, text=True).stdout.strip()
    if int(v.split(".")[0]) < 20:
        raise SystemExit("e2e: node %s is too old (playwright-core needs 20)"
                         % v)
    stamp = os.path.join(HERE, "node_modules", ".package-lock.json")
    lock = os.path.join(HERE, "package-lock.json")
    if not os.path.exists(stamp) or \
            os.path.getmtime(lock) > os.path.getmtime(stamp):
        log("npm ci (playwright-core, pinned; it downloads no browser)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                       check=True, stdout=sys.stderr, timeout=600)


def ensure_dist():
    dist = os.path.join(ROOT, "web", "dashboard", "dist", "index.html")
    if not os.path.exists(dist):
        log("building the front end (scripts/build-web.sh)")
        subprocess.run([os.path.join(ROOT, "scripts", "build-web.sh")],
                       check=True, stdout=subprocess.DEVNULL, timeout=900)


class Traffic(threading.Thread):
    """Publishes on two topics until stopped (the real parley CLI)."""

    def __init__(self, plan):
        super().__init__(daemon=True)
        self.plan = plan  # [(peer, topic)]
        self.stop_ev = threading.Event()
        self.sent = 0

    def run(self):
        n = 0
        while not self.stop_ev.is_set():
            for peer, topic in self.plan:
                n += 1
                try:
                    peer.cli("publish", topic, "e2e message %d" % n,
                             timeout=10)
                    self.sent += 1
                except Exception:  # noqa: BLE001 - a slow CLI is fine
                    pass
            self.stop_ev.wait(0.1)

    def stop(self):
        self.stop_ev.set()
        self.join(30)


def main():
    chromium = ensure_chromium()
    ensure_node_modules()
    ensure_dist()
    os.makedirs(ARTIFACTS, exist_ok=True)
    for b in ("parley-index", "parleyd", "parley", "test_dash"):
        if not os.access(os.path.join(h.BIN, b), os.X_OK):
            raise SystemExit("e2e: no %s in %s (set PARLEY_BIN)" % (b, h.BIN))

    work = h.tmpdir("parley-e2e-")
    rules = os.path.join(work, "alerts.json")
    with open(rules, "w") as f:
        json.dump([{"name": "outbox_depth", "metric": "outbox_depth",
                    "op": ">", "threshold": 1, "for_s": 2,
                    "severity": "warning"},
                   {"name": "no_leader", "metric": "no_leader",
                    "threshold": 0, "for_s": 10, "severity": "critical"},
                   {"name": "node_down", "metric": "node_down",
                    "threshold": 0, "for_s": 30, "severity": "critical"}],
                  f)
    control = os.path.join(work, "gauge.control")
    with open(control, "w") as f:
        f.write("outbox=0\n")

    log("starting a 3-node cluster")
    cl = h.Cluster(3, lease=2, extra=["--alerts", rules])
    leader = cl.wait_leader()
    index = cl.index_arg()
    log("leader: node %d, http %s" % (leader.node_id, leader.http))
    peers = {}
    for name in ("alice", "bob", "carol", "dave", "erin"):
        peers[name] = h.Peer(index, name)
    for name, topic in (("bob", "news"), ("carol", "news"), ("dave", "news"),
                        ("erin", "sport"), ("carol", "sport")):
        peers[name].ok("subscribe", topic)
    gauge = h.Proc([os.path.join(h.BIN, "test_dash"), "--report-client",
                    "--index", index, "--name", "gauge", "--topic", "gauge",
                    "--control", control], "gauge")
    traffic = Traffic([(peers["alice"], "news"), (peers["bob"], "sport")])
    traffic.start()
    token = h.mint_token(leader.data, role="viewer", cluster_key=cl.key)

    def ready():
        d = json.loads(leader.get("/v1/dashboard", token=token))
        rows = d["peers"]["table"]
        reporting = [r for r in rows if r.get("reporting")]
        return d if (len(reporting) == 6 and
                     len(d["throughput"]["history"]) >= 3 and
                     len(d["latency"]["history"]) >= 2) else None
    try:
        h.wait_until(ready, 40, 0.5, "reports from every peer")
    except AssertionError as e:
        d = json.loads(leader.get("/v1/dashboard", token=token))
        log("not every panel has figures yet: %s" % e)
        log("table: %s" % json.dumps(d["peers"]["table"])[:2000])
        raise
    log("traffic flowing (%d published so far)" % traffic.sent)

    env = dict(os.environ,
               CHROMIUM=chromium,
               DASH_BASE="http://%s" % leader.http,
               DASH_TOKEN=token,
               DASH_ARTIFACTS=ARTIFACTS,
               DASH_CONTROL=control,
               DASH_KILL_PID=str(peers["dave"].p.pid),
               DASH_KILL_ID=peers["dave"].id,
               DASH_KILL_NAME="dave",
               DASH_LEADER=str(leader.node_id),
               DASH_FOLLOWER_BASE="http://%s" % [
                   n for n in cl.nodes.values() if n is not leader][0].http)
    log("running dashboard.spec.mjs in %s" % chromium)
    rc = subprocess.run(["node", os.path.join(HERE, "dashboard.spec.mjs")],
                        cwd=HERE, env=env, timeout=300).returncode
    traffic.stop()
    gauge.kill(signal.SIGTERM)
    for name, p in peers.items():
        if p.alive():
            p.stop()
    cl.stop_all()
    if rc != 0:
        log("FAILED (dashboard.spec.mjs exited %d); screenshots in %s"
            % (rc, ARTIFACTS))
        return 1
    log("screenshots: %s" % ", ".join(sorted(
        f for f in os.listdir(ARTIFACTS) if f.endswith(".png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
