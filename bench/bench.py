#!/usr/bin/env python3
"""Comparative benchmark harness (bench/README.md, "Comparative benchmarks").

Runs every bench_<system> program found in the build tree against the same
workloads, starts and stops the brokers they need on free loopback ports,
and prints one table: median, min-max spread, unit, configuration note and
the ratio Parley / best anchor for each row. Standard library only.

Exit status: 0 when every run produced its RESULT line (figures are never
judged), 1 on a harness error (a program failed or crashed, a RESULT line
was missing, or a mode that must not lose messages lost some), 2 for bad
arguments.
"""

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SYSTEMS = ["tcp", "zmq", "nng", "nats", "mqtt", "redis", "parley"]
ANCHOR_EXCLUDE = {"tcp", "parley"}  # tcp is the physical limit, not an anchor
WORKLOADS = ["thr", "fanout", "rtt", "ack", "big", "topics"]
EXTRA_MODE_WORKLOADS = {"thr", "fanout"}  # where non-best modes get rows too
# Modes a program offers only for some workloads: (system, workload) ->
# modes, the first being the best; "*" is every other workload.
WORKLOAD_MODES = {
    ("parley", "ack"): ["ack", "ack_os"],
    ("parley", "*"): ["nohist", "stored", "stored_os"],
}

# (metric key in RESULT, unit, higher is better)
METRICS = {
    "thr": [("rate", "msg/s", True)],
    "fanout": [("rate", "deliveries/s", True)],
    "ack": [("rate", "msg/s", True)],
    "big": [("mbps", "MB/s", True)],
    "topics": [("rate", "deliveries/s", True)],
    "rtt": [("p50_us", "us", False), ("p99_us", "us", False), ("p999_us", "us", False)],
}
METRIC_LABEL = {"p50_us": "p50", "p99_us": "p99", "p999_us": "p99.9"}

DEB_PACKAGES = ["libzmq3-dev", "libnng-dev", "nats-server", "libnats-dev", "mosquitto",
                "libmosquitto-dev", "redis-server", "libhiredis-dev", "linux-perf"]


def log(msg):
    print(msg, flush=True)


# ---- processes and ports ------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Broker:
    """One broker process on a free port, with its own temporary directory."""

    def __init__(self, kind):
        self.kind = kind
        self.proc = None
        self.port = 0
        self.dir = None
        self.log = None
        self.version = ""

    def start(self):
        exe = {"nats": "nats-server", "mqtt": "mosquitto", "redis": "redis-server",
               "parley": "parley-index"}.get(self.kind)
        if exe is None:
            return "unknown broker kind %r" % self.kind
        if self.kind == "parley":
            # Parley's index (who is online, who subscribes to what); the
            # messages themselves go peer to peer.
            path = os.path.join(os.environ.get("BENCH_BIN_DIR", ""), exe)
            if not os.access(path, os.X_OK):
                return "%s not built in %s" % (exe, os.environ.get("BENCH_BIN_DIR"))
        else:
            path = shutil.which(exe) or (os.path.exists("/usr/sbin/" + exe) and "/usr/sbin/" + exe)
        if not path:
            return "%s not found (bench/install-deps.sh installs it)" % exe
        self.dir = tempfile.mkdtemp(prefix="parley-bench-%s-" % self.kind)
        self.port = free_port()
        if self.kind == "nats":
            cmd = [path, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                   "-sd", os.path.join(self.dir, "js")]
        elif self.kind == "parley":
            # A short lease, so that a peer of a finished run leaves the
            # index quickly even if it could not unsubscribe.
            cmd = [path, "--listen", "127.0.0.1:%d" % self.port,
                   "--data", os.path.join(self.dir, "index"), "--lease", "3",
                   "--log-level", "warn"]
        elif self.kind == "mqtt":
            conf = os.path.join(self.dir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\n"
                        "allow_anonymous true\n"
                        "persistence false\n"
                        "max_queued_messages 0\n"
                        "max_inflight_messages 0\n"
                        "log_dest none\n" % self.port)
            cmd = [path, "-c", conf]
        else:
            cmd = [path, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--daemonize", "no",
                   "--protected-mode", "no", "--dir", self.dir,
                   "--client-output-buffer-limit", "pubsub 0 0 0"]
        self.log = open(os.path.join(self.dir, "broker.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(self.port, self.proc):
            self.stop()
            return "%s did not start (see its log)" % exe
        self.version = tool_version([path, "--version"]) if self.kind != "parley" \
            else "parley-index"
        return None

    def pin(self, cpus):
        """taskset every thread of the broker; returns False if it failed."""
        if self.proc is None:
            return True
        r = subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(self.proc.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


LIVE_BROKERS = []


def stop_all_brokers():
    for b in LIVE_BROKERS:
        b.stop()
    LIVE_BROKERS.clear()


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return ""


# ---- programs -----------------------------------------------------------

def find_program(bindir, system):
    for sub in ("bench", "bench/parley", ""):
        p = os.path.join(bindir, sub, "bench_" + system)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def program_info(path):
    """Parses `bench_x --list`: SYSTEM, WORKLOADS, MODES, LOSSY, BROKER."""
    out = subprocess.run([path, "--list"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("%s --list failed: %s" % (path, out.stderr.strip()))
    info = {"WORKLOADS": [], "MODES": [], "LOSSY": [], "BROKER": "none"}
    for line in out.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("WORKLOADS", "MODES", "LOSSY"):
            info[key] = rest.split()
        elif key in ("SYSTEM", "BROKER"):
            info[key] = rest.strip()
    if not info["MODES"]:
        raise RuntimeError("%s --list names no modes" % path)
    return info


def parse_result(text):
    for line in reversed(text.splitlines()):
        if line.startswith("RESULT "):
            kv = {}
            for tok in line.split()[1:]:
                k, sep, v = tok.partition("=")
                if sep:
                    kv[k] = v
            return line, kv
    return None, None


def run_once(path, args, pinned, timeout):
    cmd = ([ "taskset", "-c", "0"] if pinned else []) + [path] + args
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, "timed out after %.0f s" % timeout, " ".join(cmd)
    line, kv = parse_result(out)
    why = None
    if proc.returncode != 0:
        why = "exit %d: %s" % (proc.returncode, (err.strip().splitlines() or ["?"])[-1])
        if proc.returncode < 0:
            why = "killed by signal %d" % -proc.returncode
    elif kv is None:
        why = "no RESULT line"
    if kv is not None:
        kv["_line"] = line
        kv["_wall"] = "%.2f" % (time.monotonic() - t0)
    return kv, why, " ".join(cmd)


# ---- formatting ---------------------------------------------------------

def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "us":
        return "%.1f" % v
    if unit == "MB/s":
        return "%.0f" % v
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e3:
        return "%.1fk" % (v / 1e3)
    return "%.0f" % v


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    pkgs = {}
    if shutil.which("dpkg-query"):
        for p in DEB_PACKAGES:
            r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", p],
                               capture_output=True, text=True)
            pkgs[p] = r.stdout.strip() if r.returncode == 0 else "not installed"
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "loadavg_start": list(os.getloadavg()),
            "machine": platform.machine(), "python": platform.python_version(),
            "packages": pkgs}


# ---- the plan -----------------------------------------------------------

def best_mode(system, workload, info):
    offered = WORKLOAD_MODES.get((system, workload)) or WORKLOAD_MODES.get((system, "*")) \
        or info["MODES"]
    offered = [m for m in offered if m in info["MODES"]] or info["MODES"]
    return offered[0]


def plan_rows(system, info, workloads):
    """Yields (workload, mode, pinned) for one system."""
    for w in WORKLOADS:
        if w not in workloads or w not in info["WORKLOADS"]:
            continue
        offered = WORKLOAD_MODES.get((system, w)) or WORKLOAD_MODES.get((system, "*")) \
            or info["MODES"]
        offered = [m for m in offered if m in info["MODES"]] or info["MODES"]
        best = offered[0]
        extra = w in EXTRA_MODE_WORKLOADS or (system, w) in WORKLOAD_MODES
        modes = [best] + (offered[1:] if extra else [])
        for m in modes:
            if w == "rtt":
                yield (w, m, False)
                yield (w, m, True)
            else:
                yield (w, m, False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=None, help="build tree holding bench/bench_* (default build-bench)")
    ap.add_argument("--quick", action="store_true",
                    help="1 run of 0.3 s per row: keeps the harness working, not a measurement")
    ap.add_argument("--runs", type=int, default=None, help="runs per row (default 3, quick 1)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per run (default 5, quick 0.3)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma list (default all)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list (default all)")
    ap.add_argument("--no-pinned", action="store_true", help="skip the pinned rtt rows")
    ap.add_argument("--json", default=None, help="also write the results as JSON to this path")
    ap.add_argument("--markdown", default=None, help="also write the table as Markdown to this path")
    ap.add_argument("--no-install", action="store_true", help="(for bench/bench; ignored here)")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bindir = os.path.abspath(args.bin or os.path.join(root, "build-bench"))
    runs = args.runs or (1 if args.quick else 3)
    seconds = args.seconds or (0.3 if args.quick else 5.0)
    systems = [s for s in args.systems.split(",") if s]
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %s" % w)
    if runs < 1 or seconds <= 0:
        ap.error("--runs and --seconds must be positive")

    atexit.register(stop_all_brokers)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    mach = machine_info()
    log("machine: %d CPU (%s), kernel %s, load average %.2f %.2f %.2f"
        % ((mach["nproc"] or 0, mach["cpu"], mach["kernel"]) + tuple(mach["loadavg_start"])))
    log("programs: %s; %d run(s) of %.1f s per row%s" % (bindir, runs, seconds,
                                                           " (quick)" if args.quick else ""))
    ncpu = os.cpu_count() or 1
    all_cpus = "0-%d" % (ncpu - 1)
    have_taskset = shutil.which("taskset") is not None
    if not have_taskset:
        log("SKIP pinned rtt rows: taskset not found")

    os.environ["BENCH_BIN_DIR"] = bindir  # for bench_parley (README: contract)
    results = []   # one dict per (system, workload, mode, pinned)
    errors = []
    skipped = []
    for system in systems:
        path = find_program(bindir, system)
        if path is None:
            msg = "bench_%s not built in %s" % (system, bindir)
            log("SKIP %s: %s" % (system, msg))
            skipped.append({"system": system, "why": msg})
            continue
        try:
            info = program_info(path)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            errors.append("%s: %s" % (system, e))
            log("ERROR %s: %s" % (system, e))
            continue
        rows = list(plan_rows(system, info, workloads))
        if args.no_pinned or not have_taskset:
            rows = [r for r in rows if not r[2]]
        if not rows:
            continue
        broker = None
        if info["BROKER"] != "none":
            broker = Broker(info["BROKER"])
            LIVE_BROKERS.append(broker)
            why = broker.start()
            if why:
                log("SKIP %s: %s" % (system, why))
                skipped.append({"system": system, "why": why})
                LIVE_BROKERS.remove(broker)
                continue
            log("%s: %s on 127.0.0.1:%d" % (system, broker.version or info["BROKER"], broker.port))
        recs = {r: {"system": system, "workload": r[0], "mode": r[1], "pinned": r[2],
                    "best_mode": r[1] == best_mode(system, r[0], info),
                    "lossy": r[1] in info["LOSSY"],
                    "runs": [], "errors": []} for r in rows}
        for run in range(runs):
            for r in rows:
                w, mode, pinned = r
                a = ["--workload", w, "--mode", mode, "--seconds", "%g" % seconds]
                if broker is not None:
                    a += ["--broker", "127.0.0.1:%d" % broker.port]
                timeout = seconds * 6 + 90
                if pinned and broker is not None:
                    broker.pin("0")
                kv, why, cmd = run_once(path, a, pinned and have_taskset, timeout)
                if pinned and broker is not None:
                    broker.pin(all_cpus)
                rec = recs[r]
                label = "%s %s%s%s run %d/%d" % (system, w, "" if rec["best_mode"] else " (" + mode + ")",
                                                  " pinned" if pinned else "", run + 1, runs)
                if kv is not None:
                    rec["runs"].append(kv)
                    rec["config"] = kv.get("config", "")
                if kv is not None and why is None and int(kv.get("lost", "0") or 0) > 0 \
                        and not rec["lossy"]:
                    why = "lost %s messages in a mode that must not lose" % kv.get("lost")
                if why:
                    errors.append("%s: %s (%s)" % (label, why, cmd))
                    rec["errors"].append(why)
                    log("ERROR %s: %s" % (label, why))
                    continue
                m = METRICS[w][0]
                extra = ""
                if int(kv.get("lost", "0") or 0) > 0:
                    extra = ", lost %s of %s" % (kv.get("lost"), kv.get("expected"))
                log("  %-36s %s %s%s" % (label, fmt(float(kv.get(m[0], 0)), m[1]), m[1], extra))
        if broker is not None:
            broker.stop()
            LIVE_BROKERS.remove(broker)
        results.extend(recs.values())

    mach["loadavg_end"] = list(os.getloadavg())
    table = build_table(results)
    have_parley = bool(find_program(bindir, "parley")) and "parley" in systems
    print_table(table, have_parley)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_table(table, have_parley))
        log("wrote %s" % args.markdown)
    log("load average at the end: %.2f %.2f %.2f (a busy machine skews every figure)"
        % tuple(mach["loadavg_end"]))
    if skipped:
        log("skipped: " + "; ".join("%s (%s)" % (s["system"], s["why"]) for s in skipped))
    if args.json:
        doc = {"machine": mach, "command": " ".join([sys.executable] + sys.argv),
               "bin": bindir, "runs": runs, "seconds": seconds, "quick": args.quick,
               "rows": table, "results": results, "skipped": skipped, "errors": errors}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        log("wrote %s" % args.json)
    if errors:
        log("\n%d harness error(s):" % len(errors))
        for e in errors:
            log("  " + e)
        return 1
    return 0


# ---- the table ----------------------------------------------------------

def build_table(results):
    """One row per (workload, variant, metric, system, mode) with the median
    and spread over the runs, and the ratio Parley / best anchor."""
    rows = []
    for rec in results:
        w = rec["workload"]
        for key, unit, higher in METRICS[w]:
            vals = [float(kv[key]) for kv in rec["runs"] if key in kv]
            if not vals:
                continue
            losses = [int(kv.get("lost", "0") or 0) for kv in rec["runs"]]
            expected = [int(kv.get("expected", "0") or 0) for kv in rec["runs"]]
            loss_pct = None
            if any(expected):
                loss_pct = statistics.median(
                    [100.0 * l / e if e else 0.0 for l, e in zip(losses, expected)])
            variant = w
            if w == "rtt":
                variant = "rtt %s %s" % (METRIC_LABEL[key], "pinned" if rec["pinned"] else "unpinned")
            rows.append({"workload": w, "variant": variant, "pinned": rec["pinned"],
                         "metric": key, "unit": unit,
                         "higher_is_better": higher, "system": rec["system"],
                         "mode": rec["mode"], "best_mode": rec["best_mode"], "lossy": rec["lossy"],
                         "median": statistics.median(vals), "min": min(vals), "max": max(vals),
                         "values": vals, "loss_pct": loss_pct, "config": rec.get("config", ""),
                         "complete": not rec["errors"]})
    # ratio parley / best anchor, per variant
    for variant in {r["variant"] for r in rows}:
        group = [r for r in rows if r["variant"] == variant]
        # A mode that may drop messages is no yardstick for throughput
        # (Parley must not lose); one round trip at a time never overflows.
        anchors = [r for r in group if r["system"] not in ANCHOR_EXCLUDE and r["complete"]
                   and (r["workload"] == "rtt" or not (r["lossy"] or r["loss_pct"]))]
        parley = [r for r in group if r["system"] == "parley" and r["best_mode"]]
        best = None
        if anchors:
            pick = max if group[0]["higher_is_better"] else min
            best = pick(anchors, key=lambda r: r["median"])
            best["is_best"] = True
        for r in group:
            r["ratio"] = None
            if parley and best and best["median"] > 0:
                r["ratio"] = parley[0]["median"] / best["median"]
    order = {w: i for i, w in enumerate(WORKLOADS)}
    sysorder = {s: i for i, s in enumerate(SYSTEMS)}
    vorder = {"p50_us": 0, "p99_us": 1, "p999_us": 2}
    rows.sort(key=lambda r: (order[r["workload"]], r["pinned"],
                             vorder.get(r["metric"], 0), sysorder.get(r["system"], 99),
                             not r["best_mode"], r["mode"]))
    return rows


def table_lines(rows, have_parley):
    lines = []
    for r in rows:
        name = r["system"] if r["best_mode"] else "%s (%s)" % (r["system"], r["mode"])
        if r.get("is_best"):
            name += " *"
        loss = "-" if r["loss_pct"] is None else ("0" if r["loss_pct"] == 0 else "%.1f%%" % r["loss_pct"])
        if not r["complete"]:
            loss += " (errors)"
        ratio = "n/a"
        if have_parley and r["ratio"] is not None:
            ratio = "%.2fx" % r["ratio"]
        lines.append([r["variant"], name, fmt(r["median"], r["unit"]),
                      "%s-%s" % (fmt(r["min"], r["unit"]), fmt(r["max"], r["unit"])),
                      r["unit"], loss, ratio, r["config"]])
    return lines


TABLE_HEAD = ["workload", "system", "median", "spread (min-max)", "unit", "loss", "parley/best",
              "config"]
TABLE_NOTE = ("* = best anchor of the row group (not tcp; for throughput only modes that do not"
              " drop); parley/best = Parley median / best anchor median (throughput: higher is"
              " better; latency: lower is better)")


def markdown_table(rows, have_parley):
    out = ["| " + " | ".join(TABLE_HEAD) + " |", "|" + "---|" * len(TABLE_HEAD)]
    for l in table_lines(rows, have_parley):
        out.append("| " + " | ".join(c.replace("*", "\\*").replace("|", "/") for c in l) + " |")
    return "\n".join(out) + "\n\n" + TABLE_NOTE.replace("*", "\\*") + "\n"


def print_table(rows, have_parley):
    head = TABLE_HEAD
    lines = table_lines(rows, have_parley)
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h)
              for i, h in enumerate(head)]
    log("")
    log("  ".join(h.ljust(widths[i]) for i, h in enumerate(head)).rstrip())
    log("  ".join("-" * widths[i] for i in range(len(head))))
    prev = None
    for l in lines:
        if prev is not None and l[0] != prev:
            log("")
        prev = l[0]
        log("  ".join(c.ljust(widths[i]) for i, c in enumerate(l)).rstrip())
    log("")
    log(TABLE_NOTE)


if __name__ == "__main__":
    sys.exit(main())
