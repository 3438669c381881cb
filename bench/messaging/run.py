#!/usr/bin/env python3
"""bench/messaging: messaging between real node processes on 127.0.0.1.

Each node is build/release/bench/messaging_node: a supervisor::Stack on the libuv driver, as in
the agent, driven over stdin, with the benchmark's worker types (a sink that checks each sender's
order, a pinger, a silent one). Scenarios:
  call          a pinger worker on one node calls the echo worker on another, one call at a time:
                round trips (us), after a warm-up
  tcp-floor     the kernel's floor under that round trip on this machine: two processes bounce
                64 bytes over one TCP connection on 127.0.0.1 (bench/messaging/tcp_floor.cpp),
                so the call's figure can be read as floor + what shoal adds
  oneway        a node sends 64-byte messages to a sink worker on another as fast as its queue
                takes them: messages/s from the first send to the last arrival (after a warm-up),
                and what arrived twice, late or never
  oneway-key    the same with a cluster key (every batch sealed with XChaCha20-Poly1305)
  publish       5 nodes, 100 group members spread over them: publishes to the group, deliveries
                counted by every member
  nodedown      a call to a worker that never answers, whose node is then killed (SIGKILL): the
                time from the kill to the call's nodedown
  slow-receiver the receiving node is stopped (SIGSTOP) for less than the failure detector needs
                to declare it failed, while a node blasts at it: the sender's queue fills and
                refuses (overloaded); its resident memory stays bounded (a peer's queue holds at
                most 16 MiB, and 4 MiB more wait in the driver); once the receiver runs again,
                every accepted message arrives, in order
  cli-call      `shoal call` against two real agents (an echo worker): the process's wall time

Prints a table, writes JSON (--json, default out/messaging_bench.json, with the git commit, the
command line and the date) and prints the headline last. Exits non-zero when a check fails (a
message lost, duplicated or out of order, a wrong delivery count, a call that failed, a nodedown
that did not come). Only processes this script started are stopped; all traffic stays on
127.0.0.1.
"""

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import free_base, provenance  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = os.path.join(ROOT, "build", "release", "bench", "messaging_node")
FLOOR = os.path.join(ROOT, "build", "release", "bench", "tcp_floor")
SHOAL = os.path.join(ROOT, "build", "release", "bin", "shoal")


class Node:
    def __init__(self, name, port, join=None, key_file=None):
        args = [NODE, "--name", name, "--port", str(port)]
        if join:
            args += ["--join", str(join)]
        if key_file:
            args += ["--key-file", key_file]
        self.name = name
        self.port = port
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.answers = []

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait(self, event, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, a in enumerate(self.answers):
                if a["event"] == event:
                    return self.answers.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: no %s answer within %.0f s" % (self.name, event, timeout))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError("%s exited (status %s)" % (self.name, self.proc.poll()))
                answer = json.loads(line)
                if answer["event"] == "error":
                    raise RuntimeError("%s: %s" % (self.name, answer["message"]))
                self.answers.append(answer)

    def ask(self, line, event, timeout=60):
        self.send(line)
        return self.wait(event, timeout)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()


def cluster(n, key_file=None):
    base = free_base(n)
    nodes = [Node("m%d" % i, base + i, None if i == 0 else base, key_file) for i in range(n)]
    for node in nodes:
        node.ask("members %d" % n, "members", 30)
    return nodes


def stop_all(nodes):
    for node in nodes:
        node.stop()


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p / 100.0 * len(values)))]


def sink(node, name):
    return node.ask("sinks", "sinks")["sinks"].get(name, {"received": 0})


def run_call(args):
    nodes = cluster(2)
    try:
        a, b = nodes
        b.send("run echo echo")
        a.ask("await echo", "found", 30)
        a.ask("ping echo %d 64" % 2000, "pinged", 60)  # warm-up
        got = a.ask("ping echo %d 64" % args.calls, "pinged", 300)
        rtts = got["rtts_us"]
        return {"calls": got["ok"], "failed": got["failed"], "p50_us": pct(rtts, 50),
                "p90_us": pct(rtts, 90), "p99_us": pct(rtts, 99), "max_us": max(rtts),
                "ok": got["failed"] == 0 and got["ok"] == args.calls}
    finally:
        stop_all(nodes)


def run_tcp_floor(args):
    out = subprocess.run([FLOOR, str(args.calls)], capture_output=True, text=True, check=True,
                         timeout=300)
    got = json.loads(out.stdout)
    got["ok"] = got["calls"] == args.calls
    return got


def blast(a, b, count, size=64):
    """Sends `count` messages from a to b's sink; the rate and what arrived."""
    before = sink(b, "sink")
    done = a.ask("blast sink %d %d" % (count, size), "blasted", 600)
    deadline = time.monotonic() + 60
    while True:
        s = sink(b, "sink")
        if s["received"] - before["received"] >= done["sent"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return done, before, s


def run_oneway(args, key_file=None):
    nodes = cluster(2, key_file)
    try:
        a, b = nodes
        b.send("run sink bench-sink")
        a.ask("await sink", "found", 30)
        blast(a, b, 300_000)  # warm-up: the connection, buffers, pages
        done, before, after = blast(a, b, args.messages)
        received = after["received"] - before["received"]
        seconds = (after["last_ns"] - done["start_ns"]) / 1e9
        wrong = {k: after[k] - before[k] for k in ("duplicates", "reordered", "gaps")}
        lost = done["sent"] - received
        return {"messages": done["sent"], "size": 64, "received": received, "seconds": seconds,
                "rate": received / seconds if seconds > 0 else 0.0, "lost": lost, **wrong,
                "refused_retried": done["refused"],
                "ok": lost == 0 and all(v == 0 for v in wrong.values())}
    finally:
        stop_all(nodes)


def run_publish(args):
    nodes = cluster(5)
    try:
        for i in range(100):
            nodes[i % 5].send("run member-%d bench-member" % i)
        for i in range(100):
            nodes[0].ask("await member-%d" % i, "found", 30)
        # Group memberships replicate like names: wait until node 0 sees all 100.
        time.sleep(1.0)
        got = nodes[0].ask("publish bench %d 64" % args.publishes, "published", 120)
        expected = 100 * args.publishes
        deadline = time.monotonic() + 60
        while True:
            counts = [node.ask("sinks", "sinks")["sinks"] for node in nodes]
            total = sum(s["received"] for c in counts for s in c.values())
            if total >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        last = max(s["last_ns"] for c in counts for s in c.values())
        seconds = (last - got["start_ns"]) / 1e9
        wrong = sum(s["duplicates"] + s["reordered"] for c in counts for s in c.values())
        return {"members": 100, "nodes": 5, "publishes": args.publishes,
                "deliveries_counted_by_sender": got["deliveries"], "received": total,
                "seconds": seconds, "deliveries_per_s": total / seconds if seconds > 0 else 0,
                "ok": got["deliveries"] == expected and total == expected and wrong == 0}
    finally:
        stop_all(nodes)


def run_nodedown(args):
    nodes = cluster(5)
    try:
        victim = nodes[2]
        victim.send("run mute bench-silent")
        nodes[0].ask("await mute", "found", 30)
        time.sleep(0.5)
        nodes[0].send("call mute 60000")
        time.sleep(0.5)
        killed = time.monotonic_ns()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        got = nodes[0].wait("called", 60)
        ms = (got["done_ns"] - killed) / 1e6
        return {"error": got["error"], "ms_after_kill": ms,
                "ok": (not got["ok"]) and got["error"] == "nodedown"}
    finally:
        stop_all(nodes)


def run_slow_receiver(args):
    nodes = cluster(2)
    try:
        a, b = nodes
        b.send("run sink bench-sink")
        a.ask("await sink", "found", 30)
        blast(a, b, 100_000)
        rss_before = a.ask("stats", "stats")["rss_kb"]
        b.proc.send_signal(signal.SIGSTOP)
        # The blaster retries refused sends on the next loop turn; give it a bounded run.
        a.send("blast sink %d 64" % args.slow_messages)
        time.sleep(args.stall_seconds)
        stats = a.ask("stats", "stats")
        rss_during = stats["rss_kb"]
        b.proc.send_signal(signal.SIGCONT)
        done = a.wait("blasted", 600)
        deadline = time.monotonic() + 60
        while True:
            s = sink(b, "sink")
            if s["received"] >= 100_000 + done["sent"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        wrong = s["duplicates"] + s["reordered"] + s["gaps"]
        lost = 100_000 + done["sent"] - s["received"]
        return {"messages": done["sent"], "refused_while_stopped": done["refused"],
                "queued_bytes_while_stopped": stats["queued_bytes"],
                "rss_kb_before": rss_before, "rss_kb_while_stopped": rss_during,
                "lost": lost, "out_of_order": wrong,
                "ok": lost == 0 and wrong == 0 and done["refused"] > 0}
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)
        stop_all(nodes)


def run_cli_call(args):
    base = free_base(2)
    tmp = tempfile.mkdtemp(prefix="shoal-msgbench-")
    procs = []
    try:
        for i in range(2):
            cmd = [SHOAL, "agent", "--name", "c%d" % i, "--bind", "127.0.0.1:%d" % (base + i),
                   "--discovery", "seeds", "--data-dir", os.path.join(tmp, "c%d" % i),
                   "--log-level", "warn", "--tag", "node=c%d" % i]
            if i > 0:
                cmd += ["--join", "127.0.0.1:%d" % base]
            procs.append(subprocess.Popen(cmd, stderr=subprocess.DEVNULL))
        env = dict(os.environ, SHOAL_RPC=os.path.join(tmp, "c0", "shoal.sock"))

        def shoal(*a, check=True):
            return subprocess.run([SHOAL, *a], env=env, capture_output=True, text=True,
                                  check=check, timeout=30)

        deadline = time.monotonic() + 30
        while shoal("members", "--status", "alive", "--format", "json",
                    check=False).stdout.count('"alive"') < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("agents did not see each other")
            time.sleep(0.05)
        shoal("run", "--name", "echo", "--worker", "echo", "--constraint", "node=c1")
        while shoal("whereis", "echo", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("echo did not start")
            time.sleep(0.05)
        times = []
        for _ in range(args.cli_calls):
            t0 = time.monotonic()
            out = shoal("call", "echo", "hello")
            times.append((time.monotonic() - t0) * 1000)
            if out.stdout.strip() != "hello":
                raise RuntimeError("shoal call answered %r" % out.stdout)
        t0 = time.monotonic()
        for _ in range(20):
            shoal("--version", check=False)
        start_ms = (time.monotonic() - t0) * 1000 / 20
        return {"calls": len(times), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
                "process_start_ms": start_ms, "ok": True}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=os.path.join(ROOT, "out", "messaging_bench.json"))
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--messages", type=int, default=3_000_000)
    ap.add_argument("--publishes", type=int, default=1_000)
    ap.add_argument("--slow-messages", type=int, default=1_000_000)
    # Below the failure detector's time for a stopped node (about 1 s here): a longer stop gets
    # the receiver declared failed, and what was queued for it dropped (at most once).
    ap.add_argument("--stall-seconds", type=float, default=0.6)
    ap.add_argument("--cli-calls", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="fewer messages and calls")
    ap.add_argument("--key-file", help="for oneway-key (default: a fresh key in a temp file)")
    args = ap.parse_args()
    if args.quick:
        args.calls, args.messages, args.publishes = 2_000, 300_000, 100
        args.slow_messages, args.cli_calls = 1_000_000, 20
    for binary in (NODE, FLOOR, SHOAL):
        if not os.access(binary, os.X_OK):
            sys.exit("no %s: build Release first (scripts/test.sh release)" % binary)
    key_file = args.key_file
    if key_file is None:
        fd, key_file = tempfile.mkstemp(prefix="shoal-bench-key-")
        os.write(fd, (os.urandom(32).hex() + "\n").encode())
        os.close(fd)

    results = {}
    order = [("call", run_call), ("tcp-floor", run_tcp_floor), ("oneway", run_oneway),
             ("oneway-key", lambda a: run_oneway(a, key_file)), ("publish", run_publish),
             ("nodedown", run_nodedown), ("slow-receiver", run_slow_receiver),
             ("cli-call", run_cli_call)]
    for name, fn in order:
        print("== %s" % name, file=sys.stderr, flush=True)
        try:
            results[name] = fn(args)
        except Exception as e:  # a scenario that breaks is reported and fails the run
            results[name] = {"ok": False, "error": str(e)}
        print("   %s" % json.dumps(results[name])[:300], file=sys.stderr, flush=True)

    c, o, k = results["call"], results["oneway"], results["oneway-key"]
    fl = results["tcp-floor"]
    p, d, s, cli = (results["publish"], results["nodedown"], results["slow-receiver"],
                    results["cli-call"])

    def row(label, value, target="", met=None):
        mark = "" if met is None else ("met" if met else "MISSED")
        print("%-52s %14s  %-16s %s" % (label, value, target, mark))

    def fmt(v, spec="%.1f"):
        return spec % v if isinstance(v, (int, float)) else "-"

    print("messaging bench: real node processes on 127.0.0.1 (a Stack on the libuv driver each)")
    row("call round trip, worker to worker, p50 us", fmt(c.get("p50_us")), "<= 40",
        c.get("p50_us", 1e9) <= 40)
    row("call round trip, p99 us", fmt(c.get("p99_us")), "<= 150", c.get("p99_us", 1e9) <= 150)
    row("  floor: plain TCP ping-pong p50 / p99 us",
        "%s / %s" % (fmt(fl.get("p50_us")), fmt(fl.get("p99_us"))))
    row("one-way 64 B messages/s, no key", fmt(o.get("rate"), "%.0f"), ">= 1000000",
        o.get("rate", 0) >= 1_000_000)
    row("one-way 64 B messages/s, with a key", fmt(k.get("rate"), "%.0f"), ">= 500000",
        k.get("rate", 0) >= 500_000)
    row("one-way: lost / duplicated / out of order",
        "%s / %s / %s" % (o.get("lost", "-"), o.get("duplicates", "-"),
                          (o.get("reordered", 0) + o.get("gaps", 0)) if o.get("ok") is not None
                          else "-"), "0", o.get("ok", False) and k.get("ok", False))
    row("publish to 100 members on 5 nodes, deliveries/s", fmt(p.get("deliveries_per_s"), "%.0f"))
    row("publish: deliveries counted / expected",
        "%s / %s" % (p.get("received", "-"), 100 * args.publishes), "equal", p.get("ok", False))
    row("call to a killed node: nodedown after, ms", fmt(d.get("ms_after_kill")),
        "detection time", d.get("ok", False))
    row("stopped receiver: refused (overloaded)", str(s.get("refused_while_stopped", "-")),
        "> 0", s.get("ok", False))
    row("stopped receiver: sender queue bytes, RSS KB before / during",
        "%s, %s / %s" % (s.get("queued_bytes_while_stopped", "-"), s.get("rss_kb_before", "-"),
                         s.get("rss_kb_while_stopped", "-")), "<= 20 MiB more",
        s.get("rss_kb_while_stopped", 1e12) - s.get("rss_kb_before", 0) <= 20 * 1024 + 4096)
    row("stopped receiver: lost / out of order after it runs again",
        "%s / %s" % (s.get("lost", "-"), s.get("out_of_order", "-")), "0", s.get("ok", False))
    row("shoal call (CLI process), p50 ms", fmt(cli.get("p50_ms"), "%.2f"))
    row("  of which process start (shoal --version), ms", fmt(cli.get("process_start_ms"), "%.2f"))

    out = {**provenance(ROOT), "results": results}
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print("json: %s" % args.json)
    print("messaging bench: call p50 %s us p99 %s us (TCP floor p50 %s us); one-way %s msgs/s (%s with a key); "
          "publish %s deliveries/s; nodedown %s ms after a kill; shoal call %s ms" % (
              fmt(c.get("p50_us")), fmt(c.get("p99_us")), fmt(fl.get("p50_us")),
              fmt(o.get("rate"), "%.0f"),
              fmt(k.get("rate"), "%.0f"), fmt(p.get("deliveries_per_s"), "%.0f"),
              fmt(d.get("ms_after_kill"), "%.0f"), fmt(cli.get("p50_ms"), "%.2f")))
    failed = [name for name, r in results.items() if not r.get("ok")]
    if failed:
        print("messaging bench: FAILED checks: %s" % ", ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
