"""The Python front end of the scenario table (tests/scenarios.rs): the same session as the
quiesce command's ``freeze --stdin --json``, through the package ``quiesce``.

    scenario.py -t TIMEOUT_MS [--hook-dir=DIR] [--hook-timeout-ms=MS] MOUNT...

Freezes MOUNT..., prints ``frozen``, reads one line from stdin (``thaw`` acknowledges the
snapshot; anything else, or the end of input, does not), thaws, and prints one JSON line:
``{"status": N, "status_name": "...", "message": "...", "targets": [{"mount": "...",
"outcome": "...", "errno": N}, ...], "phases": {"plan_us": N, ..., "finish_us": N}}`` (the
phases as the quiesce command's, in microseconds; left out without a report). Exits with the
status. The package is imported from
examples/python (``$QUIESCE_LIB`` names the library).
"""

import json
import os
import sys
from typing import Dict, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../examples/python"))

import quiesce  # noqa: E402


def usage() -> int:
    print(
        "usage: scenario.py -t TIMEOUT_MS [--hook-dir=DIR] [--hook-timeout-ms=MS] MOUNT...",
        file=sys.stderr,
    )
    return int(quiesce.Status.USAGE)


def main(argv: list[str]) -> int:
    timeout_ms = 0
    hook_dir: Optional[str] = None
    hook_timeout: Optional[float] = None
    args = argv[1:]
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a == "-t" and args:
            timeout_ms = int(args.pop(0))
        elif a.startswith("--hook-dir="):
            hook_dir = a[len("--hook-dir=") :]
        elif a.startswith("--hook-timeout-ms="):
            hook_timeout = int(a[len("--hook-timeout-ms=") :]) / 1e3
        else:
            return usage()
    if timeout_ms <= 0:
        return usage()
    report: Optional[quiesce.Report] = None
    message = ""
    try:
        session = quiesce.Session.plan(
            args, timeout_ms / 1e3, hook_dir=hook_dir, hook_timeout=hook_timeout
        )
    except quiesce.QuiesceError as e:
        return emit(int(e.status), e.message, e.report)
    with session:
        try:
            session.freeze()
        except quiesce.QuiesceError as e:
            return emit(int(e.status), e.message, e.report)
        print("frozen", flush=True)
        line = sys.stdin.readline()
        report = session.thaw(line.strip() == "thaw", check=False)
        err = session.error
        message = err.message if err is not None and report.status != quiesce.Status.OK else report.message
    return emit(int(report.status), message, report)


def emit(status: int, message: str, report: Optional[quiesce.Report]) -> int:
    targets = [] if report is None else report.targets
    result: Dict[str, object] = {
        "status": status,
        "status_name": quiesce.status_name(status),
        "message": message,
        "targets": [
            {"mount": t.path, "outcome": quiesce.outcome_name(t.outcome), "errno": t.errno}
            for t in targets
        ],
    }
    if report is not None:
        # The quiesce command's "phases": each phase in whole microseconds.
        result["phases"] = report.phases.as_us()
    print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
