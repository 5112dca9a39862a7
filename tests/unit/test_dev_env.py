""".dev/env: written for other shells, secrets generated once and kept."""
from __future__ import annotations

import subprocess

from teachery_sync import dev_env


def test_secrets_come_from_the_environment_then_the_file_then_are_generated():
    fresh = dev_env.choose_secrets({}, {})
    assert fresh["STRIPE_WEBHOOK_SECRET"].startswith("whsec_") and len(fresh["ADMIN_TOKEN"]) >= 24
    assert dev_env.choose_secrets({}, fresh) == fresh
    mine = dev_env.choose_secrets({"STRIPE_WEBHOOK_SECRET": "whsec_from_stripe_listen"}, fresh)
    assert mine == {"STRIPE_WEBHOOK_SECRET": "whsec_from_stripe_listen", "ADMIN_TOKEN": fresh["ADMIN_TOKEN"]}


def test_the_env_file_round_trips_and_a_shell_can_load_it(tmp_path):
    values = {"DATABASE_URL": "postgresql://postgres:@/teachery_sync?host=/tmp/a b/pg",
              "REDIS_URL": "redis://127.0.0.1:6380/0", "ADMIN_TOKEN": "t0k'en"}
    path = dev_env.write_env(tmp_path, values, {"DATABASE_URL", "REDIS_URL"})
    assert path.stat().st_mode & 0o077 == 0  # the owner's only: it holds the token
    assert dev_env.read_env(tmp_path) == (values, {"DATABASE_URL", "REDIS_URL"})
    shell = subprocess.run(["bash", "-c", f'set -a; . "{path}"; set +a; printf %s "$DATABASE_URL|$ADMIN_TOKEN"'],
                           capture_output=True, text=True, check=True)
    assert shell.stdout == f"{values['DATABASE_URL']}|{values['ADMIN_TOKEN']}"


def test_no_file_reads_as_nothing(tmp_path):
    assert dev_env.read_env(tmp_path / "missing") == ({}, set())
