#!/usr/bin/env python3
"""The operations files in packaging/ against a real agent.

- packaging/prometheus/shoal-alerts.yml passes `promtool check rules`, and its unit tests
  (shoal-alerts.test.yml) pass `promtool test rules`;
- every metric the alert rules and the Grafana dashboard (packaging/grafana/shoal-dashboard.json)
  query is one that `shoal agent --http` exports: an agent is started on 127.0.0.1 and its
  /metrics read;
- the dashboard is valid JSON whose panels each have a query and a place on the grid.

Usage: check_packaging.py SHOAL_BINARY PROMTOOL. Exits 1 on the first failure, with the reason.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "packaging", "prometheus", "shoal-alerts.yml")
RULE_TESTS = os.path.join(ROOT, "packaging", "prometheus", "shoal-alerts.test.yml")
DASHBOARD = os.path.join(ROOT, "packaging", "grafana", "shoal-dashboard.json")
METRIC = re.compile(r"\bshoal_[a-z_]+\b")


def fail(why):
    print("check_packaging: FAILED: " + why, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exported_metrics(shoal):
    """The metric names a fresh agent's /metrics lists."""
    data = tempfile.mkdtemp(prefix="shoal-pkg-")
    port, http = free_port(), free_port()
    agent = subprocess.Popen([shoal, "agent", "--name", "pkg", "--bind", "127.0.0.1:%d" % port,
                              "--discovery", "none", "--http", "127.0.0.1:%d" % http,
                              "--data-dir", data], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=5) as r:
                    text = r.read().decode()
                break
            except OSError:
                if time.time() > deadline or agent.poll() is not None:
                    fail("the agent's /metrics did not answer")
                time.sleep(0.1)  # polling for the agent to listen, with a deadline
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def main():
    if len(sys.argv) != 3:
        fail("usage: check_packaging.py SHOAL_BINARY PROMTOOL")
    shoal, promtool = sys.argv[1], sys.argv[2]
    for args in (["check", "rules", RULES], ["test", "rules", RULE_TESTS]):
        r = subprocess.run([promtool] + args, capture_output=True, text=True,
                           cwd=os.path.dirname(RULES))
        if r.returncode != 0:
            fail("promtool %s:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
        print("promtool %s: ok" % " ".join(args[:2]))

    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    queries = []
    for panel in dashboard.get("panels", []):
        targets = [t.get("expr", "") for t in panel.get("targets", [])]
        if not targets or not all(targets):
            fail("dashboard panel %r has no query" % panel.get("title"))
        if not {"x", "y", "w", "h"} <= set(panel.get("gridPos", {})):
            fail("dashboard panel %r has no place on the grid" % panel.get("title"))
        queries += targets
    with open(RULES) as f:
        rules = f.read()

    exported = exported_metrics(shoal)
    used = {("dashboard", m) for q in queries for m in METRIC.findall(q)}
    used |= {("alert rules", m) for m in METRIC.findall(rules)}
    missing = sorted("%s: %s" % (where, m) for where, m in used if m not in exported)
    if missing:
        fail("metrics the agent does not export:\n  " + "\n  ".join(missing))
    print("dashboard: %d panels, %d queries; alert rules and dashboard use %d metrics, all exported"
          % (len(dashboard["panels"]), len(queries), len({m for _, m in used})))


if __name__ == "__main__":
    main()
