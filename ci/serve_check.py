"""Check that ``wmstats serve --mock 100`` works (run by ci/plain-install.sh).

Starts it in the background on two free loopback ports, waits until both
servers answer, fetches ``/fetch?limit=1`` from the cache server and the page
from the UI server, a page asking for ``zstd, br, gzip`` (a plain install has
none of the optional codecs: gzip through zlib must answer), then stops the process by its PID (SIGTERM) and expects a
clean exit.  Standard library only: it runs in a plain install.

Usage: python ci/serve_check.py [WMSTATS_COMMAND]
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

WORKFLOWS = 100
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str, **headers: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET (4xx/5xx answers included); a gzip
    body is decompressed."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            elif response.headers.get("Content-Encoding"):
                raise SystemExit(f"serve_check: {url} answered Content-Encoding "
                                 f"{response.headers['Content-Encoding']} in a plain install")
            return response.status, response.headers.get("Content-Type", ""), body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def wait_until_answering(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"serve_check: 'wmstats serve' exited with status "
                             f"{proc.returncode} before {url} answered")
        try:
            get(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"serve_check: {url} did not answer within "
                                 f"{START_TIMEOUT:.0f} s") from None
            time.sleep(0.2)


def check(proc: subprocess.Popen[bytes], cache: str, ui: str) -> None:
    for url in (cache, ui):
        wait_until_answering(proc, url + "/")
    status, content_type, body = get(cache + "/fetch?limit=1")
    if status != 200 or not content_type.startswith("application/json"):
        raise SystemExit(f"serve_check: /fetch?limit=1 answered {status} {content_type}")
    page = json.loads(body)
    if page.get("total") != WORKFLOWS or len(page.get("workflows", ())) != 1:
        raise SystemExit(f"serve_check: /fetch?limit=1 gave total={page.get('total')} and "
                         f"{len(page.get('workflows', ()))} workflows, expected "
                         f"{WORKFLOWS} and 1")
    status, _, coded = get(cache + "/fetch?limit=20", **{"Accept-Encoding": "zstd, br, gzip"})
    if status != 200 or len(json.loads(coded).get("workflows", ())) != 20:
        raise SystemExit(f"serve_check: /fetch?limit=20 with Accept-Encoding zstd, br, gzip "
                         f"answered {status}")
    status, content_type, body = get(ui + "/")
    if status != 200 or not content_type.startswith("text/html") or b"<title>" not in body:
        raise SystemExit(f"serve_check: the UI page answered {status} {content_type}")
    print(f"serve_check: cache server {cache} and UI server {ui} answer "
          f"({page['workflows'][0]['RequestName']}, page of {len(body)} bytes)")


def main(argv: list[str]) -> int:
    wmstats = argv[1] if len(argv) > 1 else "wmstats"
    cache_port = free_port()
    ui_port = free_port()
    while ui_port == cache_port:
        ui_port = free_port()
    command = [wmstats, "serve", "--mock", str(WORKFLOWS), "--port", str(cache_port),
               "--ui-port", str(ui_port), "--quiet"]
    print("serve_check: " + " ".join(command), flush=True)
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        check(proc, f"http://127.0.0.1:{cache_port}", f"http://127.0.0.1:{ui_port}")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise SystemExit("serve_check: 'wmstats serve' did not stop on SIGTERM") \
                    from None
    if proc.returncode != 0:
        raise SystemExit(f"serve_check: 'wmstats serve' exited with status {proc.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
