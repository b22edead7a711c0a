"""The office web app as office staff meet it: ``jaranijo office web`` in a process of its
own (uvicorn, ASGI), on a free port, over a real database. Tests and benchmarks open its
pages in Chromium (``tests/browser.py``) or with plain HTTP."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_web(db: str | Path, data_dir: Path, *, log: Path | None = None,
                args: Sequence[str] = ()) -> Iterator[str]:
    """Start the web app on ``db`` (more ``office web`` options in ``args``: ``--keys``,
    ``--broker``); yields its base URL (``http://127.0.0.1:PORT``)."""
    port = free_port()
    log = log or data_dir / "web.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "office", "web", "--db", str(db), "--data",
             str(data_dir), "--listen", f"127.0.0.1:{port}", *args],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/static/office.css", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"office web did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
