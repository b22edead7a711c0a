"""A raw pseudo-terminal that looks like a USB-UART to the application.

The emulated device holds the master end; the application opens the slave
through a stable link (``DIR/fingerprint``) exactly as it would open
``/dev/ttyUSB0``. Three details make it indistinguishable from a UART:

* the slave is put in raw mode at creation, before the application opens
  it, so ``\\r\\n`` and binary frames pass untouched;
* one slave fd stays open in the emulator, otherwise reading the master
  returns EIO whenever the application has the port closed;
* a pty has no baud rate, so writes are paced at 10 bits per byte
  (start + 8 data + stop) for the configured baud, on a line clock: a write
  made while earlier bytes are still on the line follows them back to back,
  as a UART's transmit FIFO streams whatever the device queued (see
  :meth:`EmulatedPort.write`).

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
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

BITS_PER_BYTE = 10  # 8N1: one start bit, eight data bits, one stop bit
SLICE_SECONDS = 0.005  # paced writes go into the pty in slices of about this much line time


class Slice(NamedTuple):
    """One piece of a paced write as it went into the pty: the port's own schedule.

    ``written_at`` is the port's clock just before the piece went in (the
    earliest its bytes can reach the application); ``starts_at`` is when its
    first byte starts on the line and ``ends_at`` when its last stop bit ends,
    for the port's baud. Unpaced (baud 0), all three are the same moment.
    """

    written_at: float
    starts_at: float
    ends_at: float
    size: int


class PortUnplugged(OSError):
    """The emulated cable was pulled: the device end is gone until replug()."""


class EmulatedPort:
    """The device end of a pseudo-terminal, optionally linked to ``link``.

    ``baud`` paces writes; 0 writes as fast as the pty takes them.
    ``clock`` and ``sleep`` are what the pacing reads and waits with (a test
    may give a simulated clock, to check the schedule without timing it);
    ``trace``, if set, is called with each :class:`Slice` written.
    """

    def __init__(self, link: str | Path | None = None, baud: int = 0, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.link = Path(link) if link else None
        self.baud = baud
        self.clock = clock
        self.sleep = sleep
        self.trace: Callable[[Slice], None] | None = None
        self._lock = threading.Lock()
        self._line_lock = threading.Lock()
        self._line_free_at = 0.0  # when the last byte written so far leaves the line
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
        self._line_free_at = 0.0  # a new cable: nothing of the old one is on its line
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

    def write(self, data: bytes, *, queued: bool = False) -> None:
        """Send ``data`` to the application, paced at the line rate.

        The port keeps a line clock, as a UART's transmit FIFO does: a write
        made while earlier bytes are still on the line starts right after
        them, back to back, not when it is called. A device that sends one
        reply as many writes (the ZFM's image: 288 data packets, each framed
        in Python between two writes) thus streams them without gaps, as the
        real module's UART sends its buffer; before the line clock, each write
        paced from its own start and the framing work in between left ~0.4 ms
        of idle line per packet (3 % on an image download). The framing now
        overlaps the last slice still on the line. If the device is late (its
        next write comes after the line went idle) the line idles, as a real
        one would.

        ``queued=True`` says the bytes were already in the device's transmit
        buffer behind the previous write (the rest of one reply, such as the
        ZFM's image data packets after their ack): they start on the line when
        the previous write's last byte has left it even if this call comes
        later, because then it is the emulator's thread that was late (a loaded
        host), not the device. The slices then go into the pty as soon as they
        can, catching up on the schedule, still never before it. Never pass it
        for a reply to something the application sent: that reply cannot start
        before the device had the request.

        Slices of ~5 ms go into the pty when their first byte starts on the
        line, never sooner (at most one slice ahead of a real 8N1 UART's last
        byte, the granularity the pacing always had), on a schedule absolute
        from the first byte of an unbroken stream, so it does not drift. A
        write returns once its last slice is in the pty, up to one slice
        before that slice has left the line (a FIFO hands the CPU back early
        too); the next write waits its turn on the line clock.

        The whole write goes to the pty that was plugged in when it began: if
        the cable is pulled (and even plugged back) meanwhile, the rest is lost
        with PortUnplugged, as bytes in flight are on a real cable.
        """
        fd = self._master
        if fd < 0:
            raise PortUnplugged("port is unplugged")
        if self.baud <= 0:
            if self.trace is not None:
                now = self.clock()
                self.trace(Slice(now, now, now, len(data)))
            self._write_all(fd, data)
            return
        per_byte = BITS_PER_BYTE / self.baud
        chunk = max(1, int(SLICE_SECONDS / per_byte))
        with self._line_lock:  # reserve the line: the next write queues behind this one
            now, free_at = self.clock(), self._line_free_at
            start = free_at if queued and free_at else max(now, free_at)
            self._line_free_at = start + len(data) * per_byte
        for offset in range(0, len(data), chunk):
            piece = data[offset : offset + chunk]
            due = start + offset * per_byte  # the piece's first byte starts on the line
            delay = due - self.clock()
            if delay > 0:
                self.sleep(delay)
            if self.trace is not None:
                self.trace(Slice(self.clock(), due, due + len(piece) * per_byte, len(piece)))
            self._write_all(fd, piece)

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
