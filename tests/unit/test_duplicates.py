"""No copy-pasted block: every pair of places `duplicates` lists (the command on the developers' PATH) is
either merged or accepted, with a reason, in duplicates-accepted.txt; an accepted pair it no longer lists
is taken out of that file."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACCEPTED = ROOT / "duplicates-accepted.txt"
MOST = 200
ROW = re.compile(r"^D\d+ (?P<a>\S+):\d+-\d+ ~ (?P<b>\S+):\d+-\d+")


def accepted_pairs(text: str) -> dict[frozenset, str]:
    """`fileA ~ fileB  # why` lines: the pair of paths (either order; one path twice for a file with
    itself), to the line."""
    pairs = {}
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            first, second = (part.strip() for part in entry.split("~"))
            pairs[frozenset((first, second))] = line
    return pairs


def listed_pairs(output: str) -> dict[frozenset, str]:
    """The rows of `duplicates`' output: the pair of paths, to the row."""
    return {frozenset((m["a"], m["b"])): line for line in output.splitlines() if (m := ROW.match(line))}


def test_every_duplicate_is_merged_or_accepted():
    if shutil.which("duplicates") is None:
        pytest.skip("the `duplicates` command is not installed on this machine: nothing checks for copied code")
    run = subprocess.run(["duplicates", "--most", str(MOST), "--seconds", "120"], cwd=ROOT, capture_output=True,
                         text=True, timeout=180)
    output = run.stdout + run.stderr
    assert not any(line.startswith("incomplete:") for line in output.splitlines()), output
    assert "more pairs)" not in output, f"more than {MOST} pairs: some were not checked\n{output}"
    listed, accepted = listed_pairs(output), accepted_pairs(ACCEPTED.read_text())
    new = [row for pair, row in listed.items() if pair not in accepted]
    stale = [line for pair, line in accepted.items() if pair not in listed]
    assert not new, ("copied code: merge it, or accept the pair in duplicates-accepted.txt with why\n"
                     + "\n".join(new))
    assert not stale, ("duplicates-accepted.txt accepts pairs `duplicates` no longer lists: take them out\n"
                       + "\n".join(stale))
