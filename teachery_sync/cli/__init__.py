"""The `teachery-sync` command line: the group and its table of commands here, one module per command group.

The group imports only click: a command's module (psycopg, RQ, Stripe, gunicorn…) is imported when that
command is named, so `teachery-sync --help` answers at once. Its list of commands is drawn from the
table's one-line summaries, which `tests/unit/test_cli_table.py` holds equal to the commands' own.
"""
from __future__ import annotations

import importlib
from typing import NamedTuple

import click


class Entry(NamedTuple):
    target: str  # "module:attribute" of the click command
    summary: str  # the first sentence of its help, shown by the group's --help


COMMANDS: dict[str, Entry] = {
    "backfill": Entry("teachery_sync.cli.sync:backfill",
                      "Fetch missed events from Stripe's Events API and feed them through the receiver's pipeline."),
    "clock": Entry("teachery_sync.cli.serve:clock",
                   "Enqueue the scheduled reconciliation runs at their times (UTC) until stopped."),
    "dev": Entry("teachery_sync.cli.dev:dev",
                 "Run the whole service locally: database, Redis, migrations, web server, worker and clock."),
    "events": Entry("teachery_sync.cli.ledger:events", "Inspect the event ledger and replay events from it."),
    "jobs": Entry("teachery_sync.cli.jobs:jobs", "RQ's failed jobs."),
    "migrate": Entry("teachery_sync.cli.serve:migrate",
                     "Create the database if it is missing and apply pending migrations (safe to run twice)."),
    "reconcile": Entry("teachery_sync.cli.sync:reconcile",
                       "Compare our records with Stripe, fix the drift (unless --dry-run) and print the report."),
    "trigger": Entry("teachery_sync.cli.dev:trigger",
                     "Send realistic, correctly signed Stripe events to a running receiver."),
    "web": Entry("teachery_sync.cli.serve:web", "Run the webhook receiver and admin API under gunicorn."),
    "worker": Entry("teachery_sync.cli.serve:worker",
                    "Run the RQ workers that apply events to the records and run reconciliations."),
}


def load_command(name: str) -> click.Command:
    """The command a table entry names, its module imported now."""
    module, attribute = COMMANDS[name].target.split(":")
    return getattr(importlib.import_module(module), attribute)


class _Commands(click.Group):
    """click's lazy group: the commands of COMMANDS, each imported on first use. Turns an unreachable
    database or Redis into the contract's one-line reason, in every command."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        return load_command(name) if name in COMMANDS else None

    def format_commands(self, ctx, formatter):
        # click's own would import every command's module for its help line: the table's summaries instead
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, click.Command(name, help=entry.summary).get_short_help_str(limit))
                for name, entry in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx, args):
        """An argument that is not UTF-8 (a shell's stray byte: Python keeps it as a lone surrogate) is a usage
        error here, before any command reads it: PostgreSQL, Redis and URLs take none (it was a traceback)."""
        for arg in args:
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "surrogateescape")
                raise click.UsageError(f"every argument must be UTF-8 text; {shown!r} is not", ctx) from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            from teachery_sync.cli.helpers import unreachable  # loaded already by the command that raised
            failure = unreachable(exc)
            if failure is None:
                raise
            raise failure from exc


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx):
    """teachery-sync: keeps Teachery's customer records in step with Stripe.

    \b
    Examples:
      teachery-sync migrate
      teachery-sync web --port 8000
      teachery-sync worker --burst
      teachery-sync events list --status failed
    """
    from teachery_sync.cli.helpers import configure_command_logging  # loaded already with the command's module
    configure_command_logging(ctx.invoked_subcommand)
