#!/usr/bin/env bash
# Install what the tests need and run the whole suite: tests against the built wheel,
# mypy --strict, the docs check, the layer contracts (import-linter), the apps inside
# WMCore's REST framework (tox -e wmcore), then a plain install (no test extras) in a
# fresh venv running the benchmark report and the servers.
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

# The real reqmon 2.4.5.9 (today's WMStats server, from PyPI) in a venv of its own,
# cached in .cache/reqmon: the reference of the differential tests (tests marked
# 'reqmon'; docs/wmcore-compat.md).
if [ -f ci/install-reqmon.sh ]; then
  WMSTATS_REQMON_PYTHON="$(bash ci/install-reqmon.sh)"
  export WMSTATS_REQMON_PYTHON
fi

# tox in its own virtual environment (cached in .cache/tox), so that this works where
# the system Python refuses 'pip install' (Debian's externally-managed Python).
if [ ! -x .cache/tox/bin/tox ]; then
  python3 -m venv .cache/tox
fi
.cache/tox/bin/python -m pip install --quiet --disable-pip-version-check "tox>=4"
.cache/tox/bin/tox run -e py,mypy,docs,lint -- "$@"
# The apps mounted inside the real WMCore REST framework (reqmon 2.4.5.9 from PyPI).
.cache/tox/bin/tox run -e wmcore

# A plain install needs nothing test-only (ci/plain-install.sh).
bash ci/plain-install.sh
