"""Helpers for Parley's integration tests: start real parley-index and
parleyd processes on 127.0.0.1 with ephemeral ports and temporary data
directories, drive them through the real `parley` CLI and the HTTP API, and
clean up every process at exit.

Binaries come from $PARLEY_BIN (the CMake build directory).  Under
$PARLEY_SANITIZED=1 (the ASan build) timeouts are stretched.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BIN = os.environ.get("PARLEY_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SLOW = 3.0 if os.environ.get("PARLEY_SANITIZED") else 1.0

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")

_procs = []
_dirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def tmpdir(prefix="parley-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d


def wait_until(fn, timeout=10.0, interval=0.05, what="condition"):
    """Polls fn() until it returns a truthy value; returns it or fails."""
    deadline = time.time() + timeout * SLOW
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class Proc:
    """A running daemon with its first stdout line parsed into fields.
    prefix (e.g. Netlab.prefix(i)) runs it inside a network namespace."""

    def __init__(self, argv, name, prefix=()):
        self.argv = argv
        self.name = name
        self.prefix = list(prefix)
        self.log_path = os.path.join(tmpdir("parley-log-"), name + ".log")
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.prefix + self.argv,
                                  stdout=subprocess.PIPE,
                                  stderr=self.log, stdin=subprocess.DEVNULL)
        _procs.append(self.p)
        line = self.p.stdout.readline().decode()
        if not line:
            self.p.wait(5)
            raise AssertionError("%s did not start (exit %s): %s" % (
                self.name, self.p.returncode, self.logtext()[-2000:]))
        self.fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        self.line = line.strip()

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(15 * SLOW)
        self.log.close()
        if sig == signal.SIGKILL:
            self.check_log()
        return rc

    def stop(self):
        """SIGTERM; the daemon must exit 0 with no sanitizer report."""
        rc = self.kill(signal.SIGTERM)
        self.check_log()
        if rc != 0:
            raise AssertionError("%s exited %s on SIGTERM:\n%s" % (
                self.name, rc, self.logtext()[-3000:]))
        return rc

    def check_log(self):
        text = self.logtext()
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise AssertionError("%s: sanitizer report in its log:\n%s"
                                     % (self.name, text[text.index(mark) - 200:][:4000]))

    def alive(self):
        return self.p.poll() is None


class Index(Proc):
    def __init__(self, data=None, lease=None, extra=(), name="index"):
        self.data = data or tmpdir("parley-index-")
        argv = [os.path.join(BIN, "parley-index"), "--listen", "127.0.0.1:0",
                "--http", "127.0.0.1:0", "--data", self.data]
        if lease:
            argv += ["--lease", str(lease)]
        argv += list(extra)
        super().__init__(argv, name)
        # "parley-index listening on HOST:PORT id=... http=HOST:PORT"
        self.addr = self.line.split()[3]
        self.http = self.fields.get("http")
        self.id = self.fields.get("id")

    def restart(self):
        """Starts again on the same data directory and the same port."""
        i = self.argv.index("--listen")
        self.argv[i + 1] = self.addr
        self.start()

    @property
    def token(self):
        """An admin token for this index (minted once, on first use)."""
        if getattr(self, "_token", None) is None:
            self._token = mint_token(self.data)
        return self._token

    def get(self, path, token=None):
        return http_get(self.http, path, token or self.token)


class Peer(Proc):
    def __init__(self, index_addr, name, data=None, extra=(), prefix=()):
        self.data = data or tmpdir("parley-peer-%s-" % name)
        self.index_addr = index_addr
        self.extra = list(extra)
        argv = [os.path.join(BIN, "parleyd"), "--data", self.data, "--index",
                index_addr, "--name", name] + self.extra
        super().__init__(argv, name, prefix)
        self.id = self.fields["id"]
        self.api = self.fields["api"]
        self.addr = self.fields["listen"]

    def restart(self):
        self.start()
        self.id = self.fields["id"]
        self.api = self.fields["api"]
        self.addr = self.fields["listen"]

    def cli(self, *args, stdin=None, timeout=60):
        """Runs `parley --data DIR args...`; returns (rc, stdout, stderr)."""
        r = subprocess.run(self.prefix + [os.path.join(BIN, "parley"),
                                          "--data", self.data]
                           + [str(a) for a in args], input=stdin,
                           capture_output=True, timeout=timeout * SLOW)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def ok(self, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        if rc != 0:
            raise AssertionError("parley %s failed (%d): %s%s\n--- log ---\n%s"
                                 % (" ".join(map(str, args)), rc, out, err,
                                    self.logtext()[-3000:]))
        return out

    def json_lines(self, *args):
        out = self.ok(*(list(args) + ["--json"]))
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def token(self):
        with open(os.path.join(self.data, "api.json")) as f:
            return json.load(f)["token"]

    def api_call(self, method, path, body=None, token=None, raw=None):
        """Calls the HTTP API; returns (status, text)."""
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request("http://%s%s" % (self.api, path),
                                     data=data, method=method)
        req.add_header("Authorization", "Bearer %s" % (
            token if token is not None else self.token()))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30 * SLOW) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def history(self, *args):
        return self.json_lines("history", *args)

    def wait_history(self, n, *args, timeout=10.0):
        return wait_until(lambda: (lambda h: h if len(h) >= n else None)(
            self.history(*args)), timeout, what="%d messages at %s" % (n, self.name))


def mint_token(data, role="admin", ttl="1h", cluster_key=None,
               subject=None):
    """A bearer JWT for the parley-index whose data directory is data:
    `parley-index token create --data DIR --role ROLE --ttl TTL` (with
    --cluster-key for a cluster member).  Works while the index runs."""
    argv = [os.path.join(BIN, "parley-index"), "token", "create", "--data",
            data, "--role", role, "--ttl", str(ttl)]
    if cluster_key:
        argv += ["--cluster-key", cluster_key]
    if subject:
        argv += ["--subject", subject]
    r = subprocess.run(argv, capture_output=True, timeout=30 * SLOW)
    if r.returncode != 0:
        raise AssertionError("token create failed (%d): %s" % (
            r.returncode, r.stderr.decode()))
    return r.stdout.decode().strip()


def http_get(hostport_, path, token=None, timeout=5):
    """GET http://HOSTPORT/PATH with an optional bearer token; returns the
    body (raises urllib.error.HTTPError on 4xx/5xx)."""
    req = urllib.request.Request("http://%s%s" % (hostport_, path))
    if token:
        req.add_header("Authorization", "Bearer %s" % token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def hostport(addr):
    h, p = addr.rsplit(":", 1)
    return h, int(p)


def raw_connect(addr, payload=b"", close=True):
    """Opens a TCP connection, sends payload, returns the socket (or closes)."""
    s = socket.create_connection(hostport(addr), timeout=5)
    if payload:
        s.sendall(payload)
    if close:
        s.close()
        return None
    return s


def main():
    """Runs the module's tests and prints the plain closing line."""
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules["__main__"])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed, %d skipped" % (passed, failed,
                                                 len(result.skipped)))
    sys.exit(0 if failed == 0 else 1)


# ---- clusters of parley-index (test_cluster.py) ------------------------------

def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1: bound together to port 0,
    then released (a small race remains; good enough on a test machine)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def cluster_key(path=None):
    """Writes a fresh cluster key file (mode 0600) with `parley-index cluster
    keygen --out`; returns its path."""
    path = path or os.path.join(tmpdir("parley-key-"), "cluster.key")
    subprocess.run([os.path.join(BIN, "parley-index"), "cluster", "keygen",
                    "--out", path], check=True, timeout=10)
    return path


class ClusterNode(Proc):
    """One parley-index cluster member on fixed ports (so that it can be
    restarted on the same addresses and data directory)."""

    def __init__(self, node_id, members, key, ports, data=None, join=False,
                 lease=None, extra=(), name=None):
        self.node_id = node_id
        self.key = key
        self.data = data or tmpdir("parley-node%d-" % node_id)
        self.listen = "127.0.0.1:%d" % ports[0]
        self.http = "127.0.0.1:%d" % ports[1]
        self.raft = dict(members)[node_id]
        argv = [os.path.join(BIN, "parley-index"), "--id", str(node_id),
                "--cluster", ",".join("%d=%s" % m for m in members),
                "--cluster-key", key, "--listen", self.listen,
                "--http", self.http, "--data", self.data]
        if join:
            argv.append("--join")
        if lease:
            argv += ["--lease", str(lease)]
        argv += list(extra)
        super().__init__(argv, name or "node%d" % node_id)
        self.id = self.fields.get("id")

    def restart(self):
        if "--join" in self.argv:
            self.argv.remove("--join")  # it is a member now
        self.start()

    @property
    def token(self):
        """An admin token minted from this node's data directory and the
        cluster key: it verifies on every member."""
        if getattr(self, "_token", None) is None:
            self._token = mint_token(self.data, cluster_key=self.key)
        return self._token

    def get(self, path, timeout=5, token=None):
        return http_get(self.http, path, token or self.token, timeout)

    def cluster(self):
        return json.loads(self.get("/v1/cluster"))

    def leader_id(self):
        """The leader this node knows of, or 0."""
        try:
            leader = self.cluster().get("leader")
        except Exception:  # noqa: BLE001 - down or starting
            return 0
        return leader["id"] if leader else 0

    def topics(self):
        return [json.loads(l) for l in self.get("/v1/topics").splitlines()
                if l.strip()]

    def peers(self):
        return [json.loads(l) for l in self.get("/v1/peers").splitlines()
                if l.strip()]

    def metric(self, name):
        for line in self.get("/metrics").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


class Cluster:
    """n members on 127.0.0.1, bootstrapped together."""

    def __init__(self, n=3, key=None, lease=None, extra=()):
        self.key = key or cluster_key()
        ports = free_ports(3 * n)
        self.members = [(i + 1, "127.0.0.1:%d" % ports[3 * i + 2])
                        for i in range(n)]
        self.nodes = {}
        self.lease = lease
        self.extra = list(extra)
        self._token = None
        for i in range(n):
            nid = i + 1
            self.nodes[nid] = ClusterNode(
                nid, self.members, self.key, ports[3 * i:3 * i + 2],
                lease=lease, extra=self.extra)

    def alive(self):
        return [n for n in self.nodes.values() if n.alive()]

    @property
    def token(self):
        """An admin token for the whole cluster (for `parley-index cluster
        ... --token`)."""
        if self._token is None:
            self._token = self.nodes[min(self.nodes)].token
        return self._token

    def index_arg(self):
        return ",".join(n.listen for n in self.nodes.values())

    def wait_leader(self, exclude=(), timeout=15.0):
        """Waits until every live node names the same live leader (not in
        exclude); returns that node."""
        def agreed():
            ids = {n.leader_id() for n in self.alive()}
            if len(ids) == 1:
                lid = ids.pop()
                if lid and lid not in exclude and lid in self.nodes and \
                        self.nodes[lid].alive():
                    return self.nodes[lid]
            return None
        return wait_until(agreed, timeout, what="one agreed leader")

    def add_node(self, nid, join=True):
        ports = free_ports(3)
        addr = "127.0.0.1:%d" % ports[2]
        members = self.members + [(nid, addr)]
        node = ClusterNode(nid, members, self.key, ports[:2], join=join,
                           lease=self.lease, extra=self.extra)
        self.nodes[nid] = node
        return node, addr

    def stop_all(self):
        for n in self.nodes.values():
            if n.alive():
                n.stop()
