"""Crash safety: a writer killed with SIGKILL at random points never loses a saved record."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from kit.store import Store

ROUNDS = 25


def test_sigkill_never_loses_a_record_reported_saved(tmp_path: Path) -> None:
    db = tmp_path / "kit.db"
    rng = random.Random(20261123)
    reported: list[str] = []
    root = Path(__file__).resolve().parents[2]
    for _ in range(ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.kit.crash_writer", str(db)],
            stdout=subprocess.PIPE, text=True, cwd=root,
        )
        assert proc.stdout is not None
        # Let it get going, then kill it at a random moment mid-stream.
        first = proc.stdout.readline()
        assert first.startswith("saved "), first
        time.sleep(rng.uniform(0.0, 0.25))  # the time under test: a random kill moment
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines = [first, *proc.stdout.read().splitlines()]
        proc.stdout.close()
        ids = [line.split()[1] for line in lines if line.startswith("saved ")]
        reported.extend(ids)
        # Whatever the writer was doing, the file opens and checks clean.
        with Store.open(db) as store:
            assert store.integrity_check() == "ok"
            on_disk = set(store.record_ids())
            missing = [r for r in reported if r not in on_disk]
            assert missing == []
            # Every acknowledged record lost its payload, every other one kept it.
            for record_id in ids[-3:]:
                n = int(record_id.split("-")[1])
                assert (store.record_blob(record_id) is None) == (n % 3 == 0)
    assert len(reported) > ROUNDS  # the writer really wrote between kills
