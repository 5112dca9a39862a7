#!/usr/bin/env bash
# pip-audit over requirements.lock: a known vulnerability in a locked package fails (exit 1), unless it is
# accepted in audit-accepted.txt (one vulnerability id per line, with why and until when, e.g.
# "GHSA-xxxx-xxxx-xxxx  # no fix yet; we do not use the affected API; review by 2027-01-31").
# When no vulnerability service answers (no network, or a package index without PyPI's JSON API), nothing
# can be audited: that is said loudly and does not fail the build (it is not a finding).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.venv-tools
[ -x "$tools/bin/pip-audit" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q pip-tools pip-audit 2>/dev/null; }
ignores=()
if [ -f audit-accepted.txt ]; then
  while read -r id _; do
    [ -n "$id" ] && [ "${id:0:1}" != "#" ] && ignores+=(--ignore-vuln "$id")
  done < audit-accepted.txt
fi
set +e
"$tools/bin/pip-audit" -r requirements.lock --disable-pip --no-deps --progress-spinner off -f json \
    "${ignores[@]}" > .venv-tools/audit.json 2> .venv-tools/audit.log
status=$?
set -e
python3 - "$status" <<'PY'
import json, sys
status = int(sys.argv[1])
try:
    report = json.load(open(".venv-tools/audit.json"))
except ValueError:
    print(open(".venv-tools/audit.log").read()[-2000:], file=sys.stderr)
    sys.exit(status or 1)
deps = report["dependencies"]
found = [(d["name"], d["version"], v["id"], ", ".join(v.get("fix_versions", [])) or "no fix")
         for d in deps for v in d.get("vulns", [])]
skipped = [d for d in deps if d.get("skip_reason")]
for name, version, vuln, fix in found:
    print(f"VULNERABLE {name} {version}: {vuln} (fixed in: {fix})")
if found:
    print("pip-audit: known vulnerabilities above; upgrade (scripts/lock.sh) or accept in audit-accepted.txt")
    sys.exit(1)
if deps and len(skipped) == len(deps):
    print("pip-audit: WARNING: no vulnerability service answered, so nothing could be audited "
          f"({skipped[0]['skip_reason']}). Not a finding; run scripts/audit.sh where PyPI is reachable.")
    sys.exit(0)
print(f"pip-audit: {len(deps) - len(skipped)} locked packages audited, no known vulnerability"
      + (f" ({len(skipped)} not found on the index)" if skipped else ""))
PY
