"""`teachery-sync jobs …`: RQ's failed jobs, on every queue we use."""
from __future__ import annotations

import json

import click

from domain.times import display, iso
from teachery_sync.cli.helpers import (
    Failure,
    open_services,
    print_wide,
    require_redis,
    table,
)
from workers.queueing import failed_jobs, reconciliation_queue, requeue_failed


@click.group()
def jobs():
    """RQ's failed jobs.

    \b
    Examples:
      teachery-sync jobs failed
      teachery-sync jobs requeue --all
    """


@jobs.command("failed")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def jobs_failed(as_json):
    """List RQ's failed jobs (events that gave up, crashed reconciliations) with their error and times.

    \b
    Examples:
      teachery-sync jobs failed
      teachery-sync jobs failed --json
      teachery-sync jobs requeue --all
    """
    services = open_services()
    require_redis(services)
    rows = failed_jobs(services.queue) + failed_jobs(reconciliation_queue(services.queue))
    if as_json:
        click.echo(json.dumps([r | {"enqueued_at": iso(r["enqueued_at"]), "ended_at": iso(r["ended_at"])}
                               for r in rows], indent=2))
        return
    listed = table("id", "queue", "enqueued", "ended", "description", "error")
    for r in rows:
        listed.add_row(r["id"], r["queue"], display(r["enqueued_at"]) or "-", display(r["ended_at"]) or "-",
                       r["description"], r["error"])
    if rows:
        print_wide(listed)
    click.echo(f"{len(rows)} failed job(s)")


@jobs.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="requeue every failed job")
def jobs_requeue(job_ids, all_):
    """Put failed jobs back on their queue.

    \b
    Examples:
      teachery-sync jobs requeue --all
      teachery-sync jobs requeue event-evt_1Abc
    """
    if not job_ids and not all_:
        raise Failure("name job ids or give --all")
    services = open_services()
    require_redis(services)
    done, missing = requeue_failed(services.queue, None if all_ else list(job_ids))
    more, missing = requeue_failed(reconciliation_queue(services.queue), None if all_ else missing)
    done += more
    click.echo(f"requeued {done} job(s)")
    if missing:
        raise Failure(f"not among the failed jobs: {', '.join(missing)}")
