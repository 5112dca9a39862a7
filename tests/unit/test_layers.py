"""Dependencies point one way: teachery_sync (the root and the CLI) → webhooks → workers → domain.

The contracts are import-linter's, in pyproject.toml [tool.importlinter]; this runs them, so that the
test suite fails when a module imports from a layer above its own. In a process of its own: the linter
reconfigures logging (it disables every logger already made).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dependencies_point_one_way():
    linter = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(linter), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
