"""What "stored" means at both ends: a SQLite commit that survives a power cut.

A kit tells its officer "saved", and the office sends a kit the receipt that
lets it delete a record, only after the data is committed through a
connection opened here: WAL journal (one writer, readers never blocked),
``synchronous=FULL`` (a commit that returned is on the disk), and a busy
timeout so a second process waits instead of failing. Each end keeps its own
schema and migrations (``kit/store.py``, ``office/db.py``); this is only the
promise they share.

>>> conn = connect_durable(tmp_path / "some.db")   # doctest: +SKIP
>>> with transaction(conn):                         # doctest: +SKIP
...     conn.execute("INSERT ...")
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

BUSY_TIMEOUT_S = 10.0


def connect_durable(path: Path) -> sqlite3.Connection:
    """Open (making it if missing) a SQLite file for durable commits; sqlite3.Error if the
    file cannot be opened as a database. The caller turns that into its own message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One durable write transaction, committed (and synced) when the block ends without
    error, rolled back otherwise."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # some errors have already rolled it back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode (it stays so); wait while another process does the same."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            # A new file changes mode under an exclusive lock, and SQLite answers "locked"
            # at once instead of waiting for it as busy_timeout does for everything else.
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
