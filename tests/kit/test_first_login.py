"""First login with a one-time enrolment code (issue 14, point 3): the officer must choose
their own PIN before the kit gives them anything, and the code stops working once they have.

The kit is provisioned as a technician does it, through :mod:`kit.firstboot` from a
provisioning file, so the slots hold the enrolment codes and the store lists the officers
in ``pin_change_required``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.config import KitConfig
from kit.firstboot import PIN_CHANGE_KEY, parse_provision_file, provision_from_file
from kit.provision import open_vault
from kit.records import store_assignment
from kit.store import Store
from kit.visit import VisitController
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment
from sync.errors import VaultError
from tests.kit.test_firstboot import GOOD, write

OFFICER, CODE = "P-0001", "4829135071"       # GOOD's first officer and their code
OTHER, OTHER_CODE = "P-0002", "7391046285"
NEW_PIN = "5550192837"  # software slots on these test kits: 10-12 digits


@pytest.fixture
def config(tmp_path: Path) -> KitConfig:
    """A kit made from a provisioning file, with the sample assignment on it."""
    spec = parse_provision_file(write(tmp_path, GOOD))
    config, _lines = provision_from_file(spec, config_path=tmp_path / "etc" / "kit.toml",
                                         data_dir=tmp_path / "kit")
    assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    with Store.open(config.store_path, create=False) as store:
        key = open_vault(config, store).unlock(OFFICER, CODE)
        store_assignment(store, key, assignment)
        key.forget()
    return config


@pytest.fixture
def kiosk(config: KitConfig) -> Iterator[VisitController]:
    controller = VisitController(config)
    yield controller
    controller.close()


def listed(config: KitConfig) -> list[str]:
    with Store.open(config.store_path, create=False) as store:
        value: Any = store.status(PIN_CHANGE_KEY)
    return list(value)


def refused(call: Any, code: str) -> VaultError:
    with pytest.raises(VaultError) as info:
        call()
    assert info.value.code == code, info.value
    return info.value


def test_a_code_login_asks_for_a_pin_and_refuses_everything_else(
        kiosk: VisitController) -> None:
    kiosk.login(OFFICER, CODE)
    assert kiosk.must_set_pin
    assert kiosk.session.officer == OFFICER
    assert kiosk.assignment is None  # not loaded: the code opens nothing
    exc = refused(kiosk.load_assignment, "pin_change_required")
    assert "PIN" in exc.text("id") and "kode pendaftaran" in exc.text("id")
    assert "PIN" in exc.text("en") and "enrolment code" in exc.text("en")
    refused(lambda: kiosk.open_assignment(), "pin_change_required")
    refused(kiosk.open_inbox, "pin_change_required")
    refused(kiosk.context, "pin_change_required")
    refused(kiosk.require_flow, "pin_change_required")
    refused(lambda: kiosk.session.data_key, "pin_change_required")
    refused(lambda: kiosk.session.enroll_fingerprint(lambda: 3), "pin_change_required")
    target = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(
        encoding="utf-8")).targets[0]
    refused(lambda: kiosk.start(target, "id"), "pin_change_required")
    assert kiosk.new_pin_digits() == (10, 12)  # no TPM here: the vault's software rule


def test_mismatch_short_and_code_as_pin_are_refused(kiosk: VisitController,
                                                    config: KitConfig) -> None:
    kiosk.login(OFFICER, CODE)
    mismatch = refused(lambda: kiosk.set_pin(NEW_PIN, "5550192838"), "pin_mismatch")
    assert "tidak sama" in mismatch.text("id") and "do not match" in mismatch.text("en")
    refused(lambda: kiosk.set_pin("123456", "123456"), "pin_format")  # 6: TPM kits only
    same = refused(lambda: kiosk.set_pin(CODE, CODE), "pin_is_code")
    assert "kode pendaftaran" in same.text("id") and "enrolment code" in same.text("en")
    refused(lambda: kiosk.check_new_pin(CODE), "pin_is_code")
    kiosk.check_new_pin(NEW_PIN)  # a good first entry passes the first check
    assert kiosk.must_set_pin
    assert listed(config) == [OFFICER, OTHER]
    kiosk.close()
    again = VisitController(config)  # nothing was changed: the code still opens the slot
    try:
        again.login(OFFICER, CODE)
        assert again.must_set_pin
    finally:
        again.close()


def test_setting_the_pin_finishes_the_login_and_retires_the_code(
        kiosk: VisitController, config: KitConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    kiosk.login(OFFICER, CODE)
    kiosk.set_pin(NEW_PIN, NEW_PIN)
    assert not kiosk.must_set_pin
    assert kiosk.assignment is not None and kiosk.assignment.targets  # the normal path
    assert kiosk.rows()
    assert listed(config) == [OTHER]  # the other officer still has to choose theirs
    refused(lambda: kiosk.check_new_pin("5550192839"), "no_pin_change")
    with Store.open(config.store_path, create=False) as store:
        events = store.audit_log(100)
    assert ("pin_set_first_login", OFFICER) in [(e["event"], e["actor"]) for e in events]
    written = " ".join(f"{e['subject']} {e['detail']}" for e in events) + caplog.text
    assert NEW_PIN not in written and CODE not in written
    kiosk.close()

    later = VisitController(config)  # the next day
    try:
        refused(lambda: later.login(OFFICER, CODE), "wrong_pin")
        later.login(OFFICER, NEW_PIN)
        assert not later.must_set_pin and later.assignment is not None
        later.session.logout()
        later.login(OTHER, OTHER_CODE)  # the other officer is asked in turn
        assert later.must_set_pin
    finally:
        later.close()


def test_a_restart_before_the_pin_is_set_asks_again(kiosk: VisitController,
                                                    config: KitConfig) -> None:
    kiosk.login(OFFICER, CODE)
    assert kiosk.must_set_pin
    kiosk.store.close()  # the power goes before the officer has typed a PIN
    after = VisitController(config)
    try:
        after.login(OFFICER, CODE)  # the code works once more ...
        assert after.must_set_pin   # ... and asks again
        refused(after.load_assignment, "pin_change_required")
        after.set_pin(NEW_PIN, NEW_PIN)
        assert not after.must_set_pin
    finally:
        after.close()


def test_a_cut_inside_set_pin_keeps_the_code_and_the_request(
        kiosk: VisitController, config: KitConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new slot and the list change are one transaction: if the list write fails
    (a power cut at that instant), the new slot is rolled back with it."""
    kiosk.login(OFFICER, CODE)
    real = kiosk.store.set_status

    def cut(key: str, value: Any) -> None:
        if key == PIN_CHANGE_KEY:
            raise OSError("power cut")
        real(key, value)

    monkeypatch.setattr(kiosk.store, "set_status", cut)
    with pytest.raises(OSError):
        kiosk.set_pin(NEW_PIN, NEW_PIN)
    monkeypatch.undo()
    kiosk.close()
    assert listed(config) == [OFFICER, OTHER]
    after = VisitController(config)
    try:
        refused(lambda: after.login(OFFICER, NEW_PIN), "wrong_pin")
        after.login(OFFICER, CODE)
        assert after.must_set_pin
    finally:
        after.close()


def test_another_officers_finger_opens_their_own_session(kiosk: VisitController,
                                                         config: KitConfig) -> None:
    """A fingerprint reopens a locked session for the officer it belongs to: one who set
    their PIN gets a normal session, not the first officer's pending one."""
    kiosk.login(OTHER, OTHER_CODE)
    kiosk.set_pin(NEW_PIN, NEW_PIN)
    kiosk.session.enroll_fingerprint(lambda: 3)
    kiosk.session.logout()
    kiosk.login(OFFICER, CODE)
    kiosk.session.lock()
    assert kiosk.session.unlock_by_fingerprint(lambda: (3, 120)) == OTHER
    assert not kiosk.must_set_pin
    assert kiosk.load_assignment() is not None


def test_the_kiosk_refuses_a_weak_new_pin(kiosk: VisitController) -> None:
    kiosk.login(OFFICER, CODE)
    refused(lambda: kiosk.set_pin("1234567890", "1234567890"), "pin_weak")
    assert kiosk.must_set_pin and OFFICER in listed(kiosk.config)


def test_officer_add_with_the_officers_own_pin_ends_the_pin_change(config: KitConfig) -> None:
    """`jaranijo officer add`: the officer types their own PIN at the kit, so their slot no
    longer holds the enrolment code and the first-login PIN change is not asked again."""
    import subprocess
    import sys

    def add(pins: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sync.cli", "--config", str(config.source), "officer", "add",
             "--officer", OFFICER, "--by", OFFICER, "--pin-stdin"], input=pins,
            capture_output=True, text=True, check=False)

    weak = add(f"{CODE}\n1111111111\n")
    assert weak.returncode == 2 and "terlalu mudah ditebak" in weak.stderr
    assert OFFICER in listed(config)
    done = add(f"{CODE}\n{NEW_PIN}\n")
    assert done.returncode == 0, done.stderr
    assert OFFICER not in listed(config)
    kiosk = VisitController(config)
    try:
        kiosk.login(OFFICER, NEW_PIN)
        assert not kiosk.must_set_pin
    finally:
        kiosk.close()
