"""Private topics end to end on real processes (docs/SECURITY.md,
"Private topics"; docs/PROTOCOL.md section 16).

Covers: `parley topic create NAME --private` makes the caller the owner;
grant / members; a member receives and reads messages while its disk, the
publisher's disk and the index's disk hold no plaintext; a non-member can
neither subscribe nor publish (refused by the index, counted in /metrics)
while members keep talking; revoke rotates the key: the revoked peer is
unsubscribed, holds no key of the new epoch and cannot re-subscribe, and
a message published after the revoke is sealed under that epoch; a member
that was offline during the rotation fetches the new key when it returns
and reads what was published meanwhile (acknowledged delivery); only the
owner may change the topic.
"""
import json
import os
import sqlite3
import time
import unittest

import harness as h


def registered(p):
    h.wait_until(lambda: json.loads(p.ok("status", "--json"))
                 ["index"]["connected"], what="%s registered" % p.name)


def all_files_bytes(data_dir):
    out = b""
    for root, _, files in os.walk(data_dir):
        for n in files:
            with open(os.path.join(root, n), "rb") as f:
                out += f.read()
    return out


def db(peer):
    c = sqlite3.connect(os.path.join(peer.data, "store.db"), timeout=30)
    c.execute("PRAGMA busy_timeout = 30000")
    return c


def bodies(peer, topic):
    return [m.get("body") for m in peer.history(topic)]


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class PrivateTopics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=3)
        cls.owner = h.Peer(cls.index.addr, "owner")
        cls.m1 = h.Peer(cls.index.addr, "member1")
        cls.m2 = h.Peer(cls.index.addr, "member2")
        cls.x = h.Peer(cls.index.addr, "outsider")
        for p in (cls.owner, cls.m1, cls.m2, cls.x):
            registered(p)
        cls.topic = "ops-secret"

    @classmethod
    def tearDownClass(cls):
        for p in (cls.owner, cls.m1, cls.m2, cls.x, cls.index):
            if p.alive():
                p.stop()

    def members(self, peer):
        return json.loads(peer.ok("topic", "members", self.topic, "--json"))

    def test_01_create_grant_members(self):
        out = self.owner.ok("topic", "create", self.topic, "--private")
        self.assertIn("created private topic %s" % self.topic, out)
        info = self.members(self.owner)
        self.assertEqual(info["owner"], self.owner.id)
        self.assertEqual(info["members"], [self.owner.id])
        self.assertEqual(info["epoch"], 1)
        self.assertEqual(info["keys_held"], [1])
        # create twice: refused by the index.
        rc, _, err = self.owner.cli("topic", "create", self.topic,
                                    "--private")
        self.assertEqual(rc, 1, err)
        for m in (self.m1, self.m2):
            out = self.owner.ok("topic", "grant", self.topic, m.id)
            self.assertIn("granted %s" % m.id, out)
        info = self.members(self.owner)
        self.assertEqual(sorted(info["members"]),
                         sorted([self.owner.id, self.m1.id, self.m2.id]))
        # Members see the list and hold the key once it arrived.
        h.wait_until(lambda: self.members(self.m1)["keys_held"] == [1],
                     what="member1 holds the epoch-1 key")
        human = self.m1.ok("topic", "members", self.topic)
        self.assertIn("%s  (owner)" % self.owner.id, human)
        # Usage errors are caught before the daemon is asked.
        for args in (["topic", "create", self.topic],
                     ["topic", "grant", self.topic],
                     ["topic", "frob", self.topic],
                     ["topic", "members", self.topic, "--private"]):
            rc, _, err = self.owner.cli(*args)
            self.assertEqual(rc, 2, (args, err))

    def test_02_members_read_disks_hold_ciphertext(self):
        for p in (self.owner, self.m1, self.m2):
            p.ok("subscribe", self.topic)
        secret = "launch-code-zulu-9931"
        self.owner.ok("publish", self.topic, secret, "--ack")
        for m in (self.m1, self.m2):
            h.wait_until(lambda m=m: secret in bodies(m, self.topic),
                         what="%s reads the message" % m.name)
            got = [x for x in m.history(self.topic) if x.get("body") == secret]
            self.assertTrue(got[0]["private"])
            self.assertEqual(got[0]["from"], self.owner.id)
        self.assertIn(secret, bodies(self.owner, self.topic))
        # A member publishes too.
        self.m1.ok("publish", self.topic, "reply-from-m1", "--ack")
        h.wait_until(lambda: "reply-from-m1" in bodies(self.owner, self.topic),
                     what="owner reads member1")
        for p in (self.owner, self.m1, self.m2, self.index):
            self.assertNotIn(secret.encode(), all_files_bytes(p.data),
                             "plaintext on %s's disk" % p.name)

    def test_03_non_member_refused_honest_traffic_flows(self):
        rc, _, err = self.x.cli("subscribe", self.topic)
        self.assertEqual(rc, 1, err)
        self.assertIn("denied", err)
        status, text = self.x.api_call("GET", "/v1/subscriptions")
        self.assertNotIn(self.topic, text)
        rc, _, err = self.x.cli("publish", self.topic, "spoofed", "--ack")
        self.assertEqual(rc, 1, err)
        rc, _, err = self.x.cli("topic", "members", self.topic)
        self.assertEqual(rc, 1, err)
        # Not the owner: no grants, even for a member.
        rc, _, err = self.m1.cli("topic", "grant", self.topic, self.x.id)
        self.assertEqual(rc, 1, err)
        self.assertIn("owner", err)
        self.owner.ok("publish", self.topic, "still-flowing", "--ack")
        h.wait_until(lambda: "still-flowing" in bodies(self.m1, self.topic),
                     what="member1 still receives")
        self.assertNotIn("spoofed", bodies(self.m1, self.topic))
        metrics = self.index.get("/metrics")
        self.assertGreaterEqual(
            metric(metrics, "parley_index_acl_refused_total"), 3)
        self.assertEqual(metric(metrics, "parley_index_private_topics"), 1)

    def test_04_revoke_rotates_offline_member_catches_up(self):
        # member2 goes offline; member1 is revoked while it is away.
        self.m2.stop()
        out = self.owner.ok("topic", "revoke", self.topic, self.m1.id)
        self.assertIn("epoch 2", out)
        info = self.members(self.owner)
        self.assertEqual(info["epoch"], 2)
        self.assertNotIn(self.m1.id, info["members"])
        after = "after-revoke-tango-5577"
        # Acknowledged: member2 gets it from the outbox when it returns.
        self.owner.ok("publish", self.topic, after)
        # The revoked member is unsubscribed, gets nothing new, cannot come
        # back and holds no key of epoch 2.
        time.sleep(1.0 * h.SLOW)
        self.assertNotIn(after, bodies(self.m1, self.topic))
        rc, _, err = self.m1.cli("subscribe", self.topic)
        self.assertEqual(rc, 1, err)
        with db(self.m1) as c:
            epochs = [r[0] for r in c.execute(
                "SELECT epoch FROM topic_keys WHERE topic = ?",
                (self.topic,))]
        self.assertEqual(epochs, [1])
        # The message is sealed under epoch 2 (byte 1..4 of the body),
        # as the owner's own store shows.
        with db(self.owner) as c:
            body = c.execute(
                "SELECT body FROM messages WHERE channel = ? "
                "ORDER BY seq DESC LIMIT 1", (self.topic,)).fetchone()[0]
        self.assertEqual(int.from_bytes(body[1:5], "big"), 2)
        self.assertNotIn(after.encode(), body)
        # member2 returns: fetches the epoch-2 key and reads the message.
        self.m2.restart()
        registered(self.m2)
        h.wait_until(lambda: 2 in self.members(self.m2)["keys_held"],
                     what="member2 fetched the epoch-2 key")
        self.owner.ok("publish", self.topic, "welcome-back", "--ack")
        h.wait_until(lambda: "welcome-back" in bodies(self.m2, self.topic),
                     timeout=20, what="member2 reads after its return")
        h.wait_until(lambda: after in bodies(self.m2, self.topic),
                     timeout=20, what="member2 reads what it missed")

    def test_05_rotate_and_regrant(self):
        out = self.owner.ok("topic", "rotate", self.topic)
        self.assertIn("epoch 3", out)
        h.wait_until(lambda: 3 in self.members(self.m2)["keys_held"],
                     what="member2 holds epoch 3")
        self.owner.ok("topic", "grant", self.topic, self.m1.id)
        h.wait_until(lambda: 3 in self.members(self.m1)["keys_held"],
                     what="re-granted member holds epoch 3")
        # Epoch 2 stays unknown to it: what it missed stays sealed.
        self.assertNotIn(2, self.members(self.m1)["keys_held"])
        self.m1.ok("subscribe", self.topic)
        self.owner.ok("publish", self.topic, "epoch-three", "--ack")
        h.wait_until(lambda: "epoch-three" in bodies(self.m1, self.topic),
                     what="re-granted member reads epoch 3")
        # The outsider, refused in test_03, is granted: its next publish
        # finds the subscribers (the refused route is watched again).
        self.owner.ok("topic", "grant", self.topic, self.x.id)
        h.wait_until(lambda: 3 in self.members(self.x)["keys_held"],
                     what="the new member holds epoch 3")
        self.x.ok("publish", self.topic, "from-the-new-member", "--ack")
        h.wait_until(lambda: "from-the-new-member" in bodies(self.m2,
                                                              self.topic),
                     what="a member reads the new member")


class PrivateTopicsCluster(unittest.TestCase):
    """Grants and key blobs are replicated: after the leader is killed,
    the new leader still enforces the access list and serves the keys."""

    def test_grants_survive_failover(self):
        cluster = h.Cluster(3, lease=3)
        peers = []
        try:
            cluster.wait_leader()
            owner = h.Peer(cluster.index_arg(), "c-owner")
            member = h.Peer(cluster.index_arg(), "c-member")
            outsider = h.Peer(cluster.index_arg(), "c-outsider")
            peers = [owner, member, outsider]
            for p in peers:
                registered(p)
            owner.ok("topic", "create", "fleet", "--private")
            owner.ok("topic", "grant", "fleet", member.id)
            leader = cluster.wait_leader()
            leader.kill()
            cluster.wait_leader(exclude=(leader.node_id,))
            for p in peers:
                registered(p)
            info = json.loads(member.ok("topic", "members", "fleet",
                                        "--json"))
            self.assertEqual(sorted(info["members"]),
                             sorted([owner.id, member.id]))
            self.assertEqual(info["keys_held"], [1])
            member.ok("subscribe", "fleet")
            rc, _, err = outsider.cli("subscribe", "fleet")
            self.assertEqual(rc, 1, err)
            owner.ok("publish", "fleet", "after-failover", "--ack")
            h.wait_until(lambda: "after-failover" in bodies(member, "fleet"),
                         what="member reads after the failover")
            # A revoke on the new leader rotates as before.
            out = owner.ok("topic", "revoke", "fleet", member.id)
            self.assertIn("epoch 2", out)
        finally:
            for p in peers:
                if p.alive():
                    p.stop()
            cluster.stop_all()


if __name__ == "__main__":
    h.main()
