#!/usr/bin/env bash
# Set up the virtualenv, make sure PostgreSQL and Redis run, and run the whole test suite.
# --fast: only the tests marked `unit`, which need no server (PostgreSQL and Redis are left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
fast=()
if [ "${1:-}" = "--fast" ]; then
    shift
    fast=(-m "unit and not slow")
fi
[ ${#fast[@]} -gt 0 ] || bash scripts/services.sh
{ [ -x .venv/bin/python ] && [ -f .venv/bin/activate ]; } || python3 -m venv .venv  # activate: a venv finished
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q --require-hashes -r requirements.lock 2>/dev/null \
  || .venv/bin/python -m pip install -q --require-hashes -r requirements.lock  # again, to show why
.venv/bin/python -m pip install -q --no-deps -e . 2>/dev/null
[ ${#fast[@]} -gt 0 ] || bash scripts/audit.sh  # known vulnerabilities in the lock fail the build
exec .venv/bin/python -m pytest "${fast[@]}" "$@"
