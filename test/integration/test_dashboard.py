#!/usr/bin/env python3
"""Integration tests for the dashboard's backend (docs/DASHBOARD_API.md,
docs/internals/DASHBOARD.md) against real parley-index processes.

Figures come from fake reporting peers (`test_dash --report-client`, see
test/unit/test_dash.c): they register over real secure links and send
REPORT frames with figures the test chooses, so the expected rates,
quantiles and alert values are known exactly.  One test also checks real
parleyd peers when they send REPORTs (skipped, with the reason, when the
parleyd in PARLEY_BIN does not report yet).

  a. a new index answers "waiting" with what it waits for; tokens,
     windows and the static files are checked;
  b. aggregation: per-peer rates and latency, topic subscribers /
     publishers / rate, resources, and the same figures on /metrics;
  c. history windows: 1 s points for ?window=1h, 1 min points for 24h;
  d. the event stream: "retry:", one event per second, one point per
     history array;
  e. alerts: pending -> firing -> held -> resolved, in the dashboard, the
     log and /metrics, POSTed to a webhook receiver that checks the HMAC
     signature and answers the first attempt with 500 (retried); a
     webhook nobody listens to is retried and given up; bad rule files,
     other schemes and an unreadable --webhook-ca refuse to start; an
     https:// receiver with a self-signed certificate is reached with
     --webhook-ca and refused without it;
  f. an expired peer leaves the table and appears as an event;
  g. a 3-node cluster: nodes, leader, health; a killed follower is seen
     down by the leader and the node_down alert fires, then resolves;
  j. a 3-node cluster where every node has the same webhook: only the
     leader evaluates and POSTs (one notification per transition); a
     follower's dashboard and stream show the leader's figures
     (served_by); a killed leader's firing alert is taken over by the new
     leader (no second "firing", the "resolved" from the new leader); a
     lone survivor fires no_leader itself, and resolves it once a leader
     is back.

Prints "N passed, M failed" last.
"""
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SECRET = b"test-webhook-secret-0123456789abcdef"


def reporter(index_addr, name, *args):
    """A fake peer sending REPORTs every second; returns the Proc."""
    argv = [os.path.join(h.BIN, "test_dash"), "--report-client", "--index",
            index_addr, "--name", name] + [str(a) for a in args]
    return h.Proc(argv, name)


def get_json(idx, path, token):
    return json.loads(h.http_get(idx.http, path, token, timeout=10))


def metrics(idx, token):
    out = {}
    for line in h.http_get(idx.http, "/metrics", token).splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def status_of(url, token=None, method="GET"):
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", "Bearer %s" % token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def raw_get(hostport, path):
    """GET with the path exactly as given (no client normalisation)."""
    host, port = h.hostport(hostport)
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               % path).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1])


class Receiver:
    """A webhook receiver: verifies X-Parley-Signature, answers 500 to the
    first `fail_first` POSTs and 200 afterwards, records everything.  With
    tls=(certfile, keyfile) it serves https."""

    def __init__(self, fail_first=1, tls=None):
        self.posts = []
        self.fail_left = fail_first
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                sig = self.headers.get("X-Parley-Signature", "")
                want = "sha256=" + hmac.new(SECRET, body,
                                            hashlib.sha256).hexdigest()
                with outer.lock:
                    fail = outer.fail_left > 0
                    if fail:
                        outer.fail_left -= 1
                    outer.posts.append({
                        "event": self.headers.get("X-Parley-Event"),
                        "delivery": self.headers.get("X-Parley-Delivery"),
                        "sig_ok": hmac.compare_digest(sig, want),
                        "body": json.loads(body.decode()),
                        "answered": 500 if fail else 200,
                    })
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.scheme = "http"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.server.socket = ctx.wrap_socket(self.server.socket,
                                                 server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self):
        return "%s://127.0.0.1:%d/hook" % (self.scheme, self.port)

    def of(self, event):
        with self.lock:
            return [p for p in self.posts if p["event"] == event]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def need_binaries(test):
    for b in ("parley-index", "test_dash"):
        if not os.access(os.path.join(h.BIN, b), os.X_OK):
            test.fail("no %s in %s (set PARLEY_BIN)" % (b, h.BIN))


class DashboardTest(unittest.TestCase):
    def setUp(self):
        need_binaries(self)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.alive():
                p.kill()

    def start_index(self, extra=()):
        idx = h.Index(lease=2, extra=list(extra))
        self.procs.append(idx)
        tok = h.mint_token(idx.data, role="viewer")
        return idx, tok

    def reporter(self, idx, name, *args):
        p = reporter(idx.addr, name, *args)
        self.procs.append(p)
        return p

    # a -------------------------------------------------------------------
    def test_a_waiting_auth_and_files(self):
        idx, tok = self.start_index()
        d = get_json(idx, "/v1/dashboard", tok)
        self.assertEqual(d["state"], "waiting")
        self.assertIn("no peer has registered yet", d["waiting_for"])
        self.assertIn(idx.addr, d["waiting_for"])
        self.assertEqual(d["cluster"]["leader"], 1)
        self.assertEqual(len(d["cluster"]["nodes"]), 1)
        self.assertEqual(d["cluster"]["nodes"][0]["health"], "up")
        self.assertEqual(d["peers"]["count"], 0)
        self.assertEqual(d["peers"]["table"], [])
        self.assertEqual(d["alerts"], {"firing": [], "resolved": []})
        self.assertEqual([r["kind"] for r in d["resources"]], ["index"])
        self.assertGreater(d["resources"][0]["rss_bytes"], 1 << 20)
        base = "http://%s" % idx.http
        # Data needs a token; the page does not.
        self.assertEqual(status_of(base + "/v1/dashboard")[0], 401)
        self.assertEqual(status_of(base + "/v1/dashboard/stream")[0], 401)
        self.assertEqual(status_of(base + "/v1/dashboard?window=7d", tok)[0],
                         400)
        self.assertEqual(status_of(base + "/v1/dashboard", tok, "POST")[0],
                         403)
        st, hdrs, _ = status_of(base + "/dashboard")
        self.assertEqual(st, 200)  # urllib followed the 301
        dist = os.path.join(os.path.dirname(__file__), "..", "..", "web",
                            "dashboard", "dist", "index.html")
        st, hdrs, body = status_of(base + "/dashboard/")
        if os.path.exists(dist):
            self.assertEqual(st, 200)
            self.assertEqual(hdrs["Content-Type"], "text/html; charset=utf-8")
            self.assertEqual(hdrs["Cache-Control"], "no-cache")
            self.assertIn("default-src 'self'",
                          hdrs["Content-Security-Policy"])
            self.assertIn(b"/dashboard/assets/", body)
            asset = body.split(b'src="')[1].split(b'"')[0].decode()
            st, hdrs, _ = status_of(base + asset)
            self.assertEqual(st, 200)
            self.assertEqual(hdrs["Content-Type"],
                             "text/javascript; charset=utf-8")
            self.assertIn("immutable", hdrs["Cache-Control"])
        else:
            self.assertEqual(st, 404)
            self.assertIn(b"build-web.sh", body)
        for bad in ("/dashboard/.hidden", "/dashboard/nope.js", "/dashboard/assets/",
                    "/dashboard/index.html/", "/dashboard/a%00b"):
            self.assertEqual(raw_get(idx.http, bad), 404, bad)
        # ".." (plain or percent-encoded) is resolved before routing, so it
        # leaves /dashboard/ and then needs a token like any other path;
        # below /dashboard/ it never reaches a file outside dist.
        for bad in ("/dashboard/../index.json", "/dashboard/%2e%2e/index.json",
                    "/dashboard/assets/%2e%2e/%2e%2e/index.json",
                    "/dashboard/assets//index.html"):
            self.assertIn(raw_get(idx.http, bad), (401, 404), bad)
        idx.stop()

    # b, c, d -------------------------------------------------------------
    def test_b_aggregation_history_stream(self):
        idx, tok = self.start_index()
        pub = self.reporter(idx, "pub", "--topic", "news", "--publish",
                            "--rate", "50")
        sub = self.reporter(idx, "sub", "--topic", "news", "--in-rate", "50",
                            "--latency-ms", "2")

        def ready():
            d = get_json(idx, "/v1/dashboard", tok)
            rows = {r["name"]: r for r in d["peers"]["table"]}
            if (len(rows) == 2 and rows["pub"]["msgs_out_per_s"] and
                    rows["sub"]["latency_p50_ms"] and
                    len(d["throughput"]["history"]) >= 3):
                return d
            return None
        d = h.wait_until(ready, 20, 0.3, "rates from both reporters")
        self.assertEqual(d["state"], "ok")
        self.assertIsNone(d["waiting_for"])
        self.assertEqual(d["peers"]["count"], 2)
        rows = {r["name"]: r for r in d["peers"]["table"]}
        self.assertEqual(rows["pub"]["id"], pub.fields["id"])
        self.assertAlmostEqual(rows["pub"]["msgs_out_per_s"], 50, delta=2)
        self.assertAlmostEqual(rows["sub"]["msgs_in_per_s"], 50, delta=2)
        self.assertEqual(rows["pub"]["msgs_in_per_s"], 0)
        # 2 ms lands in (1, 2.5] ms: interpolated inside that bucket
        self.assertGreater(rows["sub"]["latency_p50_ms"], 1.0)
        self.assertLessEqual(rows["sub"]["latency_p99_ms"], 2.5)
        self.assertIsNone(rows["pub"]["latency_p50_ms"])
        self.assertEqual(rows["sub"]["outbox"], 0)
        self.assertTrue(rows["sub"]["addr"].startswith("127.0.0.1:"))
        topics = {t["topic"]: t for t in d["topics"]}
        self.assertEqual(topics["news"]["subscribers"], 2)
        self.assertEqual(topics["news"]["publishers"], 1)
        self.assertAlmostEqual(topics["news"]["msgs_per_s"], 50, delta=2)
        self.assertIn("news", d["latency"]["per_topic"])
        res = {r["daemon"]: r for r in d["resources"]}
        self.assertEqual(res["pub"]["kind"], "peer")
        self.assertEqual(res["pub"]["rss_bytes"], 4 << 20)
        self.assertEqual(res["pub"]["open_fds"], 9)
        self.assertAlmostEqual(res["pub"]["cpu_percent"], 2.0, delta=0.5)
        self.assertEqual(res[idx.fields.get("name", "parley-index")]["kind"],
                         "index")
        last = d["throughput"]["history"][-1]
        self.assertAlmostEqual(last[1], 50, delta=2)   # in/s
        self.assertAlmostEqual(last[2], 50, delta=2)   # out/s
        self.assertEqual(last[3], 0)                   # errors/s
        lat = d["latency"]["history"][-1]
        self.assertTrue(1.0 < lat[1] <= lat[2] <= lat[3] <= 2.5, lat)
        self.assertEqual([e["kind"] for e in d["events"]], ["join", "join"])
        # The same figures on /metrics.
        m = metrics(idx, tok)
        self.assertGreaterEqual(m["parley_index_reports_total"], 4)
        self.assertEqual(m["parley_dashboard_peers_reporting"], 2)
        self.assertEqual(m['parley_dashboard_topic_publishers{topic="news"}'],
                         1)
        self.assertAlmostEqual(
            m["parley_dashboard_messages_published_per_second"], 50, delta=2)
        self.assertAlmostEqual(
            m['parley_dashboard_delivery_latency_seconds{quantile="0.5"}'],
            lat[1] / 1000.0, delta=0.0005)
        self.assertEqual(m["parley_index_peers"], d["peers"]["count"])

        # c. history windows ------------------------------------------
        fine = d["peers"]["history"]
        self.assertGreaterEqual(len(fine), 3)
        for a, b in zip(fine, fine[1:]):
            self.assertEqual(a[0] % 1000, 0)
            self.assertGreater(b[0], a[0])
        self.assertLessEqual(fine[-1][0] - fine[0][0], 3600 * 1000)
        self.assertEqual(fine[-1][1], 2)
        day = get_json(idx, "/v1/dashboard?window=24h", tok)
        self.assertEqual(day["resolution_ms"], 60000)
        self.assertEqual(day["window"], "24h")
        for series in (day["peers"]["history"], day["throughput"]["history"],
                       day["latency"]["history"]):
            self.assertGreaterEqual(len(series), 1)
            for p in series:
                self.assertEqual(p[0] % 60000, 0)
        self.assertEqual(day["peers"]["history"][-1][1], 2)

        # d. the stream -------------------------------------------------
        req = urllib.request.Request("http://%s/v1/dashboard/stream"
                                     "?window=1h" % idx.http)
        req.add_header("Authorization", "Bearer %s" % tok)
        t0 = time.time()
        events = []
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.headers["Content-Type"],
                             "text/event-stream; charset=utf-8")
            self.assertEqual(r.headers["Cache-Control"], "no-cache")
            first = r.readline().decode()
            self.assertEqual(first, "retry: 1000\n")
            while len(events) < 3:
                line = r.readline().decode()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        took = time.time() - t0
        self.assertLess(took, 5)
        self.assertGreater(took, 0.9)  # one per second after the first
        for ev in events:
            self.assertLessEqual(len(ev["peers"]["history"]), 1)
            self.assertLessEqual(len(ev["throughput"]["history"]), 1)
            self.assertLessEqual(len(ev["latency"]["history"]), 1)
            self.assertEqual(ev["peers"]["count"], 2)
            self.assertEqual(len(ev["peers"]["table"]), 2)
        self.assertGreater(events[2]["now"], events[0]["now"])
        self.assertEqual(len(events[-1]["peers"]["history"]), 1)
        m = metrics(idx, tok)
        # the stream is gone (or going) once we hung up
        h.wait_until(lambda: metrics(idx, tok)["parley_dashboard_streams"]
                     == 0, 10, 0.2, "the stream to close")
        sub.kill(signal.SIGTERM)
        pub.kill(signal.SIGTERM)
        idx.stop()

    # e -------------------------------------------------------------------
    def test_e_alert_lifecycle_and_webhook(self):
        rx = Receiver(fail_first=1)
        self.addCleanup(rx.close)
        d = h.tmpdir("parley-alerts-")
        rules = os.path.join(d, "alerts.json")
        with open(rules, "w") as f:
            json.dump([{"name": "outbox_depth", "metric": "outbox_depth",
                        "op": ">", "threshold": 3, "for_s": 2,
                        "severity": "warning"},
                       {"name": "p99", "metric": "p99_latency_ms",
                        "threshold": 5000, "for_s": 1,
                        "severity": "critical"}], f)
        secret = os.path.join(d, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET + b"\n")
        os.chmod(secret, 0o600)
        control = os.path.join(d, "control")
        with open(control, "w") as f:
            f.write("outbox=0\n")
        idx, tok = self.start_index(["--alerts", rules, "--webhook", rx.url(),
                                     "--webhook-secret", secret,
                                     "--webhook-retry", "300ms"])
        self.reporter(idx, "slowpoke", "--control", control)
        h.wait_until(lambda: metrics(idx, tok).get(
            "parley_dashboard_peers_reporting") == 1, 15, 0.2, "a report")
        m = metrics(idx, tok)
        firing = 'parley_alerts_firing{name="outbox_depth",severity="warning"}'
        pending = ('parley_alerts_pending{name="outbox_depth",'
                   'severity="warning"}')
        self.assertEqual(m[firing], 0)
        self.assertEqual(m['parley_alerts_firing{name="p99",'
                           'severity="critical"}'], 0)
        with open(control, "w") as f:
            f.write("outbox=10\n")
        # pending first (for_s 2), then firing
        h.wait_until(lambda: metrics(idx, tok)[pending] == 1, 10, 0.1,
                     "the rule to go pending")
        self.assertEqual(metrics(idx, tok)[firing], 0)
        d1 = h.wait_until(
            lambda: (lambda x: x if x["alerts"]["firing"] else None)(
                get_json(idx, "/v1/dashboard", tok)), 10, 0.2,
            "the alert to fire")
        a = d1["alerts"]["firing"][0]
        self.assertEqual(a["name"], "outbox_depth")
        self.assertEqual(a["severity"], "warning")
        self.assertEqual(a["value"], 10)
        self.assertEqual(a["threshold"], 3)
        self.assertEqual(a["summary"],
                         "outbox depth 10 > 3 for 2s on slowpoke")
        self.assertEqual(metrics(idx, tok)[firing], 1)
        self.assertIn("alert outbox_depth firing (warning)", idx.logtext())
        # The webhook: 500 first, then retried and accepted.
        h.wait_until(lambda: len(rx.of("firing")) >= 2, 10, 0.1,
                     "the firing webhook and its retry")
        f1, f2 = rx.of("firing")[:2]
        self.assertEqual((f1["answered"], f2["answered"]), (500, 200))
        self.assertTrue(f1["sig_ok"] and f2["sig_ok"])
        self.assertEqual(f1["delivery"], f2["delivery"])
        self.assertEqual(f2["body"]["status"], "firing")
        self.assertEqual(f2["body"]["alert"]["name"], "outbox_depth")
        self.assertEqual(f2["body"]["alert"]["since"], a["since"])
        self.assertEqual(f2["body"]["index"]["id"], idx.id)
        # Held: still firing, no new notification.
        time.sleep(2.5)
        d2 = get_json(idx, "/v1/dashboard", tok)
        self.assertEqual([x["name"] for x in d2["alerts"]["firing"]],
                         ["outbox_depth"])
        self.assertEqual(d2["alerts"]["firing"][0]["since"], a["since"])
        self.assertEqual(len(rx.of("firing")), 2)
        # Resolve.
        with open(control, "w") as f:
            f.write("outbox=0\n")
        d3 = h.wait_until(
            lambda: (lambda x: x if x["alerts"]["resolved"] else None)(
                get_json(idx, "/v1/dashboard", tok)), 10, 0.2,
            "the alert to resolve")
        self.assertEqual(d3["alerts"]["firing"], [])
        r = d3["alerts"]["resolved"][0]
        self.assertEqual(r["name"], "outbox_depth")
        self.assertEqual(r["since"], a["since"])
        self.assertGreater(r["until"], r["since"])
        self.assertEqual(r["value"], 10)
        h.wait_until(lambda: rx.of("resolved"), 10, 0.1,
                     "the resolved webhook")
        res = rx.of("resolved")[0]
        self.assertTrue(res["sig_ok"])
        self.assertEqual(res["answered"], 200)
        self.assertEqual(res["body"]["alert"]["until"], r["until"])
        m = metrics(idx, tok)
        self.assertEqual(m[firing], 0)
        self.assertEqual(m['parley_alerts_fired_total{name="outbox_depth"}'],
                         1)
        self.assertEqual(
            m['parley_webhook_deliveries_total{result="delivered"}'], 2)
        self.assertEqual(m["parley_webhook_retries_total"], 1)
        self.assertIn("alert outbox_depth resolved", idx.logtext())
        # The p99 rule never had data: never fired.
        self.assertEqual(m['parley_alerts_fired_total{name="p99"}'], 0)
        idx.stop()

    def test_e1_webhook_connect_error_gives_up(self):
        port = h.free_ports(1)[0]  # nothing listens there
        d = h.tmpdir("parley-alerts-")
        rules = os.path.join(d, "alerts.json")
        with open(rules, "w") as f:
            json.dump([{"name": "churn", "metric": "peer_churn",
                        "threshold": 0, "for_s": 0, "severity": "info"}], f)
        idx, tok = self.start_index([
            "--alerts", rules, "--webhook", "http://127.0.0.1:%d/x" % port,
            "--webhook-attempts", "2", "--webhook-retry", "100ms"])
        self.reporter(idx, "joiner")  # a join: churn 1 > 0 fires at once
        h.wait_until(lambda: metrics(idx, tok).get(
            'parley_webhook_deliveries_total{result="failed"}') == 1, 15,
            0.2, "the delivery to be given up")
        m = metrics(idx, tok)
        self.assertEqual(m["parley_webhook_retries_total"], 1)
        self.assertEqual(
            m['parley_webhook_deliveries_total{result="delivered"}'], 0)
        self.assertEqual(m["parley_webhook_pending"], 0)
        self.assertIn("dropped after 2 attempts", idx.logtext())
        self.assertIn("webhooks without --webhook-secret", idx.logtext())
        idx.stop()

    def test_e2_bad_alert_rules_refused(self):
        d = h.tmpdir("parley-alerts-")
        rules = os.path.join(d, "alerts.json")
        with open(rules, "w") as f:
            f.write('[{"name": "x", "metric": "cpu", "threshold": 1}]')
        with self.assertRaises(AssertionError) as cm:
            h.Index(extra=["--alerts", rules])
        self.assertIn("metric must be", str(cm.exception))
        with self.assertRaises(AssertionError) as cm:
            h.Index(extra=["--webhook", "ftp://example.org/"])
        self.assertIn("want http[s]://HOST", str(cm.exception))
        with self.assertRaises(AssertionError) as cm:
            h.Index(extra=["--webhook", "https://example.org/",
                           "--webhook-ca", os.path.join(d, "no-such.pem")])
        self.assertIn("--webhook-ca", str(cm.exception))

    def test_e3_https_webhook(self):
        """https:// with a self-signed certificate: delivered and signed
        when --webhook-ca names it, refused (certificate not trusted) when
        it does not."""
        import shutil
        import subprocess
        if not shutil.which("openssl"):
            self.skipTest("no openssl to make a test certificate")
        d = h.tmpdir("parley-https-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                        "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        rx = Receiver(fail_first=0, tls=(cert, key))
        self.addCleanup(rx.close)
        rules = os.path.join(d, "alerts.json")
        with open(rules, "w") as f:
            json.dump([{"name": "churn", "metric": "peer_churn",
                        "threshold": 0, "for_s": 0, "severity": "info"}], f)
        secret = os.path.join(d, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET)
        os.chmod(secret, 0o600)
        good, tok = self.start_index([
            "--alerts", rules, "--webhook", rx.url(), "--webhook-secret",
            secret, "--webhook-ca", cert, "--webhook-retry", "100ms"])
        bad, tok2 = self.start_index([
            "--alerts", rules, "--webhook", rx.url(),
            "--webhook-attempts", "2", "--webhook-retry", "100ms"])
        self.reporter(good, "tls-a")
        self.reporter(bad, "tls-b")
        h.wait_until(lambda: rx.of("firing"), 15, 0.1,
                     "the https delivery")
        got = rx.of("firing")[0]
        self.assertTrue(got["sig_ok"])
        self.assertEqual(got["body"]["alert"]["name"], "churn")
        self.assertEqual(got["body"]["index"]["id"], good.id)
        h.wait_until(lambda: metrics(good, tok).get(
            'parley_webhook_deliveries_total{result="delivered"}') == 1,
            10, 0.1, "the delivery counted")
        h.wait_until(lambda: metrics(bad, tok2).get(
            'parley_webhook_deliveries_total{result="failed"}') == 1, 15,
            0.2, "the untrusted delivery to be given up")
        self.assertEqual([p["body"]["index"]["id"] for p in rx.posts],
                         [good.id])
        self.assertIn("dropped after 2 attempts", bad.logtext())
        good.stop()
        bad.stop()

    # f -------------------------------------------------------------------
    def test_f_expired_peer_leaves(self):
        idx, tok = self.start_index()
        a = self.reporter(idx, "stays")
        b = self.reporter(idx, "leaves")
        h.wait_until(lambda: get_json(idx, "/v1/dashboard", tok)["peers"]
                     ["count"] == 2, 10, 0.2, "two peers")
        b.kill()  # SIGKILL: no goodbye, the lease runs out (2 s)

        def gone():
            d = get_json(idx, "/v1/dashboard", tok)
            names = [r["name"] for r in d["peers"]["table"]]
            return d if names == ["stays"] else None
        d = h.wait_until(gone, 15, 0.2, "the killed peer to expire")
        self.assertEqual(d["peers"]["count"], 1)
        self.assertEqual(d["events"][0]["kind"], "expire")
        self.assertEqual(d["events"][0]["name"], "leaves")
        self.assertEqual(d["events"][0]["id"], b.fields["id"])
        self.assertNotIn("leaves", [r["daemon"] for r in d["resources"]])
        self.assertEqual(metrics(idx, tok)["parley_dashboard_peers_tracked"],
                         1)
        a.kill(signal.SIGTERM)
        idx.stop()

    # g -------------------------------------------------------------------
    def test_g_cluster_nodes_and_node_down(self):
        d = h.tmpdir("parley-alerts-")
        rules = os.path.join(d, "alerts.json")
        with open(rules, "w") as f:
            json.dump([{"name": "node_down", "metric": "node_down",
                        "threshold": 0, "for_s": 1,
                        "severity": "critical"},
                       {"name": "no_leader", "metric": "no_leader",
                        "threshold": 0, "for_s": 5,
                        "severity": "critical"}], f)
        cl = h.Cluster(3, lease=2, extra=["--alerts", rules])
        self.addCleanup(lambda: [n.kill() for n in cl.alive()])
        leader = cl.wait_leader()
        tok = h.mint_token(leader.data, role="viewer", cluster_key=cl.key)

        def all_up():
            x = json.loads(leader.get("/v1/dashboard", token=tok))
            ups = [n["health"] for n in x["cluster"]["nodes"]]
            return x if ups == ["up"] * 3 else None
        x = h.wait_until(all_up, 15, 0.3, "three nodes up")
        self.assertEqual(x["cluster"]["leader"], leader.node_id)
        self.assertEqual(x["cluster"]["term"], leader.cluster()["term"])
        roles = {n["id"]: n["role"] for n in x["cluster"]["nodes"]}
        self.assertEqual(roles[leader.node_id], "leader")
        self.assertEqual(sorted(roles.values()),
                         ["follower", "follower", "leader"])
        me = [n for n in x["cluster"]["nodes"] if n["self"]][0]
        self.assertEqual(me["commit_index"], leader.cluster()["commit_index"]
                         if me["commit_index"] is not None else None)
        self.assertEqual(leader.metric("parley_index_raft_leader_id"),
                         leader.node_id)
        rep = reporter(cl.index_arg(), "cl-peer")
        self.procs.append(rep)
        h.wait_until(lambda: json.loads(leader.get(
            "/v1/dashboard", token=tok))["peers"]["count"] == 1, 15, 0.3,
            "the peer in the cluster")
        victim = [n for n in cl.nodes.values() if n is not leader][0]
        victim.kill()

        def down():
            y = json.loads(leader.get("/v1/dashboard", token=tok))
            hs = {n["id"]: n["health"] for n in y["cluster"]["nodes"]}
            return y if hs[victim.node_id] == "down" and \
                y["alerts"]["firing"] else None
        y = h.wait_until(down, 20, 0.3, "the follower seen down, alerting")
        self.assertEqual(y["alerts"]["firing"][0]["name"], "node_down")
        self.assertIn("(1 of 3 members)", y["alerts"]["firing"][0]["summary"])
        self.assertEqual(y["state"], "ok")  # a leader is still there
        victim.restart()

        def resolved():
            z = json.loads(leader.get("/v1/dashboard", token=tok))
            return z if not z["alerts"]["firing"] and \
                z["alerts"]["resolved"] else None
        z = h.wait_until(resolved, 30, 0.3, "node_down to resolve")
        self.assertEqual(z["alerts"]["resolved"][0]["name"], "node_down")
        rep.kill(signal.SIGTERM)
        cl.stop_all()

    # j -------------------------------------------------------------------
    def test_j_cluster_leader_alerts_and_follower_view(self):
        rx = Receiver(fail_first=0)
        self.addCleanup(rx.close)
        d = h.tmpdir("parley-alerts-")
        rules = os.path.join(d, "alerts.json")
        with open(rules, "w") as f:
            json.dump([{"name": "outbox_depth", "metric": "outbox_depth",
                        "threshold": 3, "for_s": 1, "severity": "warning"},
                       {"name": "node_down", "metric": "node_down",
                        "threshold": 0, "for_s": 2, "severity": "critical"},
                       {"name": "no_leader", "metric": "no_leader",
                        "threshold": 0, "for_s": 3,
                        "severity": "critical"}], f)
        secret = os.path.join(d, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET)
        os.chmod(secret, 0o600)
        control = os.path.join(d, "control")
        with open(control, "w") as f:
            f.write("outbox=0\n")
        cl = h.Cluster(3, lease=3, extra=[
            "--alerts", rules, "--webhook", rx.url(), "--webhook-secret",
            secret, "--webhook-retry", "200ms"])
        self.addCleanup(lambda: [n.kill() for n in cl.alive()])
        leader = cl.wait_leader()
        tok = h.mint_token(leader.data, role="viewer", cluster_key=cl.key)
        followers = [n for n in cl.nodes.values() if n is not leader]

        def dash(node, path="/v1/dashboard"):
            return json.loads(node.get(path, token=tok, timeout=10))

        def evaluator(node):
            return node.metric("parley_alerts_evaluator")
        h.wait_until(lambda: evaluator(leader) == 1 and all(
            evaluator(f) == 0 for f in followers), 10, 0.2,
            "one evaluator: the leader")
        rep = reporter(cl.index_arg(), "gauge", "--control", control,
                       "--topic", "t1", "--publish", "--rate", "20")
        self.procs.append(rep)

        # A follower shows the leader's figures.
        def reporting(node):
            x = dash(node)
            rows = [r for r in x["peers"]["table"] if r["name"] == "gauge"]
            return x if rows and rows[0]["reporting"] and \
                rows[0]["msgs_out_per_s"] and \
                x["throughput"]["history"] else None
        lx = h.wait_until(lambda: reporting(leader), 20, 0.3,
                          "the reporter's figures on the leader")
        self.assertEqual(lx["served_by"]["source"], "self")
        self.assertEqual(lx["served_by"]["node"], leader.node_id)
        self.assertTrue(lx["served_by"]["evaluator"])
        fx = h.wait_until(lambda: reporting(followers[0]), 10, 0.3,
                          "the reporter's figures on a follower")
        sb = fx["served_by"]
        self.assertEqual(sb["source"], "leader")
        self.assertEqual(sb["node"], followers[0].node_id)
        self.assertEqual(sb["leader"], leader.node_id)
        self.assertEqual(sb["leader_http"], leader.http)
        self.assertFalse(sb["evaluator"])
        self.assertIsNone(sb["notice"])
        self.assertEqual(fx["cluster"]["leader"], leader.node_id)
        self.assertIn("gauge", [r["daemon"] for r in fx["resources"]])
        # Every index node's resource use (the leader polls the others).
        ix = h.wait_until(lambda: (lambda x: x if sorted(
            r.get("node") for r in x["resources"] if r["kind"] == "index")
            == [1, 2, 3] else None)(dash(followers[0])), 10, 0.3,
            "three index nodes under resources")
        for r in ix["resources"]:
            if r["kind"] == "index":
                self.assertGreater(r["rss_bytes"], 1 << 20)
                self.assertGreater(r["open_fds"], 3)
                self.assertTrue(r["daemon"].endswith("#%d" % r["node"]))
        self.assertIn("t1", [t["topic"] for t in fx["topics"]])
        self.assertGreaterEqual(len(fx["throughput"]["history"]), 1)
        self.assertGreaterEqual(followers[0].metric(
            'parley_dashboard_leader_fetches_total{result="ok"}'), 1)
        # ... and its stream too.
        req = urllib.request.Request("http://%s/v1/dashboard/stream"
                                     % followers[1].http)
        req.add_header("Authorization", "Bearer %s" % tok)
        events = []
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.readline().decode(), "retry: 1000\n")
            while len(events) < 2:
                line = r.readline().decode()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        for ev in events:
            self.assertEqual(ev["served_by"]["source"], "leader")
            self.assertEqual(ev["served_by"]["node"], followers[1].node_id)
            rows = [x for x in ev["peers"]["table"] if x["name"] == "gauge"]
            self.assertTrue(rows and rows[0]["reporting"], ev["peers"])

        # The alert fires on the leader only: one notification.
        with open(control, "w") as f:
            f.write("outbox=10\n")
        h.wait_until(lambda: rx.of("firing"), 15, 0.1, "the firing webhook")
        time.sleep(3)  # every node has had time to (wrongly) send its own
        fired = rx.of("firing")
        self.assertEqual(len(fired), 1, [p["body"] for p in fired])
        first = fired[0]["body"]
        self.assertTrue(fired[0]["sig_ok"])
        self.assertEqual(first["alert"]["name"], "outbox_depth")
        self.assertEqual(first["index"]["node"], leader.node_id)
        fx = dash(followers[0])
        self.assertEqual([a["name"] for a in fx["alerts"]["firing"]],
                         ["outbox_depth"])
        for f in followers:
            self.assertEqual(f.metric('parley_alerts_firing{name='
                                      '"outbox_depth",severity="warning"}'),
                             0)

        # The leader dies: the new one takes the alert over (no second
        # "firing"), and node_down fires from it.
        leader.kill()
        new = cl.wait_leader(exclude=(leader.node_id,))
        h.wait_until(lambda: [p for p in rx.of("firing")
                              if p["body"]["alert"]["name"] == "node_down"],
                     20, 0.2, "node_down from the new leader")
        nd = [p for p in rx.of("firing")
              if p["body"]["alert"]["name"] == "node_down"]
        self.assertEqual(len(nd), 1)
        self.assertEqual(nd[0]["body"]["index"]["node"], new.node_id)
        self.assertIn("alert", new.logtext())
        self.assertIn("took over 1 firing alert", new.logtext())
        nx = h.wait_until(lambda: (lambda x: x if "outbox_depth" in [
            a["name"] for a in x["alerts"]["firing"]] else None)(dash(new)),
            10, 0.3, "outbox_depth still firing on the new leader")
        held = [a for a in nx["alerts"]["firing"]
                if a["name"] == "outbox_depth"][0]
        self.assertEqual(held["since"], first["alert"]["since"])
        with open(control, "w") as f:
            f.write("outbox=0\n")
        h.wait_until(lambda: [p for p in rx.of("resolved")
                              if p["body"]["alert"]["name"] ==
                              "outbox_depth"], 20, 0.2,
                     "outbox_depth resolved by the new leader")
        res = [p for p in rx.of("resolved")
               if p["body"]["alert"]["name"] == "outbox_depth"]
        self.assertEqual(len(res), 1)
        self.assertEqual(res[0]["body"]["index"]["node"], new.node_id)
        self.assertEqual(res[0]["body"]["alert"]["since"],
                         first["alert"]["since"])
        self.assertEqual(len([p for p in rx.of("firing")
                              if p["body"]["alert"]["name"] ==
                              "outbox_depth"]), 1)

        # Alone, the survivor says there is no leader itself.
        other = [f for f in followers if f is not new][0]
        other.kill()
        h.wait_until(lambda: [p for p in rx.of("firing")
                              if p["body"]["alert"]["name"] == "no_leader"],
                     20, 0.2, "no_leader from the lone survivor")
        nl = [p for p in rx.of("firing")
              if p["body"]["alert"]["name"] == "no_leader"]
        self.assertEqual(len(nl), 1)
        self.assertEqual(nl[0]["body"]["index"]["node"], new.node_id)
        sx = dash(new)
        self.assertEqual(sx["state"], "waiting")
        self.assertEqual(sx["served_by"]["source"], "local")
        self.assertIn("no leader", sx["served_by"]["notice"])
        self.assertIn("no_leader", [a["name"] for a in
                                    sx["alerts"]["firing"]])
        other.restart()
        h.wait_until(lambda: [p for p in rx.of("resolved")
                              if p["body"]["alert"]["name"] ==
                              "no_leader"], 20, 0.2, "no_leader resolved")
        rep.kill(signal.SIGTERM)
        cl.stop_all()

    # real parleyd ----------------------------------------------------------
    def test_h_real_parleyd_reports(self):
        if not os.access(os.path.join(h.BIN, "parleyd"), os.X_OK):
            self.skipTest("no parleyd in PARLEY_BIN")
        idx, tok = self.start_index()
        a = h.Peer(idx.addr, "real-a")
        b = h.Peer(idx.addr, "real-b")
        self.procs += [a, b]
        b.ok("subscribe", "realtopic")
        time.sleep(0.5)
        for i in range(20):
            a.ok("publish", "realtopic", "hello %d" % i)
        deadline = time.time() + 8 * h.SLOW
        while time.time() < deadline:
            if metrics(idx, tok).get("parley_index_reports_total", 0) > 0:
                break
            time.sleep(0.5)
        else:
            self.skipTest("this parleyd does not send REPORT frames yet "
                          "(parley_index_reports_total stayed 0); the "
                          "dashboard's figures are covered by the fake "
                          "reporters above")

        def figures():
            d = get_json(idx, "/v1/dashboard", tok)
            rows = {r["name"]: r for r in d["peers"]["table"]}
            return d if all(rows.get(n, {}).get("reporting")
                            for n in ("real-a", "real-b")) else None
        d = h.wait_until(figures, 15, 0.3, "reports from both parleyd")
        res = {r["daemon"]: r for r in d["resources"]}
        self.assertGreater(res["real-a"]["rss_bytes"], 1 << 20)
        self.assertGreater(res["real-a"]["open_fds"], 3)
        topics = {t["topic"]: t for t in d["topics"]}
        self.assertEqual(topics["realtopic"]["subscribers"], 1)
        a.stop()
        b.stop()
        idx.stop()

    # contrib/ -------------------------------------------------------------
    def test_i_contrib_names_exist(self):
        """Every parley_* name in contrib/prometheus and contrib/grafana is
        served by parley-index or parleyd, with HELP and TYPE; counters end
        in _total."""
        import re
        if not os.access(os.path.join(h.BIN, "parleyd"), os.X_OK):
            self.skipTest("no parleyd in PARLEY_BIN")
        rx = Receiver(fail_first=0)
        self.addCleanup(rx.close)
        idx, tok = self.start_index(["--webhook", rx.url()])
        peer = h.Peer(idx.addr, "names")
        self.procs.append(peer)
        families = {}
        texts = [h.http_get(idx.http, "/metrics", tok)]
        st, body = peer.api_call("GET", "/metrics")
        self.assertEqual(st, 200)
        texts.append(body)
        for text in texts:
            helps = set()
            for line in text.splitlines():
                if line.startswith("# HELP "):
                    helps.add(line.split()[2])
                elif line.startswith("# TYPE "):
                    _, _, name, kind = line.split()
                    families[name] = kind
                    self.assertIn(name, helps, "no HELP for %s" % name)
        for name, kind in families.items():
            if name.startswith("parley_") and kind == "counter":
                self.assertTrue(name.endswith("_total"), name)
        root = os.path.join(os.path.dirname(__file__), "..", "..", "contrib")
        used = set()
        for sub, f in (("prometheus", "parley-alerts.yml"),
                       ("prometheus", "prometheus.yml"),
                       ("grafana", "parley-dashboard.json")):
            with open(os.path.join(root, sub, f)) as fh:
                used |= set(re.findall(r"\b(?:parley|process)_[a-z0-9_]+",
                                       fh.read()))
        json.load(open(os.path.join(root, "grafana",
                                    "parley-dashboard.json")))
        missing = []
        for n in sorted(used):
            base = re.sub(r"_(bucket|sum|count)$", "", n)
            if n.startswith("parley_index_raft_"):
                continue  # cluster members only: test_g reads them there
            if n not in families and base not in families:
                missing.append(n)
        self.assertEqual(missing, [])
        peer.stop()
        idx.stop()


if __name__ == "__main__":
    h.main()
