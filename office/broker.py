"""A local Mosquitto set up as Jaran Ijo expects: users, ACL, persistence, loopback only.

The demo and the tests start one; on an office server the same settings go
into ``/etc/mosquitto/conf.d/`` (see ``sync/PROTOCOL.md``). Every kit has
its own user and may publish only under its own topics (the ACL from
:func:`sync.protocol.mosquitto_acl`); ``use_username_as_clientid`` stops
one kit taking over another's session.

The listener is TLS by default (as the office's port 8883 is): the broker
makes a small CA and a server certificate for ``localhost`` and
``127.0.0.1`` in its directory (:mod:`office.certs`) unless given a CA, and
kits trust :attr:`LocalBroker.ca_file`. ``require_certificate=True`` also
asks every client for a certificate from that CA, on top of its password.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from office.certs import CaFiles, issue_server, make_ca
from sync import protocol as p

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


@dataclass(frozen=True)
class BrokerAccounts:
    """The broker's password file and ACL file, and how to make Mosquitto reread them.

    A folder holding ``passwd``, ``acl`` and (optionally) ``mosquitto.pid``: what
    :class:`LocalBroker` writes, and what an office server's
    ``/etc/mosquitto/conf.d/jaranijo.conf`` points at (``password_file``, ``acl_file``,
    ``pid_file``; see the README). On ``SIGHUP`` Mosquitto rereads both files and
    disconnects every client whose login no longer holds, which cannot connect again.
    """

    directory: Path

    @property
    def passwd(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl(self) -> Path:
        return self.directory / "acl"

    @property
    def pid_file(self) -> Path:
        """The broker's pid: ``DIR/mosquitto.pid`` (what :class:`LocalBroker` writes), else
        Debian's ``/run/mosquitto/mosquitto.pid``."""
        here = self.directory / "mosquitto.pid"
        debian = Path("/run/mosquitto/mosquitto.pid")
        return debian if not here.exists() and debian.exists() else here

    def revoke(self, kit_id: str) -> str:
        """Remove ``kit_id``'s login and deny it every topic, then have the broker reload.

        Idempotent. Raises :class:`OSError` when the files cannot be rewritten (nothing
        changed then). Returns "" when the broker was told to reload, else a note on who
        reloads it (in English, for the log and the page): the files are changed either
        way, so a broker (re)started later reads them."""
        kit_id = p.check_kit_id(kit_id)
        lines = self.passwd.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if line.split(":", 1)[0] != kit_id]
        if kept != lines:
            _replace(self.passwd, "".join(kept))
        acl = self.acl.read_text(encoding="utf-8")
        block = p.revoked_acl_lines(kit_id)
        if f"\nuser {kit_id}\ntopic deny" not in acl:
            _replace(self.acl, acl.rstrip("\n") + "\n" + "\n".join(block) + "\n")
        return self.reload()

    def reload(self) -> str:
        """``SIGHUP`` to the broker named by the pid file; "" when sent, else a note."""
        try:
            pid = int(self.pid_file.read_text(encoding="ascii").strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            return (f"the broker was not signalled ({exc}); it rereads the files when "
                    "reloaded: jaranijo-broker-reload.path does it on a change, else "
                    "'systemctl reload mosquitto'")
        return ""


def _replace(path: Path, text: str) -> None:
    """Write ``text`` in place of ``path`` atomically, keeping its mode."""
    mode = path.stat().st_mode & 0o777
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """One Mosquitto process on 127.0.0.1; stop and start it again on the same port and files.

    TLS unless ``tls=False``: with no ``ca`` given, a CA is made in ``DIRECTORY/ca`` (or
    the one already there is used) and a server certificate for ``hosts`` is issued from
    it into ``DIRECTORY/tls``. Clients connect to :attr:`port` trusting :attr:`ca_file`.

    >>> broker = LocalBroker(tmp / "broker", {"blitar-kit-01": "secret"})  # doctest: +SKIP
    >>> broker.start(); broker.port, broker.ca_file  # doctest: +SKIP
    """

    def __init__(self, directory: Path, users: dict[str, str], *,
                 office_users: list[str] | None = None, readers: list[str] | None = None,
                 message_size_limit: int = 0, tls: bool = True, ca: CaFiles | None = None,
                 hosts: Sequence[str] = ("localhost", "127.0.0.1"),
                 require_certificate: bool = False) -> None:
        self.directory = directory
        self.users = users
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.ca: CaFiles | None = None
        self.accounts = BrokerAccounts(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "data").mkdir(exist_ok=True)
        passwd = directory / "passwd"
        passwd.write_text("")
        for user, password in users.items():
            subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True,
                           capture_output=True)
        (directory / "acl").write_text(p.mosquitto_acl(
            office_users=office_users or [p.OFFICE_USER], readers=readers or []))
        lines = [
            # Started as root, mosquitto would switch to user "mosquitto", who cannot read
            # the test's files; naming the current user keeps it as it is.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"listener {self.port} 127.0.0.1",
            *self._tls_lines(ca, hosts, require_certificate),
            "allow_anonymous false",
            f"password_file {passwd}",
            f"acl_file {directory / 'acl'}",
            "use_username_as_clientid true",
            "persistence true",
            f"persistence_location {directory / 'data'}/",
            f"pid_file {self.accounts.pid_file}",
            "autosave_interval 1",
            f"log_dest file {directory / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_queued_messages 10000",
            "set_tcp_nodelay true",
        ]
        if message_size_limit:
            lines.append(f"message_size_limit {message_size_limit}")
        (directory / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def _tls_lines(self, ca: CaFiles | None, hosts: Sequence[str],
                   require_certificate: bool) -> list[str]:
        if not self.tls:
            return []
        if ca is None:
            ca = CaFiles(self.directory / "ca" / "ca.crt", self.directory / "ca" / "ca.key")
            if not ca.cert.exists():
                ca = make_ca(self.directory / "ca")
        self.ca = ca
        cert, key = issue_server(ca, self.directory / "tls", hosts)
        return [
            f"cafile {ca.cert}",
            f"certfile {cert}",
            f"keyfile {key}",
            "tls_version tlsv1.2",  # the oldest accepted; TLS 1.3 is preferred
            f"require_certificate {'true' if require_certificate else 'false'}",
        ]

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients must trust (TLS brokers only)."""
        if self.ca is None:
            raise RuntimeError("this broker listens without TLS: there is no CA file")
        return self.ca.cert

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.directory / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err}\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {self.port}\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """A clean stop (SIGTERM): sessions and retained messages are saved to disk."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
