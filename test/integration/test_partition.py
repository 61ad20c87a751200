"""Partition tolerance of the index cluster, on test hosts in network
namespaces made by this test (test/integration/netlab.py; addresses exist
only inside them; packets are dropped with nftables, this kernel has no
netem).

Three index nodes (h0-h2) and peers: two on the majority side (h3) and one
that ends up with the old leader (h4).  The leader is cut off from
everything else: the minority refuses writes, the majority elects a new
leader and its peers keep working; after healing every node converges on
one leader, one commit index and the same registry.  Skipped (with the
reason) only where namespaces cannot be created.
"""
import json
import os
import subprocess
import time
import unittest

import harness as h
from netlab import Netlab

OK, WHY = Netlab.available()
RAFT, LISTEN, HTTP = 7000, 7100, 7200


@unittest.skipUnless(OK, "partition test skipped: %s" % WHY)
class Partition(unittest.TestCase):
    def setUp(self):
        self.lab = Netlab(5)
        self.key = h.cluster_key()
        self.members = [(i + 1, "%s:%d" % (self.lab.addr(i), RAFT))
                        for i in range(3)]
        self.nodes = {}
        datas = []
        for i in range(3):
            nid = i + 1
            a = self.lab.addr(i)
            datas.append(h.tmpdir("parley-pnode-"))
            argv = [os.path.join(h.BIN, "parley-index"), "--id", str(nid),
                    "--cluster", ",".join("%d=%s" % m for m in self.members),
                    "--cluster-key", self.key,
                    "--listen", "%s:%d" % (a, LISTEN),
                    "--http", "%s:%d" % (a, HTTP),
                    "--data", datas[-1], "--lease", "3"]
            self.nodes[nid] = h.Proc(argv, "pnode%d" % nid, self.lab.prefix(i))
        # One admin token for the whole cluster (the keys derive from the
        # cluster key).
        self.token = h.mint_token(datas[0], cluster_key=self.key)
        self.index_arg = ",".join("%s:%d" % (self.lab.addr(i), LISTEN)
                                  for i in range(3))
        self.peers = []

    def tearDown(self):
        for p in self.peers + list(self.nodes.values()):
            if p.alive():
                p.stop()
        self.lab.close()

    def get(self, nid, path):
        """GET on node nid's HTTP API, from inside its own namespace."""
        url = "http://%s:%d%s" % (self.lab.addr(nid - 1), HTTP, path)
        code = ("import sys,urllib.request;"
                "sys.stdout.write(urllib.request.urlopen(urllib.request."
                "Request(%r,headers={'Authorization':'Bearer '+%r}),"
                "timeout=3).read().decode())" % (url, self.token))
        r = subprocess.run(self.lab.prefix(nid - 1) + ["python3", "-c", code],
                           capture_output=True, timeout=20)
        if r.returncode != 0:
            raise AssertionError("GET %s on node %d failed: %s" % (
                path, nid, r.stderr.decode()[-300:]))
        return r.stdout.decode()

    def cluster(self, nid):
        return json.loads(self.get(nid, "/v1/cluster"))

    def topics(self, nid):
        return {json.loads(l)["topic"]: json.loads(l)["subscribers"]
                for l in self.get(nid, "/v1/topics").splitlines() if l.strip()}

    def leader_of(self, nid):
        try:
            c = self.cluster(nid)
        except AssertionError:
            return 0
        return c["leader"]["id"] if c.get("leader") else 0

    def agreed_leader(self, among, exclude=()):
        ids = {self.leader_of(n) for n in among}
        if len(ids) == 1:
            lid = ids.pop()
            if lid and lid not in exclude:
                return lid
        return 0

    def peer(self, host, name):
        p = h.Peer(self.index_arg, name, prefix=self.lab.prefix(host),
                   extra=["--listen", "%s:0" % self.lab.addr(host)])
        self.peers.append(p)
        h.wait_until(lambda: json.loads(p.ok("status", "--json"))
                     ["index"]["connected"], 20, what="%s registered" % name)
        return p

    def test_leader_cut_off(self):
        lid = h.wait_until(lambda: self.agreed_leader([1, 2, 3]), 20,
                           what="a leader")
        term0 = self.cluster(lid)["term"]
        others = [n for n in (1, 2, 3) if n != lid]
        pub = self.peer(3, "pub")
        sub = self.peer(3, "sub")
        lonely = self.peer(4, "lonely")
        sub.ok("subscribe", "majority")
        rc, _, err = pub.cli("publish", "--ack", "majority", "before")
        self.assertEqual(rc, 0, err)

        # Cut the leader (and the peer on its side) off from the rest.
        t0 = time.monotonic()
        self.lab.partition([lid - 1, 4], [n - 1 for n in others] + [3])

        # The majority elects a new leader, in a later term.
        new = h.wait_until(lambda: self.agreed_leader(others, exclude=(lid,)),
                           20, what="a new leader on the majority side")
        print("\npartition: node %d isolated; node %d leads the majority "
              "after %.0f ms" % (lid, new, (time.monotonic() - t0) * 1000))
        self.assertGreater(self.cluster(new)["term"], term0)

        # Peers on the majority side keep working (they fail over to it).
        def published():
            rc, _, _ = pub.cli("publish", "--ack", "--timeout", "3",
                               "majority", "during")
            return rc == 0
        h.wait_until(published, 30, interval=0.5, what="publish during split")
        self.assertIn("during", [m["body"] for m in sub.history("majority")])
        sub.ok("subscribe", "made-in-majority")

        # The minority refuses writes: the old leader steps down and the
        # lonely peer's subscription cannot be committed anywhere.
        h.wait_until(lambda: self.cluster(lid)["role"] != "leader", 20,
                     what="isolated leader steps down")
        lonely.ok("subscribe", "made-in-minority")
        time.sleep(2 * h.SLOW)
        for n in others:
            self.assertNotIn("made-in-minority", self.topics(n))
        self.assertNotIn("made-in-majority", self.topics(lid))

        # Heal: every node converges on one leader, one log, one registry.
        self.lab.heal()
        final = h.wait_until(lambda: self.agreed_leader([1, 2, 3]), 30,
                             what="one leader after healing")

        def converged():
            cs = [self.cluster(n) for n in (1, 2, 3)]
            ts = [self.topics(n) for n in (1, 2, 3)]
            same_log = len({c["last_applied"] for c in cs}) == 1
            same_reg = all(t == ts[0] for t in ts)
            has_both = "made-in-minority" in ts[0] and \
                "made-in-majority" in ts[0]
            return same_log and same_reg and has_both and ts[0]
        topics = h.wait_until(converged, 40, interval=0.5,
                              what="all nodes converged")
        self.assertEqual(topics.get("majority"), 1)
        self.assertTrue(json.loads(lonely.ok("status", "--json"))
                        ["index"]["connected"])
        print("partition healed; node %d leads; registry %s" % (final, topics))


if __name__ == "__main__":
    h.main()
