"""Bad input against the real daemons: garbage bytes on every port, a
handshake left half-finished, slow and malformed HTTP clients, wrong API
tokens, oversize messages and frames, bad JSON.  After each case, normal
traffic must still flow and the daemons must still be alive.
"""
import json
import os
import socket
import time
import unittest

import harness as h


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.index = h.Index(lease=5)
        cls.a = h.Peer(cls.index.addr, "a")
        cls.b = h.Peer(cls.index.addr, "b", extra=["--max-message", "2000"])
        for p in (cls.a, cls.b):
            h.wait_until(lambda p=p: json.loads(p.ok("status", "--json"))
                         ["index"]["connected"], what=p.name)
        cls.b.ok("subscribe", "ok")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        for p in (cls.a, cls.b, cls.index):
            p.stop()

    def traffic_flows(self):
        """Publishes with --ack and checks it is stored: the network works."""
        type(self).n += 1
        body = "still-fine-%d" % self.n
        rc, out, err = self.a.cli("publish", "--ack", "--timeout", "10", "ok",
                                  body)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.b.history("ok")[-1]["body"], body)
        for p in (self.a, self.b, self.index):
            self.assertTrue(p.alive(), p.name)

    def test_garbage_on_every_port(self):
        ports = [self.index.addr, self.a.addr, self.b.addr]
        for addr in ports:
            h.raw_connect(addr, os.urandom(4096))
            h.raw_connect(addr, b"PRLY\x01" + os.urandom(300))
            h.raw_connect(addr, b"GET / HTTP/1.1\r\n\r\n")
            h.raw_connect(addr, b"PRLY\x09")  # wrong version
        # Garbage to the HTTP ports too.
        for addr in (self.a.api, self.index.http):
            h.raw_connect(addr, os.urandom(2048))
            h.raw_connect(addr, b"\x16\x03\x01\x02\x00" + os.urandom(100))
        self.traffic_flows()

    def test_half_finished_handshake(self):
        socks = [h.raw_connect(self.a.addr, b"PRLY\x01", close=False)
                 for _ in range(5)]
        socks += [h.raw_connect(self.index.addr, b"", close=False)
                  for _ in range(5)]
        self.traffic_flows()  # others are served meanwhile
        # The daemon drops them after its handshake timeout (5 s).
        time.sleep(6 * h.SLOW)
        for s in socks:
            s.settimeout(5 * h.SLOW)
            closed = False
            try:
                while s.recv(4096):  # the preamble may come first
                    pass
                closed = True  # EOF
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                closed = False
            s.close()
            self.assertTrue(closed, "half-open link was not dropped")
        self.traffic_flows()

    def test_slow_http_client(self):
        s = h.raw_connect(self.a.api, b"POST /v1/publish HTTP/1.1\r\nHost: x\r\n",
                          close=False)
        self.traffic_flows()
        s.close()

    def test_wrong_token(self):
        status, text = self.a.api_call("GET", "/v1/status", token="0" * 64)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(text)["code"], "EDENIED")
        status, _ = self.a.api_call("GET", "/v1/status", token="")
        self.assertEqual(status, 401)
        status, _ = self.a.api_call("GET", "/v1/status",
                                    token=self.a.token()[:-1])
        self.assertEqual(status, 401)
        # The CLI with a tampered api.json says so and exits non-zero.
        path = os.path.join(self.a.data, "api.json")
        with open(path) as f:
            good = f.read()
        bad = json.loads(good)
        bad["token"] = "f" * 64
        with open(path, "w") as f:
            json.dump(bad, f)
        try:
            rc, _, err = self.a.cli("status")
            self.assertEqual(rc, 1)
            self.assertIn("token", err)
        finally:
            with open(path, "w") as f:
                f.write(good)
        self.traffic_flows()

    def test_bad_api_requests(self):
        cases = [
            ("POST", "/v1/publish", b"{not json"),
            ("POST", "/v1/publish", b"[]"),
            ("POST", "/v1/publish", json.dumps({"topic": "ok"}).encode()),
            ("POST", "/v1/publish", json.dumps({"topic": "", "body": "x"}).encode()),
            ("POST", "/v1/publish", json.dumps({"topic": "a b", "body": "x"}).encode()),
            ("POST", "/v1/publish", json.dumps({"topic": "ok", "body": "x",
                                                "mode": "maybe"}).encode()),
            ("POST", "/v1/publish", json.dumps({"topic": "ok",
                                                "body_base64": "!!"}).encode()),
            ("POST", "/v1/send", json.dumps({"to": "x", "body": "x"}).encode()),
            ("GET", "/v1/messages?since=yesterday", None),
            ("GET", "/v1/messages?from=nobody", None),
        ]
        for method, path, body in cases:
            status, text = self.a.api_call(method, path, raw=body)
            self.assertEqual(status, 400, (path, body, text))
            self.assertIn("error", json.loads(text))
        self.assertEqual(self.a.api_call("GET", "/nope")[0], 404)
        self.assertEqual(self.a.api_call("DELETE", "/v1/status")[0], 405)
        # Oversize request body: refused from its Content-Length, before
        # the body is read (the server then closes the connection).
        s = h.raw_connect(self.a.api, (
            "POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            "%s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n{\"topic\":" % (
                self.a.token(), 3 * 1024 * 1024)).encode(), close=False)
        s.settimeout(10 * h.SLOW)
        reply = s.recv(4096).decode(errors="replace")
        s.close()
        self.assertTrue(reply.startswith("HTTP/1.1 413"), reply)
        self.traffic_flows()

    def test_oversize_message(self):
        # a accepts 1 MiB bodies, b only 2000 bytes: b refuses, a reports it.
        rc, out, err = self.a.cli("publish", "--ack", "--timeout", "5", "ok",
                                  "y" * 5000)
        self.assertNotEqual(rc, 0)
        self.assertFalse(any(len(x.get("body", "")) == 5000
                             for x in self.b.history("ok")))
        # Over a's own limit: refused locally.
        rc, _, err = self.a.cli("publish", "ok", "-",
                                stdin=b"z" * (1024 * 1024 + 1))
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.strip().splitlines()), 1)
        self.traffic_flows()


if __name__ == "__main__":
    h.main()
