"""Test hosts in network namespaces, for tests that need several machines.

A Netlab creates, inside this machine only, a hub namespace with a bridge
and N host namespaces, each joined to the bridge by a veth pair and given
an address 10.77.S.H/24 (S picked at random per lab so concurrent labs do
not meet).  Those addresses exist only inside the namespaces.  Partitions
are nftables drop rules inside the host namespaces (this kernel has no
netem).  Everything is removed by close(), also at interpreter exit.

Needs root and iproute2 + nftables; Netlab.available() says whether this
machine can do it (tests skip with a clear message otherwise).
"""
import atexit
import os
import random
import shutil
import subprocess

_labs = []


def _sh(*argv, check=True):
    return subprocess.run(list(argv), check=check, capture_output=True)


class Netlab:
    @staticmethod
    def available():
        """(True, "") or (False, why)."""
        if os.geteuid() != 0:
            return False, "network namespaces need root"
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                return False, "%s is not installed" % tool
        name = "plprobe%d" % os.getpid()
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True)
        if r.returncode != 0:
            return False, "cannot create a network namespace: %s" % (
                r.stderr.decode().strip())
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        return True, ""

    def __init__(self, nhosts):
        self.tag = "pl%x" % random.randrange(1 << 20)
        self.subnet = random.randrange(1, 250)
        self.hub = self.tag + "hub"
        self.hosts = [self.tag + "h%d" % i for i in range(nhosts)]
        self.procs = []
        _labs.append(self)
        _sh("ip", "netns", "add", self.hub)
        _sh("ip", "netns", "exec", self.hub, "ip", "link", "add", "br0",
            "type", "bridge")
        _sh("ip", "netns", "exec", self.hub, "ip", "link", "set", "br0", "up")
        for i, h in enumerate(self.hosts):
            v, p = self.tag + "v%d" % i, self.tag + "p%d" % i
            _sh("ip", "netns", "add", h)
            _sh("ip", "link", "add", v, "type", "veth", "peer", "name", p)
            _sh("ip", "link", "set", v, "netns", h)
            _sh("ip", "link", "set", p, "netns", self.hub)
            _sh("ip", "netns", "exec", self.hub, "ip", "link", "set", p,
                "master", "br0")
            _sh("ip", "netns", "exec", self.hub, "ip", "link", "set", p, "up")
            _sh("ip", "netns", "exec", h, "ip", "link", "set", "lo", "up")
            _sh("ip", "netns", "exec", h, "ip", "link", "set", v, "name",
                "eth0")
            _sh("ip", "netns", "exec", h, "ip", "addr", "add",
                "%s/24" % self.addr(i), "dev", "eth0")
            _sh("ip", "netns", "exec", h, "ip", "link", "set", "eth0", "up")
            _sh("ip", "netns", "exec", h, "nft", "add", "table", "inet",
                "parley")
            for chain, hook in (("in", "input"), ("out", "output")):
                _sh("ip", "netns", "exec", h, "nft", "add", "chain", "inet",
                    "parley", chain, "{ type filter hook %s priority 0; }"
                    % hook)

    def addr(self, i):
        return "10.77.%d.%d" % (self.subnet, i + 1)

    def prefix(self, i):
        """argv prefix that runs a command inside host i."""
        return ["ip", "netns", "exec", self.hosts[i]]

    def partition(self, side_a, side_b):
        """Drops every packet between hosts of side_a and side_b (lists of
        host numbers), in both directions, on both ends."""
        for a in side_a:
            for b in side_b:
                for x, y in ((a, b), (b, a)):
                    h = self.hosts[x]
                    _sh("ip", "netns", "exec", h, "nft", "add", "rule",
                        "inet", "parley", "in", "ip", "saddr", self.addr(y),
                        "drop")
                    _sh("ip", "netns", "exec", h, "nft", "add", "rule",
                        "inet", "parley", "out", "ip", "daddr", self.addr(y),
                        "drop")

    def heal(self):
        for h in self.hosts:
            for chain in ("in", "out"):
                _sh("ip", "netns", "exec", h, "nft", "flush", "chain", "inet",
                    "parley", chain)

    def close(self):
        for h in self.hosts + [self.hub]:
            subprocess.run(["ip", "netns", "pids", h], capture_output=True)
            pids = subprocess.run(["ip", "netns", "pids", h],
                                  capture_output=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
            subprocess.run(["ip", "netns", "del", h], capture_output=True)
        if self in _labs:
            _labs.remove(self)


@atexit.register
def _cleanup():
    for lab in list(_labs):
        lab.close()
