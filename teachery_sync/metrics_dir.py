"""The directory where every process of the service keeps its counters (prometheus-client's multiprocess
mode; workers/telemetry.py), created and cleaned by the processes themselves.

PROMETHEUS_MULTIPROC_DIR, else one directory per machine under the system's temp dir
(domain/settings.py default_metrics_dir). Each process that counts (`web`'s gunicorn master, whose
workers inherit it; each `worker` process; `dev`) holds a shared lock on `.processes.lock` in it while it
runs. The first process to start when none is running gets that lock exclusively for a moment and
empties the directory: the counts of the service's previous run go (Prometheus reads the drop to zero
as a counter reset, which rate() and increase() expect). A process that starts while others run keeps
every file: a killed process's counters stay in its file and are still summed, never counted again (a
new process, or one that reuses a dead one's pid, adds to its own file). mark_process_dead() is called
for every gunicorn worker and supervised worker that ends, as prometheus-client asks (it removes the
live gauges' files; we keep none, so it has nothing to remove today).

The web's /metrics sums the files of the processes on the same machine: run the workers where the web
runs (the Procfile does), or give both the same PROMETHEUS_MULTIPROC_DIR on a shared disk.
"""
from __future__ import annotations

import fcntl
import os

from prometheus_client import multiprocess

from workers import telemetry

LOCK_FILE = ".processes.lock"


class MetricsDir:
    """The opened directory; its lock lasts as long as this process (and the children it forks)."""

    def __init__(self, path: str, lock_fd: int, emptied: bool):
        self.path = path
        self.emptied = emptied  # this process was the service's first: it emptied the directory
        self._lock_fd = lock_fd

    def process_dead(self, pid: int) -> None:
        """A process of ours ended (a gunicorn worker, a supervised worker): prometheus-client's clean-up."""
        multiprocess.mark_process_dead(pid, self.path)


def open_metrics_dir(path: str) -> MetricsDir:
    """Create the directory if missing, empty it when no other process of the service runs, and count
    into it from now on (call before the first count, and before forking the processes that count)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        emptied = False  # another process runs: its files, and those of processes that died, stay
    else:
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
        emptied = True
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a starting process empties the directory
    telemetry.record_into(path)
    return MetricsDir(path, fd, emptied)
