"""A TCP relay in front of the broker that counts, and may keep, every byte either way.

The link tests use it as a wiretap (is a password on the wire?), the link benchmark as a
meter (bytes per report, per day). The kit or client connects to ``tap.port`` instead of
the broker's.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class WireTap:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target_port``; counts ``up`` (client to
    broker) and ``down`` bytes, and with ``keep`` keeps them all in order seen."""

    def __init__(self, target_port: int, *, keep: bool = False) -> None:
        self.target_port = target_port
        self.keep = keep
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.up = 0
        self.down = 0
        self.seen = bytearray()
        self.lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.up = self.down = 0
            self.seen.clear()

    def total(self) -> int:
        return self.up + self.down

    def wire(self) -> bytes:
        """Every byte kept so far, both ways (``keep`` only)."""
        with self.lock:
            return bytes(self.seen)

    def close(self) -> None:
        self._stop = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for src, dst, way in ((client, server, "up"), (server, client, "down")):
                threading.Thread(target=self._pump, args=(src, dst, way), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    setattr(self, way, getattr(self, way) + len(data))
                    if self.keep:
                        self.seen += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
