"""Provisioning: give a kit its identity, keys, store, first officer and configuration.

``jaranijo provision`` is a thin shell over :func:`provision_kit`; the demo
and the tests call it directly.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.pwhash

from kit import keyring
from kit.config import KitConfig, config_from_dict, dump_config
from kit.store import Store
from kit.tpm import LockoutPolicy, Tpm
from kit.vault import Argon2Cost, PinVault, check_pin_format
from sync.envelope import KitKeys, OfficePublicKeys, fingerprint
from sync.errors import ConfigError, ValidationError
from sync.protocol import KIT_ID_RE


def check_kit_id(kit_id: str) -> None:
    """The technician's kit id, checked by the rule the protocol uses (it names topics and the
    broker user), with a message that says how to fix it."""
    if not KIT_ID_RE.match(kit_id):
        raise ValidationError(
            id=f"ID kit '{kit_id}' tidak sah",
            en=f"Kit id '{kit_id}' is not valid",
            hint_id="Gunakan 3-32 huruf kecil, angka atau '-', mis. blitar-kit-01",
            hint_en="Use 3-32 lower-case letters, digits or '-', e.g. blitar-kit-01",
            code="kit_id",
        )


def argon2_cost(config: KitConfig) -> Argon2Cost:
    return Argon2Cost(config.security.argon2_opslimit,
                      config.security.argon2_memlimit_mib * 1024 * 1024)


def open_vault(config: KitConfig, store: Store) -> PinVault:
    return PinVault(store, argon2_cost(config), config.security.pin_max_attempts,
                    tcti=keyring.tcti(config))


TECHNICIAN_PIN_DIGITS = 8


def generate_technician_pin() -> str:
    """A random technician PIN (8 digits), printed once at provisioning."""
    return "".join(secrets.choice("0123456789") for _ in range(TECHNICIAN_PIN_DIGITS))


def hash_technician_pin(pin: str, cost: Argon2Cost) -> str:
    """The Argon2id string kept in ``[ui] technician_pin_hash`` (never the PIN itself).
    It guards a menu, not data, so 6-12 digits with or without a TPM."""
    check_pin_format(pin, tpm=True)
    return nacl.pwhash.argon2id.str(pin.encode("utf-8"), opslimit=cost.opslimit,
                                    memlimit=cost.memlimit).decode("ascii")


@dataclass(frozen=True)
class Provisioned:
    config: KitConfig
    config_path: Path
    kit_keys: KitKeys
    # The technician PIN when provisioning made one up (shown once, kept nowhere), else "".
    generated_technician_pin: str = ""
    security: str = "software"  # how the kit keeps its keys: "tpm" or "software"
    # The TPM's new lockout code (clears a PIN lockout early), shown once for the
    # office's safe; "" when the TPM already had one or there is no TPM.
    tpm_lockout_code: str = ""

    def summary(self) -> list[str]:
        keys = self.config.keys_dir
        tech = ([f"Technician PIN (shown only now, write it down): "
                 f"{self.generated_technician_pin}"] if self.generated_technician_pin else [])
        if self.tpm_lockout_code:
            tech.append(f"TPM lockout code (shown only now, for the office's safe): "
                        f"{self.tpm_lockout_code}")
        mode = ("keys sealed in the TPM" if self.security == "tpm" else
                "NO TPM: software key slots (weaker; PINs of 10+ characters)")
        return [*tech,
            f"Kit {self.config.kit.id} provisioned in {self.config.data_dir} ({mode})",
            f"  config       {self.config_path}",
            f"  kit sign key {fingerprint(bytes(self.kit_keys.sign_public))}",
            f"  kit box key  {fingerprint(bytes(self.kit_keys.box.public_key))}",
            f"Copy {keys}/kit-sign.pub and {keys}/kit-box.pub to the office.",
        ]


def provision_kit(*, kit_id: str, data_dir: Path, office_public: Path, officer: str,
                  pin: str, technician_pin: str | None = None,
                  broker_password: str | None = None,
                  config_path: Path | None = None,
                  settings: dict[str, Any] | None = None) -> Provisioned:
    """Create everything a new kit needs; refuses to touch a kit already provisioned.

    ``technician_pin`` opens the technician menu; without one a random PIN is made
    (returned once in :attr:`Provisioned.generated_technician_pin`). Only its Argon2id
    hash is written, to ``[ui] technician_pin_hash``. With a TPM (``security.tpm``)
    the officer's slot and the machine secrets (``broker_password``, the agent's key)
    are sealed in it and the TPM's lockout policy is set; without one, the PIN must
    be at least 10 characters and the secrets are 0600 files. ``settings`` is extra
    configuration (same shape as the TOML file) merged over the defaults, e.g. device
    ports on a bench.
    """
    check_kit_id(kit_id)
    data_dir = data_dir.resolve()
    config_path = config_path or data_dir / "kit.toml"
    if config_path.exists():
        raise ConfigError(
            id=f"{config_path} sudah ada; kit ini sudah disiapkan",
            en=f"{config_path} already exists; this kit is already provisioned",
            hint_id="Pindahkan berkas lama bila memang ingin menyiapkan ulang",
            hint_en="Move the old file away if you really mean to provision again",
        )
    office = OfficePublicKeys.load(office_public)
    raw: dict[str, Any] = {k: dict(v) for k, v in (settings or {}).items()}
    raw.setdefault("kit", {}).update({"id": kit_id, "data_dir": str(data_dir)})
    generated = "" if technician_pin else generate_technician_pin()
    draft = config_from_dict(raw)
    where = keyring.tcti(draft)
    check_pin_format(pin, tpm=where is not None)
    lockout_code = ""
    if where is not None:
        with Tpm(where) as tpm:
            lockout_code = tpm.take_lockout(LockoutPolicy()) or ""
    tech_hash = hash_technician_pin(technician_pin or generated, argon2_cost(draft))
    raw.setdefault("ui", {})["technician_pin_hash"] = tech_hash
    config = config_from_dict(raw)
    keys_dir = config.keys_dir
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    office.save(keys_dir)
    kit_keys = KitKeys.generate()
    kit_keys.save(keys_dir)
    keyring.put_machine_secret(config, keyring.AGENT_KEY, secrets.token_bytes(32))
    if broker_password:
        keyring.put_machine_secret(config, keyring.BROKER_PASSWORD,
                                   broker_password.encode("utf-8"))
    for key_file in keys_dir.iterdir():  # public keys too: every kit file is 0600
        os.chmod(key_file, 0o600)
    mode = keyring.security_mode(config)
    with Store.open(config.store_path) as store:
        vault = open_vault(config, store)
        data_key = vault.initialise(officer, pin)
        # Both secret keys live under the data key: only an officer's session seals
        # records (kit-sign) and opens assignments (kit-box).
        vault.put_secret(data_key, "kit-box", bytes(kit_keys.box))
        vault.put_secret(data_key, "kit-sign", bytes(kit_keys.sign))
        data_key.forget()
        store.set_status("kit_id", kit_id)
        store.set_status("security_mode", mode)
        store.audit("provisioned", subject=kit_id, detail=mode)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(dump_config(config))
    config.source = str(config_path)
    return Provisioned(config, config_path, kit_keys, generated, mode, lockout_code)
