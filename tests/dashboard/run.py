#!/usr/bin/env python3
"""The operator's dashboard (GET / of `shoal agent --http`) in a real browser, on real agents.

Starts three agents on 127.0.0.1 (n0 serves the page), runs sleeping children on the cluster,
opens the page in headless Chromium driven over the DevTools protocol, and reads the DOM only
(the data attributes bin/http/dashboard.html documents): every member alive, every child running
on a node, names filterable, groups listed, nothing fetched from anywhere but the agent. Then it
SIGKILLs the agent (n1 or n2) that runs the most children and waits, without reloading the page,
until the DOM shows that member not alive, its death in the live event feed (which only the
event stream fills), and its children running on the survivors. Ends with a screenshot.

Usage: run.py --shoal PATH [--out PNG]   (or SHOAL_DASHBOARD_PNG; default out/dashboard.png)

Without Chromium or python3-websocket it exits 77 (ctest: skipped) and says why, or fails under
SHOAL_REQUIRE_DASHBOARD=1 (CI). The whole run is bounded (60 s); every wait is a condition polled
against a deadline. It ends every process it started, by pid, on success and on failure: the
agents, their children, Chromium and its helpers. Network: 127.0.0.1 only; Chromium resolves no
host name and uses no proxy.
"""

import argparse
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
BUDGET_S = 60
START = time.monotonic()

# Only 127.0.0.1, never a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Failed(Exception):
    pass


def log(text):
    print("dashboard: [%5.1fs] %s" % (time.monotonic() - START, text), flush=True)


def unavailable(why):
    if os.environ.get("SHOAL_REQUIRE_DASHBOARD") == "1":
        print("dashboard: FAILED: %s (SHOAL_REQUIRE_DASHBOARD=1)" % why, file=sys.stderr)
        sys.exit(1)
    print("dashboard: SKIPPED: %s (set SHOAL_REQUIRE_DASHBOARD=1 to fail instead)" % why,
          file=sys.stderr)
    sys.exit(SKIP)


def remaining():
    return BUDGET_S - (time.monotonic() - START)


def wait_for(what, check, within=30.0, every=0.1):
    """Polls check() until it returns a true value, at most `within` s and within the budget."""
    deadline = time.monotonic() + min(within, max(remaining(), 0))
    last = None
    while True:
        try:
            got = check()
        except Failed:
            raise
        except Exception as e:  # a view not answering yet, a page still loading
            got, last = None, e
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failed("timed out waiting for %s%s" % (what, " (last error: %s)" % last
                                                          if last else ""))
        time.sleep(every)


def free_port(used):
    """A port free for both TCP and UDP on 127.0.0.1 (an agent binds both)."""
    for _ in range(200):
        port = random.randint(20000, 59999)
        if port in used:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        used.add(port)
        return port
    raise Failed("no free port on 127.0.0.1")


def get_json(port, path):
    with HTTP.open("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read().decode())


def descendants(pid):
    """Every process below `pid` (from /proc), deepest last."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def live_processes():
    """(pid, argv as a list of bytes) of every process that is no zombie."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            yield int(entry), argv


def sleepers(token):
    """pids of live `sleep <token>...` processes: the children this run started."""
    return [pid for pid, argv in live_processes()
            if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1].startswith(token.encode())]


def with_arg(text):
    """pids of live processes one of whose arguments contains `text`."""
    return [pid for pid, argv in live_processes() if any(text.encode() in a for a in argv)]


def running(pid):
    """`pid` exists and is no zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Agent:
    def __init__(self, shoal, tmp, name, port, http, join):
        self.name, self.port, self.http = name, port, http
        self.data = os.path.join(tmp, name)
        self.sock = os.path.join(self.data, "shoal.sock")
        self.log_path = os.path.join(tmp, name + ".log")
        args = [shoal, "agent", "--name", name, "--bind", "127.0.0.1:%d" % port,
                "--discovery", "seeds", "--data-dir", self.data,
                "--http", "127.0.0.1:%d" % http]
        if join:
            args += ["--join", "127.0.0.1:%d" % join]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "wb"))

    def tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class Cdp:
    """One page target over the DevTools protocol (JSON over a WebSocket)."""

    def __init__(self, websocket, url):
        self.ws = websocket.create_connection(url, timeout=10, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.settimeout(max(1.0, min(15.0, remaining())))
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise Failed("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expression):
        """The expression's value; a JavaScript exception raises RuntimeError (wait_for retries
        it: the page may be loading)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            details = r["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details)
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


# What the page shows, read from its DOM.
READ_DOM = """(() => {
  if (!document.getElementById("stream") || !document.body.dataset.refreshes) return null;
  const rows = (sel, f) => [...document.querySelectorAll(sel)].map(f);
  return {
    refreshes: Number(document.body.dataset.refreshes || 0),
    node: document.body.dataset.node || "",
    stream: document.getElementById("stream").dataset.state,
    agent: document.getElementById("agent").dataset.state,
    members: Object.fromEntries(rows("tr[data-member]",
        (r) => [r.dataset.member, r.dataset.status])),
    children: Object.fromEntries(rows("tr[data-child]",
        (r) => [r.dataset.child, {node: r.dataset.node, status: r.dataset.status}])),
    names: rows("tr[data-name]",
        (r) => ({name: r.dataset.name, node: r.dataset.node, hidden: r.hidden})),
    groups: Object.fromEntries(rows("tr[data-group]",
        (r) => [r.dataset.group, Number(r.dataset.members)])),
    events: rows("#events li",
        (r) => ({type: r.dataset.type, event: r.dataset.event, name: r.dataset.name})),
    marker: window.__shoal_test_marker || 0,
  };
})()"""


def scenario(shoal, png, tmp, websocket, chromium, cleanup):
    used = set()
    token = str(random.randint(7_000_000, 7_999_999))  # `sleep <token><k>` names our children
    agents = []
    ports = [free_port(used) for _ in range(3)]
    https = [free_port(used) for _ in range(3)]
    for i in range(3):
        agents.append(Agent(shoal, tmp, "n%d" % i, ports[i], https[i], ports[0] if i else None))
        cleanup.agents.append(agents[-1])
    cleanup.token = token
    page_port = https[0]

    def alive_members():
        return sorted(m["name"] for m in get_json(page_port, "/v1/members")
                      if m["status"] == "alive")
    wait_for("3 alive members at n0", lambda: alive_members() == ["n0", "n1", "n2"], 20)
    log("3 agents up, http on n0 127.0.0.1:%d" % page_port)

    # The page itself: HTML, nothing it loads from elsewhere; a wrong path lists the right ones.
    url = "http://127.0.0.1:%d/" % page_port
    with HTTP.open(url, timeout=5) as r:
        content_type, page = r.headers.get("Content-Type"), r.read().decode()
    if content_type != "text/html; charset=utf-8" or "<table" not in page:
        raise Failed("GET / answered %s:\n%s" % (content_type, page[:200]))
    external = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?(?:[a-z]+:)?//[^"' )>]*""", page)
    if external:
        raise Failed("the page refers to external assets: %s" % external)
    try:
        HTTP.open(url + "no-such-page", timeout=5)
        raise Failed("GET /no-such-page did not answer 404")
    except urllib.error.HTTPError as e:
        listed = e.read().decode()
        if e.code != 404 or " /," not in listed or "/v1/events" not in listed:
            raise Failed("GET /no-such-page: %d %s" % (e.code, listed))

    def cli(i, *args):
        sub = args[0]
        r = subprocess.run([shoal, sub, "--rpc", agents[i].sock] + list(args[1:]),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=max(1, min(15, remaining())))
        if r.returncode != 0:
            raise Failed("shoal %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r.stdout

    for k in range(6):
        cli(k % 3, "run", "--name", "dash-c%d" % k, "--", "sleep", "%s%d" % (token, k))
    cli(1, "join-group", "dash-web")
    cli(2, "join-group", "dash-web")
    cli(0, "register", "dash-ops")

    # Chromium: headless, no sandbox (containers), a profile of its own, DevTools on a port it
    # picks, no proxy, no name resolution but 127.0.0.1, nothing in the background.
    profile = os.path.join(tmp, "chromium-profile")
    os.makedirs(profile)
    chromium_log = open(os.path.join(tmp, "chromium.log"), "wb")
    env = dict(os.environ, HOME=tmp)
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1", "--user-data-dir=" + profile,
         "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--no-first-run", "--no-pings",
         "--no-default-browser-check", "--disable-gpu", "--mute-audio",
         "--window-size=1400,1000", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=chromium_log, stderr=chromium_log, env=env,
        start_new_session=True)
    cleanup.browser, cleanup.profile = browser, profile
    active = os.path.join(profile, "DevToolsActivePort")

    def devtools_port():
        with open(active) as f:
            lines = f.read().split("\n")
        return int(lines[0]) if len(lines) >= 2 and lines[0].isdigit() else None
    devtools = wait_for("Chromium's DevToolsActivePort", devtools_port, 20)
    pages = wait_for("a page target", lambda: [t for t in get_json(devtools, "/json/list")
                                               if t.get("type") == "page"], 10)
    cdp = Cdp(websocket, pages[0]["webSocketDebuggerUrl"])
    cleanup.cdp = cdp
    log("chromium pid %d, devtools on 127.0.0.1:%d" % (browser.pid, devtools))
    cdp.call("Runtime.enable")
    cdp.call("Network.enable")
    cdp.call("Page.enable")
    cdp.call("Page.navigate", url=url)

    def dom():
        d = cdp.eval(READ_DOM)
        if d is None:
            raise RuntimeError("the page is not loaded")
        return d

    def ready():
        d = dom()
        running = [c for c in d["children"].values() if c["status"] == "running" and c["node"]]
        return d if (d["refreshes"] >= 1 and d["stream"] == "open" and len(running) == 6 and
                     sorted(d["members"].items()) == [("n0", "alive"), ("n1", "alive"),
                                                      ("n2", "alive")]) else None
    d = wait_for("the page: 3 alive members, 6 running children, the event stream open", ready, 25)
    log("page up: members %s; children on %s" % (
        d["members"], sorted({c["node"] for c in d["children"].values()})))
    if d["node"] != "n0":
        raise Failed("the page says it is served by %r, not n0" % d["node"])
    wait_for("names and groups on the page", lambda: (
        lambda d: {"dash-c0", "dash-ops"} <= {n["name"] for n in d["names"]}
        and d["groups"].get("dash-web") == 2)(dom()), 10)

    # The name filter: typing hides the rows that do not match.
    shown = cdp.eval("""(() => {
      const f = document.getElementById("name-filter");
      f.value = "dash-c3"; f.dispatchEvent(new Event("input"));
      const v = [...document.querySelectorAll("tr[data-name]")].filter((r) => !r.hidden)
          .map((r) => r.dataset.name);
      f.value = ""; f.dispatchEvent(new Event("input"));
      return v;
    })()""")
    if shown != ["dash-c3"]:
        raise Failed("the name filter 'dash-c3' shows %r" % shown)

    # Nothing but the agent was asked for anything.
    requested = [e["params"]["request"]["url"] for e in cdp.events
                 if e["method"] == "Network.requestWillBeSent"]
    foreign = [u for u in requested if not u.startswith(url)]
    if foreign or not requested:
        raise Failed("the page requested %r (only %s... allowed)" % (foreign or requested, url))
    log("%d requests, all to %s" % (len(requested), url))

    # The victim: of n1 and n2, the one that runs the most children; more children until one does.
    def victim_of(d):
        counts = {n: sum(1 for c in d["children"].values() if c["node"] == n) for n in ("n1", "n2")}
        best = max(counts, key=lambda n: counts[n])
        return best if counts[best] else None
    k = 6
    while victim_of(d) is None:
        if k >= 16:
            raise Failed("no child placed on n1 or n2 out of %d" % k)
        cli(0, "run", "--name", "dash-c%d" % k, "--", "sleep", "%s%d" % (token, k))
        k += 1
        d = wait_for("child dash-c%d running" % (k - 1), lambda: (lambda d: d if d["children"].get(
            "dash-c%d" % (k - 1), {}).get("status") == "running" else None)(dom()), 15)
    victim = victim_of(d)
    orphans = sorted(n for n, c in d["children"].items() if c["node"] == victim)
    survivors = [n for n in ("n0", "n1", "n2") if n != victim]
    cdp.eval("window.__shoal_test_marker = 1")
    events_before = len(d["events"])
    v = next(a for a in agents if a.name == victim)
    log("SIGKILL %s (pid %d), which runs %s" % (victim, v.proc.pid, ", ".join(orphans)))
    killed_at = time.monotonic()
    os.kill(v.proc.pid, signal.SIGKILL)
    v.proc.wait()

    seen = []

    def member_down():
        d = dom()
        status = d["members"].get(victim, "gone")
        if not seen or seen[-1] != status:
            seen.append(status)
        return d if status != "alive" else None
    wait_for("member %s not alive in the DOM" % victim, member_down, 20, every=0.05)
    down_s = time.monotonic() - killed_at

    def moved():
        d = dom()
        member_down()
        ok = all(d["children"].get(n, {}).get("status") == "running" and
                 d["children"][n]["node"] in survivors for n in orphans)
        return d if ok else None
    d = wait_for("%s's children running on %s in the DOM" % (victim, " and ".join(survivors)),
                 moved, 30, every=0.05)
    moved_s = time.monotonic() - killed_at

    def feed_shows_death():
        d = dom()
        return d if any(e["type"] == "member" and e["name"] == victim and
                        e["event"] in ("failed", "suspect") for e in d["events"]) else None
    d = wait_for("the event feed (the SSE stream) to show %s failing" % victim, feed_shows_death,
                 10)
    if d["marker"] != 1:
        raise Failed("the page was reloaded (its marker is gone)")
    if d["stream"] != "open":
        raise Failed("the event stream is %s" % d["stream"])
    for n in orphans:
        log("  %s: %s -> %s" % (n, victim, d["children"][n]["node"]))
    log("member %s: %s in the DOM after %.1f s; its %d children running on survivors after %.1f s;"
        " %d events in the feed since the kill, no reload" % (
            victim, " -> ".join(seen), down_s, len(orphans), moved_s,
            len(d["events"]) - events_before))

    # The page's own script never failed.
    errors = [e["params"] for e in cdp.events if e["method"] == "Runtime.exceptionThrown" or
              (e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")]
    if errors:
        raise Failed("the page's script reported errors: %s" % errors)

    shot = cdp.call("Page.captureScreenshot", format="png")
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    with open(png, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    log("screenshot: %s" % os.path.abspath(png))


class Cleanup:
    def __init__(self):
        self.agents, self.browser, self.cdp, self.token, self.profile = [], None, None, None, None

    def run(self):
        if self.cdp:
            self.cdp.close()
        if self.browser:
            # Chromium and its helpers (zygote, renderers, GPU, crash handler): its session, then
            # each descendant and each process that names its profile, by pid, until none is left.
            below = descendants(self.browser.pid)  # before the kill: orphans change parent

            def family():
                return {p for p in below if running(p)} | set(with_arg(self.profile))
            try:
                os.killpg(self.browser.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            kill(self.browser.pid)
            self.browser.wait()
            deadline = time.monotonic() + 10
            left = family()
            while left and time.monotonic() < deadline:
                for pid in left:
                    kill(pid)
                time.sleep(0.05)
                left = family()
            if left:
                print("dashboard: chromium processes still alive: %s" % sorted(left),
                      file=sys.stderr)
        for a in self.agents:
            if a.proc.poll() is None:
                kill(a.proc.pid)
                a.proc.wait()
        if self.token:
            # The agents' children die with them (parent-death signal); any straggler by pid.
            deadline = time.monotonic() + 5
            while sleepers(self.token) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in sleepers(self.token):
                kill(pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shoal", required=True, help="the shoal binary")
    parser.add_argument("--out", default=os.environ.get("SHOAL_DASHBOARD_PNG", "out/dashboard.png"),
                        help="where the screenshot goes (default $SHOAL_DASHBOARD_PNG, else "
                             "out/dashboard.png)")
    args = parser.parse_args()
    try:
        import websocket  # python3-websocket (websocket-client)
    except ImportError:
        unavailable("python3-websocket is not installed for %s (apt-get install python3-websocket)"
                    % sys.executable)
    chromium = os.environ.get("SHOAL_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if not chromium:
        unavailable("no chromium on PATH (apt-get install chromium)")
    # ctest's timeout sends SIGTERM: clean up all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("dashboard: FAILED: terminated"))
    tmp = tempfile.mkdtemp(prefix="shoal-dashboard-")
    cleanup = Cleanup()
    ok = False
    try:
        scenario(os.path.abspath(args.shoal), args.out, tmp, websocket, chromium, cleanup)
        ok = True
    except Exception as e:  # Failed, or a tool that broke (the browser, the CLI, a socket)
        print("dashboard: FAILED: %s%s" % ("" if isinstance(e, Failed) else type(e).__name__ + ": ",
                                            e), file=sys.stderr)
        for a in cleanup.agents:
            print("--- %s log (%s), last lines:\n%s" % (a.name, a.log_path, a.tail()),
                  file=sys.stderr)
    finally:
        cleanup.run()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("dashboard: logs kept in %s" % tmp, file=sys.stderr)
    log("PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
