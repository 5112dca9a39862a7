"""Bad arguments on the command line are a usage error (exit 2), refused before any command runs: never a
traceback."""
import pytest
from click.testing import CliRunner

from teachery_sync.cli import main


@pytest.mark.parametrize("args", [
    ["events", "show", "evt_\udcff"],  # a stray byte 0xff in the shell: Python keeps it as a lone surrogate
    ["events", "list", "--type", "\udcff\udcfe"],
    ["reconcile", "--apply", "\udcff"],
    ["trigger", "checkout.session.completed", "--url", "http://127.0.0.1:9/\udcff"],
    ["web", "--port", "99999"],
    ["web", "--port", "-1"],
    ["web", "--workers", "0"],
    ["dev", "--port", "70000"],
    ["dev", "--redis-port", "0"],
])
def test_bad_arguments_are_a_usage_error_not_a_traceback(args, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:9/nothing")  # nothing may be reached
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 2, (args, done.exit_code, done.output, done.exception)
    assert isinstance(done.exception, SystemExit) and "Traceback" not in done.output, (args, done.exception)
    assert done.output.strip().splitlines()[-1].startswith("Error: "), done.output
