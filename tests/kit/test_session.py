"""Officer sessions: PIN login, idle lock, fingerprint re-unlock, forgetting the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.session import OfficerSession
from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from sync.errors import VaultError

CHEAP = Argon2Cost(opslimit=1, memlimit=8 * 1024 * 1024)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session(tmp_path: Path):
    store = Store.open(tmp_path / "kit.db")
    vault = PinVault(store, CHEAP)
    key = vault.initialise("P-0001", "4829135071")
    vault.add_officer(key, "P-0002", "7712046183")
    clock = Clock()
    yield OfficerSession(vault, store, idle_lock_minutes=5, forget_minutes=30, clock=clock), clock
    store.close()


def test_pin_login_then_idle_lock(session) -> None:
    s, clock = session
    assert s.locked
    s.login("P-0001", "4829135071")
    assert not s.locked and s.officer == "P-0001"
    clock.now += 4 * 60
    s.touch()  # activity restarts the idle timer
    clock.now += 4 * 60
    assert not s.locked
    clock.now += 61
    assert s.locked
    with pytest.raises(VaultError) as info:
        _ = s.data_key
    assert info.value.code == "locked"


def test_fingerprint_reopens_only_a_session_started_by_pin(session) -> None:
    s, clock = session
    with pytest.raises(VaultError) as info:
        s.unlock_by_fingerprint(lambda: (3, 120))
    assert info.value.code == "pin_required"
    s.login("P-0002", "7712046183")
    assert s.enroll_fingerprint(lambda: 3) == 3
    s.lock()
    with pytest.raises(VaultError) as info:
        s.unlock_by_fingerprint(lambda: None)  # no match on the sensor
    assert info.value.code == "finger_unknown"
    with pytest.raises(VaultError):
        s.unlock_by_fingerprint(lambda: (7, 90))  # a template no officer owns
    assert s.unlock_by_fingerprint(lambda: (3, 120)) == "P-0002"
    assert not s.locked
    # Locked for longer than the forget time: the key is gone, only a PIN helps.
    clock.now += 5 * 60 + 30 * 60 + 1
    assert s.locked
    with pytest.raises(VaultError) as info:
        s.unlock_by_fingerprint(lambda: (3, 120))
    assert info.value.code == "pin_required"


def test_wrong_pin_in_a_session_is_counted(session) -> None:
    s, _ = session
    with pytest.raises(VaultError) as info:
        s.login("P-0001", "0000000000")
    assert info.value.code == "wrong_pin"
    assert s.locked and s.officer is None
