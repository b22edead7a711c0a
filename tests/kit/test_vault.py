"""The vault's PIN slots (:mod:`kit.vault`): one data key, opened by each officer's PIN.

Key files and sealed envelopes live in :mod:`sync.envelope`; their tests are in
``tests/sync/test_envelope.py``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from sync.envelope import KitKeys
from sync.errors import VaultError

CHEAP = Argon2Cost(opslimit=1, memlimit=8 * 1024 * 1024)


# -- PIN slots ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "kit.db")
    yield s
    s.close()


def test_right_pin_unlocks_the_same_data_key(store: Store) -> None:
    vault = PinVault(store, CHEAP)
    key = vault.initialise("P-0001", "4829135071")
    vault.add_officer(key, "P-0002", "7712046183")
    blob = key.encrypt(b"Sumiati binti Karto", "target:t1")
    for officer, pin in (("P-0001", "4829135071"), ("P-0002", "7712046183")):
        assert vault.unlock(officer, pin).decrypt(blob, "target:t1") == b"Sumiati binti Karto"


def test_wrong_pin_gives_no_plaintext(store: Store) -> None:
    vault = PinVault(store, CHEAP, clock=FakeClock())
    vault.initialise("P-0001", "4829135071")
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "4829135072")
    assert info.value.code == "wrong_pin"
    assert "4" in info.value.text("en")  # attempts left
    with pytest.raises(VaultError) as info:
        vault.unlock("P-9999", "4829135071")  # unknown officer: the same answer
    assert info.value.code == "wrong_pin"


def test_data_bound_to_its_row(store: Store) -> None:
    key = PinVault(store, CHEAP).initialise("P-0001", "4829135071")
    blob = key.encrypt(b"alamat", "target:t1")
    with pytest.raises(VaultError):
        key.decrypt(blob, "target:t2")


def test_rate_limit_then_lockout(store: Store) -> None:
    clock = FakeClock()
    vault = PinVault(store, CHEAP, max_attempts=4, clock=clock)
    vault.initialise("P-0001", "4829135071")
    with pytest.raises(VaultError):
        vault.unlock("P-0001", "0000000000")
    with pytest.raises(VaultError):  # second failure straight away is allowed
        vault.unlock("P-0001", "0000000001")
    with pytest.raises(VaultError) as info:  # now a wait is due, even for the right PIN
        vault.unlock("P-0001", "4829135071")
    assert info.value.code == "pin_wait"
    clock.now += 2.1
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "0000000002")
    assert info.value.code == "wrong_pin"
    clock.now += 4.1
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "0000000003")
    assert info.value.code == "locked_out"
    clock.now += 3600
    with pytest.raises(VaultError) as info:  # locked: even the right PIN is refused
        vault.unlock("P-0001", "4829135071")
    assert info.value.code == "locked_out"
    vault.unlock_officer("P-0001")
    assert vault.unlock("P-0001", "4829135071").raw()


def test_success_resets_the_count(store: Store) -> None:
    clock = FakeClock()
    vault = PinVault(store, CHEAP, max_attempts=3, clock=clock)
    vault.initialise("P-0001", "4829135071")
    with pytest.raises(VaultError):
        vault.unlock("P-0001", "0000000000")
    vault.unlock("P-0001", "4829135071")
    assert store.pin_failures("P-0001") == (0, 0.0)


def test_attempt_is_counted_before_the_pin_is_checked(store: Store, monkeypatch) -> None:
    """Pulling the power during the Argon2 work must not give a free guess."""
    vault = PinVault(store, CHEAP, clock=FakeClock())
    vault.initialise("P-0001", "4829135071")

    def power_cut(*_args: object) -> bytes:
        raise SystemExit("power cut")

    monkeypatch.setattr("kit.vault.derive_slot_key", power_cut)
    with pytest.raises(SystemExit):
        vault.unlock("P-0001", "1231231231")
    assert store.pin_failures("P-0001")[0] == 1


def test_secrets_need_the_data_key(store: Store) -> None:
    vault = PinVault(store, CHEAP)
    key = vault.initialise("P-0001", "4829135071")
    box = KitKeys.generate().box
    vault.put_secret(key, "kit-box", bytes(box))
    assert bytes(box) not in store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()
    assert vault.get_secret(vault.unlock("P-0001", "4829135071"), "kit-box") == bytes(box)


def test_crypto_erase_makes_every_pin_useless(store: Store) -> None:
    vault = PinVault(store, CHEAP)
    key = vault.initialise("P-0001", "4829135071")
    vault.put_secret(key, "kit-box", b"k" * 32)
    vault.crypto_erase()
    with pytest.raises(VaultError):
        vault.unlock("P-0001", "4829135071")
    with pytest.raises(VaultError):
        vault.get_secret(key, "kit-box")


@pytest.mark.parametrize("pin", ["12345", "123456789", "12a456", "١٢٣٤٥٦", " 1234567890", ""])
def test_bad_pin_format_is_refused(store: Store, pin: str) -> None:
    with pytest.raises(VaultError) as info:
        PinVault(store, CHEAP).initialise("P-0001", pin)
    assert info.value.code == "pin_format"


# -- without a TPM: long PINs, and waits on the monotonic clock --------------------------------


def test_without_a_tpm_a_six_digit_pin_is_refused_with_the_reason(store: Store) -> None:
    """Finding 1: a 6-digit PIN behind Argon2id alone falls to offline guessing in a day."""
    vault = PinVault(store, CHEAP)
    assert vault.mode == "software"
    with pytest.raises(VaultError) as info:
        vault.initialise("P-0001", "482913")
    assert info.value.code == "pin_format"
    assert "no TPM" in info.value.text("en") and "10" in info.value.text("en")
    assert "tanpa TPM" in info.value.text("id")
    assert vault.initialise("P-0001", "kuda hijau 1991").raw()  # a passphrase will do


def test_a_corrected_wall_clock_changes_no_wait(store: Store, monkeypatch) -> None:
    """Finding 7: a Pi without RTC whose clock is put right at boot asked for 86,402 s."""
    vault = PinVault(store, CHEAP)  # the vault's own clock
    vault.initialise("P-0001", "4829135071")
    for wrong in ("0000000000", "0000000001"):
        with pytest.raises(VaultError):
            vault.unlock("P-0001", wrong)
    real_time = time.time
    monkeypatch.setattr("time.time", lambda: real_time() - 86_400)  # NTP puts it right
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "4829135071")
    assert info.value.code == "pin_wait"
    assert re.fullmatch(r"Wait [12] seconds before trying again\..*",
                        info.value.text("en")), info.value.text("en")


def test_after_a_reboot_a_pending_wait_starts_again_from_now(store: Store,
                                                             monkeypatch) -> None:
    clock = FakeClock()
    vault = PinVault(store, CHEAP, clock=clock)
    vault.initialise("P-0001", "4829135071")
    for wrong in ("0000000000", "0000000001", "0000000002"):
        clock.now += 10
        with pytest.raises(VaultError):
            vault.unlock("P-0001", wrong)
    # Rebooted: the monotonic clock starts near zero again, the boot id is new.
    monkeypatch.setattr("kit.vault.boot_id", lambda: "another-boot")
    clock.now = 5.0
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "4829135071")
    assert info.value.code == "pin_wait" and "Wait 4 seconds" in info.value.text("en")
    clock.now += 4.1
    assert vault.unlock("P-0001", "4829135071").raw()
