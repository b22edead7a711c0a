"""A remote wipe followed by a power cut leaves no deleted key in any byte of the kit's files,
and every kit file is 0600, every kit folder 0700."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from kit.provision import Provisioned, open_vault, provision_kit
from kit.store import Store
from sync.envelope import OfficeKeys
from tests.conftest import FAST_ARGON2, OFFICER, PIN

ROOT = Path(__file__).resolve().parents[2]

# The agent's wipe, as _wipe runs it (kit/agent/service.py), in a process that is then
# killed -9 with the store still open: nothing closes it cleanly.
WIPER = """
import sys, time
from kit.config import load_config
from kit.provision import open_vault
from kit.store import Store
config = load_config(sys.argv[1])
store = Store.open(config.store_path)
counts = open_vault(config, store).wipe()
store.set_status("ui_lock", {"locked": True, "wiped": True})
store.audit("remote_wipe", detail=str(counts))
print("scrubbed" if store.scrub() else "busy", counts, flush=True)
time.sleep(600)
"""


def provision(tmp_path: Path) -> Provisioned:
    OfficeKeys.generate().save(tmp_path / "office")
    return provision_kit(kit_id="blitar-kit-01", data_dir=tmp_path / "kit",
                         office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
                         technician_pin="13572468", settings={"security": FAST_ARGON2})


def test_wipe_then_power_cut_leaves_no_key_bytes(tmp_path: Path) -> None:
    done = provision(tmp_path)
    config = done.config
    with Store.open(config.store_path) as store:
        key = open_vault(config, store).unlock(OFFICER, PIN)
        store.put_draft("0193a2c4-0000-7000-8000-00000000d001", "target-1", "photo",
                        key.encrypt(b"draft biometrics " * 20, "draft:x"), time.time() + 3600)
        salt, _, _, wrapped, _ = store.key_slot(OFFICER)  # type: ignore[misc]
        box_secret_text = store.status("secret:kit-box")
        sign_secret_text = store.status("secret:kit-sign")
        draft = store.draft_payload("0193a2c4-0000-7000-8000-00000000d001")
        key.forget()
    secrets = {"wrapped data key": bytes(wrapped), "slot salt": bytes(salt),
               "box secret as stored": box_secret_text.encode("ascii"),
               "box secret key": bytes(done.kit_keys.box), "draft": bytes(draft or b""),
               "signing key as stored": sign_secret_text.encode("ascii"),
               "signing key": bytes(done.kit_keys.sign)}
    assert all(len(v) >= 16 for v in secrets.values())
    # The kiosk has the store open (idle) while the agent wipes, and stays so.
    kiosk = Store.open(config.store_path)
    try:
        proc = subprocess.Popen([sys.executable, "-c", WIPER, str(config.source)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)  # the power cut: nothing is closed
        proc.wait(timeout=30)
        proc.stdout.close()
        assert line.startswith("scrubbed"), line
        files = [p for p in config.data_dir.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        assert "kit.db" in names and "kit.db-wal" in names and "kit.db-shm" in names
        for path in files:
            raw = path.read_bytes()
            for what, needle in secrets.items():
                assert needle not in raw, f"{what} found in {path.name}"
        assert kiosk.key_slot_ids() == [] and kiosk.drafts() == []
    finally:
        kiosk.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_kit_files_0600_and_folders_0700(tmp_path: Path) -> None:
    done = provision(tmp_path)
    config = done.config
    store = Store.open(config.store_path)  # open: -wal and -shm exist
    try:
        store.set_status("x", 1)
        data = config.data_dir
        assert mode(data) == 0o700 and mode(config.keys_dir) == 0o700
        paths = [p for p in data.rglob("*")]
        for name in ("kit.db", "kit.db-wal", "kit.db-shm", "kit.toml"):
            assert data / name in paths, name
        for path in paths:
            expected = 0o700 if path.is_dir() else 0o600
            assert mode(path) == expected, f"{path.relative_to(data)}: {oct(mode(path))}"
    finally:
        store.close()


def test_store_opened_fresh_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "kit.db"
    with Store.open(path) as store:
        store.set_status("x", 1)
        assert mode(path.parent) == 0o700
        for name in ("kit.db", "kit.db-wal", "kit.db-shm"):
            assert mode(path.with_name(name)) == 0o600, name
    # A file left 0644 by an older version is made private when opened.
    os.chmod(path, 0o644)
    with Store.open(path):
        assert mode(path) == 0o600


def test_secure_delete_is_on(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kit.db") as store:
        assert store.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
