"""What a server left running: the processes below it, read from /proc (Linux)."""
from __future__ import annotations

from pathlib import Path

PYSPARK_WORKER_MODULES = ("pyspark.daemon", "pyspark.worker")


def descendants(pid: int) -> list[str]:
    """Command lines of every process below ``pid`` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()   # the command name may hold spaces
        except OSError:
            continue                                               # exited while listed
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found.append((Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
        todo += children.get(child, [])
    return found


def python_workers(pid: int) -> list[str]:
    """PySpark worker processes (daemons and workers) below ``pid``."""
    return [c for c in descendants(pid) if any(m in c for m in PYSPARK_WORKER_MODULES)]
