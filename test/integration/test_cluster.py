#!/usr/bin/env python3
"""Integration tests for the replicated index: parley-index clusters on
127.0.0.1 with real parleyd peers and the real `parley` CLI.

  a. a 3-node cluster elects one leader that every node reports; writes from
     a real peer (through the leader, whichever node it dials) are visible
     on every node;
  b. 4 peers publish acknowledged messages continuously while the leader is
     SIGKILLed (failover time is measured and printed), restarted, then a
     follower is SIGKILLed and restarted: every acknowledged message is in
     every other subscriber's history exactly once;
  c. a whole-cluster restart (SIGTERM, then start on the same directories)
     keeps the registry, and the peers re-attach;
  d. a 4th and 5th node join and one node is removed while a publisher
     keeps publishing with --ack; every node agrees on the membership;
  e. a process with a wrong cluster key cannot join or vote: its links are
     refused with EAUTH and the membership is unchanged.

PARLEY_BIN names the build directory holding parley-index, parleyd and
parley (ctest sets it).  Prints "N passed, M failed" last.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOPIC = "chaos"
# Small snapshot intervals so that snapshots, log compaction and snapshot
# installs on lagging or new members all happen within a test.
SNAP = ["--raft-snapshot-threshold", "32", "--raft-snapshot-trailing", "8"]


def snapshot_files(node):
    d = os.path.join(node.data, "raft")
    return [f for f in os.listdir(d) if f.startswith("snapshot-")]


def need_binaries(test):
    for b in ("parley-index", "parleyd", "parley"):
        if not os.access(os.path.join(h.BIN, b), os.X_OK):
            test.fail("no %s in %s (set PARLEY_BIN)" % (b, h.BIN))


class Publisher(threading.Thread):
    """Publishes numbered messages with --ack until stopped; remembers which
    ones were acknowledged (exit 0)."""

    def __init__(self, peer, topic, tag):
        super().__init__(daemon=True)
        self.peer, self.topic, self.tag = peer, topic, tag
        self.acked, self.failed = [], []
        self.stop_ev = threading.Event()

    def run(self):
        n = 0
        while not self.stop_ev.is_set():
            n += 1
            body = "%s-%d" % (self.tag, n)
            try:
                rc, out, err = self.peer.cli("publish", "--ack", "--timeout",
                                             "10", self.topic, body,
                                             timeout=30)
            except subprocess.TimeoutExpired:
                rc = -1
            (self.acked if rc == 0 else self.failed).append(body)
            time.sleep(0.02)

    def stop(self):
        self.stop_ev.set()
        self.join(60)


class ClusterTest(unittest.TestCase):
    def setUp(self):
        need_binaries(self)
        self.cluster = None
        self.peers = []

    def tearDown(self):
        problems = []
        for p in self.peers:
            if p.alive():
                try:
                    p.stop()
                except AssertionError as e:
                    problems.append(str(e))
        if self.cluster is not None:
            for n in self.cluster.nodes.values():
                if n.alive():
                    try:
                        n.stop()
                    except AssertionError as e:
                        problems.append(str(e))
        if problems:
            self.fail("\n".join(problems))

    # ---- helpers ------------------------------------------------------------

    def start_cluster(self, n=3, **kw):
        self.cluster = h.Cluster(n, **kw)
        return self.cluster.wait_leader()

    def start_peer(self, name):
        p = h.Peer(self.cluster.index_arg(), name)
        self.peers.append(p)
        return p

    def peer_status(self, p):
        return json.loads(p.ok("status", "--json"))

    def wait_registered(self, p, timeout=20):
        h.wait_until(lambda: self.peer_status(p)["index"]["connected"],
                     timeout, what="%s registered" % p.name)

    def wait_topic_everywhere(self, topic, subscribers, nodes=None,
                              timeout=15):
        nodes = nodes or self.cluster.alive()

        def ok():
            for n in nodes:
                got = {t["topic"]: t["subscribers"] for t in n.topics()}
                if got.get(topic) != subscribers:
                    return False
            return True
        h.wait_until(ok, timeout, what="%s with %d subscribers on %s" % (
            topic, subscribers, [n.name for n in nodes]))

    def members_of(self, node):
        return sorted((m["id"], m["raft"], m["role"])
                      for m in node.cluster()["members"])

    def wait_membership(self, want, timeout=30):
        def ok():
            views = [self.members_of(n) for n in self.cluster.alive()]
            return all(v == want for v in views)
        h.wait_until(ok, timeout, what="membership %r on every node" % want)

    def check_delivery(self, publishers, subscribers):
        """Every acknowledged message of each publisher is in every other
        subscriber's history exactly once."""
        for sub in subscribers:
            def complete():
                hist = sub.history(TOPIC, "--limit", "100000")
                return hist if all(
                    b in {m["body"] for m in hist}
                    for pub in publishers if pub.peer is not sub
                    for b in pub.acked) else None
            hist = h.wait_until(complete, 30,
                                what="acked messages at %s" % sub.name)
            bodies = [m["body"] for m in hist if m.get("direction") == "in"]
            for pub in publishers:
                if pub.peer is sub:
                    continue
                for b in pub.acked:
                    self.assertEqual(bodies.count(b), 1,
                                     "%s has %r %d times" % (
                                         sub.name, b, bodies.count(b)))

    # ---- a ------------------------------------------------------------------

    def test_a_leader_and_replicated_writes(self):
        self.start_cluster()

        def consistent():
            # One leader, one term; the leader says "leader", the others
            # "follower"; everyone knows the leader's addresses.
            views = [n.cluster() for n in self.cluster.nodes.values()]
            ids = {v["leader"]["id"] if v["leader"] else 0 for v in views}
            terms = {v["term"] for v in views}
            if len(ids) != 1 or 0 in ids or len(terms) != 1:
                return None
            lid = ids.pop()
            ld = self.cluster.nodes[lid]
            for v in views:
                if (v["role"] == "leader") != (v["id"] == lid) or \
                        v["role"] not in ("leader", "follower") or \
                        v["leader"]["listen"] != ld.listen or \
                        v["leader"]["http"] != ld.http or \
                        v["leader"]["raft"] != ld.raft:
                    return None
            return ld
        leader = h.wait_until(consistent, 15, what="consistent /v1/cluster")
        want = sorted((i, addr, "voter") for i, addr in self.cluster.members)
        self.wait_membership(want)
        # The leader's key is reported as its peer-facing id.
        me = [m for m in leader.cluster()["members"] if m["self"]][0]
        self.assertEqual(me["key"], leader.id)
        # Metrics.
        self.assertEqual(leader.metric("parley_index_raft_is_leader"), 1.0)
        for n in self.cluster.nodes.values():
            if n is not leader:
                self.assertEqual(n.metric("parley_index_raft_is_leader"), 0.0)
            self.assertGreaterEqual(
                n.metric("parley_index_raft_leader_changes_total"), 1.0)

        # A real peer's registration and subscriptions land on every node.
        a, b = self.start_peer("alice"), self.start_peer("bob")
        a.ok("subscribe", "news")
        b.ok("subscribe", "news")
        b.ok("subscribe", "sport")
        self.wait_topic_everywhere("news", 2)
        self.wait_topic_everywhere("sport", 1)
        for n in self.cluster.nodes.values():
            ids = {p["id"] for p in n.peers()}
            self.assertEqual(ids, {a.id, b.id}, n.name)
        # Both peers end up on the leader (followers redirect writes).
        for p in (a, b):
            self.wait_registered(p)
            self.assertEqual(self.peer_status(p)["index"]["addr"],
                             leader.listen)
        rc, out, err = a.cli("publish", "--ack", "--timeout", "10", "news",
                             "replicated hello")
        self.assertEqual(rc, 0, err)
        b.wait_history(1, "news")
        # The cluster CLI against a follower.
        follower = [n for n in self.cluster.nodes.values()
                    if n is not leader][0]
        r = subprocess.run([os.path.join(h.BIN, "parley-index"), "cluster",
                            "status", "--http", follower.http,
                            "--token", self.cluster.token],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = r.stdout.decode()
        self.assertIn("leader:  %d" % leader.node_id, text)
        self.assertIn(leader.raft, text)

    # ---- b ------------------------------------------------------------------

    def test_b_failover_under_load(self):
        leader = self.start_cluster(extra=SNAP)
        peers = [self.start_peer("p%d" % i) for i in range(4)]
        for p in peers:
            p.ok("subscribe", TOPIC)
            for i in range(10):  # log entries enough for a few snapshots
                p.ok("subscribe", "%s-%d" % (p.name, i))
        self.wait_topic_everywhere(TOPIC, 4)
        pubs = [Publisher(p, TOPIC, p.name) for p in peers]
        for t in pubs:
            t.start()
        try:
            time.sleep(1.5)
            # 1. SIGKILL the leader; time until a survivor names another.
            old = leader
            survivors = [n for n in self.cluster.nodes.values()
                         if n is not old]
            t0 = time.monotonic()
            old.kill()
            new_id = 0
            while time.monotonic() - t0 < 10 * h.SLOW:
                for n in survivors:
                    lid = n.leader_id()
                    if lid and lid != old.node_id:
                        new_id = lid
                        break
                if new_id:
                    break
                time.sleep(0.005)
            failover = time.monotonic() - t0
            self.assertTrue(new_id, "no new leader after the leader died")
            print("\nfailover: leader %d SIGKILLed, node %d reported as the "
                  "new leader after %.0f ms" % (old.node_id, new_id,
                                                 failover * 1000),
                  file=sys.stderr, flush=True)
            # The figure is a benchmark's job (bench/cluster_failover.py);
            # this test only checks that a new leader appears at all.
            leader = self.cluster.wait_leader(exclude=(old.node_id,))
            time.sleep(1.0)
            # 2. The old leader comes back as a follower and catches up.
            old.restart()
            self.cluster.wait_leader()
            h.wait_until(lambda: old.cluster()["last_applied"] >=
                         leader.cluster()["commit_index"] - 2, 15,
                         what="old leader caught up")
            time.sleep(1.0)
            # 3. SIGKILL a follower, then restart it.
            leader = self.cluster.wait_leader()
            follower = [n for n in self.cluster.nodes.values()
                        if n is not leader][0]
            follower.kill()
            time.sleep(1.5)
            follower.restart()
            self.cluster.wait_leader()
            time.sleep(1.5)
        finally:
            for t in pubs:
                t.stop()
        total = sum(len(t.acked) for t in pubs)
        failed = sum(len(t.failed) for t in pubs)
        print("published: %d acknowledged, %d not" % (total, failed),
              file=sys.stderr, flush=True)
        self.assertGreater(total, 20)
        self.check_delivery(pubs, peers)
        # The registry agrees on every node, and the cluster is whole.
        self.wait_topic_everywhere(TOPIC, 4)
        want = sorted((i, addr, "voter") for i, addr in self.cluster.members)
        self.wait_membership(want)
        # Compaction ran: snapshots on disk, and a bounded log.
        for n in self.cluster.nodes.values():
            self.assertTrue(snapshot_files(n), n.name)

    # ---- c ------------------------------------------------------------------

    def test_c_whole_cluster_restart(self):
        self.start_cluster()
        a, b = self.start_peer("alice"), self.start_peer("bob")
        a.ok("subscribe", "news")
        b.ok("subscribe", "news")
        b.ok("subscribe", "weather")
        self.wait_topic_everywhere("news", 2)
        self.wait_topic_everywhere("weather", 1)
        for n in self.cluster.nodes.values():
            n.stop()  # SIGTERM: exits 0
        for n in self.cluster.nodes.values():
            n.restart()
        leader = self.cluster.wait_leader()
        self.wait_topic_everywhere("news", 2)
        self.wait_topic_everywhere("weather", 1)
        for n in self.cluster.nodes.values():
            self.assertEqual({p["id"] for p in n.peers()}, {a.id, b.id})
        # The peers find the cluster again (through a redirect if needed).
        for p in (a, b):
            self.wait_registered(p, 30)
            h.wait_until(lambda: self.peer_status(p)["index"]["addr"] ==
                         leader.listen, 20, what="%s on the leader" % p.name)
        rc, out, err = a.cli("publish", "--ack", "--timeout", "10", "news",
                             "after the restart")
        self.assertEqual(rc, 0, err)
        b.wait_history(1, "news")

    # ---- d ------------------------------------------------------------------

    def test_d_membership_changes_under_load(self):
        leader = self.start_cluster(extra=SNAP)
        pub_peer, sub_peer = self.start_peer("pub"), self.start_peer("sub")
        sub_peer.ok("subscribe", TOPIC)
        pub_peer.ok("subscribe", TOPIC)
        for i in range(40):  # enough log entries for a compaction
            pub_peer.ok("subscribe", "churn-%d" % i)
        self.wait_topic_everywhere(TOPIC, 2)
        self.wait_topic_everywhere("churn-39", 1)
        pub = Publisher(pub_peer, TOPIC, "m")
        pub.start()
        cli = os.path.join(h.BIN, "parley-index")
        try:
            added = []
            for nid in (4, 5):
                node, addr = self.cluster.add_node(nid)
                # Ask a follower: the CLI follows its 421 to the leader.
                follower = [n for n in self.cluster.nodes.values()
                            if n.alive() and n.node_id != nid and
                            n.leader_id() != n.node_id][0]
                r = subprocess.run([cli, "cluster", "add", str(nid), addr,
                                    "--http", follower.http,
                                    "--token", self.cluster.token],
                                   capture_output=True, timeout=120)
                self.assertEqual(r.returncode, 0,
                                 r.stderr.decode() + node.logtext()[-3000:])
                self.assertIn("added %d" % nid, r.stdout.decode())
                added.append((nid, addr))
            members = self.cluster.members + added
            self.wait_membership(sorted((i, a, "voter") for i, a in members))
            # The new nodes hold the registry too: the leader's log was
            # compacted long before they joined, so they got a snapshot.
            self.wait_topic_everywhere(TOPIC, 2)
            for nid, _ in added:
                self.assertIn("restored from a snapshot",
                              self.cluster.nodes[nid].logtext())
            # Adding an existing id is refused, so is removing a stranger,
            # and a bad body is a 400.
            r = subprocess.run([cli, "cluster", "add", "4", added[0][1],
                                "--http", leader.http,
                                "--token", self.cluster.token],
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"HTTP 409", r.stderr)
            r = subprocess.run([cli, "cluster", "remove", "99",
                                "--http", leader.http,
                                "--token", self.cluster.token],
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"HTTP 404", r.stderr)
            leader = self.cluster.wait_leader()
            req = urllib.request.Request(
                "http://%s/v1/cluster/add" % leader.http, data=b"{\"id\":0}",
                method="POST",
                headers={"Authorization": "Bearer " + self.cluster.token})
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(cm.exception.code, 400)
            # Remove a follower of the original three, then stop it.
            leader = self.cluster.wait_leader()
            gone = [n for n in self.cluster.nodes.values()
                    if n.node_id <= 3 and n is not leader][0]
            r = subprocess.run([cli, "cluster", "remove", str(gone.node_id),
                                "--http", leader.http,
                                "--token", self.cluster.token],
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            members = [(i, a) for i, a in members if i != gone.node_id]
            want = sorted((i, a, "voter") for i, a in members)
            gone.stop()
            self.wait_membership(want)
            time.sleep(1.0)
        finally:
            pub.stop()
        self.assertGreater(len(pub.acked), 5)
        self.assertEqual(pub.failed, [], "publishes that were not acked")
        self.check_delivery([pub], [sub_peer])
        # JSON status from a new member agrees as well.
        r = subprocess.run([cli, "cluster", "status", "--json", "--http",
                            self.cluster.nodes[5].http,
                            "--token", self.cluster.token],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        st = json.loads(r.stdout)
        self.assertEqual(sorted(m["id"] for m in st["members"]),
                         sorted(i for i, _ in members))

    # ---- e ------------------------------------------------------------------

    def test_e_wrong_key_cannot_join(self):
        leader = self.start_cluster()
        before = leader.cluster()
        want = self.members_of(leader)
        # An intruder with its own key claims to be node 4 of a 4-node
        # cluster and bootstraps: it campaigns, and every member refuses
        # its links.
        wrong = h.cluster_key()
        ports = h.free_ports(3)
        members = self.cluster.members + [(4, "127.0.0.1:%d" % ports[2])]
        intruder = h.ClusterNode(4, members, wrong, ports[:2],
                                 name="intruder")
        try:
            def refused():
                text = "".join(n.logtext() for n in
                               self.cluster.nodes.values())
                return "bad membership proof" in text and "EAUTH" in text
            h.wait_until(refused, 15, what="EAUTH in the members' logs")
            h.wait_until(lambda: "refused by remote: EAUTH" in
                         intruder.logtext(), 15,
                         what="EAUTH in the intruder's log")
            time.sleep(1.0)
            self.assertEqual(self.members_of(leader), want)
            after = self.cluster.wait_leader()
            self.assertIn(after.node_id, (1, 2, 3))
            self.assertGreater(
                sum(n.metric("parley_index_raft_auth_failures_total")
                    for n in self.cluster.nodes.values()), 0)
            # The intruder campaigned for a while but never won a single
            # pre-vote (its term would have grown) nor held a member link.
            ic = intruder.cluster()
            self.assertNotEqual(ic["role"], "leader")
            self.assertEqual(ic["term"], 1)
            self.assertEqual(
                intruder.metric("parley_index_raft_links_open"), 0.0)
            self.assertEqual(
                intruder.metric("parley_index_raft_bytes_received_total"),
                0.0)
            self.assertLessEqual(after.cluster()["term"],
                                 before["term"] + 2)
            # The intruder cannot even be added: the leader's links to it
            # fail the proof too, so it never catches up.
            for n in self.cluster.nodes.values():
                self.assertNotIn(4, [m["id"] for m in n.cluster()["members"]])
        finally:
            intruder.stop()
        # A key file readable by others is refused at start-up.
        loose = h.cluster_key()
        os.chmod(loose, 0o644)
        r = subprocess.run([os.path.join(h.BIN, "parley-index"), "--id", "1",
                            "--cluster", "1=127.0.0.1:1", "--cluster-key",
                            loose, "--listen", "127.0.0.1:0", "--data",
                            h.tmpdir()], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"chmod 600", r.stderr)

    # ---- f ------------------------------------------------------------------

    def test_f_startup_errors(self):
        index = os.path.join(h.BIN, "parley-index")
        key = h.cluster_key()

        def run(*args):
            r = subprocess.run([index] + list(args), capture_output=True,
                               timeout=30 * h.SLOW)
            return r.returncode, r.stderr.decode()

        base = ["--listen", "127.0.0.1:0", "--data", h.tmpdir()]
        # Flag mistakes: exit 2 with one line.
        for args, why in (
                (["--id", "1"], "need --cluster"),
                (["--cluster", "1=127.0.0.1:1", "--id", "1"], "--id and"),
                (["--cluster", "1=127.0.0.1:1", "--id", "2",
                  "--cluster-key", key], "not in --cluster"),
                (["--cluster", "1=127.0.0.1:1,1=127.0.0.1:2", "--id", "1",
                  "--cluster-key", key], "twice"),
                (["--cluster", "1=nohostport", "--id", "1",
                  "--cluster-key", key], "ID=HOST:PORT"),
                (["--cluster", "1=127.0.0.1:1", "--id", "1",
                  "--cluster-key", "/nonexistent"], "cannot open")):
            rc, err = run(*(base + args))
            self.assertEqual(rc, 2, err)
            self.assertIn(why, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        # The Raft port is taken: exit 1, cleanly.
        ports = h.free_ports(1)
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", ports[0]))
            s.listen(1)
            rc, err = run(*(base + ["--id", "1", "--cluster",
                                    "1=127.0.0.1:%d" % ports[0],
                                    "--cluster-key", key]))
        self.assertEqual(rc, 1, err)
        self.assertIn("cannot start", err)
        for mark in h.SANITIZER_MARKS:
            self.assertNotIn(mark, err)
        # keygen: 64 hex digits and a newline; --out refuses to overwrite.
        r = subprocess.run([index, "cluster", "keygen"], capture_output=True,
                           timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.decode(), r"^[0-9a-f]{64}\n$")
        self.assertEqual(oct(os.stat(key).st_mode & 0o777), "0o600")
        r = subprocess.run([index, "cluster", "keygen", "--out", key],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        r = subprocess.run([index, "cluster", "frobnicate"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    h.main()
