"""What a server left running: the PySpark workers below it (Linux /proc)."""
from __future__ import annotations

from pathlib import Path

from jobs.tools.stack import descendants

PYSPARK_WORKER_MODULES = ("pyspark.daemon", "pyspark.worker")


def python_workers(pid: int) -> list[str]:
    """Command lines of the PySpark worker processes (daemons and workers) below ``pid``."""
    found = []
    for child in descendants({pid}):
        try:
            cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue                                          # exited since it was listed
        if any(m in cmdline for m in PYSPARK_WORKER_MODULES):
            found.append(cmdline)
    return found
