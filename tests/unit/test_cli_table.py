"""The command line's lazy table: every command of teachery_sync/cli is in it, each entry resolves to its
command, and `--help` lists them all without importing a single command's module."""
import importlib
import pkgutil
import subprocess
import sys

import click
from click.testing import CliRunner

import teachery_sync.cli as cli
from teachery_sync.cli import COMMANDS, load_command, main


def _top_level_commands() -> set[str]:
    """"module:attribute" of every click command defined in teachery_sync/cli that is no group's subcommand."""
    found, nested = set(), set()
    for info in pkgutil.iter_modules(cli.__path__):
        if info.name == "__main__":  # runs the command line when imported
            continue
        module = importlib.import_module(f"teachery_sync.cli.{info.name}")
        for attribute, value in vars(module).items():
            if isinstance(value, click.Command) and value.callback.__module__ == module.__name__:
                found.add((f"{module.__name__}:{attribute}", value))
                if isinstance(value, click.Group):
                    nested.update(id(sub) for sub in value.commands.values())
    return {target for target, command in found if id(command) not in nested}


def test_the_table_names_every_command_of_the_cli_package():
    assert {entry.target for entry in COMMANDS.values()} == _top_level_commands()


def test_each_entry_resolves_to_its_command_under_its_name_and_summary():
    for name, entry in COMMANDS.items():
        command = load_command(name)
        assert isinstance(command, click.Command), name
        assert command.name == name
        assert entry.summary == command.get_short_help_str(limit=1000), name


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    rows = result.output.split("Commands:")[1].strip().splitlines()
    assert [row.split()[0] for row in rows] == sorted(COMMANDS)


def test_help_imports_no_command_module():
    probe = ("import sys\nfrom teachery_sync.cli import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('psycopg', 'redis', 'rq', 'stripe', 'structlog', 'workers', 'domain', 'webhooks')"
             " or m.startswith('teachery_sync.cli.')))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "[]"
