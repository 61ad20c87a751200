"""End-to-end encryption of direct messages, key verification, the
passphrase-protected identity and per-peer abuse limits, on real parleyd
processes (docs/internals/E2E.md, "Integration"; docs/SECURITY.md).

Covers: a direct message is readable on both sides (history, listen) while
the sender's disk (store.db, its WAL, the outbox) holds only ciphertext and
the receiver's holds its own opened copy; a tampered envelope and a replayed
one are refused and counted; `parley verify` prints the same safety number
on both sides; after `parley trust`, a key claiming the trusted name is
refused loudly (ERROR log line, metric, `parley peers` mark) while the
genuine peer keeps working; the identity key encrypted under a passphrase
(wrong passphrase refused, plain key converted, no raw seed in the file);
a peer flooding messages is rate-limited while another is not, and acked
messages over the limit are delivered later, never lost.
"""
import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

import harness as h

SAFETY_RE = r"^\d{5}( \d{5}){11}$"


def metric(peer, name, label=None):
    """The value of metric name at peer (the sample whose labels contain
    label, if given), or None."""
    status, text = peer.api_call("GET", "/metrics")
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        base = key.split("{", 1)[0]
        if base != name:
            continue
        if label is not None and label not in key:
            continue
        if label is None and "{" in key:
            continue
        return float(value)
    return None


def disk_bytes(data_dir, names=("store.db", "store.db-wal")):
    out = b""
    for n in names:
        path = os.path.join(data_dir, n)
        if os.path.exists(path):
            with open(path, "rb") as f:
                out += f.read()
    return out


def all_files_bytes(data_dir):
    out = b""
    for root, _, files in os.walk(data_dir):
        for n in files:
            with open(os.path.join(root, n), "rb") as f:
                out += f.read()
    return out


def db(peer):
    """A connection to peer's store (the daemon may be running: WAL)."""
    c = sqlite3.connect(os.path.join(peer.data, "store.db"), timeout=30)
    c.execute("PRAGMA busy_timeout = 30000")
    return c


def registered(p):
    h.wait_until(lambda: json.loads(p.ok("status", "--json"))
                 ["index"]["connected"], what="%s registered" % p.name)


def outbox(p):
    return json.loads(p.ok("status", "--json"))["outbox"]


class DirectE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=3)
        cls.a = h.Peer(cls.index.addr, "alice")
        cls.b = h.Peer(cls.index.addr, "bob")
        for p in (cls.a, cls.b):
            registered(p)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.a, cls.b, cls.index):
            if p.alive():
                p.stop()

    def test_01_plaintext_on_both_sides_listen_too(self):
        listen = subprocess.Popen(
            [os.path.join(h.BIN, "parley"), "--data", self.b.data, "listen",
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(0.5 * h.SLOW)
            secret = "zebra-umbrella-4711 for bob only"
            mid = self.a.ok("send", self.b.id, secret).strip()
            line = json.loads(listen.stdout.readline())
            self.assertEqual(line["body"], secret)
            self.assertEqual(line["id"], mid)
        finally:
            listen.send_signal(signal.SIGINT)
            self.assertEqual(listen.wait(10), 0)
        got = [m for m in self.b.history("--direct") if m["id"] == mid]
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["body"], secret)
        self.assertEqual(got[0]["from"], self.a.id)
        self.assertEqual(got[0]["to"], self.b.id)
        self.assertEqual(got[0]["direction"], "in")
        mine = [m for m in self.a.history("--direct") if m["id"] == mid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["body"], secret)
        self.assertEqual(mine[0]["direction"], "out")
        self.assertEqual((mine[0]["seq"], mine[0]["ts"]),
                         (got[0]["seq"], got[0]["ts"]))
        # The human form too, on the sender's side.
        self.assertIn(secret, self.a.ok("history", "--direct"))
        # The recipient's search finds it; the sender's cannot (ciphertext).
        self.assertTrue(any(m["id"] == mid for m in
                            self.b.history("--search", "zebra")))
        self.assertFalse(any(m["id"] == mid for m in
                             self.a.history("--search", "zebra")))
        # Binary bodies keep their form through the envelope.
        self.a.ok("send", self.b.id, "-", stdin=b"\x00\x01\xffbin")
        last = self.b.history("--direct")[-1]
        self.assertEqual(last["body_base64"], "AAH/Ymlu")
        self.assertGreaterEqual(metric(self.a, "parley_e2e_sealed_total"), 2)
        self.assertGreaterEqual(metric(self.b, "parley_e2e_opened_total"), 2)

    def test_02_sender_disk_holds_only_ciphertext(self):
        secret = b"quokka-lantern-9312"
        self.a.ok("send", self.b.id, secret.decode())
        # The sender: neither the database nor its WAL (nor any other file
        # of its data directory) holds the plaintext...
        self.assertNotIn(secret, all_files_bytes(self.a.data))
        # ...because the stored body is the envelope (DIRECT|BINARY).
        with db(self.a) as c:
            rows = c.execute("SELECT flags, body FROM messages WHERE"
                             " outgoing = 1 AND substr(channel, 1, 1) = '@'"
                             ).fetchall()
        self.assertTrue(rows)
        for flags, body in rows:
            self.assertEqual(flags, 6)
            self.assertEqual(body[0], 1)        # envelope version 1
            self.assertEqual(body[1], 1)        # with the sender copy
            self.assertNotIn(secret, body)
        # The recipient keeps its own opened copy (its local history).
        self.assertIn(secret, disk_bytes(self.b.data))

    def test_03_outbox_holds_ciphertext_and_tampering_is_refused(self):
        self.b.stop()
        secret = "tamper-me-please-0042"
        rc, _, err = self.a.cli("send", "--timeout", "1", self.b.id, secret)
        self.assertEqual(rc, 4, err)
        self.assertNotIn(secret.encode(), all_files_bytes(self.a.data))
        self.assertEqual(outbox(self.a), 1)
        # The pending delivery is our newest message to b (its outbox entry
        # may still be in a batch row or already a row of its own).
        with db(self.a) as c:
            rowid, body = c.execute(
                "SELECT rowid, body FROM messages WHERE outgoing = 1 AND"
                " channel = ? ORDER BY rowid DESC LIMIT 1",
                ("@" + self.b.id,)).fetchone()
            body = bytearray(body)
            body[-20] ^= 0x01       # inside the AEAD ciphertext
            c.execute("UPDATE messages SET body = ? WHERE rowid = ?",
                      (bytes(body), rowid))
        before = metric(self.a, "parley_acks_received_total")
        self.b.restart()
        registered(self.b)
        h.wait_until(lambda: outbox(self.a) == 0, 40,
                     what="the tampered message answered")
        self.assertGreaterEqual(metric(self.b, "parley_e2e_rejected_total"), 1)
        self.assertGreater(metric(self.a, "parley_acks_received_total"),
                           before)
        self.assertFalse(any(m.get("body") == secret
                             for m in self.b.history("--direct")))
        self.assertIn("decryption or signature check failed",
                      self.a.logtext())

    def test_04_replay_is_refused(self):
        mid = self.a.ok("send", self.b.id, "say it once").strip()
        replays = metric(self.b, "parley_e2e_replays_total") or 0
        # Put the delivered message back into the sender's outbox, as an
        # old backup or a tampered disk would, and restart the sender.
        self.a.stop()
        with db(self.a) as c:
            rowid, = c.execute(
                "SELECT rowid FROM messages WHERE outgoing = 1 AND"
                " channel = ? ORDER BY seq DESC LIMIT 1",
                ("@" + self.b.id,)).fetchone()
            c.execute("INSERT INTO outbox (msg_rowid, recipient, attempts,"
                      " next_try, created) VALUES (?, ?, 0, 0, ?)",
                      (rowid, bytes(self.b_key()), int(time.time() * 1000)))
        self.a.restart()
        registered(self.a)
        h.wait_until(lambda: (metric(self.b, "parley_e2e_replays_total") or 0)
                     > replays, 40, what="the replay refused")
        h.wait_until(lambda: outbox(self.a) == 0, 20, what="outbox drained")
        got = [m for m in self.b.history("--direct") if m["id"] == mid]
        self.assertEqual(len(got), 1)
        self.assertIn("refused as a replay", self.b.logtext())
        # Still working afterwards, in order.
        self.a.ok("send", self.b.id, "after the replay")
        self.assertEqual(self.b.history("--direct")[-1]["body"],
                         "after the replay")

    def b_key(self):
        import base64
        t = self.b.id.upper() + "=" * ((8 - len(self.b.id) % 8) % 8)
        return base64.b32decode(t)

    def test_05_verify_same_number_both_sides(self):
        out_a = self.a.ok("verify", self.b.id)
        out_b = self.b.ok("verify", self.a.id)
        self.assertEqual(out_a, out_b)
        lines = out_a.splitlines()
        self.assertTrue(lines[0].startswith("safety number: "))
        self.assertRegex(lines[0][len("safety number: "):], SAFETY_RE)
        self.assertEqual(lines[1], "trusted: no")
        j = self.a.json_lines("verify", self.b.id)[0]
        self.assertEqual(j["id"], self.b.id)
        self.assertEqual(j["trusted"], False)
        self.assertEqual(j["safety_number"], lines[0][len("safety number: "):])
        rc, _, err = self.a.cli("verify", self.a.id)
        self.assertEqual(rc, 1, err)


class Trust(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=3)
        cls.a = h.Peer(cls.index.addr, "alice")
        cls.b = h.Peer(cls.index.addr, "bob")
        for p in (cls.a, cls.b):
            registered(p)
        cls.m = None

    @classmethod
    def tearDownClass(cls):
        for p in (cls.m, cls.a, cls.b, cls.index):
            if p is not None and p.alive():
                p.stop()

    def test_01_trust_then_impostor_refused_loudly(self):
        out = self.a.ok("trust", self.b.id)
        self.assertEqual(out, "trusted %s as bob\n" % self.b.id)
        self.assertIn("trusted: yes (bob)",
                      self.a.ok("verify", self.b.id))
        pins = self.a.json_lines("trusted")
        self.assertEqual([(p["id"], p["name"]) for p in pins],
                         [(self.b.id, "bob")])
        self.assertRegex(pins[0]["safety_number"], SAFETY_RE)
        # Someone else comes along calling itself bob.
        m = h.Peer(self.index.addr, "bob")
        type(self).m = m
        registered(m)
        self.assertNotEqual(m.id, self.b.id)
        rc, _, err = m.cli("send", "--timeout", "5", self.a.id,
                           "hi, it's bob, new phone")
        self.assertNotEqual(rc, 0, err)
        self.assertFalse(any("new phone" in x.get("body", "")
                             for x in self.a.history("--direct")))
        want = ("key changed for trusted peer bob: pinned %s, offered %s"
                % (self.b.id, m.id))
        h.wait_until(lambda: want in self.a.logtext(), 10,
                     what="the loud log line")
        line = [l for l in self.a.logtext().splitlines() if want in l][0]
        self.assertIn("ERROR", line.upper())
        self.assertGreaterEqual(metric(self.a, "parley_key_changed_total"), 1)
        self.assertGreaterEqual(
            metric(self.a, "parley_key_changed_refused_total"), 1)
        # Marked in the peer listing, both forms.
        rows = {p["id"]: p for p in self.a.json_lines("peers")}
        self.assertEqual(rows[m.id]["trust"], "changed")
        self.assertEqual(rows[self.b.id]["trust"], "trusted")
        self.assertEqual(rows[self.a.id]["trust"], "self")
        human = [l for l in self.a.ok("peers").splitlines() if m.id in l]
        self.assertTrue(human and human[0].rstrip().endswith("KEY CHANGED"),
                        human)
        # Sending to the impostor is refused too, with the same words.
        rc, _, err = self.a.cli("send", m.id, "are you bob?")
        self.assertEqual(rc, 1)
        self.assertIn("key changed for trusted peer bob", err)
        v = self.a.json_lines("verify", m.id)[0]
        self.assertEqual((v["trusted"], v.get("key_changed"), v.get("pinned")),
                         (False, True, self.b.id))
        # The genuine bob still works, both ways.
        self.a.ok("send", self.b.id, "still you?")
        self.b.ok("send", self.a.id, "still me")
        self.assertEqual(self.a.history("--direct")[-1]["body"], "still me")

    def test_02_name_conflicts_and_untrust(self):
        status, text = self.a.api_call("POST", "/v1/trust",
                                       {"peer": self.m.id, "name": "bob"})
        self.assertEqual(status, 409, text)
        self.assertEqual(json.loads(text)["code"], "EEXIST")
        status, text = self.a.api_call("POST", "/v1/untrust",
                                       {"peer": self.m.id})
        self.assertEqual(status, 404, text)
        self.assertEqual(self.a.ok("untrust", self.b.id),
                         "untrusted %s\n" % self.b.id)
        self.assertEqual(self.a.json_lines("trusted"), [])
        # Nothing pinned: the other key is just another peer again.
        self.m.ok("send", self.a.id, "hello from the other bob")
        self.assertEqual(self.a.history("--direct")[-1]["body"],
                         "hello from the other bob")


class Passphrase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=3)

    @classmethod
    def tearDownClass(cls):
        cls.index.stop()

    def passfile(self, text, mode=0o600):
        path = os.path.join(h.tmpdir("parley-pass-"), "pass")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def run_daemon(self, data, *extra, env=None):
        return subprocess.run(
            [os.path.join(h.BIN, "parleyd"), "--data", data, "--index",
             self.index.addr] + list(extra), capture_output=True,
            timeout=60 * h.SLOW, env=env)

    def test_01_encrypted_identity(self):
        data = h.tmpdir("parley-peer-locked-")
        good = self.passfile("correct horse battery staple\n")
        p = h.Peer(self.index.addr, "locked", data=data,
                   extra=["--passphrase-file", good])
        registered(p)
        pid = p.id
        p.stop()
        path = os.path.join(data, "identity.key")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.startswith("parley-key-v1 argon2id13 "), text)
        self.assertIsNone(re.fullmatch(r"[0-9a-f]{64}\n?", text))
        # Wrong passphrase: exit 1, one clear line, no start.
        r = self.run_daemon(data, "--passphrase-file",
                            self.passfile("tr0ub4dor"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"wrong passphrase", r.stderr)
        # No passphrase at all.
        env = {k: v for k, v in os.environ.items()
               if k != "PARLEY_PASSPHRASE"}
        r = self.run_daemon(data, env=env)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"encrypted", r.stderr)
        # A passphrase file others can read is refused.
        r = self.run_daemon(data, "--passphrase-file",
                            self.passfile("correct horse battery staple",
                                          0o644))
        self.assertEqual(r.returncode, 1, r.stderr)
        # The right one, from the environment this time: same identity.
        os.environ["PARLEY_PASSPHRASE"] = "correct horse battery staple"
        try:
            p = h.Peer(self.index.addr, "locked", data=data)
        finally:
            del os.environ["PARLEY_PASSPHRASE"]
        self.assertEqual(p.id, pid)
        registered(p)
        self.assertNotIn(b"correct horse", open(p.log_path, "rb").read())
        p.stop()

    def test_02_encrypt_existing_key(self):
        data = h.tmpdir("parley-peer-plain-")
        p = h.Peer(self.index.addr, "plain", data=data)
        registered(p)
        pid = p.id
        p.stop()
        path = os.path.join(data, "identity.key")
        with open(path) as f:
            seed_hex = f.read().strip()
        self.assertRegex(seed_hex, r"^[0-9a-f]{64}$")
        good = self.passfile("open sesame")
        # A passphrase for a plain key: refused until it is converted.
        r = self.run_daemon(data, "--passphrase-file", good)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"not encrypted", r.stderr)
        r = subprocess.run([os.path.join(h.BIN, "parleyd"),
                            "--encrypt-identity", "--data", data,
                            "--passphrase-file", good],
                           capture_output=True, timeout=60 * h.SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(path, "rb") as f:
            raw = f.read()
        self.assertTrue(raw.startswith(b"parley-key-v1 "))
        self.assertNotIn(seed_hex.encode(), raw)
        self.assertNotIn(bytes.fromhex(seed_hex), raw)
        r = subprocess.run([os.path.join(h.BIN, "parleyd"),
                            "--encrypt-identity", "--data", data,
                            "--passphrase-file", good],
                           capture_output=True, timeout=60 * h.SLOW)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"already encrypted", r.stderr)
        p = h.Peer(self.index.addr, "plain", data=data,
                   extra=["--passphrase-file", good])
        self.assertEqual(p.id, pid)
        registered(p)
        p.stop()


class RateLimit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=3)
        cls.r = h.Peer(cls.index.addr, "receiver",
                       extra=["--peer-rate", "20", "--peer-burst", "20"])
        cls.f = h.Peer(cls.index.addr, "flooder")
        cls.n = h.Peer(cls.index.addr, "neighbour")
        for p in (cls.r, cls.f, cls.n):
            registered(p)
        cls.r.ok("subscribe", "flood")

    @classmethod
    def tearDownClass(cls):
        for p in (cls.r, cls.f, cls.n, cls.index):
            p.stop()

    def publish(self, peer, body, mode="async", timeout_ms=None):
        req = {"topic": "flood", "body": body, "mode": mode}
        if timeout_ms is not None:
            req["timeout_ms"] = timeout_ms
        return peer.api_call("POST", "/v1/publish", req)

    def test_01_flood_limited_neighbour_unaffected(self):
        # Fire-and-forget flood: over the limit is dropped and counted.
        for i in range(300):
            status, text = self.publish(self.f, "spam %d" % i)
            self.assertEqual(status, 200, text)
        h.wait_until(lambda: (metric(self.r, "parley_rate_limited_total",
                                     'mode="async"') or 0) > 0, 10,
                     what="async messages limited")
        # The neighbour's acked messages all arrive, none refused.
        for i in range(5):
            rc, out, err = self.n.cli("publish", "--ack", "flood",
                                      "neighbour %d" % i)
            self.assertEqual(rc, 0, err)
        got = [m["body"] for m in self.r.history("flood", "--from",
                                                 self.n.id)]
        self.assertEqual(got, ["neighbour %d" % i for i in range(5)])
        limited = metric(self.r, "parley_peer_rate_limited_total",
                         'peer="%s"' % self.f.id)
        self.assertGreater(limited, 0)
        self.assertIsNone(metric(self.r, "parley_peer_rate_limited_total",
                                 'peer="%s"' % self.n.id))
        stored = len(self.r.history("flood", "--from", self.f.id))
        self.assertLess(stored, 300)
        self.assertEqual(stored + limited, 300)

    def test_02_acked_over_the_limit_is_delayed_not_lost(self):
        time.sleep(2)  # let the bucket fill up again
        before = len(self.r.history("flood", "--from", self.f.id))
        results = []

        def one(i):
            results.append(self.publish(self.f, "acked %d" % i, "ack", 0))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 60)
        # Queued at the publisher for the receiver: visible per recipient.
        h.wait_until(lambda: (metric(self.f, "parley_peer_outbox",
                                     'peer="%s"' % self.r.id) or 0) > 0
                     or outbox(self.f) == 0, 10, what="outbox visible")
        h.wait_until(lambda: (metric(self.r, "parley_rate_limited_total",
                                     'mode="ack"') or 0) > 0, 10,
                     what="acked messages answered ELIMIT")
        h.wait_until(lambda: len(self.r.history("flood", "--from",
                                                self.f.id)) == before + 60,
                     60, what="every acked message delivered")
        h.wait_until(lambda: outbox(self.f) == 0, 30, what="outbox drained")
        self.assertGreater(metric(self.f, "parley_slowed_total"), 0)
        bodies = {m["body"] for m in self.r.history("flood", "--from",
                                                     self.f.id)}
        self.assertTrue({"acked %d" % i for i in range(60)} <= bodies)
        self.assertIsNotNone(metric(self.f, "parley_sendq_bytes"))


if __name__ == "__main__":
    h.main()
