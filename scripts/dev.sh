#!/usr/bin/env bash
# `make dev`: set up the virtualenv (with the embedded PostgreSQL and Redis) and run the whole
# service locally. Needs only Python ≥ 3.11; arguments go to `teachery-sync dev` (e.g. --port 8001).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] || [ ! -f .venv/bin/activate ]; then  # activate: a venv finished
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "error: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1)); set PYTHON=…" >&2; exit 1; }
  echo "creating .venv…"
  "$PYTHON" -m venv .venv
fi

# Install again only when pyproject.toml or the lock changed since the last install.
stamp=".venv/.installed-dev-$(cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)"
if [ ! -e "$stamp" ]; then
  echo "installing teachery-sync with its dev and test extras (the first time: about half a minute)…"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  { .venv/bin/python -m pip install --require-hashes -r requirements.lock \
      && .venv/bin/python -m pip install --no-deps -e .; } > .venv/pip-install.log 2>&1 \
    || { tail -n 40 .venv/pip-install.log >&2; echo "error: pip install failed (log: .venv/pip-install.log)" >&2; exit 1; }
  rm -f .venv/.installed-dev-*
  touch "$stamp"
fi

exec .venv/bin/teachery-sync dev "$@"
