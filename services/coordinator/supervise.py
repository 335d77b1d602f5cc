"""Run one workload and record how it ended, for a coordinator that may not be there to see it.

    python -m hypolab.coordinator.supervise EXIT_FILE -- COMMAND [ARG ...]

The local runner starts every workload through this wrapper, in its own session, so a
coordinator killed mid-run (even with SIGKILL) leaves the workload running; when the
workload ends, its exit code is written to EXIT_FILE (atomically), where a restarted
coordinator reads it. SIGTERM and SIGINT are passed on to the workload.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m hypolab.coordinator.supervise EXIT_FILE -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    exit_file, command = Path(argv[0]), argv[2:]
    exit_file.unlink(missing_ok=True)
    child = subprocess.Popen(command)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    code = child.wait()
    tmp = exit_file.with_name(exit_file.name + ".tmp")
    tmp.write_text(str(code))
    os.replace(tmp, exit_file)
    return 0 if code == 0 else (code if code > 0 else 128 - code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
