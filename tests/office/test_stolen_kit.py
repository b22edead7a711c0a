"""The office against a thief holding a kit's keys and broker password (issue 10, finding 2).

A retained status with session number 2**53 made the office ignore the real kit's
presence for ever, and a forged record uploaded under the id of a pending genuine one was
stored while the genuine one was then refused as ``conflict`` for ever, its bytes lost.
Messages go straight to the receiver (:mod:`tests.office.receiver`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from office.ingest import MAX_SESSION_JUMP
from sync import protocol as p
from sync.envelope import RECORD_KIND, KitKeys, seal
from tests.office.receiver import KIT, TOPICS, BenchOffice

RID = "0193a2c4-0000-7000-8000-000000000001"


class Office(BenchOffice):
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        super().__init__(tmp_path, now=1_795_000_000.0, **settings)
        self.now: float = 1_795_000_000.0

    def status(self, session: int, *, online: bool = True, retain: bool = True) -> None:
        self.send(TOPICS.status, p.encode_status(p.Status(online=online, session=session,
                                                          tst=int(self.now))), retain=retain)

    def record(self, content: bytes) -> bytes:
        return seal({"x": content}, kind=RECORD_KIND, ids={"record_id": RID, "kit_id": KIT},
                    recipient=self.office_keys.seal_public, signer=self.kit_keys.sign)

    def upload(self, blob: bytes, chunk_bytes: int = 4096) -> p.Progress:
        """Send a record chunk by chunk as the kit does, following the office's ``have``."""
        sha, offset = hashlib.sha256(blob).digest(), 0
        while True:
            self.send(TOPICS.up, p.encode_chunk(p.Chunk(RID, sha, len(blob), offset,
                                                        blob[offset:offset + chunk_bytes])))
            answer = self.receipts[-1]
            if answer.kind != "have":
                return answer
            offset = answer.have

    def refused(self, reason: str) -> int:
        return sum(r["n"] for r in self.db.refusal_counts(KIT) if r["reason"] == reason)


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return Office(tmp_path)


# -- sessions -----------------------------------------------------------------------------

def test_a_forged_huge_session_is_refused_and_the_real_kit_stays_visible(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="office.receiver")
    office.status(41)
    assert office.db.kit(KIT)["session"] == 41  # type: ignore[index]
    office.now += 60
    office.status(2**53, online=False)  # the thief's retained status
    kit = office.db.kit(KIT)
    assert kit is not None and kit["session"] == 41 and kit["online"] == 1
    assert office.refused("session_jump") == 1
    assert any("jumps above" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    # The broker redelivers the retained forgery (an office restart): refused again.
    office.status(2**53, online=False)
    assert office.refused("session_jump") == 2
    # The real kit's next connection is seen, online and then offline.
    office.now += 60
    office.status(42)
    kit = office.db.kit(KIT)
    assert kit is not None and (kit["session"], kit["online"]) == (42, 1)
    office.status(42, online=False)
    kit = office.db.kit(KIT)
    assert kit is not None and (kit["session"], kit["online"]) == (42, 0)


def test_a_kits_first_status_and_plausible_jumps_are_accepted(office: Office) -> None:
    office.status(5000)  # first contact: whatever the counter says
    assert office.db.kit(KIT)["session"] == 5000  # type: ignore[index]
    office.status(5000 + MAX_SESSION_JUMP)  # many reconnects while the office was away
    assert office.db.kit(KIT)["session"] == 6000  # type: ignore[index]
    office.status(6000 + MAX_SESSION_JUMP + 1)  # one too many, at once
    assert office.db.kit(KIT)["session"] == 6000  # type: ignore[index]
    assert office.refused("session_jump") == 1
    # A day later the bound is wider (older kits count failed attempts too).
    office.now += 86400
    office.status(6000 + MAX_SESSION_JUMP + 1000)
    assert office.db.kit(KIT)["session"] == 7000 + MAX_SESSION_JUMP  # type: ignore[index]
    # An older status (a late will) is still ignored, not counted as a refusal.
    office.status(10, online=False)
    kit = office.db.kit(KIT)
    assert kit is not None and kit["online"] == 1
    assert office.refused("session_jump") == 1


# -- colliding records --------------------------------------------------------------------

def test_a_record_colliding_with_a_stored_id_is_kept_in_quarantine(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="office.receiver")
    forged, genuine = office.record(os.urandom(9000)), office.record(os.urandom(9000))
    first = office.upload(forged)  # the thief, first, under the genuine record's id
    assert first.kind == "done"
    answer = office.upload(genuine)  # the real kit, later: answered as before
    assert (answer.kind, answer.reason, answer.retry_s) == ("reject", "conflict", 86400)
    # The first stays stored ...
    stored = office.db.record(KIT, RID)
    assert stored is not None and stored["sha256"] == hashlib.sha256(forged).hexdigest()
    assert office.db.record_blob(KIT, RID) == forged
    # ... and the second is kept aside with its hash, not lost.
    sha = hashlib.sha256(genuine).hexdigest()
    kept = office.db.quarantined(KIT)
    assert [(q["kit_id"], q["record_id"], q["sha256"], q["size"]) for q in kept] == \
        [(KIT, RID, sha, len(genuine))]
    assert kept[0]["received_at"] > 0 and kept[0]["sealed_at"]
    assert office.db.quarantined_blob(KIT, RID, sha) == genuine
    assert office.db.open_uploads(KIT) == (0, 0)  # its chunks went with it
    assert office.receiver.counters["quarantined"] == 1
    assert office.refused("conflict") == 1
    assert any("quarantine" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)
    # Sent again (an older kit retrying), it is answered at once and kept once.
    sends = len(office.receipts)
    again = office.upload(genuine)
    assert (again.kind, again.reason) == ("reject", "conflict")
    assert len(office.receipts) == sends + 1
    assert len(office.db.quarantined(KIT)) == 1
    # The stored one still gets its receipt.
    assert office.upload(forged).kind == "done"


def test_what_a_kit_can_leave_in_quarantine_is_bounded(tmp_path: Path) -> None:
    office = Office(tmp_path, max_quarantined=2)
    assert office.upload(office.record(b"first")).kind == "done"
    for i in range(5):
        answer = office.upload(office.record(os.urandom(100 + i)))
        assert (answer.kind, answer.reason) == ("reject", "conflict")
    assert len(office.db.quarantined(KIT)) == 2
    assert office.db.open_uploads(KIT) == (0, 0)


def test_a_colliding_upload_that_fails_the_checks_is_kept_as_untrusted(office: Office) -> None:
    """Issue 12 (Bad input): a record whose signature fails stays quarantined with the
    reason; under a stored id it is still that (bad_signature), not a collision."""
    first = office.record(b"first")
    assert office.upload(first).kind == "done"
    other = seal({"x": b"x"}, kind=RECORD_KIND, ids={"record_id": RID, "kit_id": KIT},
                 recipient=office.office_keys.seal_public, signer=KitKeys.generate().sign)
    answer = office.upload(other)
    assert (answer.kind, answer.reason) == ("reject", "bad_signature")
    assert [q["sha256"] for q in office.db.quarantined(KIT)] == [
        hashlib.sha256(other).hexdigest()]
    assert [dict(r) for r in office.db.conn.execute(
        "SELECT code FROM quarantine_reasons")] == [{"code": "bad_signature"}]
    assert office.db.record_blob(KIT, RID) == first  # the stored record stays as it was
    assert office.db.open_uploads(KIT) == (0, 0)


def test_untrusted_records_kept_are_bounded_by_the_kits_quarantine(tmp_path: Path) -> None:
    """Forgeries count against the same per-kit quarantine: beyond it one is refused as
    before (bad_signature) and not kept, its upload dropped."""
    office = Office(tmp_path, max_quarantined=1)
    thief = KitKeys.generate()
    for n in range(2):
        forged = seal({"x": bytes([n]) * 64}, kind=RECORD_KIND,
                      ids={"record_id": RID, "kit_id": KIT},
                      recipient=office.office_keys.seal_public, signer=thief.sign)
        answer = office.upload(forged)
        assert (answer.kind, answer.reason) == ("reject", "bad_signature")
    assert len(office.db.quarantined(KIT)) == 1
    assert office.refused("bad_signature") == 2
    assert office.db.open_uploads(KIT) == (0, 0)
    assert office.db.record(KIT, RID) is None


def test_the_office_keeps_how_each_kit_keeps_its_keys(tmp_path: Path, caplog) -> None:
    """Finding 1: a kit without a TPM is shown (and logged once) as the weaker mode; its
    last will, which does not say, keeps what the birth message said."""
    office = Office(tmp_path)
    with caplog.at_level(logging.WARNING, logger="office.receiver"):
        office.send(TOPICS.status, p.encode_status(p.Status(
            online=True, session=1, tst=int(office.now), security="software")), retain=True)
        office.send(TOPICS.status, p.encode_status(p.Status(
            online=False, session=1, tst=int(office.now), reason="lost")), retain=True)
    kit = office.db.kit(KIT)
    assert kit is not None and not kit["online"]
    assert json.loads(kit["status"])["security"] == "software"
    assert [r.message for r in caplog.records].count(
        f"kit {KIT} runs without a TPM (software key slots: the weaker mode)") == 1


def test_after_review_the_genuine_record_takes_its_place_and_the_kit_is_done(
        office: Office, tmp_path: Path) -> None:
    """Review tool: staff take the quarantined record; the forgery goes aside (kept); the
    kit, asked to resend (``office command resend``), gets its receipt at last."""
    forged, genuine = office.record(os.urandom(5000)), office.record(os.urandom(5000))
    assert office.upload(forged).kind == "done"
    assert office.upload(genuine).reason == "conflict"
    sha_genuine = hashlib.sha256(genuine).hexdigest()
    office.db.close()
    listed = run_office("quarantine", "list", "--db", str(tmp_path / "office.db"))
    assert RID in listed.stdout and sha_genuine[:16] in listed.stdout
    short = run_office("quarantine", "take", "--db", str(tmp_path / "office.db"), "--kit", KIT,
                       "--record", RID, "--sha", sha_genuine[:4])
    assert short.returncode == 2 and "No single quarantined record" in short.stderr
    took = run_office("quarantine", "take", "--db", str(tmp_path / "office.db"), "--kit", KIT,
                      "--record", RID, "--sha", sha_genuine[:12])
    assert took.returncode == 0, took.stderr
    assert f"resend record={RID}" in took.stdout
    office.db = office.receiver.db = type(office.db).open(tmp_path / "office.db")
    assert office.db.record_blob(KIT, RID) == genuine
    assert [q["sha256"] for q in office.db.quarantined(KIT)] == [hashlib.sha256(forged).hexdigest()]
    assert office.upload(genuine).kind == "done"  # the kit's resend: its receipt
    dropped = run_office("quarantine", "drop", "--db", str(tmp_path / "office.db"), "--kit", KIT,
                         "--record", RID, "--sha", hashlib.sha256(forged).hexdigest()[:12])
    assert dropped.returncode == 0 and office.db.quarantined(KIT) == []


def run_office(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync.cli", "--lang", "en", "office", *args],
                          capture_output=True, text=True, timeout=60)


# -- a kit reported lost ------------------------------------------------------------------

def test_a_revoked_kits_uploads_are_held_for_review_not_taken(office: Office) -> None:
    """Revoked (the kit page's *Cabut kit*): a record it still gets through is received
    whole and held in quarantine, answered ``revoked``; the same bytes again are answered
    at once; after review (``quarantine take``) it becomes a record and the kit's resend
    gets its receipt."""
    office.db.conn.execute(
        "INSERT INTO revocations (kit_id, revoked_at, revoked_by, reason, broker_error) "
        "VALUES (%s, %s, %s, %s, %s)", (KIT, office.now, "kepala.dinas", "hilang", ""))
    blob = office.record(os.urandom(9000))
    sha = hashlib.sha256(blob).hexdigest()
    answer = office.upload(blob)
    assert (answer.kind, answer.reason, answer.retry_s) == ("reject", "revoked", 86400)
    assert office.db.record(KIT, RID) is None
    assert [q["sha256"] for q in office.db.quarantined(KIT)] == [sha]
    chunks_before = office.receiver.counters["chunks"]
    again = office.upload(blob)
    assert again.reason == "revoked"
    assert office.receiver.counters["chunks"] == chunks_before + 1  # refused at the first chunk
    assert len(office.db.quarantined(KIT)) == 1
    assert office.refused("revoked") == 2
    # Found again and re-provisioned: staff take the held record after review.
    office.db.conn.execute("DELETE FROM revocations WHERE kit_id = %s", (KIT,))
    assert office.db.quarantine_take(KIT, RID, sha)
    assert office.db.record_blob(KIT, RID) == blob and office.db.quarantined(KIT) == []
    assert office.upload(blob).kind == "done"
