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
    ["web", "--workers", "100000"],  # forked until the machine ran out of memory
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


@pytest.mark.parametrize("args", [
    ["reconcile", "--apply", ""],  # `--apply "$RUN_ID"` with the variable unset
    ["reconcile", "--apply", " ", "--dry-run"],
    ["reconcile", "--changed-since", ""],
])
def test_an_empty_option_is_refused_not_read_as_absent(args, monkeypatch):
    """An empty --apply or --changed-since was taken for no option at all: a fixing run of every account."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:9/nothing")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 1 and "is empty" in done.output, (args, done.output)


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1]:notaport/webhooks/stripe"])
def test_trigger_names_a_url_it_cannot_use_in_one_line(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the trigger's state file
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_unit_trigger_0001")
    done = CliRunner().invoke(main, ["trigger", "checkout.session.completed", "--url", url])
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit), (done.output, done.exception)
    assert done.output.strip().splitlines()[-1].startswith("error: --url"), done.output
