"""Key files and sealed envelopes (:mod:`sync.envelope`): what the kit and the office share.

Key files are refused when damaged, of the wrong kind or readable by others; a sealed
envelope opens only for its recipient, from its signer, with every byte as it was sealed.
"""

from __future__ import annotations

import os
from pathlib import Path

import cbor2
import pytest

from sync.envelope import (
    SIGN_DOMAIN,
    KitKeys,
    OfficeKeys,
    OfficePublicKeys,
    canonical,
    open_sealed,
    read_key_file,
    seal,
)
from sync.errors import KeyFileError, VaultError

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
    OfficeKeys.generate().save(tmp_path)
    os.chmod(tmp_path / "office-sign.key", 0o644)
    with pytest.raises(KeyFileError) as info:
        OfficeKeys.load(tmp_path)
    assert "readable by others" in info.value.text("en")
    assert "chmod 600" in info.value.text("en")
    assert str(tmp_path / "office-sign.key") in info.value.text("id")


def test_kit_keys_leave_no_secret_in_a_file(tmp_path: Path) -> None:
    """Both kit secret keys go to the vault (under the officers' data key), none to disk."""
    keys = KitKeys.generate()
    keys.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit-box.pub", "kit-sign.pub"]
    for path in tmp_path.iterdir():
        assert bytes(keys.sign) not in path.read_bytes()
        assert bytes(keys.box) not in path.read_bytes()


def test_missing_key_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as info:
        OfficeKeys.load(tmp_path)
    assert str(tmp_path / "office-seal.key") in info.value.text("en")
    assert "office keygen" in info.value.text("en")


def test_secret_key_is_never_overwritten(tmp_path: Path) -> None:
    OfficeKeys.generate().save(tmp_path)
    before = (tmp_path / "office-sign.key").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        OfficeKeys.generate().save(tmp_path)
    assert (tmp_path / "office-sign.key").read_bytes() == before


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
