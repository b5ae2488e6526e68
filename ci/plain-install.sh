#!/usr/bin/env bash
# A plain install needs nothing test-only: install wmstats WITHOUT its extras into a
# fresh virtual environment and run, from there, the benchmark report (quick size)
# and 'wmstats serve --mock 100' (both servers answer, then it stops cleanly).
# Any failure fails the run. scripts/test.sh (and so CI) runs it.
# Usage: bash ci/plain-install.sh   (needs python3 with venv; pouchdb-server through
# $WMSTATS_POUCHDB_BIN for the CouchDB parts of the report, as scripts/test.sh sets)
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d "${TMPDIR:-/tmp}/wmstats-plain.XXXXXX")"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check .

# Nothing of the test extras came with it, nor the optional codecs (the compress
# extra): the report and the servers below run with gzip through zlib.
"$venv/bin/python" - <<'PY'
import importlib.util
import sys

extras = [name for name in ("pytest", "hypothesis", "playwright", "schemathesis", "isal",
                            "zstandard", "brotli")
          if importlib.util.find_spec(name) is not None]
if extras:
    sys.exit(f"plain-install: test-only packages came with a plain install: {extras}")
PY

"$venv/bin/wmstats" bench report --quick --out "$work/bench" --log "$work/bench.log" \
  || { tail -n 200 "$work/bench.log" >&2; exit 1; }
# The UI benchmark needs playwright (a test extra): the report says why it was left out.
"$venv/bin/python" - "$work/bench/bench/results.json" <<'PY'
import json
import sys

results = json.load(open(sys.argv[1], encoding="utf-8"))
why = results.get("skipped", {}).get("ui", "")
if "playwright" not in why:
    sys.exit(f"plain-install: the report should leave the UI benchmark out for want of "
             f"playwright; skipped: {results.get('skipped')}")
# The reqmon section is never part of --quick (and a plain install may lack reqmon).
reqmon = results.get("skipped", {}).get("reqmon", "")
if not reqmon:
    sys.exit(f"plain-install: the quick report should list the reqmon section as not run; "
             f"skipped: {results.get('skipped')}")
print(f"plain-install: bench report ran {len(results['runs'])} benchmarks; ui: {why}; "
      f"reqmon: {reqmon}")
PY

"$venv/bin/python" ci/serve_check.py "$venv/bin/wmstats"
echo "plain-install: ok"
