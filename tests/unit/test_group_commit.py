"""The receiver's group commit, on its own: who writes, what each thread gets back."""
import threading
import time

import pytest

from webhooks.group_commit import GroupCommit


class Recorder:
    """A write that records its groups and, until released, blocks the first one (so others queue)."""

    def __init__(self):
        self.groups = []
        self.release = threading.Event()
        self.writing = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def __call__(self, items):
        with self.lock:
            self.writing += 1
            self.most_at_once = max(self.most_at_once, self.writing)
            self.groups.append(list(items))
        if len(self.groups) == 1:
            self.release.wait(5)
        time.sleep(0.001)
        with self.lock:
            self.writing -= 1
        return [f"stored {item}" for item in items]


def _submit_all(group, items):
    results, errors = {}, {}

    def run(item):
        try:
            results[item] = group.submit(item)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            errors[item] = exc

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return threads, results, errors


def test_threads_that_arrive_during_a_write_share_the_next_one_and_each_gets_its_own_outcome():
    write = Recorder()
    afters = []
    group = GroupCommit(write, after=lambda items, outcomes: afters.append(list(items)))
    threads, results, errors = _submit_all(group, ["a"])
    while not write.groups:
        time.sleep(0.001)
    more, more_results, more_errors = _submit_all(group, [f"e{i}" for i in range(20)])
    time.sleep(0.05)  # all twenty wait behind "a"'s write
    write.release.set()
    for thread in threads + more:
        thread.join(5)
    results.update(more_results)
    assert not errors and not more_errors
    assert results == {item: f"stored {item}" for item in ["a", *(f"e{i}" for i in range(20))]}
    assert write.groups[0] == ["a"]
    assert sorted(write.groups[1]) == sorted(f"e{i}" for i in range(20))  # one write for all who waited
    assert len(write.groups) == 2 and write.most_at_once == 1
    assert afters == write.groups


def test_a_failed_write_fails_every_thread_of_its_group_and_the_next_group_still_writes():
    calls = []

    def write(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise ConnectionError("database down")
        return [None if item != "bad" else ValueError("refused") for item in items]

    group = GroupCommit(write, after=lambda items, outcomes: pytest.fail("no after-hook for a failed write"))
    with pytest.raises(ConnectionError):
        group.submit("first")
    group._after = None
    assert group.submit("second") is None
    with pytest.raises(ValueError, match="refused"):  # an outcome that is an exception: that thread's only
        group.submit("bad")


def test_the_lead_passes_on_so_no_thread_writes_for_others_forever():
    """Under steady load every thread writes at most once: its answer never waits behind an endless queue."""
    writers = []

    def write(items):
        writers.append(threading.current_thread().name)
        time.sleep(0.002)
        return list(items)

    group = GroupCommit(write, max_group=3)
    threads = [threading.Thread(target=group.submit, args=(i,), name=f"t{i}") for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    assert len(writers) == len(set(writers))  # nobody led twice
    assert sum(1 for _ in writers) >= 40 / 3
