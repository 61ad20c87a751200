#!/usr/bin/env python3
"""Contract test of the `parley` CLI against a mock of the parleyd HTTP API.

This is NOT a test of the daemon: a small standard-library HTTP server plays
the part of parleyd as docs/API.md describes it, records every request the
CLI makes, and answers with canned objects.  The tests pin down, for every
command and flag combination, the exact method, path, query, body and
Authorization header the CLI sends, the exact human and --json output, and
the exit status and single stderr line of every failure.  The real daemon
together with the CLI is tested elsewhere.

Run: PARLEY_BIN=<build dir holding `parley`> python3 test_cli_contract.py
Prints "N passed, M failed" last; exits non-zero on any failure.
"""

import base64
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "ab" * 32
ME = base64.b32encode(bytes(range(32))).decode().lower().rstrip("=")
PEER_A = base64.b32encode(bytes(range(100, 132))).decode().lower().rstrip("=")
PEER_B = base64.b32encode(bytes(range(200, 232))).decode().lower().rstrip("=")
MSG_ID = "9f2c" + "0" * 28
TS = 1795514400123  # 2026-11-24T10:00:00.123Z
TS_TEXT = "2026-11-24T10:00:00.123Z"
ELL = "\u2026"  # …
ARROW = "\u2192"  # →


def find_binary():
    path = os.environ.get("PARLEY_BIN", "")
    if os.path.isdir(path):
        path = os.path.join(path, "parley")
    return path


PARLEY = find_binary()


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout tests) is not an error here


def json_lines(out):
    """Parses --json output: every line one compact JSON object.  (Escapes
    may differ from the daemon's bytes, e.g. \\u001B for \\u001b, so objects
    are compared, not text.)"""
    lines = out.split("\n")
    assert lines[-1] == "", repr(out)
    objs = []
    for line in lines[:-1]:
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        objs.append(obj)
    return objs


class Mock:
    """The fake daemon: routes (method, path) to a handler function."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.routes = {}
        self.release = threading.Event()
        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.mock = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.requests = []
        self.routes = {}
        self.release.set()  # free any stream still held by a previous test
        self.release = threading.Event()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def route(self, method, path, handler):
        self.routes[(method, path)] = handler

    def json(self, method, path, obj, status=200):
        self.route(method, path,
                   lambda h, rec: h.reply(status, "application/json",
                                          compact(obj).encode()))

    def ndjson(self, path, objs):
        body = "".join(compact(o) + "\n" for o in objs).encode()
        self.route("GET", path,
                   lambda h, rec: h.reply(200, "application/x-ndjson", body))

    def taken(self):
        with self.lock:
            return list(self.requests)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, text, code):
        self.reply(status, "application/json",
                   compact({"error": text, "code": code}).encode())

    def stream(self, chunks, hold=False):
        """Writes chunks one by one, flushing each; then holds the stream
        open until the test releases it, or closes it."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for c in chunks:
            self.wfile.write(c)
            self.wfile.flush()
            time.sleep(0.01)
        if hold:
            self.server.mock.release.wait(20)

    def handle_any(self):
        mock = self.server.mock
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        u = urllib.parse.urlsplit(self.path)
        rec = {"method": self.command, "path": u.path, "query": u.query,
               "target": self.path, "body": body,
               "auth": self.headers.get("Authorization"),
               "ctype": self.headers.get("Content-Type")}
        with mock.lock:
            mock.requests.append(rec)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.error(401, "bad token", "EAUTH")
        handler = mock.routes.get((self.command, u.path))
        if handler is None:
            return self.error(404, "no route " + u.path, "ENOTFOUND")
        handler(self, rec)

    do_GET = handle_any
    do_POST = handle_any


def message(**kw):
    m = {"id": MSG_ID, "topic": "news", "from": PEER_A, "seq": 7, "ts": TS,
         "body": "hello", "direction": "in"}
    m.update(kw)
    return m


# Five messages covering every human form, and their expected lines.
MESSAGES = [
    message(),
    message(direction="out", **{"from": ME}, body="l1\nl2\x1b[31m\u0085"),
    message(topic=None, to=ME, body="hi there"),
    message(topic=None, to=PEER_B, **{"from": ME}, direction="out",
            body="yo"),
]
MESSAGES.append(message(seq=9, body=None))
del MESSAGES[4]["body"]
MESSAGES[4]["body_base64"] = "AAEC/w=="

LISTEN_LINES = [
    f"{TS_TEXT} news {PEER_A[:12]}{ELL}: hello",
    f"{TS_TEXT} news {ME[:12]}{ELL}: l1\\nl2\\x1b[31m\\u0085",
    f"{TS_TEXT} @direct {PEER_A[:12]}{ELL}{ARROW}me: hi there",
    f"{TS_TEXT} @direct me{ARROW}{PEER_B[:12]}{ELL}: yo",
    f"{TS_TEXT} news {PEER_A[:12]}{ELL}: [binary, 4 bytes]",
]
HISTORY_LINES = [
    f"{TS_TEXT} in  news {PEER_A[:12]}{ELL}: hello",
    f"{TS_TEXT} out news {ME[:12]}{ELL}: l1\\nl2\\x1b[31m\\u0085",
    f"{TS_TEXT} in  @direct {PEER_A[:12]}{ELL}{ARROW}me: hi there",
    f"{TS_TEXT} out @direct me{ARROW}{PEER_B[:12]}{ELL}: yo",
    f"{TS_TEXT} in  news {PEER_A[:12]}{ELL}: [binary, 4 bytes]",
]


class CliTest(unittest.TestCase):
    mock = None

    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(PARLEY) or not os.access(PARLEY, os.X_OK):
            raise RuntimeError(f"no parley binary at {PARLEY!r} "
                               "(set PARLEY_BIN to the build directory)")
        cls.mock = Mock()

    @classmethod
    def tearDownClass(cls):
        cls.mock.close()

    def setUp(self):
        self.mock.reset()
        self.tmp = tempfile.mkdtemp(prefix="parley-cli-")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.data = os.path.join(self.tmp, "data")
        self.write_api(self.data, self.mock.port)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_api(self, d, port, token=TOKEN):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "api.json"), "w") as f:
            json.dump({"addr": f"127.0.0.1:{port}", "token": token,
                       "pid": 1, "id": ME}, f)

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items() if k != "PARLEY_DATA"}
        e["HOME"] = self.home
        # A proxy that does not exist: the CLI must never use one.
        e["http_proxy"] = e["HTTP_PROXY"] = "http://127.0.0.1:9"
        e["ALL_PROXY"] = e["all_proxy"] = "http://127.0.0.1:9"
        e.update(extra)
        return e

    def run_cli(self, *args, stdin=b"", data=True, env=None, timeout=30):
        argv = [PARLEY] + (["--data", self.data] if data else []) + list(args)
        p = subprocess.run(argv, input=stdin, capture_output=True,
                           env=env or self.env(), timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")

    # Assertions ---------------------------------------------------------

    def ok(self, *args, **kw):
        rc, out, err = self.run_cli(*args, **kw)
        self.assertEqual((rc, err), (0, ""), f"parley {args}: {out}")
        for r in self.mock.taken():
            self.assertEqual(r["auth"], "Bearer " + TOKEN)
        return out

    def fails(self, code, err_line, *args, **kw):
        """Exit status code, exactly one stderr line (equal to err_line, or
        starting with it when it ends in '...'), nothing on stdout."""
        rc, out, err = self.run_cli(*args, **kw)
        self.assertEqual(rc, code, f"parley {args}: {err!r}")
        self.assertTrue(err.endswith("\n") and err.count("\n") == 1,
                        f"not one line: {err!r}")
        if err_line.endswith("..."):
            self.assertTrue(err.startswith(err_line[:-3]), err)
        else:
            self.assertEqual(err, err_line + "\n")
        self.assertEqual(out, "")
        return err

    def usage_error(self, err_line, *args, **kw):
        self.fails(2, err_line, *args, **kw)
        self.assertEqual(self.mock.taken(), [], "no request on a usage error")

    def one_request(self, method, target, body=None):
        reqs = self.mock.taken()
        self.assertEqual(len(reqs), 1, reqs)
        r = reqs[0]
        self.assertEqual((r["method"], r["target"]), (method, target))
        self.assertEqual(r["auth"], "Bearer " + TOKEN)
        if body is None:
            self.assertEqual(r["body"], b"")
            self.assertIsNone(r["ctype"])
        else:
            self.assertEqual(r["ctype"], "application/json")
            if isinstance(body, str):
                self.assertEqual(r["body"].decode(), body)
            else:
                self.assertEqual(json.loads(r["body"]), body)
        return r


class TestDaemonDiscovery(CliTest):
    def test_id_human(self):
        self.mock.json("GET", "/v1/id", {"id": ME})
        self.assertEqual(self.ok("id"), ME + "\n")
        self.one_request("GET", "/v1/id")

    def test_id_json(self):
        self.mock.json("GET", "/v1/id", {"id": ME})
        self.assertEqual(self.ok("id", "--json"), compact({"id": ME}) + "\n")

    def test_data_flag_with_equals_and_after_command(self):
        self.mock.json("GET", "/v1/id", {"id": ME})
        self.assertEqual(self.ok("id", "--data=" + self.data, data=False),
                         ME + "\n")

    def test_parley_data_env(self):
        self.mock.json("GET", "/v1/id", {"id": ME})
        env = self.env(PARLEY_DATA=self.data)
        self.assertEqual(self.ok("id", data=False, env=env), ME + "\n")

    def test_home_default(self):
        self.mock.json("GET", "/v1/id", {"id": ME})
        self.write_api(os.path.join(self.home, ".parley"), self.mock.port)
        self.assertEqual(self.ok("id", data=False), ME + "\n")

    def test_precedence_flag_env_home(self):
        other = os.path.join(self.tmp, "other")
        env = self.env(PARLEY_DATA=other)
        self.fails(3, f"parley: daemon not running (no {other}/api.json)",
                   "id", data=False, env=env)
        self.fails(3, f"parley: daemon not running (no {self.tmp}/x/api.json)",
                   "--data", self.tmp + "/x/", "id", data=False, env=env)
        self.fails(3, "parley: daemon not running "
                   f"(no {self.home}/.parley/api.json)", "id", data=False)

    def test_no_api_json(self):
        os.unlink(os.path.join(self.data, "api.json"))
        for cmd in (["id"], ["status"], ["peers"], ["topics"], ["listen"],
                    ["history"], ["subscribe", "news"],
                    ["publish", "news", "hi"], ["send", PEER_A, "hi"]):
            self.fails(3, "parley: daemon not running "
                       f"(no {self.data}/api.json)", *cmd)
        self.assertEqual(self.mock.taken(), [])

    def test_bad_api_json(self):
        with open(os.path.join(self.data, "api.json"), "w") as f:
            f.write("{not json")
        self.fails(3, f"parley: cannot read {self.data}/api.json: ...", "id")
        with open(os.path.join(self.data, "api.json"), "w") as f:
            f.write('{"addr": "nowhere", "token": "x"}')
        self.fails(3, f"parley: bad {self.data}/api.json: ...", "id")
        with open(os.path.join(self.data, "api.json"), "w") as f:
            f.write('{"addr": "127.0.0.1:1", "token": "a\\nb"}')
        self.fails(3, f"parley: bad {self.data}/api.json: ...", "id")

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        self.write_api(self.data, port)
        for cmd in (["id"], ["listen"], ["publish", "news", "hi"]):
            self.fails(3, "parley: daemon not running at "
                       f"127.0.0.1:{port}: ...", *cmd)

    def test_connection_closed_without_answer(self):
        self.mock.route("GET", "/v1/id",
                        lambda h, rec: h.connection.shutdown(socket.SHUT_RDWR))
        self.fails(3, "parley: daemon not running at "
                   f"127.0.0.1:{self.mock.port}: ...", "id")

    def test_bad_token_401(self):
        self.write_api(self.data, self.mock.port, token="cd" * 32)
        self.mock.json("GET", "/v1/id", {"id": ME})
        self.fails(1, "parley: bad token", "id")
        self.assertEqual(self.mock.taken()[0]["auth"], "Bearer " + "cd" * 32)
        self.fails(1, "parley: bad token", "listen")

    def test_error_without_json_body(self):
        self.mock.route("GET", "/v1/status",
                        lambda h, rec: h.reply(500, "text/plain", b"oops"))
        self.fails(1, "parley: daemon answered HTTP 500", "status")

    def test_error_text_is_one_line(self):
        self.mock.json("GET", "/v1/status",
                       {"error": "two\nlines", "code": "EINTERNAL"}, 503)
        self.fails(1, "parley: two\\nlines", "status")

    def test_malformed_success_body(self):
        self.mock.route("GET", "/v1/id",
                        lambda h, rec: h.reply(200, "application/json",
                                               b"[1,2"))
        self.fails(1, "parley: malformed answer from the daemon", "id")


class TestUsage(CliTest):
    def test_help(self):
        for args in (["--help"], ["help"], ["-h"]):
            out = self.ok(*args, data=False)
            self.assertTrue(out.startswith("usage: parley [--data DIR] "
                                           "COMMAND"), out)
            for cmd in ("id", "subscribe", "unsubscribe", "publish", "send",
                        "listen", "history", "peers", "topics", "status"):
                self.assertIn("\n  " + cmd, out)

    def test_command_help(self):
        for args in (["publish", "--help"], ["help", "publish"],
                     ["--help", "publish"]):
            out = self.ok(*args, data=False)
            self.assertTrue(out.startswith(
                "usage: parley [--data DIR] publish [flags] TOPIC TEXT\n"),
                out)
            for flag in ("--ack", "--timeout SECONDS", "--lines", "--sync"):
                self.assertIn("  " + flag, out)
        out = self.ok("history", "--help", data=False)
        for flag in ("--direct", "--from PEER_ID", "--since T", "--until T",
                     "--search WORDS", "--limit N", "--json"):
            self.assertIn("  " + flag, out)
        self.assertEqual(self.mock.taken(), [])

    def test_version(self):
        self.assertEqual(self.ok("--version", data=False), "parley 0.1.0\n")

    def test_usage_errors(self):
        cases = [
            ([], "parley: missing command (run 'parley --help')"),
            (["frob"], "parley: unknown command 'frob'"),
            (["help", "frob"], "parley: unknown command 'frob'"),
            (["--x"], "parley: unknown flag --x"),
            (["peers", "--x"], "parley: unknown flag --x"),
            (["peers", "-x"], "parley: unknown flag -x"),
            (["peers", "--ack"], "parley: unknown flag --ack for peers"),
            (["publish", "news", "hi", "--json"],
             "parley: unknown flag --json for publish"),
            (["subscribe", "news", "--json"],
             "parley: unknown flag --json for subscribe"),
            (["publish", "news"], "parley: publish: missing argument TEXT"),
            (["publish"], "parley: publish: missing argument TOPIC"),
            (["send", PEER_A], "parley: send: missing argument TEXT"),
            (["subscribe"], "parley: subscribe: missing argument TOPIC"),
            (["peers", "extra"], "parley: peers: unexpected argument 'extra'"),
            (["publish", "a", "b", "c"],
             "parley: publish: unexpected argument 'c'"),
            (["history", "--limit"], "parley: flag --limit needs a value (N)"),
            (["publish", "news", "hi", "--ack=1"],
             "parley: flag --ack takes no value"),
            (["--data", "", "id"], "parley: --data needs a directory"),
        ]
        for args, line in cases:
            with self.subTest(args=args):
                self.usage_error(line, *args, data=False)

    def test_bad_topics(self):
        long_topic = "t" * 256
        for topic in ("bad topic", "@direct", "", "caf\u00e9", long_topic):
            with self.subTest(topic=topic):
                shown = topic[:80]
                line = (f"parley: bad topic '{shown}': 1 to 255 printable "
                        "ASCII characters, no spaces, not starting with '@'")
                self.usage_error(line, "subscribe", topic)
                self.usage_error(line, "publish", topic, "hi")
                self.usage_error(line, "listen", "ok", topic)
                self.usage_error(line, "history", topic)

    def test_bad_peer_ids(self):
        for pid in ("abc", PEER_A[:-1] + "1", PEER_A + "a", PEER_A[:-1] + "b"):
            with self.subTest(pid=pid):
                line = (f"parley: bad peer id '{pid}': expected 52 base32 "
                        "characters")
                self.usage_error(line, "send", pid, "hi")
                self.usage_error(line, "history", "--from", pid)


class TestSubscribe(CliTest):
    def test_subscribe(self):
        self.mock.json("POST", "/v1/subscribe",
                       {"topic": "news", "subscribed": True})
        self.assertEqual(self.ok("subscribe", "news"),
                         "subscribed to news\n")
        self.one_request("POST", "/v1/subscribe", '{"topic":"news"}')

    def test_unsubscribe(self):
        self.mock.json("POST", "/v1/unsubscribe",
                       {"topic": "news", "subscribed": False})
        self.assertEqual(self.ok("unsubscribe", "news"),
                         "unsubscribed from news\n")
        self.one_request("POST", "/v1/unsubscribe", '{"topic":"news"}')

    def test_unsubscribe_not_subscribed(self):
        self.mock.json("POST", "/v1/unsubscribe",
                       {"error": "not subscribed to news",
                        "code": "ENOTFOUND"}, 404)
        self.fails(1, "parley: not subscribed to news", "unsubscribe", "news")

    def test_subscribe_limit(self):
        self.mock.json("POST", "/v1/subscribe",
                       {"error": "too many subscriptions", "code": "ELIMIT"},
                       429)
        self.fails(1, "parley: too many subscriptions", "subscribe", "x")


def publish_answer(mode="async", pending=(), status=200):
    acked = [] if pending else [PEER_A]
    obj = {"id": MSG_ID, "topic": "news", "seq": 7, "mode": mode,
           "subscribers": [PEER_A] + list(pending), "acked": acked,
           "pending": list(pending)}
    return obj, status


class TestPublish(CliTest):
    def publish_route(self, mode="async", pending=(), status=200, ids=None):
        """Answers each publish with the next id of ids (or MSG_ID)."""
        counter = iter(ids or [])

        def handle(h, rec):
            obj, st = publish_answer(mode, pending, status)
            obj["id"] = next(counter, MSG_ID)
            h.reply(st, "application/json", compact(obj).encode())
        self.mock.route("POST", "/v1/publish", handle)

    def test_async(self):
        self.publish_route()
        self.assertEqual(self.ok("publish", "news", "hello world"),
                         MSG_ID + "\n")
        self.one_request(
            "POST", "/v1/publish",
            '{"topic":"news","body":"hello world","mode":"async"}')

    def test_async_utf8_and_escapes(self):
        self.publish_route()
        text = "h\u00e9llo \"q\" \\ \u2603"
        self.ok("publish", "news", text)
        r = self.one_request("POST", "/v1/publish",
                             {"topic": "news", "body": text, "mode": "async"})
        self.assertNotIn(b"body_base64", r["body"])

    def test_ack_flag_positions(self):
        for args in (["publish", "--ack", "news", "hi"],
                     ["publish", "news", "hi", "--ack"],
                     ["--ack", "publish", "news", "hi"]):
            with self.subTest(args=args):
                self.mock.reset()
                self.publish_route("ack")
                self.assertEqual(self.ok(*args), MSG_ID + "\n")
                self.one_request("POST", "/v1/publish",
                                 '{"topic":"news","body":"hi","mode":"ack",'
                                 '"timeout_ms":10000}')

    def test_ack_timeout(self):
        self.publish_route("ack")
        self.ok("publish", "news", "hi", "--ack", "--timeout", "3")
        self.one_request("POST", "/v1/publish",
                         '{"topic":"news","body":"hi","mode":"ack",'
                         '"timeout_ms":3000}')

    def test_ack_pending_504(self):
        self.publish_route("ack", pending=(PEER_A, PEER_B), status=504)
        rc, out, err = self.run_cli("publish", "--ack", "--timeout=2",
                                    "news", "hi")
        self.assertEqual(rc, 4)
        self.assertEqual(out, MSG_ID + "\n")
        self.assertEqual(err, PEER_A + "\n" + PEER_B + "\n")

    def test_ack_504_without_pending(self):
        self.publish_route("ack", status=504)
        rc, out, err = self.run_cli("publish", "--ack", "news", "hi")
        self.assertEqual((rc, out), (4, MSG_ID + "\n"))
        self.assertEqual(err,
                         "parley: not acknowledged within 10 s (queued)\n")

    def test_timeout_without_ack_sends_no_timeout(self):
        self.publish_route()
        self.ok("publish", "news", "hi", "--timeout", "3")
        self.one_request("POST", "/v1/publish",
                         '{"topic":"news","body":"hi","mode":"async"}')

    def test_double_dash(self):
        self.publish_route()
        self.ok("publish", "news", "--", "--ack")
        self.one_request("POST", "/v1/publish",
                         '{"topic":"news","body":"--ack","mode":"async"}')

    def test_stdin_whole(self):
        self.publish_route()
        self.assertEqual(self.ok("publish", "news", "-",
                                 stdin=b"line one\nline two\n"),
                         MSG_ID + "\n")
        self.one_request("POST", "/v1/publish",
                         {"topic": "news", "body": "line one\nline two\n",
                          "mode": "async"})

    def test_stdin_binary(self):
        self.publish_route()
        data = b"\xff\x00\x01binary\x80"
        self.ok("publish", "news", "-", stdin=data)
        r = self.one_request("POST", "/v1/publish",
                             {"topic": "news",
                              "body_base64": base64.b64encode(data).decode(),
                              "mode": "async"})
        self.assertNotIn(b'"body"', r["body"])

    def test_stdin_with_nul_is_binary(self):
        self.publish_route()
        self.ok("publish", "news", "-", stdin=b"a\x00b")
        self.one_request("POST", "/v1/publish",
                         {"topic": "news", "body_base64": "YQBi",
                          "mode": "async"})

    def test_lines(self):
        self.publish_route(ids=["id1", "id2", "id3", "id4"])
        out = self.ok("publish", "--lines", "news", "-",
                      stdin=b"one\n\ntwo\r\n\xfe\xff\nthree")
        self.assertEqual(out, "id1\nid2\nid3\nid4\n")
        bodies = [json.loads(r["body"]) for r in self.mock.taken()]
        self.assertEqual(bodies, [
            {"topic": "news", "body": "one", "mode": "async"},
            {"topic": "news", "body": "two", "mode": "async"},
            {"topic": "news", "body_base64": "/v8=", "mode": "async"},
            {"topic": "news", "body": "three", "mode": "async"}])

    def test_lines_stop_at_first_failure(self):
        self.publish_route("ack", pending=(PEER_B,), status=504,
                           ids=["id1", "id2"])
        rc, out, err = self.run_cli("publish", "--lines", "--ack", "news",
                                    "-", stdin=b"one\ntwo\n")
        self.assertEqual((rc, out, err), (4, "id1\n", PEER_B + "\n"))
        self.assertEqual(len(self.mock.taken()), 1)

    def test_lines_empty_stdin(self):
        self.publish_route()
        self.assertEqual(self.ok("publish", "news", "-", "--lines"), "")
        self.assertEqual(self.mock.taken(), [])

    def test_lines_needs_dash(self):
        self.usage_error("parley: --lines needs TEXT - (stdin)",
                         "publish", "--lines", "news", "text")

    def test_sync(self):
        def handle(h, rec):
            obj = {"id": MSG_ID, "topic": "news", "seq": 7, "mode": "sync",
                   "subscribers": [PEER_A, PEER_B],
                   "results": [{"id": PEER_A, "status": "stored",
                                "latency_ms": 3},
                               {"id": PEER_B, "status": "timeout"}]}
            h.reply(504, "application/json", compact(obj).encode())
        self.mock.route("POST", "/v1/publish", handle)
        rc, out, err = self.run_cli("publish", "--sync", "--timeout", "2",
                                    "news", "hi")
        self.assertEqual(rc, 4)
        self.assertEqual(out, "%s\n%s stored 3 ms\n%s not stored within 2 s "
                         "(queued)\n" % (MSG_ID, PEER_A, PEER_B))
        self.assertEqual(err, "parley: not every subscriber stored it "
                         "within 2 s\n")
        self.one_request(
            "POST", "/v1/publish",
            '{"topic":"news","body":"hi","mode":"sync","timeout_ms":2000}')

    def test_sync_and_ack_exclusive(self):
        self.usage_error("parley: --sync and --ack are different modes; "
                         "pick one", "publish", "--sync", "--ack", "news", "hi")

    def test_bad_timeout(self):
        for v in ("abc", "0", "-1", "86401", "1.5", ""):
            with self.subTest(v=v):
                self.usage_error(f"parley: bad --timeout '{v}': whole seconds "
                                 "from 1 to 86400",
                                 "publish", "--ack", "--timeout=" + v,
                                 "news", "hi")

    def test_outbox_full(self):
        self.mock.json("POST", "/v1/publish",
                       {"error": "outbox full", "code": "ELIMIT"}, 429)
        self.fails(1, "parley: outbox full", "publish", "news", "hi")

    def test_oversize_stdin(self):
        self.usage_error("parley: message on stdin larger than 2097152 bytes",
                         "publish", "news", "-", stdin=b"x" * ((2 << 20) + 1))


class TestSend(CliTest):
    def send_route(self, status=200, acked=True, delay=0):
        def handle(h, rec):
            time.sleep(delay)
            obj = {"id": MSG_ID, "to": PEER_A, "seq": 3, "acked": acked}
            if status == 404:
                obj = {"error": "unknown peer", "code": "EUNKNOWNPEER"}
            h.reply(status, "application/json", compact(obj).encode())
        self.mock.route("POST", "/v1/send", handle)

    def test_send(self):
        self.send_route()
        self.assertEqual(self.ok("send", PEER_A, "hello"), MSG_ID + "\n")
        self.one_request("POST", "/v1/send",
                         f'{{"to":"{PEER_A}","body":"hello",'
                         '"timeout_ms":10000}')

    def test_send_upper_case_id_and_timeout(self):
        self.send_route()
        self.ok("send", "--timeout", "4", PEER_A.upper(), "hello")
        self.one_request("POST", "/v1/send",
                         f'{{"to":"{PEER_A}","body":"hello",'
                         '"timeout_ms":4000}')

    def test_send_stdin(self):
        self.send_route()
        self.ok("send", PEER_A, "-", stdin=b"from\nstdin")
        self.one_request("POST", "/v1/send",
                         {"to": PEER_A, "body": "from\nstdin",
                          "timeout_ms": 10000})

    def test_send_not_acknowledged(self):
        self.send_route(status=504, acked=False)
        rc, out, err = self.run_cli("send", PEER_A, "hi", "--timeout", "2")
        self.assertEqual((rc, out), (4, MSG_ID + "\n"))
        self.assertEqual(err, "parley: not acknowledged within 2 s (queued)\n")

    def test_send_unknown_peer(self):
        self.send_route(status=404)
        self.fails(5, f"parley: unknown peer {PEER_A}", "send", PEER_A, "hi")

    def test_send_other_error(self):
        self.mock.json("POST", "/v1/send",
                       {"error": "message too large", "code": "ETOOBIG"},
                       400)
        self.fails(1, "parley: message too large", "send", PEER_A, "hi")

    def test_request_timeout(self):
        """The daemon holds the request past --timeout + 5 s."""
        self.send_route(delay=8)
        start = time.monotonic()
        self.fails(4, f"parley: no answer from the daemon at "
                   f"127.0.0.1:{self.mock.port} within 6 s",
                   "send", "--timeout", "1", PEER_A, "hi")
        self.assertLess(time.monotonic() - start, 7.5)


class TestListings(CliTest):
    PEERS = [
        {"id": PEER_A, "name": "alice", "addr": "10.0.0.1:7001",
         "last_seen": TS},
        {"id": PEER_B, "name": "b\u00f6b\x07", "addr": "[::1]:7002",
         "last_seen": TS + 61000},
    ]
    TOPICS = [{"topic": "news", "subscribers": 3},
              {"topic": "a-much-longer-topic", "subscribers": 12}]
    STATUS = {"id": ME, "name": "node1", "addr": "127.0.0.1:7001",
              "api": "127.0.0.1:40123",
              "index": {"addr": "127.0.0.1:7000", "connected": True},
              "subscriptions": ["news", "sport"], "links": 3, "outbox": 0,
              "messages": 42, "uptime_ms": 3723000, "version": "0.1.0"}

    def test_peers_human(self):
        self.mock.ndjson("/v1/peers", self.PEERS)
        out = self.ok("peers")
        pad = " " * 50
        self.assertEqual(out.split("\n"), [
            "ID" + pad + "  NAME     ADDRESS        LAST SEEN",
            f"{PEER_A}  alice    10.0.0.1:7001  {TS_TEXT}",
            f"{PEER_B}  b\u00f6b\\x07  [::1]:7002     "
            "2026-11-24T10:01:01.123Z",
            ""])
        self.one_request("GET", "/v1/peers")

    def test_peers_empty(self):
        self.mock.ndjson("/v1/peers", [])
        self.assertEqual(self.ok("peers"),
                         "ID  NAME  ADDRESS  LAST SEEN\n")

    def test_peers_json(self):
        self.mock.ndjson("/v1/peers", self.PEERS)
        out = self.ok("peers", "--json")
        self.assertEqual(out, "".join(compact(p) + "\n" for p in self.PEERS))

    def test_topics_human(self):
        self.mock.ndjson("/v1/topics", self.TOPICS)
        self.assertEqual(self.ok("topics"),
                         "TOPIC                SUBSCRIBERS\n"
                         "news                           3\n"
                         "a-much-longer-topic           12\n")
        self.one_request("GET", "/v1/topics")

    def test_topics_json(self):
        self.mock.ndjson("/v1/topics", self.TOPICS)
        self.assertEqual(self.ok("--json", "topics"),
                         "".join(compact(t) + "\n" for t in self.TOPICS))

    def test_listing_error(self):
        self.mock.json("GET", "/v1/peers",
                       {"error": "index unreachable", "code": "EUNAVAIL"},
                       503)
        self.fails(1, "parley: index unreachable", "peers")

    def test_listing_malformed_line(self):
        self.mock.route("GET", "/v1/topics", lambda h, rec: h.reply(
            200, "application/x-ndjson", b'{"topic":"a","subscribers":1}\n'
            b"garbage\n"))
        self.fails(1, "parley: malformed answer from the daemon", "topics")

    def test_status_human(self):
        self.mock.json("GET", "/v1/status", self.STATUS)
        self.assertEqual(self.ok("status"),
                         f"id: {ME}\n"
                         "name: node1\n"
                         "addr: 127.0.0.1:7001\n"
                         "api: 127.0.0.1:40123\n"
                         "index: 127.0.0.1:7000 (connected)\n"
                         "subscriptions: news, sport\n"
                         "links: 3\n"
                         "outbox: 0\n"
                         "messages: 42\n"
                         "uptime: 1h02m03s\n"
                         "version: 0.1.0\n")
        self.one_request("GET", "/v1/status")

    def test_status_disconnected_no_subscriptions(self):
        st = dict(self.STATUS, index={"addr": "10.0.0.9:7000",
                                      "connected": False},
                  subscriptions=[], uptime_ms=90061000, extra={"k": [1]})
        self.mock.json("GET", "/v1/status", st)
        out = self.ok("status").split("\n")
        self.assertIn("index: 10.0.0.9:7000 (not connected)", out)
        self.assertIn("subscriptions: (none)", out)
        self.assertIn("uptime: 1d01h01m01s", out)
        self.assertIn('extra: {"k":[1]}', out)

    def test_status_json(self):
        self.mock.json("GET", "/v1/status", self.STATUS)
        self.assertEqual(self.ok("status", "--json"),
                         compact(self.STATUS) + "\n")


SAFETY = " ".join(["%05d" % (i * 7919 % 100000) for i in range(1, 13)])


class TestTrust(CliTest):
    """verify, trust, untrust and trusted against /v1/verify, /v1/trust,
    /v1/untrust and /v1/trusted (docs/API.md)."""

    def verify_obj(self, **kw):
        obj = {"id": PEER_A, "name": "alice", "safety_number": SAFETY,
               "trusted": False}
        obj.update(kw)
        return obj

    def test_verify_human(self):
        self.mock.json("GET", "/v1/verify", self.verify_obj())
        self.assertEqual(self.ok("verify", PEER_A),
                         f"safety number: {SAFETY}\ntrusted: no\n")
        self.one_request("GET", f"/v1/verify?peer={PEER_A}")

    def test_verify_trusted_and_upper_case_id(self):
        self.mock.json("GET", "/v1/verify", self.verify_obj(trusted=True))
        self.assertEqual(self.ok("verify", PEER_A.upper()),
                         f"safety number: {SAFETY}\n"
                         "trusted: yes (alice)\n")
        self.one_request("GET", f"/v1/verify?peer={PEER_A}")

    def test_verify_key_changed(self):
        self.mock.json("GET", "/v1/verify", self.verify_obj(
            name="b\x1bob", key_changed=True, pinned=PEER_B))
        self.assertEqual(self.ok("verify", PEER_A),
                         f"safety number: {SAFETY}\ntrusted: no\n"
                         "KEY CHANGED: this key claims the name or address "
                         f"of trusted peer {PEER_B}\n")

    def test_verify_json(self):
        obj = self.verify_obj(trusted=True)
        self.mock.json("GET", "/v1/verify", obj)
        self.assertEqual(self.ok("verify", "--json", PEER_A),
                         compact(obj) + "\n")

    def test_verify_errors(self):
        self.mock.json("GET", "/v1/verify",
                       {"error": "that is this peer's own id: there is "
                        "nothing to compare", "code": "EINVAL"}, 400)
        self.fails(1, "parley: that is this peer's own id: there is nothing "
                   "to compare", "verify", ME)
        self.mock.json("GET", "/v1/verify", {"id": PEER_A})
        self.fails(1, "parley: malformed answer from the daemon", "verify",
                   PEER_A)

    def test_trust(self):
        self.mock.json("POST", "/v1/trust", self.verify_obj(trusted=True))
        self.assertEqual(self.ok("trust", PEER_A),
                         f"trusted {PEER_A} as alice\n")
        self.one_request("POST", "/v1/trust", f'{{"peer":"{PEER_A}"}}')

    def test_trust_with_name(self):
        self.mock.json("POST", "/v1/trust",
                       self.verify_obj(trusted=True, name="Alice W."))
        self.assertEqual(self.ok("trust", "--name", "Alice W.", PEER_A),
                         f"trusted {PEER_A} as Alice W.\n")
        self.one_request("POST", "/v1/trust",
                         {"peer": PEER_A, "name": "Alice W."})

    def test_trust_without_a_name(self):
        self.mock.json("POST", "/v1/trust",
                       self.verify_obj(trusted=True, name=""))
        self.assertEqual(self.ok("trust", PEER_A), f"trusted {PEER_A}\n")

    def test_trust_json(self):
        obj = self.verify_obj(trusted=True)
        self.mock.json("POST", "/v1/trust", obj)
        self.assertEqual(self.ok("trust", PEER_A, "--json"),
                         compact(obj) + "\n")

    def test_trust_name_taken(self):
        self.mock.json("POST", "/v1/trust",
                       {"error": 'the name "alice" is pinned to another key '
                        "(untrust it first)", "code": "EEXIST"}, 409)
        self.fails(1, 'parley: the name "alice" is pinned to another key '
                   "(untrust it first)", "trust", PEER_A, "--name", "alice")

    def test_untrust(self):
        self.mock.json("POST", "/v1/untrust", {"id": PEER_A, "trusted": False})
        self.assertEqual(self.ok("untrust", PEER_A),
                         f"untrusted {PEER_A}\n")
        self.one_request("POST", "/v1/untrust", f'{{"peer":"{PEER_A}"}}')

    def test_untrust_unknown(self):
        self.mock.json("POST", "/v1/untrust",
                       {"error": "that key is not trusted",
                        "code": "ENOTFOUND"}, 404)
        self.fails(1, "parley: that key is not trusted", "untrust", PEER_A)

    PINS = [{"id": PEER_A, "name": "alice", "addr": "10.0.0.1:7001",
             "safety_number": SAFETY, "since": TS},
            {"id": PEER_B, "name": "", "addr": "", "safety_number": SAFETY,
             "since": TS + 61000}]

    def test_trusted_human(self):
        self.mock.ndjson("/v1/trusted", self.PINS)
        pad = " " * 50
        self.assertEqual(self.ok("trusted").split("\n"), [
            "ID" + pad + "  NAME   ADDRESS        SINCE",
            f"{PEER_A}  alice  10.0.0.1:7001  {TS_TEXT}",
            f"{PEER_B}  -      -              2026-11-24T10:01:01.123Z",
            ""])
        self.one_request("GET", "/v1/trusted")

    def test_trusted_json(self):
        self.mock.ndjson("/v1/trusted", self.PINS)
        self.assertEqual(self.ok("trusted", "--json"),
                         "".join(compact(p) + "\n" for p in self.PINS))

    def test_peers_trust_column(self):
        peers = [{"id": PEER_A, "name": "alice", "addr": "10.0.0.1:7001",
                  "last_seen": TS, "trust": "trusted"},
                 {"id": PEER_B, "name": "alice", "addr": "[::1]:7002",
                  "last_seen": TS, "trust": "changed"},
                 {"id": ME, "name": "me", "addr": "127.0.0.1:7000",
                  "last_seen": TS, "trust": "self"}]
        self.mock.ndjson("/v1/peers", peers)

        def row(*cells):
            widths = (52, 5, 14, 24)
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + \
                "  " + cells[-1]
        self.assertEqual(self.ok("peers").split("\n"), [
            row("ID", "NAME", "ADDRESS", "LAST SEEN", "TRUST"),
            row(PEER_A, "alice", "10.0.0.1:7001", TS_TEXT, "trusted"),
            row(PEER_B, "alice", "[::1]:7002", TS_TEXT, "KEY CHANGED"),
            row(ME, "me", "127.0.0.1:7000", TS_TEXT, "self"),
            ""])
        self.one_request("GET", "/v1/peers")

    def test_usage(self):
        cases = [
            (["verify"], "parley: verify: missing argument PEER_ID"),
            (["trust"], "parley: trust: missing argument PEER_ID"),
            (["untrust", PEER_A, "x"],
             "parley: untrust: unexpected argument 'x'"),
            (["trusted", PEER_A],
             f"parley: trusted: unexpected argument '{PEER_A[:60]}'"),
            (["verify", PEER_A, "--name", "x"],
             "parley: unknown flag --name for verify"),
            (["untrust", PEER_A, "--json"],
             "parley: unknown flag --json for untrust"),
            (["verify", "abc"],
             "parley: bad peer id 'abc': expected 52 base32 characters"),
            (["trust", "abc"],
             "parley: bad peer id 'abc': expected 52 base32 characters"),
            (["untrust", "abc"],
             "parley: bad peer id 'abc': expected 52 base32 characters"),
            (["trust", PEER_A, "--name", ""],
             "parley: bad --name: 1 to 64 bytes without control characters"),
            (["trust", PEER_A, "--name", "a\nb"],
             "parley: bad --name: 1 to 64 bytes without control characters"),
            (["trust", PEER_A, "--name", "x" * 65],
             "parley: bad --name: 1 to 64 bytes without control characters"),
        ]
        for args, line in cases:
            with self.subTest(args=args):
                self.usage_error(line, *args)

    def test_help_lists_them(self):
        out = self.ok("--help", data=False)
        for cmd in ("verify PEER_ID", "trust PEER_ID", "untrust PEER_ID",
                    "trusted"):
            self.assertIn("\n  " + cmd, out)
        out = self.ok("trust", "--help", data=False)
        self.assertTrue(out.startswith(
            "usage: parley [--data DIR] trust [flags] PEER_ID\n"), out)
        self.assertIn("  --name NAME", out)


class TestHistory(CliTest):
    def test_human(self):
        self.mock.ndjson("/v1/messages", MESSAGES)
        self.assertEqual(self.ok("history"), "\n".join(HISTORY_LINES) + "\n")
        self.one_request("GET", "/v1/messages")

    def test_json(self):
        self.mock.ndjson("/v1/messages", MESSAGES)
        self.assertEqual(json_lines(self.ok("history", "--json")), MESSAGES)

    def test_all_filters(self):
        self.mock.ndjson("/v1/messages", [])
        self.assertEqual(self.ok(
            "history", "news", "--from", PEER_A,
            "--since", "2026-11-24T10:00:00Z",
            "--until", "2026-11-24T11:30:00.5+01:00",
            "--search", "hello wörld&x=1", "--limit", "5"), "")
        self.one_request(
            "GET", "/v1/messages?topic=news&from=" + PEER_A +
            "&since=1795514400000&until=1795516200500"
            "&search=hello%20w%C3%B6rld%26x%3D1&limit=5")

    def test_flags_before_topic(self):
        self.mock.ndjson("/v1/messages", [])
        self.ok("history", "--limit=2", "news")
        self.one_request("GET", "/v1/messages?topic=news&limit=2")

    def test_direct(self):
        self.mock.ndjson("/v1/messages", [])
        self.ok("history", "--direct", "--from", PEER_B.upper())
        self.one_request("GET", f"/v1/messages?direct=1&from={PEER_B}")

    def test_duration(self):
        self.mock.ndjson("/v1/messages", [])
        for text, ms in (("10m", 600000), ("2h", 7200000), ("30s", 30000),
                         ("1d", 86400000)):
            with self.subTest(text=text):
                self.mock.reset()
                self.mock.ndjson("/v1/messages", [])
                before = int(time.time() * 1000)
                self.ok("history", "--since", text, "--until", "0s")
                after = int(time.time() * 1000)
                q = urllib.parse.parse_qs(self.mock.taken()[0]["query"])
                since, until = int(q["since"][0]), int(q["until"][0])
                self.assertTrue(before - ms <= since <= after - ms, q)
                self.assertTrue(before <= until <= after, q)
                self.assertEqual(list(q), ["since", "until"])

    def test_bad_arguments(self):
        cases = [
            (["--since", "yesterday"],
             "parley: bad --since 'yesterday': expected RFC 3339 "
             "(2026-11-24T10:00:00Z) or a duration (30s, 10m, 2h, 1d)"),
            (["--until", "10x"],
             "parley: bad --until '10x': expected RFC 3339 "
             "(2026-11-24T10:00:00Z) or a duration (30s, 10m, 2h, 1d)"),
            (["--since", "2026-13-01T00:00:00Z"],
             "parley: bad --since '2026-13-01T00:00:00Z': expected RFC 3339 "
             "(2026-11-24T10:00:00Z) or a duration (30s, 10m, 2h, 1d)"),
            (["--since", "1h", "--until", "2h"],
             "parley: --since is later than --until"),
            (["--limit", "0"],
             "parley: bad --limit '0': a whole number from 1 to 4294967295"),
            (["--limit", "x"],
             "parley: bad --limit 'x': a whole number from 1 to 4294967295"),
            (["--search", ""], "parley: --search needs 1 to 1000 bytes of "
             "words"),
            (["news", "--direct"],
             "parley: history takes a TOPIC or --direct, not both"),
            (["news", "sport"], "parley: history: unexpected argument "
             "'sport'"),
        ]
        for args, line in cases:
            with self.subTest(args=args):
                self.usage_error(line, "history", *args)


def sse(obj):
    return ("data: " + compact(obj) + "\n\n").encode()


class TestListen(CliTest):
    def stream_route(self, chunks, hold=False):
        self.mock.route("GET", "/v1/stream",
                        lambda h, rec: h.stream(chunks, hold))

    def two_events(self):
        """Two message events, split at awkward places, with everything an
        SSE parser must skip: comments, other fields, CRLF and CR line ends,
        an event of another type, a multi-line data field."""
        first = compact(MESSAGES[0])
        second = compact(MESSAGES[2])
        cut = second.index(',"seq"') + 1  # between two JSON tokens
        stream = (": keep-alive\r\n\r\n"
                  "id: 1\r\nretry: 1000\r\ndata: " + first + "\r\n\r\n"
                  "event: ping\ndata: {\"ignored\":true}\n\n"
                  "data: " + second[:cut] + "\n"
                  "data: " + second[cut:] + "\r\r").encode()
        return [b"\xef\xbb\xbf" + stream[:5], stream[5:30], stream[30:31],
                stream[31:-1], stream[-1:]]

    def test_two_events_then_close(self):
        self.stream_route(self.two_events())
        rc, out, err = self.run_cli("listen", "news", "sport")
        self.assertEqual(out, LISTEN_LINES[0] + "\n" + LISTEN_LINES[2] + "\n")
        self.assertEqual(rc, 3)
        self.assertEqual(err, "parley: daemon at 127.0.0.1:"
                         f"{self.mock.port} closed the stream\n")
        self.one_request("GET", "/v1/stream?topic=news&topic=sport")

    def test_json(self):
        self.stream_route(self.two_events())
        rc, out, err = self.run_cli("listen", "--json")
        self.assertEqual(out, compact(MESSAGES[0]) + "\n" +
                         compact(MESSAGES[2]) + "\n")
        self.one_request("GET", "/v1/stream")

    def test_every_human_form(self):
        self.stream_route([sse(m) for m in MESSAGES])
        rc, out, err = self.run_cli("listen")
        self.assertEqual(out, "\n".join(LISTEN_LINES) + "\n")

    def test_stream_error_status(self):
        self.mock.json("GET", "/v1/stream",
                       {"error": "bad topic", "code": "EINVAL"}, 400)
        self.fails(1, "parley: bad topic", "listen", "news")

    def interrupt(self, sig):
        self.stream_route([sse(MESSAGES[0])], hold=True)
        p = subprocess.Popen([PARLEY, "--data", self.data, "listen", "news"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env())
        try:
            # The line must arrive while the stream is still open: stdout
            # is flushed after each message.
            ready, _, _ = select.select([p.stdout], [], [], 10)
            self.assertTrue(ready, "no output within 10 s")
            line = p.stdout.readline().decode()
            self.assertEqual(line, LISTEN_LINES[0] + "\n")
            p.send_signal(sig)
            rc = p.wait(timeout=10)
            self.assertEqual(rc, 0)
            self.assertEqual(p.stderr.read(), b"")
            self.assertEqual(p.stdout.read(), b"")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()

    def test_sigint_exits_zero(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm_exits_zero(self):
        self.interrupt(signal.SIGTERM)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
