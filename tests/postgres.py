"""A throwaway PostgreSQL 15 server for the office's tests, from Debian's server binaries.

``postgres`` (a session-scoped pytest fixture) runs ``initdb`` in a fresh temp
folder and starts the server on 127.0.0.1 at a free port and on a unix socket
in that folder, with ``trust`` authentication for those local connections only
(the generated ``pg_hba.conf`` has no other line) and ``fsync`` on, since tests
check durability. It creates the database ``jaranijo_test`` and yields a
:class:`PostgresServer`; at the end of the session the server is stopped
(``pg_ctl stop -m fast``) and the folder removed::

    from tests.postgres import postgres  # noqa: F401  (the fixture)

    def test_something(postgres: PostgresServer) -> None:
        settings.DATABASES["default"] = postgres.django_settings()

PostgreSQL refuses to run as root. As root (CI) the server binaries run through
``runuser -u jaranijo-pg --``, a system user created on first use (``nobody``
if it cannot be), and the temp folder is handed to that user; as a normal user
they run directly. :func:`start_postgres` is the same as a context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVICE_USER = "jaranijo-pg"  # the unprivileged user the server runs as when we are root
SUPERUSER = "jaranijo"  # the database role tests connect as
DBNAME = "jaranijo_test"
HOST = "127.0.0.1"
MISSING = "install Debian's postgresql (version 15): ./bootstrap does"
START_TIMEOUT_S = 30

HBA = """\
# Written by tests/postgres.py: trust, for this machine's own connections only.
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
"""


@dataclass
class PostgresServer:
    """A running test server: where it listens and the database made for the tests."""

    host: str
    port: int
    user: str
    dbname: str
    socket_dir: Path
    data_dir: Path
    log_path: Path
    start_seconds: float = field(default=0.0, compare=False)

    def django_settings(self) -> dict[str, Any]:
        """This server as Django's ``DATABASES["default"]``."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.dbname,
            "USER": self.user,
            "HOST": self.host,
            "PORT": str(self.port),
        }

    def conninfo(self) -> str:
        """A libpq connection string for this server's test database (over TCP)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _service_user() -> str:
    """The user the server runs as when we are root: ours if it exists or can be made."""
    probe = subprocess.run(["id", "-u", SERVICE_USER], capture_output=True, check=False)
    if probe.returncode == 0:
        return SERVICE_USER
    made = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", SERVICE_USER],
        capture_output=True, check=False,
    )  # fmt: skip
    return SERVICE_USER if made.returncode == 0 else "nobody"


class _Runner:
    """Runs the server binaries as an unprivileged user (via runuser when we are root)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.user = _service_user() if os.geteuid() == 0 else None
        if self.user is not None:
            shutil.chown(workdir, user=self.user)

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command: Sequence[str] = [str(PG_BIN / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(
            command, cwd=self.workdir, capture_output=True, text=True, check=False,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}".rstrip()
            )
        return done


def _log_tail(log_path: Path, lines: int = 60) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return f"(no server log at {log_path})"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def start_postgres() -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL 15 server with ``jaranijo_test``; stop and remove it on exit."""
    missing = [p for p in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / p).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found in {PG_BIN}: {MISSING}", pytrace=False)
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="jaranijo-pg-"))  # 0700, in /tmp so any user reaches
    data_dir, log_path = workdir / "data", workdir / "postgres.log"
    try:
        runner = _Runner(workdir)
        # -N: skip initdb's own final sync of the fresh cluster (a throwaway; it takes
        # seconds). The server itself runs with fsync on, see below.
        runner.run(
            "initdb", "-D", str(data_dir), "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
            "--auth=trust", "-N",
        )  # fmt: skip
        (data_dir / "pg_hba.conf").write_text(HBA)
        server = _start(runner, data_dir, log_path, workdir)
        try:
            _create_database(server)
            server.start_seconds = time.monotonic() - began
            yield server
        finally:
            runner.run("pg_ctl", "stop", "-D", str(data_dir), "-m", "fast", "-w",
                       "-t", str(START_TIMEOUT_S), check=False)  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _start(runner: _Runner, data_dir: Path, log_path: Path, socket_dir: Path) -> PostgresServer:
    """Start the server at a free port, trying a few in case one is taken meanwhile."""
    failure = ""
    for _attempt in range(3):
        port = _free_port()
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(port),
            "unix_socket_directories": f"'{socket_dir}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": "50",
            "shared_buffers": "32MB",
            "timezone": "'UTC'",
        }
        # postgresql.auto.conf is read last, so these win over initdb's postgresql.conf.
        (data_dir / "postgresql.auto.conf").write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        started = runner.run(
            "pg_ctl", "start", "-D", str(data_dir), "-l", str(log_path), "-w",
            "-t", str(START_TIMEOUT_S), check=False,
        )  # fmt: skip
        if started.returncode == 0:
            return PostgresServer(HOST, port, SUPERUSER, DBNAME, socket_dir, data_dir, log_path)
        failure = f"{started.stdout}\n{started.stderr}\n--- {log_path} ---\n{_log_tail(log_path)}"
        runner.run("pg_ctl", "stop", "-D", str(data_dir), "-m", "immediate", check=False)
    pytest.fail(f"PostgreSQL did not start:\n{failure}", pytrace=False)


def _create_database(server: PostgresServer) -> None:
    created = subprocess.run(
        [str(PG_BIN / "createdb"), "-h", server.host, "-p", str(server.port),
         "-U", server.user, server.dbname],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if created.returncode != 0:
        pytest.fail(
            f"createdb {server.dbname} failed:\n{created.stderr}\n"
            f"--- {server.log_path} ---\n{_log_tail(server.log_path)}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server for the whole test session (see :func:`start_postgres`)."""
    with start_postgres() as server:
        yield server
