"""PIN slots and machine secrets sealed in a TPM (kit/tpm.py), with Debian's swtpm.

A thief with a copy of the SD card gets nothing: no name, NIK, draft, key or password
appears in any file, the right PIN itself opens nothing without this TPM, and another TPM
refuses the blobs. On the kit itself the TPM's own dictionary-attack lockout stops PIN
guessing, whatever is done to the files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nacl.bindings as sodium
import nacl.exceptions
import pytest

from kit import keyring
from kit.config import load_config
from kit.provision import Provisioned, open_vault, provision_kit
from kit.records import store_assignment
from kit.store import Store
from kit.tpm import SoftwareTpm, Tpm
from kit.vault import SLOT_AAD, Argon2Cost, derive_slot_key
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment
from sync.envelope import OfficeKeys
from sync.errors import VaultError

OFFICER, PIN = "P-0001", "482913"  # six digits are enough behind a TPM
PASSWORD = "kit-broker-password-7731"
DRAFT_TEXT = b"draft biometrics of the resident " * 8

pytestmark = pytest.mark.skipif(shutil.which("swtpm") is None, reason="needs Debian's swtpm")


@pytest.fixture
def software_tpm(tmp_path: Path) -> Iterator[SoftwareTpm]:
    tpm = SoftwareTpm(tmp_path / "tpm-state")
    tpm.start()
    try:
        yield tpm
    finally:
        tpm.stop()


def provision(tmp_path: Path, tcti: str) -> Provisioned:
    OfficeKeys.generate().save(tmp_path / "office")
    return provision_kit(kit_id="blitar-kit-01", data_dir=tmp_path / "kit",
                         office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
                         technician_pin="13572468", broker_password=PASSWORD,
                         settings={"security": {"tpm": tcti}})


def files_of(directory: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_copy_of_the_sd_card_yields_nothing(tmp_path: Path,
                                              software_tpm: SoftwareTpm) -> None:
    done = provision(tmp_path, software_tpm.tcti)
    assert done.security == "tpm" and len(done.tpm_lockout_code) == 32
    config = done.config
    assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    with Store.open(config.store_path) as store:
        vault = open_vault(config, store)
        key = vault.unlock(OFFICER, PIN)
        data_key = key.raw()
        store_assignment(store, key, assignment)
        store.put_draft("0193a2c4-0000-7000-8000-00000000d001", "ref-1", "photo",
                        key.encrypt(DRAFT_TEXT, "draft:x"), time.time() + 3600)
        key.forget()
    agent_key = keyring.agent_key(config).raw()
    assert keyring.broker_password(config) == PASSWORD  # the agent gets it, unattended

    stolen = tmp_path / "stolen"
    shutil.copytree(config.data_dir, stolen)
    copied = files_of(stolen)
    assert any(p.name == "kit.db" for p in copied) and any(p.suffix == ".tpm" for p in copied)
    looked_for = {"data key": data_key, "agent key": agent_key,
                  "broker password": PASSWORD.encode(),
                  "kit box secret": bytes(done.kit_keys.box),
                  "kit signing key": bytes(done.kit_keys.sign), "draft": DRAFT_TEXT[:32]}
    for target in assignment.targets:
        looked_for[f"name of {target.id}"] = target.name.encode()
        looked_for[f"NIK of {target.id}"] = target.nik.encode()
    for path, data in copied.items():
        for what, needle in looked_for.items():
            assert needle not in data, f"{what} in clear in {path.name}"
        assert (path.stat().st_mode & 0o777) == 0o600, path

    # Offline guessing: the slot has no Argon2 work to repeat, and even the right PIN
    # through the software route unwraps nothing.
    with Store.open(stolen / "kit.db") as copy:
        salt, opslimit, memlimit, wrapped, tpm_blob = copy.key_slot(OFFICER)  # type: ignore[misc]
    assert (opslimit, memlimit) == (0, 0) and tpm_blob
    for guess in (PIN, "000000", "123456"):
        slot_key = derive_slot_key(guess, salt, Argon2Cost(1, 8 * 1024 * 1024))
        with pytest.raises(nacl.exceptions.CryptoError):
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                wrapped[24:], SLOT_AAD + OFFICER.encode(), wrapped[:24], slot_key)

    # The copy on a PC with no TPM, or with a TPM of its own: the right PIN opens nothing.
    text = config.source and Path(config.source).read_text(encoding="utf-8")
    assert text and f'tpm = "{software_tpm.tcti}"' in text
    other = SoftwareTpm(tmp_path / "thiefs-tpm")
    other.start()
    try:
        for tcti, code in (("off", "tpm_unavailable"), (other.tcti, "tpm_foreign")):
            copy_config = stolen / f"kit-{code}.toml"
            copy_config.write_text(text.replace(str(config.data_dir), str(stolen))
                                   .replace(f'tpm = "{software_tpm.tcti}"', f'tpm = "{tcti}"'),
                                   encoding="utf-8")
            thief = load_config(copy_config)
            with Store.open(thief.store_path) as copy, pytest.raises(VaultError) as info:
                open_vault(thief, copy).unlock(OFFICER, PIN)
            assert info.value.code == code
            with pytest.raises(VaultError) as info:
                keyring.broker_password(thief)
            assert info.value.code == code
    finally:
        other.stop()


def test_the_tpm_lockout_holds_whatever_is_done_to_the_files(
        tmp_path: Path, software_tpm: SoftwareTpm) -> None:
    done = provision(tmp_path, software_tpm.tcti)
    config = done.config
    with Tpm(software_tpm.tcti) as tpm:
        max_tries = tpm.lockout_state().max_tries
    assert max_tries == 10
    # The thief on the kit itself: raises the kit's own limit and deletes its count
    # before every guess; the TPM counts anyway.
    config_text = config_path_text = Path(config.source).read_text(encoding="utf-8")
    Path(config.source).write_text(config_text.replace("pin_max_attempts = 5",
                                                       "pin_max_attempts = 1000"),
                                   encoding="utf-8")
    thief = load_config(config.source)
    codes = []
    with Store.open(thief.store_path) as store:
        vault = open_vault(thief, store)
        for guess in range(max_tries + 2):
            store.reset_pin_failures(OFFICER)
            with pytest.raises(VaultError) as info:
                vault.unlock(OFFICER, f"{guess:06d}")
            codes.append(info.value.code)
        assert codes[:max_tries] == ["wrong_pin"] * max_tries
        assert codes[max_tries:] == ["tpm_lockout"] * 2
        store.reset_pin_failures(OFFICER)
        with pytest.raises(VaultError) as info:
            vault.unlock(OFFICER, PIN)  # even the right PIN, until the lockout passes
        assert info.value.code == "tpm_lockout"
        assert "10 minutes" in info.value.text("en")
    # A restarted TPM (power cut) keeps its count.
    software_tpm.stop()
    software_tpm.start()
    Path(config.source).write_text(config_path_text.replace(
        config.security.tpm, software_tpm.tcti), encoding="utf-8")
    status = run_cli("--config", config.source, "status")
    assert "LOCKED" in status.stdout and f"PIN failures {max_tries}/{max_tries}" in status.stdout
    # The office's lockout code clears it: first a wrong one is refused.
    wrong = run_cli("--config", config.source, "tpm-unlock", "--code-stdin", stdin="00ff\n")
    assert wrong.returncode == 2 and "Wrong TPM lockout code" in wrong.stderr
    # (a wrong code locks the lockout code itself for a day: a TPM rule; so a fresh kit)


def test_the_lockout_code_clears_the_lockout(tmp_path: Path,
                                             software_tpm: SoftwareTpm) -> None:
    done = provision(tmp_path, software_tpm.tcti)
    config = done.config
    with Store.open(config.store_path) as store:
        vault = open_vault(config, store)
        for guess in range(10):
            store.reset_pin_failures(OFFICER)
            with pytest.raises(VaultError):
                vault.unlock(OFFICER, f"{guess:06d}")
    cleared = run_cli("--config", config.source, "tpm-unlock", "--code-stdin",
                      stdin=done.tpm_lockout_code + "\n")
    assert cleared.returncode == 0, cleared.stderr
    with Store.open(config.store_path) as store:
        store.reset_pin_failures(OFFICER)
        assert open_vault(config, store).unlock(OFFICER, PIN).raw()
    assert "PIN failures 0/10" in run_cli("--config", config.source, "status").stdout


def test_machine_secrets_work_while_pins_are_locked_out(tmp_path: Path,
                                                        software_tpm: SoftwareTpm) -> None:
    """PIN guessing must not stop the agent: its secrets are exempt from the lockout."""
    done = provision(tmp_path, software_tpm.tcti)
    with Store.open(done.config.store_path) as store:
        vault = open_vault(done.config, store)
        for guess in range(11):
            store.reset_pin_failures(OFFICER)
            with pytest.raises(VaultError):
                vault.unlock(OFFICER, f"{guess:06d}")
    assert keyring.broker_password(done.config) == PASSWORD
    assert len(keyring.agent_key(done.config).raw()) == 32


def test_a_second_officer_slot_is_sealed_too(tmp_path: Path, software_tpm: SoftwareTpm) -> None:
    done = provision(tmp_path, software_tpm.tcti)
    with Store.open(done.config.store_path) as store:
        vault = open_vault(done.config, store)
        key = vault.unlock(OFFICER, PIN)
        vault.add_officer(key, "P-0002", "771204")
        other = vault.unlock("P-0002", "771204")
        assert other.raw() == key.raw()
        assert store.key_slot("P-0002")[4]  # type: ignore[index]
        with pytest.raises(VaultError) as info:
            vault.add_officer(key, "P-0003", "12345")
        assert info.value.code == "pin_format"


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync.cli", "--lang", "en", *args],
                          capture_output=True, text=True, input=stdin, timeout=120)
