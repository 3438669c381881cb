#!/usr/bin/env python3
"""bench/membership: real `shoal agent` processes on 127.0.0.1, and the simulator at scale.

For each cluster size N (default 5, 20, 50) and each round:
  - start N agents (seeds: every node joins through the first), record when every node sees all
    N alive (from the first spawn);
  - kill -9 one node; per survivor, the time from the kill to its "failed" event;
  - SIGSTOP another node (a hung process: no socket closes); the same, then SIGCONT;
  - SIGTERM a third (graceful leave); time until every survivor logs "left";
  - in the first round: idle CPU, RSS and UDP bytes/s per node over an idle window (--idle-seconds,
    after --settle-seconds for the join's gossip and replication to finish).
Then runs build/release/bench/membership_sim (N = 100 and 1,000 in virtual time).

Prints a table, writes JSON (--json) and, with matplotlib, scaling.png beside it (the figures
against N on log axes), and prints the headline last. Exits 1 if a round did not converge, a
kill or a stop was not seen by every survivor, or a live node was declared dead. Only processes
this script started are signalled, by pid; all traffic stays on 127.0.0.1.
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import free_base, provenance  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \w+ (\w+) (.*)$")


def wall_ms():
    return int(time.time() * 1000)


def parse_ts(date, millis):
    return int(time.mktime(time.strptime(date, "%Y-%m-%dT%H:%M:%S")) - time.timezone) * 1000 + int(millis)


class Agent:
    def __init__(self, shoal, name, port, seed_port, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        args = [shoal, "agent", "--name", name, "--bind", "127.0.0.1:%d" % port,
                "--discovery", "seeds", "--stats-interval-ms", "1000",
                "--data-dir", os.path.join(logdir, "data", name)]
        if seed_port is not None:
            args += ["--join", "127.0.0.1:%d" % seed_port]
        self.log_file = open(self.log_path, "w")
        self.started_ms = wall_ms()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log_file)
        self._offset = 0
        self.events = []  # (ts_ms, component, text)

    def poll(self):
        with open(self.log_path) as f:
            f.seek(self._offset)
            data = f.read()
        last_newline = data.rfind("\n")
        if last_newline < 0:
            return
        self._offset += len(data[: last_newline + 1].encode())
        for line in data[: last_newline + 1].splitlines():
            m = LINE.match(line)
            if m:
                self.events.append((parse_ts(m.group(1), m.group(2)), m.group(3), m.group(4)))

    def first(self, component, prefix):
        for ts, comp, text in self.events:
            if comp == component and text.startswith(prefix):
                return ts
        return None

    def joined(self):
        names = set()
        for ts, comp, text in self.events:
            if comp == "membership" and text.startswith("joined name="):
                names.add(text.split()[1][5:])
        return names

    def stats_lines(self):
        out = []
        for ts, comp, text in self.events:
            if comp == "stats":
                fields = dict(kv.split("=", 1) for kv in text.split())
                out.append((ts, {k: int(v) for k, v in fields.items()}))
        return out

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log_file.close()


def wait_until(pred, timeout_s, agents):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for a in agents:
            a.poll()
        if pred():
            return True
        time.sleep(0.01)
    for a in agents:
        a.poll()
    return pred()


def proc_cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss_kb = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return ticks / os.sysconf("SC_CLK_TCK"), rss_kb


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def detection(agents, victim, kind, since_ms, timeout_s):
    survivors = [a for a in agents if a is not victim and a.proc.poll() is None]
    prefix = "%s name=%s " % (kind, victim.name)
    ok = wait_until(lambda: all(a.first("membership", prefix) is not None for a in survivors), timeout_s, agents)
    times = [a.first("membership", prefix) - since_ms for a in survivors if a.first("membership", prefix)]
    return ok, times


def one_round(shoal, n, logdir, idle_s, settle_s, measure_idle):
    base = free_base(n)
    agents = []
    t0 = wall_ms()
    for i in range(n):
        agents.append(Agent(shoal, "n%d" % i, base + i, None if i == 0 else base, logdir))
    names = {a.name for a in agents}
    result = {"n": n}
    try:
        ok = wait_until(lambda: all(a.joined() >= names - {a.name} for a in agents), 60, agents)
        if not ok:
            result["converged"] = False
            return result
        full = []
        for a in agents:
            times = [ts for ts, comp, text in a.events if comp == "membership" and text.startswith("joined")]
            full.append(max(times) if times else a.started_ms)
        result["converge_ms"] = max(full) - t0
        # The same from the last spawn: without the time it takes to start N processes.
        result["converge_after_spawn_ms"] = max(full) - agents[-1].started_ms
        result["converged"] = True

        if measure_idle:
            # Idle: let the join's gossip and replication settle, then measure over the window.
            time.sleep(settle_s)  # a benchmark's measurement window, not a test's race
            samples_before = {a.name: proc_cpu_rss(a.proc.pid) for a in agents}
            time.sleep(idle_s)
            samples_after = {a.name: proc_cpu_rss(a.proc.pid) for a in agents}
            for a in agents:
                a.poll()
            cpu = [(samples_after[a.name][0] - samples_before[a.name][0]) / idle_s * 100 for a in agents]
            rss = [samples_after[a.name][1] / 1024.0 for a in agents]
            rates = []
            for a in agents:
                lines = a.stats_lines()
                if len(lines) >= 2:
                    (t1, s1), (t2, s2) = lines[-2], lines[-1]
                    if t2 > t1:
                        rates.append((s2["udp_bytes_out"] - s1["udp_bytes_out"]) * 1000.0 / (t2 - t1) / 1024)
            result["idle_cpu_pct_median"] = statistics.median(cpu)
            result["rss_mb_median"] = statistics.median(rss)
            result["rss_mb_max"] = max(rss)
            result["udp_kb_s_out_median"] = statistics.median(rates) if rates else None

        # kill -9
        victim = agents[n // 2]
        t_kill = wall_ms()
        victim.signal(signal.SIGKILL)
        ok, times = detection(agents, victim, "failed", t_kill, 30)
        result["kill_detected"] = ok
        result["kill_ms"] = times

        # SIGSTOP (hung: nothing closes, nothing answers)
        hung = agents[n // 2 + 1 if n > 3 else 1]
        t_stop = wall_ms()
        hung.signal(signal.SIGSTOP)
        ok, times = detection(agents, hung, "failed", t_stop, 30)
        result["stop_detected"] = ok
        result["stop_ms"] = times
        hung.signal(signal.SIGCONT)

        # graceful leave
        leaver = agents[1]
        others = [a for a in agents if a not in (victim, leaver)]
        t_leave = wall_ms()
        leaver.signal(signal.SIGTERM)
        prefix = "left name=%s " % leaver.name
        ok = wait_until(lambda: all(a.first("membership", prefix) is not None for a in others if a is not hung), 30, agents)
        times = [a.first("membership", prefix) - t_leave for a in others if a is not hung and a.first("membership", prefix)]
        result["leave_seen"] = ok
        result["leave_ms"] = times

        # False deaths: "failed" for anyone but the two victims.
        false = 0
        for a in agents:
            for ts, comp, text in a.events:
                if comp == "membership" and text.startswith("failed name="):
                    who = text.split()[1][5:]
                    if who not in (victim.name, hung.name):
                        false += 1
        result["false_deaths"] = false
        return result
    finally:
        for a in agents:
            a.stop()


def fmt(v, digits=0):
    if v is None:
        return "-"
    return ("%." + str(digits) + "f") % v


def plot(summary, sim_results, path, model=None):
    """scaling.png: the real agents' figures and the simulator's against N, log axes.

    model: a membership_model JSON (most nodes modelled, up to 10,000): its medians per N are
    drawn with open markers next to the full simulation's."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is not installed (apt-get install python3-matplotlib)")
        return
    ns = sorted(summary)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, style in (("converge_ms_median", "all alive after start", "o-"),
                              ("kill_all_ms_median", "kill -9 seen by all", "s-"),
                              ("stop_all_ms_median", "SIGSTOP seen by all", "^-")):
        xs = [n for n in ns if summary[n][key] is not None]
        a1.plot(xs, [summary[n][key] for n in xs], style, label=label)
    a1.set_xlabel("real agents N (127.0.0.1, 2 cores)")
    a1.set_ylabel("ms (median over rounds)")
    sims = sorted((sim_results or {}).get("results", []), key=lambda r: r["n"])
    if sims:
        xs = [r["n"] for r in sims]
        period = (sim_results or {}).get("probe_interval_ms", 200)
        a2.plot(xs, [r["periods"] for r in sims], "o-", label="all alive (probe periods)")
        a2.plot(xs, [r["kill_to_all_ms"] / period for r in sims], "^-",
                label="kill seen by all (probe periods)")
        # Older records have one traffic figure, over the 10 s after converging.
        a2.plot(xs, [r.get("msgs_per_node_per_s_idle", r.get("msgs_per_node_per_s")) for r in sims],
                "s--", label="msgs per node per s (idle)")
        joins = [r for r in sims if "newcomer_periods" in r]
        if joins:
            a2.plot([r["n"] for r in joins], [r["newcomer_periods"] for r in joins], "D-",
                    label="one newcomer seen by all (periods)")
        a2.set_xlabel("simulated nodes N (every node in full)")
    runs = [r for r in (model or {}).get("runs", []) if r["real_nodes"] < r["n"]]
    if runs:
        period = model.get("probe_interval_ms", 200)
        by_n = {}
        for r in runs:
            by_n.setdefault(r["n"], []).append(r)
        xs = sorted(by_n)

        def med(n, key):
            v = sorted(r[key] for r in by_n[n])
            return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2

        a2.plot(xs, [med(n, "newcomer_to_all_ms") / period for n in xs], "D:", mfc="none",
                label="newcomer, %d real + model (periods)" % model.get("real", 0))
        a2.plot(xs, [med(n, "kill_to_all_ms") / period for n in xs], "^:", mfc="none",
                label="kill, %d real + model (periods)" % model.get("real", 0))
        a2.plot(xs, [med(n, "msgs_per_node_per_s_idle") for n in xs], "s:", mfc="none",
                label="msgs per node per s, real + model")
        a2.set_xlabel("simulated nodes N (full; open markers: mostly modelled)")
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("membership against cluster size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5,20,50")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=10)
    ap.add_argument("--settle-seconds", type=float, default=10,
                    help="wait after every node sees all alive before the idle window (default 10)")
    ap.add_argument("--quick", action="store_true", help="N = 5 and 20, 1 round, 3 s idle, sim N = 100")
    ap.add_argument("--shoal", default=os.path.join(ROOT, "build/release/bin/shoal"))
    ap.add_argument("--sim", default=os.path.join(ROOT, "build/release/bench/membership_sim"))
    ap.add_argument("--json", default=os.path.join(ROOT, "out/membership_bench.json"))
    ap.add_argument("--plot", metavar="JSON", help="only draw scaling.png from a recorded JSON")
    ap.add_argument("--model-json", metavar="JSON",
                    help="with --plot: also draw a recorded membership_model JSON (to 10,000 nodes)")
    ap.add_argument("--sim-json", metavar="JSON", action="append", default=[],
                    help="with --plot: also draw the sizes of a recorded membership_sim JSON "
                         "(a larger run; a size in it replaces the same size before)")
    args = ap.parse_args()
    if args.plot:
        with open(args.plot) as f:
            doc = json.load(f)
        summary = {int(n): s for n, s in doc["summary"].items()}
        sim = doc.get("sim") or {"results": []}
        for path in args.sim_json:
            with open(path) as f:
                more = json.load(f)
            sizes = {r["n"] for r in more["results"]}
            sim = {**sim, "results": [r for r in sim["results"] if r["n"] not in sizes] + more["results"]}
        model = None
        if args.model_json:
            with open(args.model_json) as f:
                model = json.load(f)
        plot(summary, sim, os.path.join(os.path.dirname(os.path.abspath(args.plot)),
                                        "membership_scaling.png"), model)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rounds, idle_s, sim_sizes = args.rounds, args.idle_seconds, "100,1000"
    if args.quick:
        sizes, rounds, idle_s, sim_sizes = [5, 20], 1, 3, "100"
    for path in (args.shoal, args.sim):
        if not os.access(path, os.X_OK):
            sys.exit("membership bench: %s is missing: build Release first (scripts/test.sh release)" % path)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    logdir = tempfile.mkdtemp(prefix="shoal-bench-")

    rows = []
    for n in sizes:
        runs = []
        for r in range(rounds):
            runs.append(one_round(args.shoal, n, logdir, idle_s, args.settle_seconds, measure_idle=(r == 0)))
        rows.append({"n": n, "rounds": runs})

    print("membership bench: real agents on 127.0.0.1, default settings (probe 200 ms), %d round(s)" % rounds)
    print("%4s %14s %12s %22s %9s %22s %9s %9s %7s %7s %8s %6s" % (
        "N", "all alive (ms)", "after spawn", "kill -9 min/med/max", "all (ms)", "SIGSTOP min/med/max", "all (ms)",
        "leave", "CPU %", "RSS MB", "UDP KB/s", "false"))
    summary = {}
    for row in rows:
        n, runs = row["n"], row["rounds"]
        conv = [r["converge_ms"] for r in runs if r.get("converged")]
        conv_spawned = [r["converge_after_spawn_ms"] for r in runs if r.get("converged")]
        kill_all = [max(r["kill_ms"]) for r in runs if r.get("kill_ms")]
        kill_each = [t for r in runs for t in r.get("kill_ms", [])]
        stop_all = [max(r["stop_ms"]) for r in runs if r.get("stop_ms")]
        stop_each = [t for r in runs for t in r.get("stop_ms", [])]
        leave_all = [max(r["leave_ms"]) for r in runs if r.get("leave_ms")]
        idle = runs[0]
        false = sum(r.get("false_deaths", 0) for r in runs)
        s = {
            "converge_ms_median": pct(conv, 50), "converge_ms_max": max(conv) if conv else None,
            "converge_after_spawn_ms_median": pct(conv_spawned, 50),
            "kill_all_ms_median": pct(kill_all, 50), "kill_each_ms": [pct(kill_each, 0), pct(kill_each, 50), pct(kill_each, 100)],
            "stop_all_ms_median": pct(stop_all, 50), "stop_each_ms": [pct(stop_each, 0), pct(stop_each, 50), pct(stop_each, 100)],
            "leave_all_ms_median": pct(leave_all, 50), "false_deaths": false,
            "idle_cpu_pct": idle.get("idle_cpu_pct_median"), "rss_mb": idle.get("rss_mb_median"),
            "udp_kb_s": idle.get("udp_kb_s_out_median"),
        }
        summary[n] = s
        print("%4d %14s %12s %22s %9s %22s %9s %9s %7s %7s %8s %6d" % (
            n, "%s/%s" % (fmt(s["converge_ms_median"]), fmt(s["converge_ms_max"])),
            fmt(s["converge_after_spawn_ms_median"]),
            "/".join(fmt(v) for v in s["kill_each_ms"]), fmt(s["kill_all_ms_median"]),
            "/".join(fmt(v) for v in s["stop_each_ms"]), fmt(s["stop_all_ms_median"]),
            fmt(s["leave_all_ms_median"]), fmt(s["idle_cpu_pct"], 2), fmt(s["rss_mb"], 1),
            fmt(s["udp_kb_s"], 2), false))
    print("(all alive: median/max over rounds from the first spawn, and median from the last spawn;")
    print(" detection per survivor, and until all;")
    print(" leave: until all saw it; CPU, RSS and UDP out per idle node, medians)")

    sim_json = args.json.replace(".json", "_sim.json")
    sim = subprocess.run([args.sim, "--sizes", sim_sizes, "--json", sim_json], capture_output=True, text=True)
    if sim.returncode != 0:
        failures_sim = "the simulator exited %d" % sim.returncode
    else:
        failures_sim = None
    print()
    print(sim.stdout.strip())
    sim_results = json.load(open(sim_json)) if os.path.exists(sim_json) else None

    with open(args.json, "w") as f:
        json.dump({"bench": "membership", **provenance(ROOT), "rounds": rounds, "idle_seconds": idle_s, "settle_seconds": args.settle_seconds, "sizes": rows, "summary": summary,
                   "sim": sim_results}, f, indent=2)
    print("json: %s (logs in %s)" % (args.json, logdir))
    plot(summary, sim_results, os.path.join(os.path.dirname(args.json), "membership_scaling.png"))
    failures = [failures_sim] if failures_sim else []
    for row in rows:
        for i, r in enumerate(row["rounds"]):
            where = "N=%d round %d" % (row["n"], i + 1)
            if not r.get("converged"):
                failures.append(where + ": did not converge")
            for what in ("kill", "stop"):
                if r.get("converged") and not r.get(what + "_detected"):
                    failures.append("%s: the %s was not seen by every survivor" % (where, what))
            if r.get("false_deaths", 0):
                failures.append("%s: %d live nodes declared dead" % (where, r["false_deaths"]))
    big = max(summary)
    s5 = summary.get(5, summary[min(summary)])
    sb = summary[big]
    print("membership bench: kill -9 seen by all in %s ms (N=%d) / %s ms (N=%d) median; SIGSTOP %s / %s ms; "
          "all alive %s ms (N=%d; %s ms after the last spawn); leave %s ms; %s false deaths" % (
              fmt(s5["kill_all_ms_median"]), min(summary), fmt(sb["kill_all_ms_median"]), big,
              fmt(s5["stop_all_ms_median"]), fmt(sb["stop_all_ms_median"]), fmt(sb["converge_ms_median"]), big,
              fmt(sb["converge_after_spawn_ms_median"]),
              fmt(s5["leave_all_ms_median"]), sum(s["false_deaths"] for s in summary.values())))
    if failures:
        print("membership bench: FAILED: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
