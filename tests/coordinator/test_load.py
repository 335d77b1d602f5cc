"""The load bench as a correctness test: concurrent reporters and readers, every event stored once.

Speed is the bench's business (bench/coordinator_load.py prints it, CI shows it); here
only the exactly-once accounting is asserted, over a short, bounded run on 127.0.0.1.
"""

import subprocess
import sys

from ..conftest import ROOT


def test_concurrent_reporters_store_every_event_exactly_once():
    out = subprocess.run([sys.executable, "bench/coordinator_load.py", "--seconds", "3", "--reporters", "6",
                          "--readers", "2", "--batch", "25", "--rate", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every event stored exactly once: yes" in out.stdout
    assert "ingested" in out.stdout and " 0 events" not in out.stdout
