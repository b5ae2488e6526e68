#!/usr/bin/env bash
# Install the pinned pouchdb-server (ci/pouchdb/package-lock.json) for the test suite.
#
#   ci/install-pouchdb.sh [DIR]
#
# DIR defaults to .cache/pouchdb under the repository.  Idempotent: when DIR
# already holds an install of the same lock file it only prints the path, so a
# second run is instant.  Prints the path of the pouchdb-server bin script on
# stdout (npm's own output goes to stderr); point WMSTATS_POUCHDB_BIN at it, or
# leave DIR at its default, where the test fixtures look for it.
#
# --ignore-scripts skips the sqlite3 native build that only pouchdb-server's
# --sqlite mode needs; leveldown loads its bundled prebuilt binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
src="$here/pouchdb"
dir="${1:-$repo/.cache/pouchdb}"
bin_rel="node_modules/pouchdb-server/bin/pouchdb-server"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-pouchdb: '$tool' not found; install Node.js >= 18 with npm" >&2
        exit 1
    fi
done

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# What the install depends on: the lock file and node's major version.
want="$(cat "$src/package-lock.json" "$src/package.json" | sha256sum | cut -d' ' -f1) node-$(node -p 'process.versions.node.split(".")[0]')"
stamp="$dir/.installed"

installed() {
    [[ -f "$stamp" && -f "$dir/$bin_rel" && "$(cat "$stamp")" == "$want" ]]
}

install() {
    if installed; then
        return 0
    fi
    rm -f "$stamp"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    echo "install-pouchdb: npm ci into $dir" >&2
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error 1>&2)
    # Smoke test: the server's modules load (catches a broken or partial install).
    node -e 'require(process.argv[1])' "$dir/node_modules/pouchdb-server" >/dev/null
    echo "$want" > "$stamp"
}

if installed; then
    :
elif command -v flock >/dev/null 2>&1; then
    # Two runs at once (e.g. parallel tox envs) must not interleave npm ci.
    exec 9>"$dir/.lock"
    flock 9
    install
    exec 9>&-
else
    install
fi
echo "$dir/$bin_rel"
