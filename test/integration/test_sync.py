"""Eventual consistency with repair (anti-entropy), with real processes on
127.0.0.1: an index, a publisher P and subscribers S1, S2, S3.

(a) S1 is away (SIGKILL) longer than its lease and longer than P keeps its
    outbox (--retention 3s), P is restarted with an empty outbox and goes
    on publishing; when S1 returns it gets every message it missed from S2,
    exactly once and in order, checked against P's own signed hash chain.
(b) S2's store is tampered with (one relayed message's body rewritten with
    the sqlite3 tool): S1, which never had those messages, refuses S2's
    whole batch, logs and counts it, stores nothing forged, and later gets
    the genuine messages from an honest relay, S3.
(c) Messages too large to fit one batch frame arrive over several batches
    (the relay sends the rest of a run as digests).
Reordering, dropping and duplicating are covered by test/unit/test_chain.c.
"""
import json
import os
import subprocess
import time
import unittest

import harness as h


def status(p):
    return json.loads(p.ok("status", "--json"))


def registered(p):
    return status(p)["index"]["connected"]


def metric(p, name):
    """A sample from the peer's /metrics, or None if it is not exported."""
    code, text = p.api_call("GET", "/metrics")
    if code != 200:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def bodies(p, topic):
    return [m["body"] for m in p.history(topic)]


class Sync(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=2)
        cls.p = h.Peer(cls.index.addr, "pub", extra=["--retention", "3s"])
        cls.s1 = h.Peer(cls.index.addr, "s1")
        cls.s2 = h.Peer(cls.index.addr, "s2")
        cls.s3 = h.Peer(cls.index.addr, "s3")
        cls.all = [cls.p, cls.s1, cls.s2, cls.s3]
        for p in cls.all:
            h.wait_until(lambda p=p: registered(p), what="%s registered" % p.name)

    @classmethod
    def tearDownClass(cls):
        for p in cls.all + [cls.index]:
            if p.alive():
                p.stop()

    def wait_registered(self, *peers):
        for p in peers:
            h.wait_until(lambda p=p: registered(p), what="%s registered" % p.name)

    def publish(self, topic, body, timeout="5"):
        rc, out, err = self.p.cli("publish", "--ack", "--timeout", timeout,
                                  topic, body)
        self.assertIn(rc, (0, 4), err)
        return out.strip()

    def test_1_catch_up_from_another_subscriber(self):
        p, s1, s2 = self.p, self.s1, self.s2
        s1.ok("subscribe", "news")
        s2.ok("subscribe", "news")
        expected = []
        for i in range(3):
            expected.append("before %d" % i)
            rc, out, err = p.cli("publish", "--ack", "--timeout", "10", "news",
                                 expected[-1])
            self.assertEqual(rc, 0, err)
        self.assertEqual(bodies(s1, "news"), expected)

        s1.kill()  # away, without a goodbye
        for i in range(3):
            expected.append("while away %d" % i)
            self.publish("news", expected[-1], timeout="1")
        # S1's lease runs out (2 s), then P drops what it queued for it
        # (retention 3 s, checked every 5 s): P's outbox is empty.
        h.wait_until(lambda: status(p)["outbox"] == 0, timeout=30,
                     what="P's outbox for S1 dropped")
        for i in range(2):
            expected.append("after the drop %d" % i)
            self.publish("news", expected[-1])
        # A clean restart: the chain head and checkpoints come back from
        # P's store; its outbox stays empty.
        p.stop()
        p.restart()
        self.wait_registered(p)
        self.assertEqual(status(p)["outbox"], 0)
        for i in range(2):
            expected.append("after the restart %d" % i)
            self.publish("news", expected[-1])
        h.wait_until(lambda: bodies(s2, "news") == expected,
                     what="S2 has everything")
        time.sleep(0.5)  # P's last checkpoint (200 ms) reaches S2

        s1.restart()
        self.wait_registered(s1)
        # Nobody delivers these to S1 directly any more: only a relay can.
        got = h.wait_until(
            lambda: (lambda b: b if len(b) >= len(expected) else None)(
                bodies(s1, "news")),
            timeout=20, what="S1 caught up")
        self.assertEqual(got, expected)  # every message, once, in order
        msgs = s1.history("news")
        self.assertEqual(len({m["id"] for m in msgs}), len(expected))
        self.assertTrue(all(m["from"] == p.id for m in msgs))
        self.assertEqual([m["seq"] for m in msgs],
                         list(range(1, len(expected) + 1)))
        repaired = metric(s1, "parley_sync_messages_total")
        if repaired is not None:
            self.assertEqual(repaired, len(expected) - 3)
        rejected = metric(s1, "parley_sync_rejected_total")
        if rejected is not None:
            self.assertEqual(rejected, 0)
        # Nothing new arrives later (no duplicates from periodic rounds).
        time.sleep(1)
        self.assertEqual(bodies(s1, "news"), expected)

    def test_2_tampered_relay_is_refused(self):
        p, s1, s2, s3 = self.p, self.s1, self.s2, self.s3
        s2.ok("subscribe", "t2")
        s3.ok("subscribe", "t2")
        genuine = ["genuine %d" % i for i in range(1, 6)]
        for b in genuine:
            rc, out, err = p.cli("publish", "--ack", "--timeout", "10", "t2",
                                 b)
            self.assertEqual(rc, 0, err)
        for s in (s2, s3):
            self.assertEqual(bodies(s, "t2"), genuine)
        time.sleep(0.5)  # the checkpoint reaches S2 and S3
        s2.stop()
        s3.stop()
        db = os.path.join(s2.data, "store.db")
        sql = lambda q: subprocess.run(  # noqa: E731
            ["sqlite3", db, q], capture_output=True, text=True, check=True,
            timeout=30).stdout.strip()
        self.assertEqual(
            sql("SELECT max(seq) FROM chain_sigs WHERE channel = 't2'"), "5")
        sql("UPDATE messages SET body = CAST('forged' AS BLOB)"
            " WHERE channel = 't2' AND seq = 3")
        self.assertEqual(
            sql("SELECT CAST(body AS TEXT) FROM messages"
                " WHERE channel = 't2' AND seq = 3"), "forged")
        s2.restart()
        self.wait_registered(s2)
        time.sleep(2.5)  # S3's lease ends: S2 is the only relay left
        before = s1.logtext()

        s1.ok("subscribe", "t2")  # S1 never had t2: it asks S2
        h.wait_until(lambda: "refused relayed batch" in s1.logtext()[len(before):],
                     timeout=15, what="S1 refuses S2's batch")
        line = [l for l in s1.logtext()[len(before):].splitlines()
                if "refused relayed batch" in l][0]
        self.assertIn(s2.id, line)  # the relay is named
        self.assertIn(p.id, line)   # and the publisher
        rejected = metric(s1, "parley_sync_rejected_total")
        if rejected is not None:
            self.assertGreaterEqual(rejected, 1)
        # The whole batch was refused: not even the untouched messages.
        self.assertEqual(bodies(s1, "t2"), [])

        s3.restart()
        self.wait_registered(s3)
        s1.ok("subscribe", "t2")  # due again: S2 and S3 are candidates
        got = h.wait_until(
            lambda: (lambda b: b if len(b) >= 5 else None)(bodies(s1, "t2")),
            timeout=20, what="S1 gets t2 from S3")
        self.assertEqual(got, genuine)
        self.assertNotIn("forged", json.dumps(s1.history("t2")))
        # S2 still holds its forged copy; S1 never took it.
        self.assertIn("forged", bodies(s2, "t2"))

    def test_3_large_messages_span_batches(self):
        """Messages too large for one SYNC_BATCH frame: the relay sends the
        rest of the run as digests (still verifiable) and the requester asks
        again from there."""
        p, s1, s2 = self.p, self.s1, self.s2
        s2.ok("subscribe", "big")
        sent = []
        for i in range(4):
            body = ("%d" % i) * 400000  # 4 x 400 kB > one 1 MiB frame
            code, text = p.api_call("POST", "/v1/publish", {
                "topic": "big", "body": body, "mode": "ack",
                "timeout_ms": 10000})
            self.assertEqual(code, 200, text)
            sent.append(body)
        self.assertEqual(len(s2.history("big")), 4)
        time.sleep(0.5)
        before = s1.logtext()
        s1.ok("subscribe", "big")
        got = h.wait_until(
            lambda: (lambda b: b if len(b) >= 4 else None)(bodies(s1, "big")),
            timeout=20, what="S1 gets the large messages")
        self.assertEqual(got, sent)
        h.wait_until(lambda: "sync big: 4 messages repaired"
                     in s1.logtext()[len(before):], what="one round, 4 kept")


if __name__ == "__main__":
    h.main()
