"""Replays: an operator's extra attempt at stored events (the admin API's and the command line's)."""
from __future__ import annotations

from dataclasses import dataclass, field

from domain import ledger
from workers.queueing import enqueue_bulk_replay, enqueue_replay
from workers.services import Services

BATCH = 1000  # events a bulk replay reads and queues at a time; more than this are queued by a worker


@dataclass
class Replayed:
    queued: list[str] = field(default_factory=list)  # events that got a replay job
    merged: list[str] = field(default_factory=list)  # events whose replay job was still waiting to run
    missing: list[str] = field(default_factory=list)  # ids the ledger does not hold


def replay(services: Services, event_ids: list[str]) -> Replayed:
    """Queue a replay of each event the ledger holds (nothing for the others).

    A replay never changes the event's status or retry schedule before it runs: the job applies the
    event whatever its status, and records the outcome (see workers/processing.py)."""
    with services.pool.connection() as conn:
        found = ledger.known(conn, event_ids)
        done = ledger.replays_done(conn, found)
    result = Replayed(missing=[i for i in dict.fromkeys(event_ids) if i not in set(found)])
    for event_id in found:
        job = enqueue_replay(services.queue, event_id, done[event_id])
        (result.queued if job is not None else result.merged).append(event_id)
    return result


@dataclass
class BulkReplayed:
    queued: int = 0
    merged: int = 0
    in_background: bool = False  # more than BATCH: a worker's job queues them, a batch at a time


def replay_matching(services: Services, *, status: str | None = None, since=None, account: str | None = None,
                    batch: int = BATCH) -> BulkReplayed:
    """A replay of every event in that status / received since then / of that account (a stored key), read
    and queued `batch` at a time, in Stripe's order: memory and each step stay bounded however many match."""
    done, after = BulkReplayed(), ledger.FIRST_KEY
    while True:
        with services.pool.connection() as conn:
            rows = ledger.ids_matching_page(conn, status=status, since=since, account=account, after=after,
                                            limit=batch)
        if not rows:
            return done
        result = replay(services, [row[0] for row in rows])
        done.queued += len(result.queued)
        done.merged += len(result.merged)
        last_id, created, received_at = rows[-1]
        after = (created, received_at, last_id)


def replay_all(services: Services, *, status: str | None = None, since=None, account: str | None = None,
               expected: int) -> BulkReplayed:
    """The console's "replay all": up to BATCH events at once, in this request; more, by a worker's job
    (workers.jobs.replay_matching), so that no request holds or queues 100,000 of them."""
    if expected <= BATCH:
        return replay_matching(services, status=status, since=since, account=account)
    enqueue_bulk_replay(services.queue, status=status, since=since.isoformat() if since else None, account=account)
    return BulkReplayed(in_background=True)
