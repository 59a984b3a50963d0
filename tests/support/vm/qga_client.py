#!/usr/bin/env python3
"""A host-side guest agent client that the project did not write: the `qemu.qmp` package's
legacy synchronous client (PyPI `qemu.qmp`), with negotiation off, as qemu's own
`qemu-ga-client` uses it (`QEMUMonitorProtocol(path).connect(negotiate=False)`, then a
`guest-ping` and a `guest-sync` with a random id before the commands).

Driven by a test over stdin/stdout, one line each way:
  connect          connect to the socket (argv[1]) and sync; retried for up to 120 s
  {"execute": ..}  send this command; prints its answer
  close            disconnect (without a thaw, if frozen)
Every output line is a JSON object with "t" (time.monotonic(), the host's CLOCK_MONOTONIC,
when the answer came) and "reply" (the answer as the client returns it), or "exception"
(the client's exception, e.g. a timeout), or "event".
"""

import json
import random
import sys
import time

from qemu.qmp.legacy import QEMUMonitorProtocol

TIMEOUT = 60.0


def say(**kw):
    kw["t"] = time.monotonic()
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def connect(path):
    """Connects and syncs as qemu-ga-client does; the guest's agent may start later."""
    end = time.monotonic() + 120
    last = None
    while time.monotonic() < end:
        qga = QEMUMonitorProtocol(path)
        try:
            qga.connect(negotiate=False)
            qga.settimeout(3)
            qga.cmd_obj({"execute": "guest-ping"})
            uid = random.randint(0, (1 << 32) - 1)
            while True:
                ret = qga.cmd_obj({"execute": "guest-sync", "arguments": {"id": uid}})
                if ret.get("return") == uid:
                    break
            qga.settimeout(TIMEOUT)
            return qga
        except Exception as e:  # the agent is not up yet: retry
            last = e
            try:
                qga.close()
            except Exception:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"no guest agent answered on {path}: {last!r}")


def main():
    path = sys.argv[1]
    qga = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            if line == "connect":
                qga = connect(path)
                say(event="connected")
            elif line == "close":
                if qga is not None:
                    qga.close()
                qga = None
                say(event="closed")
            else:
                say(reply=qga.cmd_obj(json.loads(line)))
        except Exception as e:
            say(exception=f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
