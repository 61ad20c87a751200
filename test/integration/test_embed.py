"""libparley, the embedding API (include/parley/parley.h): two peers inside
one process (test/integration/embed_check.c) against a real index: subscribe
before and after registration, fire-and-forget and acknowledged publishes,
binary bodies, a publish nobody hears, refused topics, orderly close."""
import json
import os
import sqlite3
import subprocess
import unittest

import harness as h


class Embed(unittest.TestCase):
    def test_embedded_peers(self):
        index = h.Index(lease=3)
        try:
            a, b = h.tmpdir("parley-embed-a-"), h.tmpdir("parley-embed-b-")
            r = subprocess.run(
                [os.path.join(h.BIN, "parley_embed_check"),
                            index.addr, a, b],
                capture_output=True, timeout=60 * h.SLOW)
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 0, out + r.stderr.decode())
            self.assertIn("embed ok", out)
            self.assertNotIn("FAIL", out)
            # Nothing of the topic without history is stored, on either
            # side; the others are.
            for d in (a, b):
                c = sqlite3.connect(os.path.join(d, "store.db"))
                ticks = c.execute("SELECT count(*) FROM messages WHERE "
                                  "channel = 'ticks'").fetchone()[0]
                embed = c.execute("SELECT count(*) FROM messages WHERE "
                                  "channel = 'embed'").fetchone()[0]
                hist = c.execute("SELECT history FROM topic_opts WHERE "
                                 "topic = 'ticks'").fetchone()[0]
                c.close()
                self.assertEqual(ticks, 0)
                self.assertEqual(embed, 201)
                self.assertEqual(hist, 0)
        finally:
            index.stop()


class NoHistoryCli(unittest.TestCase):
    """The same setting through the daemon: `parley topic history`."""

    def test_history_off(self):
        index = h.Index(lease=3)
        a = h.Peer(index.addr, "nh-a")
        b = h.Peer(index.addr, "nh-b")
        try:
            for p in (a, b):
                h.wait_until(lambda p=p: json.loads(p.ok(
                    "status", "--json"))["index"]["connected"])
                self.assertIn("history off",
                              p.ok("topic", "history", "ticks", "off"))
            b.ok("subscribe", "ticks")
            rc, _, err = a.cli("publish", "ticks", "x", "--ack")
            self.assertEqual(rc, 1, err)
            rc, _, err = a.cli("topic", "history", "ticks", "maybe")
            self.assertEqual(rc, 2, err)

            def received():
                _, text = b.api_call("GET", "/metrics")
                for line in text.splitlines():
                    if line.startswith("parley_messages_received_total "):
                        return float(line.split()[1]) >= 3
                return False
            for i in range(3):
                a.ok("publish", "ticks", "tick-%d" % i)
            h.wait_until(received, what="b received the ticks")
            self.assertEqual(b.history("ticks"), [])
            self.assertEqual(a.history("ticks"), [])
            # Back on: stored again.
            for p in (a, b):
                p.ok("topic", "history", "ticks", "on")
            a.ok("publish", "ticks", "kept", "--ack")
            self.assertEqual([m["body"] for m in b.history("ticks")],
                             ["kept"])
            # Off at the publisher only: its messages travel as brief
            # MSGs (no publisher key, no chain value on the wire) and a
            # subscriber that keeps history stores them under the
            # publisher the link authenticated.
            a.ok("topic", "history", "ticks", "off")
            a.ok("publish", "ticks", "brief")
            got = b.wait_history(2, "ticks")
            self.assertEqual([m["body"] for m in got], ["kept", "brief"])
            self.assertEqual({m["from"] for m in got}, {a.id})
            self.assertEqual([m["body"] for m in a.history("ticks")],
                             ["kept"])
        finally:
            for p in (a, b, index):
                p.stop()


if __name__ == "__main__":
    h.main()
