#!/usr/bin/env python3
"""The :global guide's stack server, as a supervised shoal child.

It serves calls to its name (the child's name, registered by the supervisor): "push VALUE" answers
"ok", "pop" answers the top value (or "empty"), "get" answers the whole stack as JSON. After every
change it stores the stack as its checkpoint (so a copy restarted on another node, after its node
died, goes on from there) and publishes the change to group "stack-watchers".

It reads its mailbox with `shoal recv --format json` (SHOAL_RPC and SHOAL_CHILD_NAME are set by the
agent) and answers with `shoal reply TOKEN`.
"""

import json
import os
import subprocess
import sys

SHOAL = os.environ.get("SHOAL_BIN", "shoal")


def shoal(*args, data=None):
    subprocess.run([SHOAL, *args], input=data, text=True, check=False,
                   stdout=subprocess.DEVNULL)


def main():
    stack = []
    checkpoint = os.environ.get("SHOAL_CHECKPOINT_FILE")
    if checkpoint and os.path.exists(checkpoint):
        with open(checkpoint) as f:
            stack = json.load(f)
    print("stack server on %s, resumed with %s" % (os.environ.get("SHOAL_NODE"), stack), flush=True)
    recv = subprocess.Popen([SHOAL, "recv", "--format", "json"], stdout=subprocess.PIPE, text=True)
    for line in recv.stdout:
        msg = json.loads(line)
        words = msg["data"].split(" ", 1)
        op, arg = words[0], (words[1] if len(words) > 1 else "")
        if op == "push":
            stack.append(arg)
            answer = "ok"
        elif op == "pop":
            answer = stack.pop() if stack else "empty"
        elif op == "get":
            answer = json.dumps(stack)
        else:
            answer = "unknown op %r" % op
        if op in ("push", "pop"):
            shoal("checkpoint", data=json.dumps(stack))
            shoal("publish", "stack-watchers", "%s %s -> %s" % (op, arg or answer, json.dumps(stack)))
        if msg.get("token"):
            shoal("reply", msg["token"], answer)
    sys.exit(recv.wait())


if __name__ == "__main__":
    main()
