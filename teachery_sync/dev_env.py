"""The dev directory's env file (.dev/env): the settings of the running dev stack, for other shells.

`set -a; . .dev/env; set +a` gives a second terminal the same DATABASE_URL, REDIS_URL, secret and
token as the stack; `teachery-sync trigger` reads its signing secret and URL from it. The secret
and token are generated once and kept, so they stay the same from run to run.
"""
from __future__ import annotations

import secrets
import shlex
from pathlib import Path

ENV_FILE = "env"
EMBEDDED_MARK = "# embedded:"
BASE_URL_KEY = "TEACHERY_SYNC_URL"  # the running service, e.g. http://127.0.0.1:8000 (the README tour's curl lines)
WEBHOOK_URL_KEY = "TEACHERY_DEV_WEBHOOK_URL"


def env_path(dev_dir: Path) -> Path:
    return dev_dir / ENV_FILE


def read_env(dev_dir: Path) -> tuple[dict[str, str], set[str]]:
    """The values in .dev/env, and the names of those that point at the embedded servers."""
    try:
        text = env_path(dev_dir).read_text()
    except OSError:
        return {}, set()
    values: dict[str, str] = {}
    embedded: set[str] = set()
    for line in text.splitlines():
        if line.startswith(EMBEDDED_MARK):
            embedded.update(line[len(EMBEDDED_MARK):].split())
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = shlex.split(line)
        if parts and "=" in parts[0]:
            key, value = parts[0].split("=", 1)
            values[key.removeprefix("export ")] = value
    return values, embedded


def write_env(dev_dir: Path, values: dict[str, str], embedded: set[str]) -> Path:
    """Write .dev/env (readable by the owner only: it holds the secret and the token)."""
    path = env_path(dev_dir)
    lines = ["# Written by `teachery-sync dev` on every start. Load it into a shell with:",
             "#   set -a; . .dev/env; set +a",
             f"{EMBEDDED_MARK} {' '.join(sorted(embedded))}"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    path.touch(mode=0o600, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def new_admin_token() -> str:
    return secrets.token_urlsafe(24)


GENERATORS = {"STRIPE_WEBHOOK_SECRET": new_webhook_secret, "ADMIN_TOKEN": new_admin_token}
SECRET_KEYS = tuple(GENERATORS)


def choose_secrets(environ: dict[str, str], recorded: dict[str, str]) -> dict[str, str]:
    """Each secret from the environment when set, else the one kept in .dev/env, else a new one."""
    return {key: environ.get(key) or recorded.get(key) or GENERATORS[key]() for key in SECRET_KEYS}
