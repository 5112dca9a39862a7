"""Replays: an operator's extra attempt at stored events (the admin API's and the command line's)."""
from __future__ import annotations

from dataclasses import dataclass, field

from domain import ledger
from workers.queueing import enqueue_replay
from workers.services import Services


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
