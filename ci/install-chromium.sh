#!/usr/bin/env bash
# Make sure a Chromium for the UI browser tests is installed; print its path.
#
#   ci/install-chromium.sh
#
# Uses $WMSTATS_CHROMIUM when it points at an executable, else /usr/bin/chromium;
# when that is missing, installs Debian's 'chromium' package (apt-get, through
# sudo when not root).  Prints the executable's path on stdout (apt's output goes
# to stderr); export it as WMSTATS_CHROMIUM.  Playwright drives it; its own
# browser download ('playwright install') is never used.
set -euo pipefail

if [[ -n "${WMSTATS_CHROMIUM:-}" && -x "${WMSTATS_CHROMIUM}" ]]; then
    echo "$WMSTATS_CHROMIUM"
    exit 0
fi
bin=/usr/bin/chromium
if [[ ! -x "$bin" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-chromium: $bin is missing and neither root nor sudo is available" >&2
        exit 1
    fi
    echo "install-chromium: apt-get install chromium" >&2
    "${sudo[@]}" apt-get update 1>&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
        chromium 1>&2
fi
if [[ ! -x "$bin" ]]; then
    echo "install-chromium: $bin still missing after the install" >&2
    exit 1
fi
# Smoke test: the browser starts at all.
"$bin" --version >&2
echo "$bin"
