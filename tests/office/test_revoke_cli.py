"""``jaranijo office revoke`` on the broker's machine, against a real Mosquitto: the kit's
login and ACL entry go, the broker drops it, a second run changes nothing, and with the
broker not running the command says what is left and exits 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from office.broker import LocalBroker
from office.db import OfficeDb
from sync import protocol as p
from tests.office.web.test_commands import connect, until

KIT, OTHER = "blitar-kit-03", "blitar-kit-04"


def revoke(db: Path, broker: LocalBroker) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "--lang", "en", "office", "revoke", KIT, "--db",
         str(db), "--broker", str(broker.directory), "--reason",
         "hilang di Kecamatan Wlingi", "--by", "teknisi.andi"],
        capture_output=True, text=True, timeout=60)


def test_the_cli_revokes_on_the_brokers_machine(tmp_path: Path) -> None:
    OfficeDb.open(tmp_path / "office.db").close()
    broker = LocalBroker(tmp_path / "broker", {KIT: "sandi-kit-03", OTHER: "sandi-kit-04"})
    broker.start()
    kit, events = connect(broker, KIT, "sandi-kit-03")
    try:
        until(lambda: ("connect", "Success") in events)
        done = revoke(tmp_path / "office.db", broker)
        assert done.returncode == 0, done.stderr
        assert "revoked: broker login removed" in done.stdout
        until(lambda: any(e[0] == "connect" and e[1] != "Success" for e in events))
        acl = (broker.directory / "acl").read_text()
        passwd = (broker.directory / "passwd").read_text()
        assert acl.count(f"user {KIT}\ntopic deny {p.ROOT}/#") == 1
        assert f"{OTHER}:" in passwd and f"{KIT}:" not in passwd
        again = revoke(tmp_path / "office.db", broker)
        assert again.returncode == 0
        assert (broker.directory / "acl").read_text() == acl  # nothing added twice
    finally:
        kit.loop_stop()
        kit.disconnect()
        broker.stop()
    # The broker not running: the files are changed all the same (a later start reads
    # them), and the command says who reloads a running one.
    stopped = revoke(tmp_path / "office.db", broker)
    assert stopped.returncode == 0 and "broker login removed" in stopped.stdout
    assert "systemctl reload mosquitto" in stopped.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "sync.cli", "--lang", "en", "office", "revoke", OTHER, "--db",
         str(tmp_path / "office.db"), "--broker", str(tmp_path / "nowhere"), "--reason",
         "dicuri dari mobil dinas"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "the broker is not done" in missing.stdout
    db = OfficeDb.open(tmp_path / "office.db")
    try:
        rows = db.conn.execute("SELECT revoked_by, broker_error FROM revocations "
                               "ORDER BY revoked_at").fetchall()
        audit = db.conn.execute("SELECT username, action, subject FROM audit").fetchall()
    finally:
        db.close()
    assert [(r["revoked_by"] == "teknisi.andi", "systemctl reload" in r["broker_error"])
            for r in rows] == [(True, True), (False, False)]
    assert [(a["action"], a["subject"]) for a in audit] == [
        ("revoke_kit", KIT), ("revoke_kit", OTHER)]
    assert audit[0]["username"] == "teknisi.andi"
