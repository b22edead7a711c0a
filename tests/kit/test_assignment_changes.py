"""The office changes or cancels an assignment by sealing the same id again, newer.

On the kit a newer version replaces the older: a target no longer in it goes if nobody
touched it, and stays if anything was recorded for it (a record, a refusal, a recording in
progress, a draft); a cancelled visit leaves the kiosk's list. The agent learns from the
store which versions the kiosk opened, to tell the office once each.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from kit.config import load_config
from kit.provision import Provisioned, provision_kit
from kit.records import (
    load_assignment,
    open_inbox,
    seal_recording,
    set_target_state,
    store_assignment,
    target_ref,
    target_states,
)
from kit.store import Store
from kit.vault import PinVault
from kit.visit import VisitController
from office.outbound import seal_assignment
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment, Target, TargetStatus
from sync.envelope import KitKeys, OfficeKeys
from sync.errors import ValidationError
from tests.conftest import FAST_ARGON2, OFFICER, PIN
from tests.kit.test_records import CHEAP, full_recording


@pytest.fixture
def sample() -> Assignment:
    return Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))


def another_target(base: Target) -> Target:
    """A resident the first version did not list (same data, another id and NIK)."""
    return dataclasses.replace(base, id="0193a2c4-5e10-7c3a-9b41-00000000ee01",
                               nik=base.nik[:-4] + "9999")


def test_a_newer_version_drops_untouched_targets_and_keeps_every_recorded_one(
        tmp_path: Path, sample: Assignment) -> None:
    recorded, refused, in_progress, drafted, untouched, staying = sample.targets
    office, kit = OfficeKeys.generate(), KitKeys.generate()
    with Store.open(tmp_path / "kit.db") as store:
        key = PinVault(store, CHEAP).initialise(OFFICER, PIN)
        store_assignment(store, key, sample)
        seal_recording(store, kit.sign, office.public, full_recording(sample), key=key)
        set_target_state(store, key, refused.id, str(TargetStatus.NOT_RECORDED), "refused")
        set_target_state(store, key, in_progress.id, str(TargetStatus.IN_PROGRESS))
        store.put_draft("0193a2c4-0000-7000-8000-00000000d001", target_ref(key, drafted.id),
                        "photo", key.encrypt(b"draft", "draft:x"), time.time() + 3600)
        newcomer = another_target(staying)
        v2 = dataclasses.replace(sample, targets=[staying, newcomer],
                                 officers=[*sample.officers, "ptg-0200"])
        store_assignment(store, key, v2)

        stored = load_assignment(store, key, sample.id)
        # The new version's targets first, in its order; those an officer touched after.
        assert [t.id for t in stored.targets] == [
            staying.id, newcomer.id, recorded.id, refused.id, in_progress.id, drafted.id]
        assert stored.officers == v2.officers
        assert untouched.id not in {t.id for t in stored.targets}
        states = target_states(store, key, sample.id)
        assert states[recorded.id] == (str(TargetStatus.RECORDED), "recorded")
        assert states[refused.id] == (str(TargetStatus.NOT_RECORDED), "refused")
        assert states[in_progress.id][0] == str(TargetStatus.IN_PROGRESS)
        assert states[drafted.id][0] == str(TargetStatus.PENDING)  # kept for its draft
        assert states[newcomer.id][0] == str(TargetStatus.PENDING)
        refs = {r["id"] for r in store.targets(sample.id)}
        assert target_ref(key, untouched.id) not in refs
        assert len(store.record_ids()) == 1 and len(store.drafts()) == 1


def test_a_target_moved_back_keeps_its_state(tmp_path: Path, sample: Assignment) -> None:
    first = sample.targets[0]
    with Store.open(tmp_path / "kit.db") as store:
        key = PinVault(store, CHEAP).initialise(OFFICER, PIN)
        store_assignment(store, key, sample)
        set_target_state(store, key, first.id, str(TargetStatus.PARTIAL), "partial")
        store_assignment(store, key, dataclasses.replace(sample, targets=sample.targets[1:]))
        store_assignment(store, key, sample)  # the office lists it again, first
        assert [t.id for t in load_assignment(store, key, sample.id).targets] == \
            [t.id for t in sample.targets]
        assert target_states(store, key, sample.id)[first.id] == ("partial", "partial")


def test_the_store_never_drops_a_touched_row_even_when_asked(tmp_path: Path,
                                                            sample: Assignment) -> None:
    # The caller decides from the decrypted states; the store checks again in its own
    # transaction (a draft started meanwhile, a state kept in clear before m005).
    drafted, clear, free = sample.targets[:3]
    with Store.open(tmp_path / "kit.db") as store:
        key = PinVault(store, CHEAP).initialise(OFFICER, PIN)
        store_assignment(store, key, sample)
        refs = [target_ref(key, t.id) for t in (drafted, clear, free)]
        store.put_draft("0193a2c4-0000-7000-8000-00000000d002", refs[0], "photo", b"x",
                        time.time() + 3600)
        store.conn.execute("UPDATE targets SET status = 'recorded' WHERE id = ?", (refs[1],))
        payload = store.assignment_payload(sample.id)
        assert payload is not None
        dropped = store.put_assignment(sample.id, sample.visit_date.isoformat(), payload, [],
                                       drop=refs)
        assert dropped == 1
        assert [r["id"] for r in store.targets(sample.id)] == refs[:2] + [
            target_ref(key, t.id) for t in sample.targets[3:]]


def provisioned(tmp_path: Path) -> tuple[Provisioned, OfficeKeys]:
    office = OfficeKeys.generate()
    office.save(tmp_path / "office")
    done = provision_kit(kit_id="blitar-kit-01", data_dir=tmp_path / "kit",
                         office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
                         technician_pin="13572468", settings={"security": FAST_ARGON2})
    return done, office


def deliver(store: Store, done: Provisioned, office: OfficeKeys, assignment: Assignment,
            ) -> str:
    """What the agent does with an assignment from the office: keep it sealed in the inbox."""
    envelope, sealed_at = seal_assignment(assignment.to_canonical(), assignment.id,
                                          done.config.kit.id, done.kit_keys.public, office.sign)
    assert store.put_inbox(assignment.id, sealed_at, envelope)
    return sealed_at


def test_a_cancelled_visit_leaves_the_kiosk_list_and_keeps_what_was_recorded(
        tmp_path: Path, sample: Assignment) -> None:
    done, office = provisioned(tmp_path)
    kiosk = VisitController(load_config(done.config_path))
    try:
        deliver(kiosk.store, done, office, sample)
        kiosk.login(OFFICER, PIN)  # opens the inbox, then loads the day's assignment
        assert kiosk.assignment is not None and kiosk.assignment.id == sample.id
        recorded = sample.targets[2]
        set_target_state(kiosk.store, kiosk.session.data_key, recorded.id,
                         str(TargetStatus.RECORDED), "recorded")
        kiosk.session.logout()

        cancelled = dataclasses.replace(sample, targets=[], cancelled=True)
        deliver(kiosk.store, done, office, cancelled)
        kiosk.login(OFFICER, PIN)
        assert kiosk.assignment is None and kiosk.rows() == []
        assert kiosk.store.assignments() == []
        with pytest.raises(ValidationError) as info:
            kiosk.open_assignment(sample.id)
        assert info.value.code == "assignment_cancelled"
        with pytest.raises(ValidationError) as info:
            kiosk.open_assignment()
        assert info.value.code == "no_assignment"
        # Kept, hidden: only the target with a recording state, under the cancelled visit.
        (row,) = kiosk.store.assignments(include_cancelled=True)
        assert row["id"] == sample.id and row["cancelled"] == 1
        kept = load_assignment(kiosk.store, kiosk.session.data_key, sample.id)
        assert kept.cancelled and [t.id for t in kept.targets] == [recorded.id]
        assert target_states(kiosk.store, kiosk.session.data_key, sample.id) == \
            {recorded.id: ("recorded", "recorded")}
        kiosk.session.logout()

        # The office takes the cancellation back: the visit is offered again.
        deliver(kiosk.store, done, office, sample)
        kiosk.login(OFFICER, PIN)
        assert kiosk.assignment is not None and not kiosk.assignment.cancelled
        assert [r.status for r in kiosk.rows()].count("recorded") == 1
        assert len(kiosk.rows()) == len(sample.targets)
    finally:
        kiosk.close()


def test_each_opening_and_each_error_is_due_for_the_office_once(tmp_path: Path,
                                                                sample: Assignment) -> None:
    done, office = provisioned(tmp_path)
    with Store.open(done.config.store_path) as store:
        vault = PinVault(store, CHEAP)
        key = vault.unlock(OFFICER, PIN)
        v1 = deliver(store, done, office, sample)
        assert store.inbox_reports_due() == []  # received, not opened yet
        assert open_inbox(store, key, vault, office.public) == [sample.id]
        (due,) = store.inbox_reports_due()
        assert (due["assignment_id"], due["sealed_at"], due["error"]) == (sample.id, v1, "")
        assert due["opened_at"] is not None
        store.inbox_reported(sample.id, v1, opened=True)
        assert store.inbox_reports_due() == []

        # A newer version, sealed by someone else: it does not open, and is told once.
        stranger = OfficeKeys.generate()
        envelope, v2 = seal_assignment(sample.to_canonical(), sample.id, done.config.kit.id,
                                       done.kit_keys.public, stranger.sign)
        assert store.put_inbox(sample.id, v2, envelope)
        assert open_inbox(store, key, vault, office.public) == []
        (due,) = store.inbox_reports_due()
        assert (due["sealed_at"], due["opened_at"], due["error"]) == (v2, None, "bad_signature")
        store.inbox_reported(sample.id, v2, opened=False, error="bad_signature")
        assert open_inbox(store, key, vault, office.public) == []  # the next login: same
        assert store.inbox_reports_due() == []


def test_a_store_from_before_the_change_is_migrated(tmp_path: Path, sample: Assignment) -> None:
    done, office = provisioned(tmp_path)
    path = done.config.store_path
    with Store.open(path) as store:
        vault = PinVault(store, CHEAP)
        key = vault.unlock(OFFICER, PIN)
        sealed_at = deliver(store, done, office, sample)
        open_inbox(store, key, vault, office.public)
        store.conn.execute("ALTER TABLE assignments DROP COLUMN cancelled")
        store.conn.execute("ALTER TABLE inbox DROP COLUMN opened_reported_at")
        store.conn.execute("ALTER TABLE inbox DROP COLUMN error_reported")
        store.conn.execute("DELETE FROM _sqlite_migrations WHERE name = "
                           "'m006_assignment_changes'")
    with Store.open(path) as store:  # m006 runs
        assert [a["id"] for a in store.assignments()] == [sample.id]
        # Opened before the agent could tell: told now (the office ignores an old version).
        assert [r["sealed_at"] for r in store.inbox_reports_due()] == [sealed_at]
