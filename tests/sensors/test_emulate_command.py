"""`jaranijo emulate --dir DIR`: the rig a technician runs, with its control FIFO."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import serial

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_emulate_serves_devices_and_takes_fault_controls(tmp_path: Path) -> None:
    rig = tmp_path / "rig"
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "emulate", "--dir", str(rig)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out_pipe = proc.stdout
    assert out_pipe is not None
    lines: list[str] = []  # what the rig prints, read as it comes: it answers each control

    def read() -> None:
        for line in out_pipe:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def said(text: str) -> bool:
        return any(text in line for line in list(lines))

    try:
        wait_until(lambda: (rig / "control").exists() and (rig / "modem").exists(), 20,
                   "the rig's control FIFO and modem port")
        # The modem answers a real AT exchange through pyserial on the printed path.
        with serial.Serial(str(rig / "modem"), 115200, timeout=2) as port:
            port.write(b"AT\r")
            reply = port.read_until(b"OK\r\n")
        assert reply.endswith(b"OK\r\n")
        # A fault control through the FIFO: the modem stops answering.
        with open(rig / "control", "w") as fifo:
            fifo.write("modem silence 5\n")
        wait_until(lambda: said("control: modem silence 5 ->"), 5, "the rig applying the control")
        with serial.Serial(str(rig / "modem"), 115200, timeout=1) as port:
            port.write(b"AT\r")
            assert port.read_until(b"OK\r\n") == b""
        with open(rig / "control", "w") as fifo:
            fifo.write("modem nonsense\n")
        wait_until(lambda: said("control: modem nonsense ->"), 5, "the rig answering nonsense")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        reader.join(timeout=5)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert f"fingerprint  {rig / 'fingerprint'}" in out
    assert "control: modem silence 5 ->" in out
    assert "control: modem nonsense -> refused: unknown control" in out
    assert not (rig / "fingerprint").exists()  # links removed on exit


def test_emulate_help_documents_every_fault_control() -> None:
    out = subprocess.run([sys.executable, "-m", "sync.cli", "emulate", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    for control in ("corrupt-checksum", "truncate", "stall", "unplug", "wrong-password",
                    "fix-loss", "garbage", "silence", "cme-error"):
        assert control in out
