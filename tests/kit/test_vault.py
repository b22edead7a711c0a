"""The vault: key files, sealed envelopes, PIN slots."""

from __future__ import annotations

import os
from pathlib import Path

import cbor2
import pytest

from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from sync.envelope import (
    SIGN_DOMAIN,
    KitKeys,
    OfficeKeys,
    OfficePublicKeys,
    canonical,
    load_kit_sign_key,
    open_sealed,
    read_key_file,
    seal,
)
from sync.errors import KeyFileError, VaultError

CHEAP = Argon2Cost(opslimit=1, memlimit=8 * 1024 * 1024)


# -- key files -------------------------------------------------------------------------------


def test_key_files_round_trip_and_secret_files_are_0600(tmp_path: Path) -> None:
    office = OfficeKeys.generate()
    office.save(tmp_path)
    assert (tmp_path / "office-seal.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "office-sign.key").stat().st_mode & 0o777 == 0o600
    loaded = OfficeKeys.load(tmp_path)
    assert bytes(loaded.seal) == bytes(office.seal)
    assert bytes(OfficePublicKeys.load(tmp_path).sign) == bytes(office.sign.verify_key)


def test_secret_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    KitKeys.generate().save(tmp_path)
    os.chmod(tmp_path / "kit-sign.key", 0o644)
    with pytest.raises(KeyFileError) as info:
        load_kit_sign_key(tmp_path)
    assert "readable by others" in info.value.text("en")
    assert "chmod 600" in info.value.text("en")
    assert str(tmp_path / "kit-sign.key") in info.value.text("id")


def test_missing_key_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as info:
        OfficeKeys.load(tmp_path)
    assert str(tmp_path / "office-seal.key") in info.value.text("en")
    assert "office keygen" in info.value.text("en")


def test_secret_key_is_never_overwritten(tmp_path: Path) -> None:
    KitKeys.generate().save(tmp_path)
    before = (tmp_path / "kit-sign.key").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        KitKeys.generate().save(tmp_path)
    assert (tmp_path / "kit-sign.key").read_bytes() == before


def test_key_of_the_wrong_kind_or_damaged_is_refused(tmp_path: Path) -> None:
    OfficeKeys.generate().save(tmp_path)
    with pytest.raises(KeyFileError, match="office-seal-public"):
        read_key_file(tmp_path / "office-seal.pub", "kit-box-public", secret=False)
    bad = tmp_path / "bad.pub"
    bad.write_text("jaranijo-key-v1 kit-box-public AAAA\n")
    with pytest.raises(KeyFileError, match="damaged"):
        read_key_file(bad, "kit-box-public", secret=False)
    bad.write_bytes(b"\xff\xfe not a key")
    with pytest.raises(KeyFileError):
        read_key_file(bad, "kit-box-public", secret=False)


# -- sealed envelopes --------------------------------------------------------------------------


@pytest.fixture
def parties() -> tuple[OfficeKeys, KitKeys]:
    return OfficeKeys.generate(), KitKeys.generate()


def sealed_blob(office: OfficeKeys, kit: KitKeys) -> bytes:
    content = {"nik": "3505084107450003", "photo": bytes(range(256)) * 40}
    return seal(content, kind="recording", ids={"record_id": "0192-a", "kit_id": "kit-01"},
                recipient=office.seal_public, signer=kit.sign)


def test_sealing_round_trip(parties: tuple[OfficeKeys, KitKeys]) -> None:
    office, kit = parties
    opened = open_sealed(sealed_blob(office, kit), recipient=office.seal,
                         sender=kit.sign_public)
    assert opened.content["nik"] == "3505084107450003"
    assert opened.content["photo"] == bytes(range(256)) * 40
    assert opened.header["record_id"] == "0192-a"
    assert opened.header["kit_id"] == "kit-01"


def test_sealed_bytes_hold_no_plaintext(parties: tuple[OfficeKeys, KitKeys]) -> None:
    office, kit = parties
    blob = sealed_blob(office, kit)
    assert b"3505084107450003" not in blob
    assert bytes(range(256)) not in blob


def test_kit_cannot_open_its_own_sealed_record(parties: tuple[OfficeKeys, KitKeys]) -> None:
    office, kit = parties
    with pytest.raises(VaultError) as info:
        open_sealed(sealed_blob(office, kit), recipient=kit.box, sender=kit.sign_public)
    assert info.value.code == "not_for_this_key"


def _parts(blob: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges of the header, ciphertext and signature inside the envelope."""
    outer = cbor2.loads(blob)
    spans = {}
    for name in ("ct", "sig"):
        start = blob.index(outer[name])
        spans[name] = (start, start + len(outer[name]))
    header_bytes = canonical(outer["hdr"])
    start = blob.index(header_bytes)
    spans["hdr"] = (start, start + len(header_bytes))
    return spans


@pytest.mark.parametrize("part", ["hdr", "ct", "sig"])
@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_flipped_byte_is_rejected(parties: tuple[OfficeKeys, KitKeys], part: str,
                                  where: float) -> None:
    office, kit = parties
    blob = bytearray(sealed_blob(office, kit))
    start, end = _parts(bytes(blob))[part]
    position = start + int((end - start - 1) * where)
    blob[position] ^= 0x01
    with pytest.raises(VaultError) as info:
        open_sealed(bytes(blob), recipient=office.seal, sender=kit.sign_public)
    assert info.value.code in {"bad_signature", "damaged", "version"}
    assert info.value.text("en")


def test_truncated_or_garbage_envelope_is_rejected(parties: tuple[OfficeKeys, KitKeys]) -> None:
    office, kit = parties
    blob = sealed_blob(office, kit)
    for bad in (blob[:-1], blob[: len(blob) // 2], b"", b"\x00" * 10, b"not cbor at all"):
        with pytest.raises(VaultError) as info:
            open_sealed(bad, recipient=office.seal, sender=kit.sign_public)
        assert info.value.code in {"damaged", "bad_signature"}


def test_signature_by_another_kit_is_rejected(parties: tuple[OfficeKeys, KitKeys]) -> None:
    office, kit = parties
    other = KitKeys.generate()
    with pytest.raises(VaultError) as info:
        open_sealed(sealed_blob(office, kit), recipient=office.seal, sender=other.sign_public)
    assert info.value.code == "bad_signature"


def test_ciphertext_moved_under_another_header_is_rejected(
        parties: tuple[OfficeKeys, KitKeys]) -> None:
    """Even a validly signed envelope must carry the ids its ciphertext was sealed with."""
    office, kit = parties
    outer = cbor2.loads(sealed_blob(office, kit))
    header = dict(outer["hdr"], record_id="0192-b")
    signature = kit.sign.sign(canonical([SIGN_DOMAIN, header, outer["ct"]])).signature
    forged = canonical({"hdr": header, "ct": outer["ct"], "sig": signature})
    with pytest.raises(VaultError) as info:
        open_sealed(forged, recipient=office.seal, sender=kit.sign_public)
    assert info.value.code == "header_mismatch"


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
    key = vault.initialise("P-0001", "482913")
    vault.add_officer(key, "P-0002", "771204")
    blob = key.encrypt(b"Sumiati binti Karto", "target:t1")
    for officer, pin in (("P-0001", "482913"), ("P-0002", "771204")):
        assert vault.unlock(officer, pin).decrypt(blob, "target:t1") == b"Sumiati binti Karto"


def test_wrong_pin_gives_no_plaintext(store: Store) -> None:
    vault = PinVault(store, CHEAP, clock=FakeClock())
    vault.initialise("P-0001", "482913")
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "482914")
    assert info.value.code == "wrong_pin"
    assert "4" in info.value.text("en")  # attempts left
    with pytest.raises(VaultError) as info:
        vault.unlock("P-9999", "482913")  # unknown officer: the same answer
    assert info.value.code == "wrong_pin"


def test_data_bound_to_its_row(store: Store) -> None:
    key = PinVault(store, CHEAP).initialise("P-0001", "482913")
    blob = key.encrypt(b"alamat", "target:t1")
    with pytest.raises(VaultError):
        key.decrypt(blob, "target:t2")


def test_rate_limit_then_lockout(store: Store) -> None:
    clock = FakeClock()
    vault = PinVault(store, CHEAP, max_attempts=4, clock=clock)
    vault.initialise("P-0001", "482913")
    with pytest.raises(VaultError):
        vault.unlock("P-0001", "000000")
    with pytest.raises(VaultError):  # second failure straight away is allowed
        vault.unlock("P-0001", "000001")
    with pytest.raises(VaultError) as info:  # now a wait is due, even for the right PIN
        vault.unlock("P-0001", "482913")
    assert info.value.code == "pin_wait"
    clock.now += 2.1
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "000002")
    assert info.value.code == "wrong_pin"
    clock.now += 4.1
    with pytest.raises(VaultError) as info:
        vault.unlock("P-0001", "000003")
    assert info.value.code == "locked_out"
    clock.now += 3600
    with pytest.raises(VaultError) as info:  # locked: even the right PIN is refused
        vault.unlock("P-0001", "482913")
    assert info.value.code == "locked_out"
    vault.unlock_officer("P-0001")
    assert vault.unlock("P-0001", "482913").raw()


def test_success_resets_the_count(store: Store) -> None:
    clock = FakeClock()
    vault = PinVault(store, CHEAP, max_attempts=3, clock=clock)
    vault.initialise("P-0001", "482913")
    with pytest.raises(VaultError):
        vault.unlock("P-0001", "000000")
    vault.unlock("P-0001", "482913")
    assert store.pin_failures("P-0001") == (0, 0.0)


def test_attempt_is_counted_before_the_pin_is_checked(store: Store, monkeypatch) -> None:
    """Pulling the power during the Argon2 work must not give a free guess."""
    vault = PinVault(store, CHEAP, clock=FakeClock())
    vault.initialise("P-0001", "482913")

    def power_cut(*_args: object) -> bytes:
        raise SystemExit("power cut")

    monkeypatch.setattr("kit.vault.derive_slot_key", power_cut)
    with pytest.raises(SystemExit):
        vault.unlock("P-0001", "123123")
    assert store.pin_failures("P-0001")[0] == 1


def test_secrets_need_the_data_key(store: Store) -> None:
    vault = PinVault(store, CHEAP)
    key = vault.initialise("P-0001", "482913")
    box = KitKeys.generate().box
    vault.put_secret(key, "kit-box", bytes(box))
    assert bytes(box) not in store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()
    assert vault.get_secret(vault.unlock("P-0001", "482913"), "kit-box") == bytes(box)


def test_crypto_erase_makes_every_pin_useless(store: Store) -> None:
    vault = PinVault(store, CHEAP)
    key = vault.initialise("P-0001", "482913")
    vault.put_secret(key, "kit-box", b"k" * 32)
    vault.crypto_erase()
    with pytest.raises(VaultError):
        vault.unlock("P-0001", "482913")
    with pytest.raises(VaultError):
        vault.get_secret(key, "kit-box")


@pytest.mark.parametrize("pin", ["12345", "1234567890123", "12a456", "١٢٣٤٥٦", ""])
def test_bad_pin_format_is_refused(store: Store, pin: str) -> None:
    with pytest.raises(VaultError) as info:
        PinVault(store, CHEAP).initialise("P-0001", pin)
    assert info.value.code == "pin_format"
