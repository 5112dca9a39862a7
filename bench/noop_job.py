"""RQ's per-job floor for bench/drain.py: a job that does nothing, run by RQ's own SimpleWorker."""


def noop() -> None:
    return None
