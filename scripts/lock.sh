#!/usr/bin/env bash
# Regenerate requirements.lock from pyproject.toml: every package pinned, with its hashes (pip-tools), for
# `make test` / `make dev` to install with --require-hashes. Run after changing a dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.venv-tools
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q pip-tools pip-audit 2>/dev/null; }
"$tools/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras --extra test --extra dev \
    --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
# the test extra names the dev extra through the project itself: not a package to lock
python3 - <<'PY'
import re
path = "requirements.lock"
text = open(path).read()
# (line by line: `.` never crosses a newline, or the comment lines' pattern would eat the rest of the file)
text = re.sub(r"# WARNING: pip install will require the following package to be hashed\.\n(?:#.*\n)*"
              r"teachery-sync @ .*\n(?:    #.*\n)*", "", text)
open(path, "w").write(text)
PY
echo "requirements.lock regenerated; run scripts/audit.sh"
