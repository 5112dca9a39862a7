"""Group commit: the webhooks in flight in one process share one INSERT and one commit.

A request thread hands its item in and waits. If no write is under way, it leads: it takes every
item waiting (its own first), writes them with one call, hands each thread its own outcome, and passes
the lead to the first item that arrived meanwhile — so each thread writes at most once, and its answer
never waits behind more than the write under way and its own. A thread is answered only after the write
that held its item returned: a row is durable before its 200, as with one INSERT per request.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class _Slot(Generic[Item, Outcome]):
    """One thread's item. `ready` is a lock taken at once: the thread waits by taking it again, and is
    woken (answered, or handed the lead) by its release; a bare lock rather than a threading.Event,
    whose Condition costs a dozen Python calls per wait and wake on the hot path."""
    __slots__ = ("item", "ready", "lead", "outcome", "error")

    def __init__(self, item: Item):
        self.item = item
        self.ready = threading.Lock()
        self.ready.acquire()
        self.lead = False
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Outcome]):
    """write(items) returns one outcome per item, or an exception per item (an Exception in the list),
    or raises (then every item of the group gets that exception). after(items, outcomes), when given,
    runs in the leader's thread once the group has been answered (follow-up work, such as asking for a
    drain, done once per group rather than once per item)."""

    def __init__(self, write: Callable[[Sequence[Item]], Sequence[Outcome | BaseException]], *,
                 after: Callable[[Sequence[Item], Sequence[Outcome | BaseException]], None] | None = None,
                 max_group: int = 64):
        self._write = write
        self._after = after
        self._max_group = max_group
        self._lock = threading.Lock()
        self._waiting: list[_Slot] = []
        self._busy = False

    def submit(self, item: Item) -> Outcome:
        slot = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            slot.lead = not self._busy
            self._busy = True
        if not slot.lead:
            slot.ready.acquire()
        if slot.lead:
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.outcome

    def _lead(self) -> None:
        with self._lock:  # the leader is always the first waiting (group[0]): it arrived first, or was handed the lead
            group = self._waiting[:self._max_group]
            del self._waiting[:self._max_group]
        items = [slot.item for slot in group]
        outcomes = None
        try:
            outcomes = self._write(items)
            for slot, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    slot.error = outcome
                else:
                    slot.outcome = outcome
        except BaseException as exc:  # noqa: BLE001 - every thread of the group answers for it
            for slot in group:
                slot.error = exc
        finally:
            with self._lock:
                if self._waiting:
                    successor = self._waiting[0]
                    successor.lead = True
                    successor.ready.release()
                else:
                    self._busy = False
            group[0].lead = False  # this thread: it waits on nothing
            for slot in group[1:]:
                slot.lead = False
                slot.ready.release()
        if outcomes is not None and self._after is not None:
            self._after(items, outcomes)
