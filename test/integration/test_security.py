#!/usr/bin/env python3
"""Security tests of parley-index against hostile clients: bearer tokens on
every HTTP endpoint (missing, garbage, forged, alg "none", HS512, expired,
wrong role, rotated keys, tokens across a cluster), the OAuth2
client-credentials endpoint and its brute-force ban, and the peer port's
abuse limits (connection floods, garbage senders, subscription churn).

Every attack is followed by a check that honest traffic still flows: a real
parleyd peer publishes with --ack to another one through the same index.
Hostile connections come from other loopback addresses (127.0.0.2 ...), so
the bans they earn do not hit the honest peers on 127.0.0.1.

Prints "N passed, M failed, K skipped" last.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness as h

TOPIC = "sec"
INDEX = os.path.join(h.BIN, "parley-index")


# ---- helpers ------------------------------------------------------------------

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def request(hostport, path, token=None, method="GET", body=None,
            headers=None, timeout=10):
    """One HTTP request; returns (status, headers, body text)."""
    req = urllib.request.Request("http://%s%s" % (hostport, path),
                                 data=body, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout * h.SLOW) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def metric(hostport, token, name, labels=None):
    """One sample of the index's /metrics (0 when absent)."""
    key = name + ("{%s}" % labels if labels else "")
    _, _, text = request(hostport, "/metrics", token)
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[1])
    return 0.0


def token_cli(*args):
    r = subprocess.run([INDEX] + [str(a) for a in args], capture_output=True,
                       timeout=60 * h.SLOW)
    return r.returncode, r.stdout.decode().strip(), r.stderr.decode()


def oauth(hostport, client_id, secret, scope=None):
    """POST /oauth/token with HTTP Basic; returns (status, headers, json)."""
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    basic = base64.b64encode(("%s:%s" % (
        urllib.parse.quote(client_id, safe=""),
        urllib.parse.quote(secret, safe=""))).encode()).decode()
    status, hdrs, text = request(
        hostport, "/oauth/token", method="POST",
        body=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": "Basic " + basic})
    return status, hdrs, json.loads(text) if text else None


def connect_from(src, addr, timeout=5):
    """A TCP connection to addr from the loopback address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(h.hostport(addr))
    return s


def read_all(s, timeout=7.0):
    """Bytes the server sends until it closes (or timeout)."""
    s.settimeout(0.2)
    got = b""
    deadline = time.time() + timeout * h.SLOW
    while time.time() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        got += chunk
    return got


class Net:
    """An index and two honest parleyd peers: b subscribes to TOPIC, a
    publishes to it with --ack."""

    def __init__(self, extra=()):
        self.index = h.Index(lease=5, extra=list(extra))
        self.admin = self.index.token
        self.a = h.Peer(self.index.addr, "alice")
        self.b = h.Peer(self.index.addr, "bob")
        for p in (self.a, self.b):
            h.wait_until(lambda p=p: json.loads(p.ok("status", "--json"))
                         ["index"]["connected"], what="%s registered" % p.name)
        self.b.ok("subscribe", TOPIC)
        h.wait_until(lambda: any(
            json.loads(l).get("topic") == TOPIC
            for l in self.index.get("/v1/topics").splitlines() if l.strip()),
            what="bob's subscription at the index")
        self.n = 0

    def honest(self, case):
        """a publishes --ack to b; b stored it."""
        self.n += 1
        body = "honest %d after %s" % (self.n, case)
        rc, out, err = self.a.cli("publish", "--ack", "--timeout", "10",
                                  TOPIC, body)
        if rc != 0:
            raise AssertionError("publish --ack after %s failed (%d): %s\n"
                                 "--- index log ---\n%s" % (
                                     case, rc, err,
                                     self.index.logtext()[-3000:]))
        mid = out.strip().splitlines()[0]
        h.wait_until(lambda: any(m["id"] == mid for m in
                                 self.b.history(TOPIC)),
                     what="bob to store %r" % body)
        # And the index still answers its API.
        status, _, _ = request(self.index.http, "/v1/status", self.admin)
        if status != 200:
            raise AssertionError("/v1/status after %s: %d" % (case, status))

    def metric(self, name, labels=None):
        return metric(self.index.http, self.admin, name, labels)

    def stop(self):
        for p in (self.a, self.b, self.index):
            if p.alive():
                p.stop()


# ---- bearer tokens --------------------------------------------------------------

class Tokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = Net()
        cls.ix = cls.net.index
        cls.viewer = h.mint_token(cls.ix.data, role="viewer", ttl="1h",
                                  subject="grafana")

    @classmethod
    def tearDownClass(cls):
        cls.net.stop()

    def current_key(self):
        with open(os.path.join(self.ix.data, "jwt-keys.json")) as f:
            keys = json.load(f)["keys"]
        k = [k for k in keys if k["verify_until_ms"] == 0][0]
        return k["kid"], bytes.fromhex(k["secret"])

    def claims(self, role="admin", exp_in=3600):
        now = int(time.time())
        return {"iss": "parley-index", "sub": "mallory", "role": role,
                "iat": now, "nbf": now, "exp": now + exp_in,
                "jti": b64u(os.urandom(16))}

    def forge(self, header, claims, key=None, digest=hashlib.sha256):
        """header.payload, signed with key by HMAC-digest (or unsigned)."""
        signing = "%s.%s" % (b64u(json.dumps(header, separators=(",", ":"))
                                  .encode()),
                             b64u(json.dumps(claims, separators=(",", ":"))
                                  .encode()))
        sig = "" if key is None else b64u(
            hmac.new(key, signing.encode(), digest).digest())
        return signing + "." + sig

    def assert_401(self, token, what, method="GET", path="/v1/status"):
        status, hdrs, text = request(self.ix.http, path, token, method=method,
                                     body=b"{}" if method == "POST" else None)
        self.assertEqual(status, 401, "%s: %s" % (what, text))
        www = hdrs.get("WWW-Authenticate", "")
        self.assertTrue(www.startswith("Bearer realm="), www)
        self.assertEqual(json.loads(text)["code"], "EAUTH")
        return www

    def test_no_token_anywhere(self):
        before = self.net.metric("parley_http_unauthorized_total")
        for path in ("/metrics", "/v1/status", "/v1/peers", "/v1/topics",
                     "/v1/cluster", "/nope"):
            www = self.assert_401(None, path, path=path)
            self.assertNotIn("error=", www)  # no token: no error code
        for path in ("/v1/cluster/add", "/v1/cluster/remove"):
            self.assert_401(None, path, method="POST", path=path)
        self.assertGreaterEqual(
            self.net.metric("parley_http_unauthorized_total") - before, 8)
        self.net.honest("requests without a token")

    def test_garbage_tokens(self):
        for tok in ("garbage", "a.b.c", "x" * 3000, "....",
                    self.viewer + "x", self.viewer[:-2]):
            www = self.assert_401(tok, "garbage %r" % tok[:20])
            self.assertIn('error="invalid_token"', www)
        # Another scheme is no bearer token at all.
        status, _, _ = request(self.ix.http, "/v1/status",
                               headers={"Authorization": "Basic YTpi"})
        self.assertEqual(status, 401)
        self.net.honest("garbage tokens")

    def test_our_forger_is_right(self):
        # The forger below signs like the index does: a properly signed
        # HS256 token with the real key is accepted.  Only then do its
        # refusals mean something.
        kid, key = self.current_key()
        tok = self.forge({"alg": "HS256", "typ": "JWT", "kid": kid},
                         self.claims("viewer"), key)
        status, _, text = request(self.ix.http, "/v1/status", tok)
        self.assertEqual(status, 200, text)

    def test_forged_signature(self):
        # A viewer token with its role changed to admin, signature kept.
        head, payload, sig = self.viewer.split(".")
        claims = json.loads(unb64u(payload))
        self.assertEqual(claims["role"], "viewer")
        claims["role"] = "admin"
        forged = "%s.%s.%s" % (
            head, b64u(json.dumps(claims, separators=(",", ":")).encode()),
            sig)
        www = self.assert_401(forged, "role changed, signature kept",
                              method="POST", path="/v1/cluster/add")
        self.assertIn("bad signature", www)
        # A signature made with another key.
        kid, _ = self.current_key()
        tok = self.forge({"alg": "HS256", "typ": "JWT", "kid": kid},
                         self.claims(), os.urandom(32))
        self.assert_401(tok, "signed with a guessed key")
        self.net.honest("forged signatures")

    def test_alg_none(self):
        kid, key = self.current_key()
        for header in ({"alg": "none", "typ": "JWT"},
                       {"alg": "none", "typ": "JWT", "kid": kid},
                       {"alg": "None", "kid": kid},
                       {"typ": "JWT", "kid": kid}):
            tok = self.forge(header, self.claims())
            www = self.assert_401(tok, "unsigned %r" % header)
            self.assertIn('error="invalid_token"', www)
        # "none" with a valid HS256 signature attached is refused too.
        tok = self.forge({"alg": "none", "kid": kid}, self.claims(), key)
        self.assertIn("algorithm", self.assert_401(tok, "none + signature"))
        self.net.honest("alg none")

    def test_alg_hs512(self):
        # Correctly signed with the real key, but with HS512: the index
        # pins HS256.
        kid, key = self.current_key()
        tok = self.forge({"alg": "HS512", "typ": "JWT", "kid": kid},
                         self.claims(), key, hashlib.sha512)
        www = self.assert_401(tok, "HS512")
        self.assertIn("algorithm not allowed", www)
        self.net.honest("alg HS512")

    def test_expired(self):
        rc, tok, err = token_cli("token", "create", "--data", self.ix.data,
                                 "--role", "admin", "--ttl", "1s")
        self.assertEqual(rc, 0, err)
        status, _, _ = request(self.ix.http, "/v1/status", tok)
        self.assertEqual(status, 200)
        time.sleep(2.2)
        www = self.assert_401(tok, "expired")
        self.assertIn("expired", www)
        self.net.honest("an expired token")

    def test_wrong_issuer_and_claims(self):
        kid, key = self.current_key()
        c = self.claims()
        c["iss"] = "someone-else"
        self.assertIn("issuer", self.assert_401(
            self.forge({"alg": "HS256", "kid": kid}, c, key), "issuer"))
        c = self.claims()
        c["role"] = "root"
        self.assert_401(self.forge({"alg": "HS256", "kid": kid}, c, key),
                        "unknown role")
        c = self.claims()
        del c["exp"]
        self.assert_401(self.forge({"alg": "HS256", "kid": kid}, c, key),
                        "no exp")

    def test_roles(self):
        before = self.net.metric("parley_http_forbidden_total")
        # A viewer reads everything, /metrics included (Prometheus).
        for path in ("/metrics", "/v1/status", "/v1/peers", "/v1/topics"):
            status, _, text = request(self.ix.http, path, self.viewer)
            self.assertEqual(status, 200, path)
        # ... but changes nothing.
        for path in ("/v1/cluster/add", "/v1/cluster/remove"):
            status, hdrs, text = request(self.ix.http, path, self.viewer,
                                         method="POST", body=b"{}")
            self.assertEqual(status, 403, text)
            self.assertIn('error="insufficient_scope"',
                          hdrs.get("WWW-Authenticate", ""))
            self.assertEqual(json.loads(text)["code"], "EDENIED")
        # The admin gets through to the route (a single node has no
        # cluster to change: 404).
        status, _, _ = request(self.ix.http, "/v1/cluster/add", self.net.admin,
                               method="POST", body=b"{}")
        self.assertEqual(status, 404)
        self.assertEqual(
            self.net.metric("parley_http_forbidden_total") - before, 2)
        self.net.honest("a viewer trying to change the cluster")

    def test_rotation_while_running(self):
        old = h.mint_token(self.ix.data, role="viewer", ttl="1h")
        old_kid = json.loads(unb64u(old.split(".")[0]))["kid"]
        rc, out, err = token_cli("token", "rotate", "--data", self.ix.data)
        self.assertEqual(rc, 0, err)
        new = h.mint_token(self.ix.data, role="viewer", ttl="1h")
        new_kid = json.loads(unb64u(new.split(".")[0]))["kid"]
        self.assertNotEqual(old_kid, new_kid)
        self.assertIn(new_kid, out)
        # The daemon picks the new key up by itself; the old one still
        # verifies (grace period).
        h.wait_until(lambda: request(self.ix.http, "/v1/status", new)[0] == 200,
                     10, what="the rotated key to be picked up")
        self.assertEqual(request(self.ix.http, "/v1/status", old)[0], 200)
        self.assertGreaterEqual(self.net.metric("parley_auth_keys"), 2)
        self.assertGreaterEqual(self.net.metric("parley_auth_reloads_total"),
                                1)
        st = os.stat(os.path.join(self.ix.data, "jwt-keys.json"))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        # After a leak: revoke the retired keys; the old token dies.
        rc, out, err = token_cli("token", "revoke", "--data", self.ix.data)
        self.assertEqual(rc, 0, err)
        h.wait_until(lambda: request(self.ix.http, "/v1/status", old)[0] == 401,
                     10, what="the revoked key to be dropped")
        self.assertEqual(request(self.ix.http, "/v1/status", new)[0], 200)
        self.net.admin = self.ix._token = h.mint_token(self.ix.data)
        self.viewer = h.mint_token(self.ix.data, role="viewer", ttl="1h")
        type(self).viewer = self.viewer
        self.net.honest("a key rotation")

    def test_cli_refuses_bad_input(self):
        for args in (["token", "create", "--data", self.ix.data, "--role",
                      "root", "--ttl", "1h"],
                     ["token", "create", "--data", self.ix.data, "--role",
                      "admin", "--ttl", "90d"],
                     ["token", "create", "--role", "admin", "--ttl", "1h"],
                     ["token", "frobnicate"],
                     ["client", "add", "--data", self.ix.data]):
            rc, out, err = token_cli(*args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertEqual(out, "")


# ---- OAuth2 client credentials ------------------------------------------------

class OAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Failed client authentications are strikes: allow many here (the
        # brute-force ban has its own test below).
        cls.net = Net(extra=["--token-strikes", "1000", "--token-burst", "1000",
                             "--token-every", "10ms"])
        cls.ix = cls.net.index

    @classmethod
    def tearDownClass(cls):
        cls.net.stop()

    def add_client(self, cid, role):
        rc, secret, err = token_cli("client", "add", cid, "--role", role,
                                    "--data", self.ix.data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(secret), 43)
        # The daemon reads the client file again within its reload period.
        h.wait_until(lambda: self.net.metric("parley_auth_clients") >= 1,
                     10, what="the client file to be reloaded")
        return secret

    def test_client_credentials(self):
        secret = self.add_client("grafana", "viewer")
        rc, out, err = token_cli("client", "list", "--data", self.ix.data)
        self.assertEqual(rc, 0, err)
        self.assertIn("grafana", out)
        self.assertNotIn(secret, out)
        with open(os.path.join(self.ix.data, "oauth-clients.json")) as f:
            self.assertNotIn(secret, f.read())  # only a hash is kept
        h.wait_until(lambda: oauth(self.ix.http, "grafana", secret)[0] == 200,
                     10, what="the new client to be accepted")
        status, hdrs, j = oauth(self.ix.http, "grafana", secret)
        self.assertEqual(status, 200, j)
        self.assertEqual(j["token_type"], "Bearer")
        self.assertEqual(j["scope"], "viewer")
        self.assertEqual(hdrs.get("Cache-Control"), "no-store")
        tok = j["access_token"]
        self.assertEqual(request(self.ix.http, "/v1/status", tok)[0], 200)
        self.assertEqual(request(self.ix.http, "/metrics", tok)[0], 200)
        status, _, _ = request(self.ix.http, "/v1/cluster/add", tok,
                               method="POST", body=b"{}")
        self.assertEqual(status, 403)
        # A viewer client cannot ask for more.
        status, _, j = oauth(self.ix.http, "grafana", secret, scope="admin")
        self.assertEqual((status, j["error"]), (400, "invalid_scope"))
        # Wrong secret, unknown client: 401 invalid_client.
        status, hdrs, j = oauth(self.ix.http, "grafana", "wrong" * 8)
        self.assertEqual((status, j["error"]), (401, "invalid_client"))
        self.assertIn("Basic", hdrs.get("WWW-Authenticate", ""))
        status, _, j = oauth(self.ix.http, "nobody", secret)
        self.assertEqual((status, j["error"]), (401, "invalid_client"))
        # Not a form, another grant: 400.
        status, _, text = request(self.ix.http, "/oauth/token", method="POST",
                                  body=b'{"grant_type":"client_credentials"}',
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400, text)
        self.assertGreaterEqual(self.net.metric("parley_auth_tokens_issued_total"),
                                1)
        self.assertGreaterEqual(self.net.metric(
            "parley_auth_token_requests_refused_total", 'code="401"'), 2)
        # Removing the client cuts it off (its tokens live on until they
        # expire: 15 minutes).
        rc, _, err = token_cli("client", "remove", "grafana", "--data",
                               self.ix.data)
        self.assertEqual(rc, 0, err)
        h.wait_until(lambda: oauth(self.ix.http, "grafana", secret)[0] == 401,
                     10, what="the removed client to be refused")
        self.net.honest("OAuth requests")

    def test_oversize_requests(self):
        # A declared body over the HTTP cap: 413 before any of it is read
        # and before any handler runs.
        c = http.client.HTTPConnection(*h.hostport(self.ix.http),
                                       timeout=10 * h.SLOW)
        try:
            c.putrequest("POST", "/oauth/token")
            c.putheader("Content-Type", "application/x-www-form-urlencoded")
            c.putheader("Content-Length", str(3 * 1024 * 1024))
            c.endheaders()
            self.assertEqual(c.getresponse().status, 413)
        finally:
            c.close()
        # Over the token endpoint's form cap (4 KiB): 400.
        status, _, j = oauth(self.ix.http, "x" * 5000, "y")
        self.assertIn(status, (400, 401))
        self.net.honest("oversize requests")

    def test_header_count_limit(self):
        self.assertEqual(self.net.metric("parley_http_header_limit"), 64)
        hdrs = {"X-Filler-%03d" % i: "x" for i in range(50)}
        status, _, text = request(self.ix.http, "/v1/status", self.net.admin,
                                  headers=hdrs)
        self.assertEqual(status, 200, text)
        hdrs = {"X-Filler-%03d" % i: "x" for i in range(100)}
        status, _, text = request(self.ix.http, "/v1/status", self.net.admin,
                                  headers=hdrs)
        self.assertEqual(status, 431, text)
        self.assertGreaterEqual(
            self.net.metric("parley_http_headers_refused_total"), 1)
        self.net.honest("too many headers")


class OAuthBruteForce(unittest.TestCase):
    def setUp(self):
        # 3 wrong secrets ban the address for 4 s; a large burst so that
        # only the strikes matter.
        self.net = Net(extra=["--token-strikes", "3", "--token-ban", "4s",
                              "--token-burst", "100", "--token-every", "10ms"])
        self.ix = self.net.index
        rc, self.secret, err = token_cli("client", "add", "svc", "--role",
                                         "admin", "--data", self.ix.data)
        self.assertEqual(rc, 0, err)
        # Asking before the daemon read the client file would be a strike.
        h.wait_until(lambda: self.net.metric("parley_auth_clients") == 1,
                     10, what="the client file to be reloaded")
        status, _, j = oauth(self.ix.http, "svc", self.secret)
        self.assertEqual(status, 200, j)

    def tearDown(self):
        self.net.stop()

    def test_bad_secrets_ban_the_address(self):
        for i in range(3):
            status, _, j = oauth(self.ix.http, "svc", "guess%d" % i)
            self.assertEqual((status, j["error"]), (401, "invalid_client"))
        # Banned: even the right secret is refused, with Retry-After.
        t_ban = time.time()
        status, hdrs, j = oauth(self.ix.http, "svc", self.secret)
        self.assertEqual(status, 429, j)
        self.assertGreaterEqual(int(hdrs.get("Retry-After", "0")), 1)
        self.assertEqual(self.net.metric("parley_ratelimit_bans_total",
                                         'limit="token"'), 1)
        self.assertGreaterEqual(self.net.metric(
            "parley_auth_token_requests_refused_total", 'code="429"'), 1)
        # Another address is not banned.
        c = http.client.HTTPConnection(*h.hostport(self.ix.http),
                                       timeout=10 * h.SLOW,
                                       source_address=("127.0.0.6", 0))
        try:
            c.request("POST", "/oauth/token",
                      body="grant_type=client_credentials&client_id=svc&"
                      "client_secret=" + self.secret,
                      headers={"Content-Type":
                               "application/x-www-form-urlencoded"})
            other = c.getresponse().status
        finally:
            c.close()
        self.assertEqual(other, 200)
        # Bearer tokens and the peers are not affected by the ban.
        self.net.honest("a banned token requester")
        # Once the ban is over the right secret works again.
        time.sleep(max(0.0, 4.3 - (time.time() - t_ban)))
        status, _, j = oauth(self.ix.http, "svc", self.secret)
        self.assertEqual(status, 200, j)
        self.assertEqual(request(self.ix.http, "/v1/status",
                                 j["access_token"])[0], 200)
        self.net.honest("the end of the ban")


# ---- the peer port ------------------------------------------------------------

class PeerPort(unittest.TestCase):
    def tearDown(self):
        if getattr(self, "net", None) is not None:
            self.net.stop()

    def test_connection_flood_is_limited(self):
        self.net = Net(extra=["--conn-burst", "5", "--conn-rate", "1"])
        ix = self.net.index
        opened, refused = [], 0
        for _ in range(40):
            s = connect_from("127.0.0.3", ix.addr)
            s.settimeout(1.0)
            try:
                first = s.recv(5)
            except (socket.timeout, ConnectionResetError):
                first = b""
            if first.startswith(b"PRLY"):
                opened.append(s)  # admitted: the preamble came
            else:
                refused += 1
                s.close()
        for s in opened:
            s.close()
        self.assertLessEqual(len(opened), 8)
        self.assertGreaterEqual(refused, 32)
        limited = self.net.metric("parley_net_conns_limited_total")
        self.assertGreaterEqual(limited, 32)
        self.assertGreaterEqual(self.net.metric(
            "parley_ratelimit_limited_total", 'limit="conn"'), 32)
        # Honest traffic: the peers on 127.0.0.1 keep working, and a new
        # one can still register.
        self.net.honest("a connection flood")
        c = h.Peer(ix.addr, "carol")
        try:
            h.wait_until(lambda: json.loads(c.ok("status", "--json"))
                         ["index"]["connected"], what="carol registered")
        finally:
            c.stop()
        self.assertTrue(ix.alive())

    def test_garbage_sender_is_banned(self):
        self.net = Net(extra=["--strikes", "3", "--ban", "30s"])
        ix = self.net.index
        for i in range(3):
            s = connect_from("127.0.0.4", ix.addr)
            # Admitted: the index greets with its preamble, then hangs up
            # on the garbage.
            s.sendall(b"GARBAGE!" * 16)
            got = read_all(s)
            s.close()
            self.assertTrue(got.startswith(b"PRLY"), got)
        h.wait_until(lambda: self.net.metric("parley_net_strike_bans_total")
                     >= 1, 5, what="the ban")
        self.assertGreaterEqual(self.net.metric("parley_net_strikes_total"), 3)
        self.assertEqual(self.net.metric("parley_ratelimit_active_bans",
                                         'limit="bad_input"'), 1)
        # Banned: closed before a single byte, whatever it sends.
        for _ in range(3):
            s = connect_from("127.0.0.4", ix.addr)
            self.assertEqual(read_all(s, 5), b"")
            s.close()
        self.assertGreaterEqual(self.net.metric("parley_net_conns_banned_total"),
                                3)
        # Another address is not affected, and neither are the peers.
        s = connect_from("127.0.0.5", ix.addr)
        self.assertTrue(read_all(s, 1).startswith(b"PRLY"))
        s.close()
        self.net.honest("a garbage sender")
        self.assertTrue(ix.alive())

    def test_subscription_churn_is_limited(self):
        self.net = Net(extra=["--sub-burst", "4", "--sub-rate", "1"])
        c = h.Peer(self.net.index.addr, "churner")
        try:
            h.wait_until(lambda: json.loads(c.ok("status", "--json"))
                         ["index"]["connected"], what="churner registered")
            # The peer passes the index's ELIMIT on to its user.
            refused = 0
            for i in range(12):
                rc, _, err = c.cli("subscribe", "churn%d" % i)
                if rc != 0:
                    self.assertIn("limit", err)
                    refused += 1
            self.assertGreaterEqual(refused, 6)
            h.wait_until(lambda: self.net.metric(
                "parley_index_sub_limited_total") >= 1, 10,
                what="ELIMIT for subscription churn")
            self.assertGreaterEqual(self.net.metric(
                "parley_ratelimit_limited_total", 'limit="subscribe"'), 1)
            self.assertGreaterEqual(self.net.metric(
                "parley_index_errors_total"), 1)
            # bob's own subscription and the message flow are untouched.
            self.net.honest("subscription churn")
        finally:
            c.stop()


# ---- a cluster ----------------------------------------------------------------

class ClusterTokens(unittest.TestCase):
    def setUp(self):
        self.cluster = h.Cluster(3)
        self.cluster.wait_leader()

    def tearDown(self):
        self.cluster.stop_all()

    def test_token_from_one_node_works_on_all(self):
        n1, n2, n3 = (self.cluster.nodes[i] for i in (1, 2, 3))
        # Minted offline from node 1's directory (the key path is recorded
        # in its index.json); verified by nodes 2 and 3, which derive the
        # same keys from the shared cluster key.
        rc, tok, err = token_cli("token", "create", "--data", n1.data,
                                 "--role", "viewer", "--ttl", "10m")
        self.assertEqual(rc, 0, err)
        for n in (n1, n2, n3):
            status, _, text = request(n.http, "/v1/cluster", tok)
            self.assertEqual(status, 200, "node %d: %s" % (n.node_id, text))
        status, _, _ = request(n2.http, "/v1/cluster/add", tok,
                               method="POST", body=b'{"id":9,"raft":"x"}')
        self.assertEqual(status, 403)
        # A token of another cluster (another key) is refused.
        other = h.cluster_key()
        rc, foreign, err = token_cli("token", "create", "--data", n1.data,
                                     "--role", "admin", "--ttl", "10m",
                                     "--cluster-key", other)
        self.assertEqual(rc, 0, err)
        self.assertEqual(request(n2.http, "/v1/status", foreign)[0], 401)
        # Cluster keys rotate by epoch: `token rotate` explains instead.
        rc, out, err = token_cli("token", "rotate", "--data", n1.data)
        self.assertEqual(rc, 2)
        self.assertIn("cluster", err)
        # The cluster CLI needs the token.
        r = subprocess.run([INDEX, "cluster", "status", "--http", n3.http],
                           capture_output=True, timeout=30,
                           env={k: v for k, v in os.environ.items()
                                if k != "PARLEY_TOKEN"})
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"HTTP 401", r.stderr)
        r = subprocess.run([INDEX, "cluster", "status", "--http", n3.http],
                           capture_output=True, timeout=30,
                           env=dict(os.environ, PARLEY_TOKEN=tok))
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    h.main()
