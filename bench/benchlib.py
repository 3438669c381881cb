"""Helpers the Python benchmarks share (bench/membership, bench/registry, bench/soak)."""
import random
import socket


def free_base(count):
    """A base port with `count` consecutive free UDP+TCP ports on 127.0.0.1, checked by binding."""
    for _ in range(500):
        base = random.randint(20000, 59000)
        ok = True
        for port in range(base, base + count):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                finally:
                    s.close()
        if ok:
            return base
    raise RuntimeError("no free port range on 127.0.0.1")


def provenance(root):
    """What a result came from: the git commit of `root` ("+dirty" with uncommitted changes to
    tracked files; "unknown" outside a repository), the command line and the UTC date."""
    import datetime
    import subprocess
    import sys

    def git(*args):
        try:
            return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or "unknown"
    if commit != "unknown" and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {
        "commit": commit,
        "command": " ".join([sys.executable] + sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
