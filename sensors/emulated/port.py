"""A raw pseudo-terminal that looks like a USB-UART to the application.

The emulated device holds the master end; the application opens the slave
through a stable link (``DIR/fingerprint``) exactly as it would open
``/dev/ttyUSB0``. Three details make it indistinguishable from a UART:

* the slave is put in raw mode at creation, before the application opens
  it, so ``\\r\\n`` and binary frames pass untouched;
* one slave fd stays open in the emulator, otherwise reading the master
  returns EIO whenever the application has the port closed;
* a pty has no baud rate, so writes are paced at 10 bits per byte
  (start + 8 data + stop) for the configured baud.

>>> port = EmulatedPort(baud=57600)
>>> port.path.startswith("/dev/pts/")
True
>>> port.close()
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import time
import tty
from pathlib import Path

BITS_PER_BYTE = 10  # 8N1: one start bit, eight data bits, one stop bit


class PortUnplugged(OSError):
    """The emulated cable was pulled: the device end is gone until replug()."""


class EmulatedPort:
    """The device end of a pseudo-terminal, optionally linked to ``link``.

    ``baud`` paces writes; 0 writes as fast as the pty takes them.
    """

    def __init__(self, link: str | Path | None = None, baud: int = 0) -> None:
        self.link = Path(link) if link else None
        self.baud = baud
        self._lock = threading.Lock()
        self._master = -1
        self._slave = -1
        self.path = ""
        self._open()

    # -- life cycle ---------------------------------------------------------------
    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)
        tty.setraw(master, termios.TCSANOW)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link)  # atomic: the link never dangles mid-swap

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def unplug(self) -> None:
        """Pull the cable: the application's next read or write fails and the link goes.

        The link is removed, as ``/dev/ttyUSB0`` disappears with its cable, so a
        driver reopening too early gets "no such file" rather than a freed
        ``/dev/pts/N`` that the kernel may hand to someone else.
        """
        with self._lock:
            if self.link is not None:
                with contextlib.suppress(FileNotFoundError):
                    if self.link.is_symlink():
                        self.link.unlink()
            for fd in (self._master, self._slave):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = -1

    def replug(self) -> None:
        """Plug the cable back in: a new pty behind the same link path."""
        with self._lock:
            if self._master < 0:
                self._open()

    def close(self) -> None:
        self.unplug()

    # -- bytes --------------------------------------------------------------------
    def read(self, size: int = 4096, timeout: float | None = None) -> bytes:
        """Bytes the application sent; b'' if none arrived within ``timeout``."""
        fd = self._master
        if fd < 0:
            raise PortUnplugged("port is unplugged")
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return b""
            return os.read(fd, size)
        except OSError as exc:  # closed under us by unplug()
            raise PortUnplugged(str(exc)) from exc

    def write(self, data: bytes) -> None:
        """Send ``data`` to the application, paced at the line rate.

        The whole write goes to the pty that was plugged in when it began: if
        the cable is pulled (and even plugged back) meanwhile, the rest is lost
        with PortUnplugged, as bytes in flight are on a real cable.
        """
        fd = self._master
        if fd < 0:
            raise PortUnplugged("port is unplugged")
        if self.baud <= 0:
            self._write_all(fd, data)
            return
        # Pace in slices of ~5 ms so the average rate is right without one
        # sleep per byte; the deadline is absolute so errors do not accumulate.
        per_byte = BITS_PER_BYTE / self.baud
        chunk = max(1, int(0.005 / per_byte))
        start = time.monotonic()
        for offset in range(0, len(data), chunk):
            piece = data[offset : offset + chunk]
            self._write_all(fd, piece)
            due = start + (offset + len(piece)) * per_byte
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._master != fd:
                raise PortUnplugged("port was unplugged during the write")
            try:
                _, ready, _ = select.select([], [fd], [], 1.0)
                if not ready:
                    continue
                written = os.write(fd, view)
            except OSError as exc:
                raise PortUnplugged(str(exc)) from exc
            view = view[written:]

    def flush_input(self) -> None:
        """Drop bytes the application sent that the device has not read yet."""
        if self._master >= 0:
            with contextlib.suppress(OSError):
                termios.tcflush(self._master, termios.TCIFLUSH)
