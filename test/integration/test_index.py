#!/usr/bin/env python3
"""Integration tests for parley-index: the real binary on 127.0.0.1.

PARLEY_BIN names the build directory holding parley-index (ctest sets it).
Each test starts its own daemon on ephemeral ports with a fresh data
directory and stops it with SIGTERM.  Peer-protocol tests that need a real
peer (REGISTER, WATCH, expiry) run only when parleyd was built beside
parley-index; the parleyd suite covers them end to end as well.

Prints "N passed, M failed" last and exits non-zero on failure.
"""
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("PARLEY_BIN", os.path.join(os.getcwd(), "build"))
INDEX = os.path.join(BIN, "parley-index")
PARLEYD = os.path.join(BIN, "parleyd")

LINE_RE = re.compile(
    r"^parley-index listening on (\S+):(\d+) id=([a-z2-7]{52}) http=(\S+)$")
# One Prometheus text-format sample line.
SAMPLE_RE = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\""
    r"(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\")*\})? "
    r"(-?[0-9.]+(e[+-]?[0-9]+)?|[+-]Inf|NaN)$")


def read_line(proc, timeout):
    """Reads one stdout line from proc within timeout seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no start-up line within %.0f s" % timeout)
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError("parley-index exited before its start-up "
                                 "line (rc=%s)" % proc.poll())
        buf += chunk
    return buf.split(b"\n", 1)[0].decode()


class Index:
    """A running parley-index."""

    def __init__(self, datadir, http=True, extra=()):
        self.datadir = datadir
        self._token = None
        args = [INDEX, "--listen", "127.0.0.1:0", "--data", datadir]
        if http:
            args += ["--http", "127.0.0.1:0"]
        args += list(extra)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        try:
            self.line = read_line(self.proc, 15)
        except Exception:
            self.kill()
            raise
        m = LINE_RE.match(self.line)
        if not m:
            self.kill()
            raise AssertionError("bad start-up line: %r" % self.line)
        self.host, self.port, self.id, self.http = (
            m.group(1), int(m.group(2)), m.group(3), m.group(4))
        self.http_port = (int(self.http.rsplit(":", 1)[1])
                          if self.http != "-" else None)

    @property
    def token(self):
        """An admin bearer token, minted offline from the data directory."""
        if self._token is None:
            p = subprocess.run([INDEX, "token", "create", "--data",
                                self.datadir, "--role", "admin", "--ttl",
                                "1h"], capture_output=True, timeout=30)
            if p.returncode != 0:
                raise AssertionError("token create: %r" % p.stderr)
            self._token = p.stdout.decode().strip()
        return self._token

    def get(self, path, method="GET", timeout=5, body=None, token=None):
        """token None: the admin token; "": no Authorization header."""
        c = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                       timeout=timeout)
        tok = self.token if token is None else token
        try:
            c.request(method, path, body=body,
                      headers={"Authorization": "Bearer " + tok} if tok
                      else {})
            r = c.getresponse()
            return r.status, r.getheader("Content-Type") or "", r.read()
        finally:
            c.close()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals the daemon; returns (exit code, seconds taken)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("parley-index ignored signal %d" % sig)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None


def wait_closed(sock, timeout):
    """True if the server closes sock (EOF or reset) within timeout."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True
    return False


class Base(unittest.TestCase):
    def setUp(self):
        if not os.access(INDEX, os.X_OK):
            self.fail("no parley-index in %s (set PARLEY_BIN)" % BIN)
        self.tmp = tempfile.mkdtemp(prefix="parley-index-test-")
        self.procs = []

    def tearDown(self):
        problems = []
        for p in self.procs:
            if p.alive():
                # Every daemon ends with SIGTERM, so each test also checks a
                # clean shutdown (and, in a sanitizer build, leaks).
                try:
                    rc, _ = p.stop()
                    if rc != 0:
                        problems.append("exit %d on SIGTERM" % rc)
                except AssertionError as e:
                    problems.append(str(e))
            log = p.log()
            for marker in ("AddressSanitizer", "LeakSanitizer",
                           "runtime error:"):
                if marker in log:
                    problems.append("sanitizer report:\n" + log[-4000:])
                    break
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            self.fail("; ".join(problems))

    def start(self, sub="idx", **kw):
        ix = Index(os.path.join(self.tmp, sub), **kw)
        self.procs.append(ix)
        return ix


class StartupTest(Base):
    def test_line_index_json_and_modes(self):
        ix = self.start()
        self.assertEqual(ix.host, "127.0.0.1")
        self.assertGreater(ix.port, 0)
        d = os.path.join(self.tmp, "idx")
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        self.assertEqual(
            stat.S_IMODE(os.stat(os.path.join(d, "identity.key")).st_mode),
            0o600)
        with open(os.path.join(d, "index.json")) as f:
            j = json.load(f)
        self.assertEqual(j["listen"], "127.0.0.1:%d" % ix.port)
        self.assertEqual(j["http"], ix.http)
        self.assertEqual(j["id"], ix.id)
        self.assertEqual(j["pid"], ix.proc.pid)
        # The token signing key was made on first start, private.
        self.assertEqual(
            stat.S_IMODE(os.stat(os.path.join(d, "jwt-keys.json")).st_mode),
            0o600)

    def test_no_http(self):
        ix = self.start(http=False)
        self.assertEqual(ix.http, "-")
        with open(os.path.join(self.tmp, "idx", "index.json")) as f:
            self.assertIsNone(json.load(f)["http"])
        self.assertEqual(ix.stop()[0], 0)

    def test_restart_keeps_id(self):
        ix = self.start()
        first = ix.id
        rc, took = ix.stop()
        self.assertEqual(rc, 0)
        ix2 = self.start()
        self.assertEqual(ix2.id, first)
        status, _, body = ix2.get("/v1/status")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["id"], first)

    def test_sigterm_and_sigint_exit_0_quickly(self):
        ix = self.start()
        rc, took = ix.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, ix.log())
        self.assertLess(took, 3.0)
        ix = self.start()
        rc, took = ix.stop(signal.SIGINT)
        self.assertEqual(rc, 0, ix.log())
        self.assertLess(took, 3.0)

    def test_port_in_use_fails(self):
        ix = self.start()
        p = subprocess.run([INDEX, "--listen", "127.0.0.1:%d" % ix.port,
                            "--data", os.path.join(self.tmp, "other")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=15)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"cannot start", p.stderr)


class FlagsTest(Base):
    def run_flags(self, *args):
        return subprocess.run([INDEX] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=10)

    def test_bad_flags_exit_2_with_one_line(self):
        data = os.path.join(self.tmp, "d")
        cases = [
            ["--bogus"],
            ["--data", data],                                  # no --listen
            ["--listen", "127.0.0.1:0"],                       # no --data
            ["--listen", "nonsense", "--data", data],
            ["--listen", "127.0.0.1:99999", "--data", data],
            ["--listen", "127.0.0.1:0", "--data", data, "--lease", "abc"],
            ["--listen", "127.0.0.1:0", "--data", data, "--lease", "0"],
            ["--listen", "127.0.0.1:0", "--data", data, "--max-subs", "0"],
            ["--listen", "127.0.0.1:0", "--data", data, "--max-frame", "10"],
            ["--listen", "127.0.0.1:0", "--data", data,
             "--log-level", "loud"],
            ["--listen", "127.0.0.1:0", "--data", data, "--http", "x"],
            ["--listen", "127.0.0.1:0", "--data"],              # no value
        ]
        for args in cases:
            with self.subTest(args=args):
                p = self.run_flags(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(p.stdout, b"")
                self.assertEqual(p.stderr.count(b"\n"), 1, p.stderr)
        self.assertFalse(os.path.exists(data))

    def test_help(self):
        p = self.run_flags("--help")
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        for flag in ("--listen", "--http", "--data", "--lease", "--name",
                     "--log-level", "--max-subs", "--max-frame",
                     "--max-links"):
            self.assertIn(flag, out)


class HttpTest(Base):
    def setUp(self):
        super().setUp()
        self.ix = self.start(extra=["--lease", "7"])

    def test_status(self):
        status, ctype, body = self.ix.get("/v1/status")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("application/json"), ctype)
        j = json.loads(body)
        self.assertEqual(j["id"], self.ix.id)
        self.assertEqual(j["listen"], "127.0.0.1:%d" % self.ix.port)
        self.assertEqual(j["http"], self.ix.http)
        self.assertEqual(j["peers"], 0)
        self.assertEqual(j["topics"], 0)
        self.assertEqual(j["lease_ms"], 7000)
        self.assertIsInstance(j["uptime_ms"], int)
        self.assertGreaterEqual(j["uptime_ms"], 0)
        self.assertRegex(j["version"], r"^\d+\.\d+\.\d+$")

    def test_metrics_text_format(self):
        status, ctype, body = self.ix.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        text = body.decode()
        self.assertTrue(text.endswith("\n"))
        typed, samples = {}, {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.assertIn(kind, ("counter", "gauge", "histogram"))
                self.assertNotIn(name, typed, "TYPE twice: " + name)
                typed[name] = kind
            elif line.startswith("# HELP "):
                continue
            else:
                m = SAMPLE_RE.match(line)
                self.assertIsNotNone(m, "bad sample line: %r" % line)
                self.assertIn(m.group(1), typed, "untyped: " + line)
                samples[m.group(1) + (m.group(2) or "")] = float(m.group(4))
        self.assertEqual(samples["parley_index_peers"], 0)
        self.assertEqual(samples["parley_index_topics"], 0)
        self.assertEqual(samples["parley_index_subscriptions"], 0)
        self.assertEqual(samples["parley_index_links_open"], 0)
        self.assertEqual(samples["parley_index_watches"], 0)
        for name in ("parley_index_registrations_total",
                     "parley_index_expiries_total",
                     "parley_index_heartbeats_total",
                     "parley_index_errors_total",
                     "parley_net_bytes_received_total",
                     "parley_net_bytes_sent_total",
                     "parley_net_frames_received_total",
                     "parley_net_frames_sent_total",
                     "parley_net_handshakes_failed_total",
                     "parley_net_protocol_errors_total"):
            self.assertEqual(typed.get(name), "counter", name)
        self.assertGreater(samples["process_resident_memory_bytes"], 1e5)
        self.assertGreaterEqual(samples["process_open_fds"], 3)
        self.assertEqual(typed.get("parley_index_requests_total"), "counter")
        # This request was counted before the body was built.
        self.assertGreaterEqual(
            samples['parley_http_requests_total{route="/metrics"}'], 1)

    def test_empty_lists(self):
        for path in ("/v1/peers", "/v1/topics"):
            status, ctype, body = self.ix.get(path)
            self.assertEqual(status, 200, path)
            self.assertTrue(ctype.startswith("application/x-ndjson"), ctype)
            self.assertEqual(body, b"")

    def test_404_and_405_are_json(self):
        for path in ("/", "/nope", "/v1/status/x", "/metrics?x=1x",
                     "/v1/cluster", "/v1/cluster/add"):
            status, ctype, body = self.ix.get(path)
            if path.startswith("/metrics?"):
                self.assertEqual(status, 200)  # a query does not change it
                continue
            self.assertEqual(status, 404, path)
            self.assertTrue(ctype.startswith("application/json"), ctype)
            j = json.loads(body)
            self.assertEqual(j["code"], "ENOTFOUND")
            self.assertIsInstance(j["error"], str)
        for method in ("POST", "DELETE", "PUT"):
            status, ctype, body = self.ix.get("/v1/status", method=method,
                                              body=b"{}")
            self.assertEqual(status, 405, method)
            j = json.loads(body)
            self.assertIn("error", j)
            self.assertIn("code", j)

    def test_slow_http_client_does_not_block(self):
        slow = socket.create_connection(("127.0.0.1", self.ix.http_port))
        try:
            slow.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow:")
            time.sleep(0.2)
            t0 = time.monotonic()
            status, _, _ = self.ix.get("/v1/status", timeout=3)
            self.assertEqual(status, 200)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            slow.close()


class PeerPortTest(Base):
    def setUp(self):
        super().setUp()
        self.ix = self.start()

    def metric(self, name):
        _, _, body = self.ix.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no metric " + name)

    def test_garbage_is_dropped_and_daemon_survives(self):
        payloads = [os.urandom(4096),
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"PRLY\x01" + b"\xff\xff" + os.urandom(70000),
                    b"PRLY\x09"]
        for data in payloads:
            with self.subTest(first=data[:8]):
                s = socket.create_connection(("127.0.0.1", self.ix.port),
                                             timeout=5)
                try:
                    try:
                        s.sendall(data)
                    except (ConnectionResetError, BrokenPipeError):
                        pass
                    self.assertTrue(wait_closed(s, 7),
                                    "garbage connection left open")
                finally:
                    s.close()
                self.assertTrue(self.ix.alive(), self.ix.log())
                status, _, _ = self.ix.get("/v1/status")
                self.assertEqual(status, 200)
        self.assertEqual(self.metric("parley_index_links_open"), 0)

    def test_half_open_connection_does_not_block_others(self):
        idle = socket.create_connection(("127.0.0.1", self.ix.port))
        try:
            time.sleep(0.2)
            t0 = time.monotonic()
            s = socket.create_connection(("127.0.0.1", self.ix.port),
                                         timeout=5)
            s.sendall(b"NOPE!" * 10)
            self.assertTrue(wait_closed(s, 3))
            s.close()
            self.assertLess(time.monotonic() - t0, 3.0)
            status, _, _ = self.ix.get("/v1/status", timeout=3)
            self.assertEqual(status, 200)
            # The silent one is dropped at the handshake timeout (5 s).
            self.assertTrue(wait_closed(idle, 10),
                            "silent connection never timed out")
        finally:
            idle.close()
        self.assertTrue(self.ix.alive())

    def test_many_connections_then_clean_shutdown(self):
        socks = [socket.create_connection(("127.0.0.1", self.ix.port))
                 for _ in range(50)]
        for i, s in enumerate(socks):
            if i % 2:
                s.sendall(os.urandom(64))
        status, _, _ = self.ix.get("/v1/status")
        self.assertEqual(status, 200)
        rc, took = self.ix.stop()
        self.assertEqual(rc, 0, self.ix.log())
        self.assertLess(took, 3.0)
        for s in socks:
            s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class WithPeerTest(Base):
    """End to end with a real parleyd, when it was built."""

    def setUp(self):
        super().setUp()
        if not os.access(PARLEYD, os.X_OK):
            self.skipTest("parleyd not built")
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        super().tearDown()

    def start_peer(self, ix, name, sub):
        p = subprocess.Popen(
            [PARLEYD, "--data", os.path.join(self.tmp, sub), "--index",
             "127.0.0.1:%d" % ix.port, "--name", name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.peers.append(p)
        line = read_line(p, 15)
        m = re.search(r"id=([a-z2-7]{52})", line)
        self.assertIsNotNone(m, line)
        return p, m.group(1)

    def wait_for(self, fn, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        self.fail("timed out waiting for " + what)

    def peers_listed(self, ix):
        _, _, body = ix.get("/v1/peers")
        return [json.loads(l) for l in body.decode().splitlines() if l]

    def test_register_list_and_expire(self):
        ix = self.start(extra=["--lease", "1"])
        p, pid = self.start_peer(ix, "alice", "alice")
        peers = self.wait_for(lambda: self.peers_listed(ix), 10,
                              "alice to register")
        self.assertEqual(len(peers), 1)
        self.assertEqual(peers[0]["id"], pid)
        self.assertEqual(peers[0]["name"], "alice")
        self.assertRegex(peers[0]["addr"], r"^127\.0\.0\.1:\d+$")
        self.assertGreater(peers[0]["last_seen"], 0)
        # Heartbeats keep it alive past several leases.
        time.sleep(2.5)
        self.assertEqual(len(self.peers_listed(ix)), 1)
        p.send_signal(signal.SIGKILL)
        p.wait(5)
        self.wait_for(lambda: self.peers_listed(ix) == [], 5,
                      "alice to expire")
        _, _, body = ix.get("/metrics")
        self.assertIn("parley_index_expiries_total 1", body.decode())

    def test_restart_restores_peers_with_a_fresh_lease(self):
        ix = self.start(extra=["--lease", "30"])
        p, pid = self.start_peer(ix, "bob", "bob")
        self.wait_for(lambda: self.peers_listed(ix), 10, "bob to register")
        p.send_signal(signal.SIGKILL)
        p.wait(5)
        rc, _ = ix.stop()
        self.assertEqual(rc, 0)
        # Back with a 2 s lease: bob is restored from disk, kept for one
        # full lease although nobody heard from him, then expired.
        t0 = time.monotonic()
        ix2 = self.start(extra=["--lease", "2"])
        self.assertEqual(ix2.id, ix.id)
        peers = self.peers_listed(ix2)
        self.assertEqual([q["id"] for q in peers], [pid])
        self.assertEqual(peers[0]["name"], "bob")
        time.sleep(max(0.0, 1.5 - (time.monotonic() - t0)))
        self.assertEqual(len(self.peers_listed(ix2)), 1,
                         "expired before its fresh lease ran out")
        self.wait_for(lambda: self.peers_listed(ix2) == [], 5,
                      "bob to expire after restart")
        _, _, body = ix2.get("/metrics")
        self.assertIn("parley_index_expiries_total 1", body.decode())


if __name__ == "__main__":
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(
        suite)
    bad = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    passed = result.testsRun - bad - skipped
    print("%d passed, %d failed, %d skipped" % (passed, bad, skipped))
    sys.exit(1 if bad or result.testsRun == 0 else 0)
