#!/usr/bin/python3
"""Soak benchmark: 10 agents on 127.0.0.1 under churn (kill -9 and restart one every few seconds)
for 10 minutes, with in-process workers supervised cluster-wide and a name held by every agent.

Reports, and writes as JSON:
  - false deaths: "membership failed" events about a node life that was never killed;
  - lost names: at the end, names of live agents missing on some live agent;
  - duplicate children: samples in which two agents ran the same worker at once (each agent's
    own `ps --node`), and at the end any worker not running exactly once;
  - RSS: every agent's resident memory sampled every 5 s; for the agents that are never killed,
    the growth from the first to the last minute of the run and over its second half (from the
    middle minute to the last: must be flat), and the peak of each.

Usage: soak.py --shoal BIN [--agents 10] [--duration 600] [--period 6] [--workers 50]
               [--keep 2] [--out out/soak.json]
The last line printed is the headline. Exits 1 if a check fails (a false death, a lost name, a
duplicate sample, a worker not running once at the end). The JSON records the git commit, the
command line and the date. Ends every process it started, by pid.
"""
import argparse, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import free_base, provenance  # noqa: E402


class Agent:
    def __init__(self, args, i, base, n, root):
        self.args, self.i, self.base, self.n, self.root = args, i, base, n, root
        self.name = "n%d" % i
        self.data = os.path.join(root, "d%d" % i)
        self.sock = os.path.join(self.data, "shoal.sock")
        self.proc = None
        self.lives = 0
        self.creation = None

    def start(self):
        cmd = [self.args.shoal, "agent", "--name", self.name, "--bind",
               "127.0.0.1:%d" % (self.base + self.i), "--discovery", "seeds",
               "--data-dir", self.data, "--register", "soak-" + self.name]
        for j in range(self.n):
            if j != self.i:
                cmd += ["--join", "127.0.0.1:%d" % (self.base + j)]
        log = open(os.path.join(self.root, "%s.%d.log" % (self.name, self.lives)), "w")
        self.lives += 1
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        self.creation = None

    def cli(self, *args):
        r = subprocess.run([self.args.shoal, args[0], "--rpc", self.sock, "--format", "json"]
                           + list(args[1:]), capture_output=True, text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def info_creation(self):
        info = self.cli("info")
        if info:
            self.creation = info["creation"]
        return self.creation

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def wait(pred, deadline):
    end = time.time() + deadline
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)  # polling a condition with a deadline
    return pred()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--period", type=float, default=6.0)
    ap.add_argument("--workers", type=int, default=50)
    ap.add_argument("--keep", type=int, default=2, help="agents never killed (RSS baseline)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default="out/soak.json")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print("soak: seed=%d agents=%d duration=%ds period=%.1fs workers=%d" %
          (seed, args.agents, args.duration, args.period, args.workers), flush=True)
    root = tempfile.mkdtemp(prefix="shoal-soak-")
    base = free_base(args.agents)
    agents = [Agent(args, i, base, args.agents, root) for i in range(args.agents)]
    killed_lives = set()
    ok = False
    try:
        for a in agents:
            a.start()
        if not wait(lambda: all((a.cli("members") or []).__len__() == args.agents
                                for a in agents), 60):
            sys.exit("soak: the agents did not all see each other within 60 s")
        for k in range(args.workers):
            agents[0].cli("run", "--name", "w%d" % k, "--worker", "counter")
        for a in agents:
            a.info_creation()
        t0 = time.time()
        rss = {a.name: [] for a in agents}
        dup_samples = 0
        dup_seen = []  # each duplicate sample: when, which workers, how long after the last kill
        last_kill = t0
        samples = 0
        kills = 0
        next_kill = t0 + args.period
        next_rss = t0
        churnable = agents[args.keep:]
        while time.time() - t0 < args.duration:
            now = time.time()
            if now >= next_kill:
                victim = rng.choice(churnable)
                if victim.creation is not None:
                    killed_lives.add((victim.name, victim.creation))
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait()
                last_kill = time.time()
                kills += 1
                time.sleep(1.0)  # down for a second, then back (the churn itself)
                victim.start()
                wait(lambda: victim.info_creation() is not None, 30)
                next_kill = time.time() + args.period
            if now >= next_rss:
                for a in agents:
                    if a.alive():
                        kb = a.rss_kb()
                        if kb:
                            rss[a.name].append((round(now - t0, 1), kb))
                next_rss = now + 5
            # Duplicates: every live agent's own running workers.
            seen = {}
            for a in agents:
                if not a.alive():
                    continue
                rows = a.cli("ps", "--node", a.name) or []
                for r in rows:
                    if r.get("status") == "running":
                        seen[r["name"]] = seen.get(r["name"], 0) + 1
            samples += 1
            if any(v > 1 for v in seen.values()):
                dup_samples += 1
                dup_seen.append({"t": round(now - t0, 1),
                                 "workers": sorted(k for k, v in seen.items() if v > 1),
                                 "s_after_last_kill": round(time.time() - last_kill, 1)})
            time.sleep(0.5)
        elapsed = time.time() - t0
        # Settle, then the end state.
        for a in agents:
            a.info_creation()
        want = {"soak-" + a.name for a in agents}
        settled = wait(lambda: all(want <= {r["name"] for r in (a.cli("names") or [])}
                                   for a in agents), 60)
        lost = sorted({n for a in agents
                       for n in want - {r["name"] for r in (a.cli("names") or [])}})
        counts = {}
        wait(lambda: len([r for r in (agents[0].cli("ps") or [])
                          if r.get("status") == "running"]) == args.workers, 60)
        for a in agents:
            for r in a.cli("ps", "--node", a.name) or []:
                if r.get("status") == "running":
                    counts[r["name"]] = counts.get(r["name"], 0) + 1
        not_once = sorted(["w%d" % k for k in range(args.workers) if counts.get("w%d" % k) != 1])
        # False deaths: "failed" about a life never killed.
        false_deaths = 0
        deaths = 0
        for f in os.listdir(root):
            if not f.endswith(".log"):
                continue
            for line in open(os.path.join(root, f), errors="replace"):
                if "membership failed " not in line:
                    continue
                deaths += 1
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                life = (fields.get("name"), int(fields.get("creation", "0")))
                if life not in killed_lives:
                    false_deaths += 1
        growth = {}
        for a in agents[:args.keep]:
            series = rss[a.name]
            first = [kb for t, kb in series if t <= 60]
            mid = [kb for t, kb in series if abs(t - elapsed / 2) <= 30]
            last = [kb for t, kb in series if t >= elapsed - 60]
            if first and mid and last:
                mean = lambda xs: sum(xs) / len(xs)
                # The second half shows whether memory levels off once the fixed-size structures
                # (the replay filter's ring, the allocator's arenas) have filled.
                growth[a.name] = {"first_minute_kb": int(mean(first)),
                                  "middle_minute_kb": int(mean(mid)),
                                  "last_minute_kb": int(mean(last)),
                                  "growth_pct": round(100.0 * (mean(last) - mean(first)) /
                                                      mean(first), 1),
                                  "second_half_growth_pct": round(
                                      100.0 * (mean(last) - mean(mid)) / mean(mid), 1)}
        # What the replicated map's anti-entropy keeps on the never-killed agents: origins (node
        # lives that wrote to the map) and per-neighbour entries (few once origins are quiet).
        replica = {a.name: (a.cli("info") or {}).get("map") for a in agents[:args.keep]}
        peaks = {name: max((kb for _, kb in s), default=0) for name, s in rss.items()}
        ok = false_deaths == 0 and not lost and dup_samples == 0 and not not_once
        root_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        result = {**provenance(root_dir), "ok": ok,
                  "seed": seed, "agents": args.agents, "duration_s": round(elapsed),
                  "kills": kills, "deaths_seen": deaths, "false_deaths": false_deaths,
                  "names_settled": settled, "lost_names": lost,
                  "duplicate_samples": dup_samples, "samples": samples,
                  "duplicates_seen": dup_seen,
                  "workers_not_once_at_end": not_once, "rss_growth": growth,
                  "rss_peak_kb": peaks, "replica_at_end": replica, "logs": root}
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(json.dumps({k: v for k, v in result.items() if k != "rss_peak_kb"}, indent=1))
        worst = max((g["growth_pct"] for g in growth.values()), default=0.0)
        worst_half = max((g["second_half_growth_pct"] for g in growth.values()), default=0.0)
        print("soak: %d kills in %d s on %d agents: false deaths %d, lost names %d, "
              "duplicate samples %d/%d, workers not running once at the end %d, "
              "RSS growth of the never-killed agents %.1f%% first to last minute, "
              "%.1f%% over the second half" %
              (kills, elapsed, args.agents, false_deaths, len(lost), dup_samples, samples,
               len(not_once), worst, worst_half))
        if not ok:
            print("soak: FAILED (see the checks above)", file=sys.stderr)
    finally:
        for a in agents:
            if a.alive():
                a.proc.send_signal(signal.SIGKILL)
                a.proc.wait()
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
