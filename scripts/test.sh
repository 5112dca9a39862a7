#!/usr/bin/env bash
# Set up the virtualenv, make sure PostgreSQL and Redis run, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
{ [ -x .venv/bin/python ] && [ -f .venv/bin/activate ]; } || python3 -m venv .venv  # activate: a venv finished
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -c requirements.lock -e '.[test]'
exec .venv/bin/python -m pytest "$@"
