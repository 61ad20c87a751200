"""End-to-end tests of a Parley network: one parley-index and four parleyd
peers on 127.0.0.1, driven through the real `parley` CLI.

Covers: subscribe/publish in both modes, direct messages, history with every
filter and full-text search, listen, peers/topics/status, --json output,
subscriptions surviving restarts, exit codes, and verify/trust/untrust with
the trust mark in `parley peers` (test_e2e.py covers the rest).
"""
import json
import os
import signal
import subprocess
import time
import unittest

import harness as h


class Network(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=3)
        cls.a = h.Peer(cls.index.addr, "alice")
        cls.b = h.Peer(cls.index.addr, "bob")
        cls.c = h.Peer(cls.index.addr, "carol")
        cls.d = h.Peer(cls.index.addr, "dave")
        for p in (cls.a, cls.b, cls.c, cls.d):
            h.wait_until(lambda p=p: json.loads(p.ok("status", "--json"))
                         ["index"]["connected"], what="%s registered" % p.name)
        for p in (cls.b, cls.c, cls.d):
            p.ok("subscribe", "news")

    @classmethod
    def tearDownClass(cls):
        for p in (cls.a, cls.b, cls.c, cls.d, cls.index):
            p.stop()

    def test_01_id(self):
        out = self.a.ok("id").strip()
        self.assertEqual(out, self.a.id)
        self.assertEqual(len(out), 52)
        self.assertEqual(self.a.json_lines("id")[0]["id"], self.a.id)
        st = os.stat(os.path.join(self.a.data, "identity.key"))
        self.assertEqual(st.st_mode & 0o777, 0o600)

    def test_02_publish_async(self):
        mid = self.a.ok("publish", "news", "hello world from alice").strip()
        self.assertRegex(mid, r"^[0-9a-f]{32}$")
        for p in (self.b, self.c, self.d):
            msgs = p.wait_history(1, "news", "--search", "alice")
            m = [x for x in msgs if x["id"] == mid]
            self.assertEqual(len(m), 1, p.name)
            m = m[0]
            self.assertEqual(m["topic"], "news")
            self.assertEqual(m["from"], self.a.id)
            self.assertEqual(m["body"], "hello world from alice")
            self.assertEqual(m["direction"], "in")
            self.assertIsInstance(m["seq"], int)
            self.assertIsInstance(m["ts"], int)
            self.assertNotIn("to", m)
        # The publisher stores what it sent.
        mine = self.a.history("news")
        self.assertTrue(any(x["id"] == mid and x["direction"] == "out"
                            for x in mine))

    def test_03_publish_ack(self):
        rc, out, err = self.a.cli("publish", "--ack", "--timeout", "10",
                                  "news", "acknowledged one")
        self.assertEqual(rc, 0, err)
        mid = out.strip()
        for p in (self.b, self.c, self.d):
            # Acked means stored: no waiting needed.
            self.assertTrue(any(x["id"] == mid for x in p.history("news")))

    def test_03b_publish_sync(self):
        rc, out, err = self.a.cli("publish", "--sync", "news", "synchronous")
        self.assertEqual(rc, 0, err)
        lines = out.strip().splitlines()
        mid = lines[0]
        results = {l.split()[0]: l.split()[1] for l in lines[1:]}
        self.assertEqual(results, {p.id: "stored"
                                   for p in (self.b, self.c, self.d)})
        for p in (self.b, self.c, self.d):
            self.assertTrue(any(x["id"] == mid for x in p.history("news")))
        status, text = self.a.api_call("POST", "/v1/publish", {
            "topic": "news", "body": "sync json", "mode": "sync"})
        self.assertEqual(status, 200, text)
        res = json.loads(text)
        self.assertEqual(res["mode"], "sync")
        self.assertEqual(sorted(r["id"] for r in res["results"]),
                         sorted(p.id for p in (self.b, self.c, self.d)))
        self.assertTrue(all(r["status"] == "stored" and r["latency_ms"] >= 0
                            for r in res["results"]))

    def test_04_publish_no_subscribers_ack(self):
        rc, out, err = self.a.cli("publish", "--ack", "empty-topic", "nobody")
        self.assertEqual(rc, 0, err)

    def test_05_direct(self):
        rc, out, err = self.a.cli("send", self.b.id, "psst bob")
        self.assertEqual(rc, 0, err)
        msgs = self.b.history("--direct")
        m = [x for x in msgs if x["body"] == "psst bob"]
        self.assertEqual(len(m), 1)
        self.assertIsNone(m[0]["topic"])
        self.assertEqual(m[0]["to"], self.b.id)
        self.assertEqual(m[0]["from"], self.a.id)
        # Not visible to others, and not a topic message.
        self.assertFalse(any(x["body"] == "psst bob"
                             for x in self.c.history()))
        self.assertFalse(any(x["body"] == "psst bob"
                             for x in self.b.history("news")))

    def test_06_seq_per_topic(self):
        for i in range(5):
            self.a.ok("publish", "seqtest", "n%d" % i)
        self.c.ok("subscribe", "seqtest")
        ids = [self.a.ok("publish", "--ack", "seqtest", "s%d" % i).strip()
               for i in range(3)]
        got = self.c.history("seqtest")
        seqs = [x["seq"] for x in got if x["id"] in ids]
        self.assertEqual(seqs, [6, 7, 8])

    def test_07_history_filters(self):
        self.d.ok("publish", "weather", "sunny and warm")
        self.c.ok("subscribe", "weather")
        time.sleep(0.2)
        self.d.ok("publish", "--ack", "weather", "rain expected tomorrow")
        self.b.ok("publish", "--ack", "news", "bob breaks news")
        got = self.c.history("weather")
        self.assertEqual([x["body"] for x in got], ["rain expected tomorrow"])
        # --from
        got = self.c.history("--from", self.b.id)
        self.assertTrue(got and all(x["from"] == self.b.id for x in got))
        # --search, full text, several words, odd characters
        got = self.c.history("--search", "rain tomorrow")
        self.assertEqual([x["body"] for x in got], ["rain expected tomorrow"])
        self.assertEqual(self.c.history("--search", 'rain "OR* ('), [])
        # --since / --until, RFC 3339 and durations
        allmsgs = self.c.history()
        self.assertGreaterEqual(len(allmsgs), 3)
        ts = [x["ts"] for x in allmsgs]
        self.assertEqual(ts, sorted(ts), "oldest first")
        self.assertEqual(len(self.c.history("--since", "1h")), len(allmsgs))
        self.assertEqual(self.c.history("--until", "1970-01-02T00:00:00Z"), [])
        future = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime(time.time() + 3600))
        self.assertEqual(self.c.history("--since", future), [])
        # --limit: the newest N, oldest first
        lim = self.c.history("--limit", "2")
        self.assertEqual([x["id"] for x in lim],
                         [x["id"] for x in allmsgs[-2:]])
        # --direct only direct messages
        self.assertTrue(all(x["topic"] is None
                            for x in self.b.history("--direct")))
        # human output has one line per message
        out = self.c.ok("history", "weather")
        self.assertIn("rain expected tomorrow", out)
        self.assertEqual(len(out.strip().splitlines()), 1)

    def test_08_listen(self):
        p = subprocess.Popen([os.path.join(h.BIN, "parley"), "--data",
                              self.d.data, "listen", "news", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(0.5 * h.SLOW)
            self.a.ok("publish", "--ack", "news", "live one")
            self.a.ok("send", self.d.id, "live direct")
            lines = []
            deadline = time.time() + 10 * h.SLOW
            while len(lines) < 2 and time.time() < deadline:
                line = p.stdout.readline()
                if line:
                    lines.append(json.loads(line))
            self.assertEqual(sorted(x["body"] for x in lines),
                             ["live direct", "live one"])
        finally:
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(10), 0)

    def test_09_peers_topics_status(self):
        peers = self.a.json_lines("peers")
        names = {x["name"]: x for x in peers}
        for p in (self.a, self.b, self.c, self.d):
            self.assertIn(p.name, names)
            self.assertEqual(names[p.name]["id"], p.id)
            self.assertEqual(names[p.name]["addr"], p.addr)
        topics = {x["topic"]: x["subscribers"]
                  for x in self.a.json_lines("topics")}
        self.assertEqual(topics.get("news"), 3)
        st = json.loads(self.b.ok("status", "--json"))
        self.assertIn("news", st["subscriptions"])
        self.assertEqual(st["id"], self.b.id)
        self.assertTrue(st["index"]["connected"])
        out = self.a.ok("peers")
        self.assertIn("bob", out)
        self.assertIn(self.b.addr, out)

    def test_10_subscriptions_persist(self):
        self.c.ok("subscribe", "persist-me")
        self.c.stop()
        self.c.restart()
        h.wait_until(lambda: json.loads(self.c.ok("status", "--json"))
                     ["index"]["connected"], what="carol back")
        st = json.loads(self.c.ok("status", "--json"))
        self.assertIn("persist-me", st["subscriptions"])
        self.assertIn("news", st["subscriptions"])
        topics = {x["topic"]: x["subscribers"]
                  for x in self.a.json_lines("topics")}
        self.assertEqual(topics.get("persist-me"), 1)
        rc, _, err = self.c.cli("unsubscribe", "persist-me")
        self.assertEqual(rc, 0, err)
        rc, _, err = self.c.cli("unsubscribe", "persist-me")
        self.assertNotEqual(rc, 0)

    def test_11_stdin_and_lines(self):
        self.b.ok("subscribe", "lines")
        out = self.a.ok("publish", "--ack", "--lines", "lines", "-",
                        stdin=b"one\ntwo\nthree\n")
        self.assertEqual(len(out.split()), 3)
        got = [x["body"] for x in self.b.history("lines")]
        self.assertEqual(got, ["one", "two", "three"])
        self.a.ok("publish", "--ack", "lines", "-", stdin=b"\x00\x01\xffbin")
        got = self.b.history("lines")
        self.assertIn("body_base64", got[-1])

    def test_12_errors(self):
        rc, _, err = self.a.cli("send", "notapeerid", "x")
        self.assertEqual(rc, 2)
        self.assertEqual(len(err.strip().splitlines()), 1)
        unknown = "a" * 52
        rc, _, err = self.a.cli("send", unknown, "x")
        self.assertEqual(rc, 5, err)
        rc, _, err = self.a.cli("publish", "bad topic", "x")
        self.assertEqual(rc, 2)
        rc, _, err = self.a.cli("frobnicate")
        self.assertEqual(rc, 2)
        rc, _, err = h.Peer.cli(self.a, "--nope")
        self.assertEqual(rc, 2)
        d = h.tmpdir()
        r = subprocess.run([os.path.join(h.BIN, "parley"), "--data", d, "id"],
                           capture_output=True)
        self.assertEqual(r.returncode, 3)
        self.assertIn("not running", r.stderr.decode())
        for binary in ("parleyd", "parley-index"):
            r = subprocess.run([os.path.join(h.BIN, binary), "--bogus"],
                               capture_output=True)
            self.assertEqual(r.returncode, 2, binary)
            self.assertEqual(len(r.stderr.decode().strip().splitlines()), 1)

    def test_13_verify_trust_and_peers_mark(self):
        # Both sides compute the same safety number.
        self.assertEqual(self.a.ok("verify", self.c.id),
                         self.c.ok("verify", self.a.id))
        self.assertEqual(self.a.ok("trust", self.c.id),
                         "trusted %s as carol\n" % self.c.id)
        rows = {x["id"]: x["trust"] for x in self.a.json_lines("peers")}
        self.assertEqual((rows[self.c.id], rows[self.a.id], rows[self.b.id]),
                         ("trusted", "self", "unverified"))
        # A trusted peer is an ordinary one otherwise; direct messages to
        # it are end-to-end encrypted like every other.
        self.a.ok("send", self.c.id, "to my trusted carol")
        self.assertEqual(self.c.history("--direct")[-1]["body"],
                         "to my trusted carol")
        self.assertEqual(self.a.ok("untrust", self.c.id),
                         "untrusted %s\n" % self.c.id)
        rc, _, err = self.a.cli("untrust", self.c.id)
        self.assertEqual(rc, 1, err)


if __name__ == "__main__":
    h.main()
