#!/usr/bin/env bash
# Install what the tests need and run the whole suite (tests, mypy --strict, docs check).
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# pouchdb-server (a CouchDB-protocol server from npm) for the CouchDB backend tests;
# cached in .cache/pouchdb so a second run is instant.
if [ -f ci/install-pouchdb.sh ]; then
  WMSTATS_POUCHDB_BIN="$(bash ci/install-pouchdb.sh)"
  export WMSTATS_POUCHDB_BIN
fi

# Debian's chromium for the browser tests of the UI (tests/test_ui_browser.py).
if [ -f ci/install-chromium.sh ]; then
  WMSTATS_CHROMIUM="$(bash ci/install-chromium.sh)"
  export WMSTATS_CHROMIUM
fi

python3 -m pip install --quiet --disable-pip-version-check "tox>=4"
python3 -m tox run -e py,mypy,docs -- "$@"
