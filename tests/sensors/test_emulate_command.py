"""`jaranijo emulate --dir DIR`: the rig a technician runs, with its control FIFO."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import serial

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_emulate_serves_devices_and_takes_fault_controls(tmp_path: Path) -> None:
    rig = tmp_path / "rig"
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "emulate", "--dir", str(rig)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert wait_until(lambda: (rig / "control").exists() and (rig / "modem").exists(), 20)
        # The modem answers a real AT exchange through pyserial on the printed path.
        with serial.Serial(str(rig / "modem"), 115200, timeout=2) as port:
            port.write(b"AT\r")
            reply = port.read_until(b"OK\r\n")
        assert reply.endswith(b"OK\r\n")
        # A fault control through the FIFO: the modem stops answering.
        with open(rig / "control", "w") as fifo:
            fifo.write("modem silence 5\n")
        time.sleep(0.3)
        with serial.Serial(str(rig / "modem"), 115200, timeout=1) as port:
            port.write(b"AT\r")
            assert port.read_until(b"OK\r\n") == b""
        with open(rig / "control", "w") as fifo:
            fifo.write("modem nonsense\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
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
