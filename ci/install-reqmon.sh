#!/usr/bin/env bash
# Install today's WMStats server, reqmon 2.4.5.9 from PyPI (it bundles WMCore/), into
# a virtualenv of its own, for the differential tests and benchmarks against it.
#
#   ci/install-reqmon.sh [DIR]
#
# DIR defaults to .cache/reqmon under the repository.  Idempotent: when DIR already
# holds an install of the same version, constraints and Python, it only prints the
# path, so a second run is instant.  Prints the path of the venv's python on stdout
# (pip's own output goes to stderr); point WMSTATS_REQMON_PYTHON at it, or leave DIR
# at its default, where wmstats.testing.reqmon looks for it.
#
# The venv is separate from wmstats' own: reqmon pins CherryPy, requests and more
# of its own, and its WMCore/ package must never be importable from wmstats.
# Its dependencies are pinned by ci/reqmon/constraints.txt.  Set PYTHON to choose
# the interpreter (default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
constraints="$here/reqmon/constraints.txt"
dir="${1:-$repo/.cache/reqmon}"
python="${PYTHON:-python3}"
version="2.4.5.9"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "install-reqmon: '$python' not found; install Python >= 3.8 or set PYTHON" >&2
    exit 1
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# What the install depends on: the version, the constraints and Python's version.
want="reqmon==$version $(sha256sum "$constraints" | cut -d' ' -f1) $("$python" -c 'import sys; print("python-%d.%d" % sys.version_info[:2])')"
stamp="$dir/.installed"

installed() {
    [[ -f "$stamp" && -x "$dir/bin/python" && -f "$dir/bin/wmc-httpd" \
       && "$(cat "$stamp")" == "$want" ]]
}

install() {
    if installed; then
        return 0
    fi
    rm -f "$stamp"
    echo "install-reqmon: reqmon==$version into $dir" >&2
    "$python" -m venv --clear "$dir" 1>&2
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$constraints" "reqmon==$version" 1>&2
    # Smoke test: the server, the data cache thread and WMCore's client load
    # (catches a broken or partial install).
    "$dir/bin/python" - <<'EOF' 1>&2
import pycurl
import WMCore
import WMCore.REST.Main
import WMCore.Services.WMStatsServer.WMStatsServer
import WMCore.WMStats.CherryPyThreads.DataCacheUpdate
import WMCore.WMStats.Service.RestApiHub
assert WMCore.__version__ == "2.4.5.9", WMCore.__version__
EOF
    "$dir/bin/python" -m pip freeze --disable-pip-version-check > "$dir/freeze.txt"
    echo "$want" > "$stamp"
}

if installed; then
    :
elif command -v flock >/dev/null 2>&1; then
    # Two runs at once (e.g. parallel tox envs) must not interleave pip installs.
    exec 9>"$dir.lock"
    flock 9
    install
    exec 9>&-
else
    install
fi
echo "$dir/bin/python"
