"""Secrets the kit needs with no officer present, bound to the kit's TPM where it has one.

The officers' data key (:mod:`kit.vault`) opens only with a PIN. Two things must work
unattended, by the agent, before anyone logs in: the broker password, and the key that
keeps the agent's own place data at rest (the last GNSS fix it shares with the kiosk,
the track driven while offline). These are *machine secrets*:

- with a TPM (``security.tpm`` finds one: mode ``tpm``), each is a TPM-sealed object
  kept in ``keys/<name>.tpm``; the blob opens only in this kit's chip, so a copy of the
  SD card yields nothing;
- without one (a development PC: mode ``software``), each is a 0600 file in ``keys/``,
  and the kit says it runs in the weaker mode (``jaranijo status``, the self-test, its
  status message to the office).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from kit.vault import DataKey
from sync.envelope import read_secret_bytes, read_secret_file

if TYPE_CHECKING:
    from kit.config import KitConfig

AGENT_KEY = "agent-key"
BROKER_PASSWORD = "mqtt-password"


def tcti(config: KitConfig) -> str | None:
    """The TPM this kit uses (a TCTI string), or None."""
    from kit.tpm import resolve_tcti

    return resolve_tcti(config.security.tpm)


def security_mode(config: KitConfig) -> str:
    """``tpm`` or ``software``: see the module's docstring."""
    return "tpm" if tcti(config) else "software"


def security_line(config: KitConfig, lang: str = "id") -> tuple[bool, str]:
    """How the kit keeps its keys, for ``status`` and the self-test: (as it should be, text).
    No secret in it; with a TPM, its PIN-failure count."""
    from kit.tpm import Tpm

    where = tcti(config)
    if where is None:
        return False, ("software: NO TPM, weaker mode (PIN slots open to offline guessing)"
                       if lang == "en" else
                       "perangkat lunak: TANPA TPM, mode lebih lemah (slot PIN dapat ditebak "
                       "di luar kit)")
    with Tpm(where) as tpm:
        state = tpm.lockout_state()
    if lang == "en":
        locked = ", LOCKED" if state.locked else ""
        return not state.locked, (f"tpm ({where}): PIN failures {state.failures}/"
                                  f"{state.max_tries}{locked}, one forgiven every "
                                  f"{state.recovery_s} s")
    locked = ", TERKUNCI" if state.locked else ""
    return not state.locked, (f"tpm ({where}): PIN salah {state.failures}/{state.max_tries}"
                              f"{locked}, satu dimaafkan tiap {state.recovery_s} detik")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _read_private(path: Path) -> bytes:
    return read_secret_bytes(path, path.name)


def put_machine_secret(config: KitConfig, name: str, data: bytes) -> Path:
    """Keep ``data`` as the machine secret ``name``: sealed in the TPM, or a 0600 file."""
    from kit.tpm import Tpm

    where = tcti(config)
    if where is None:
        path = config.keys_dir / name
        _write_private(path, data)
        return path
    with Tpm(where) as tpm:
        blob = tpm.seal(data)
    path = config.keys_dir / f"{name}.tpm"
    _write_private(path, blob)
    return path


def machine_secret(config: KitConfig, name: str) -> bytes | None:
    """The machine secret ``name``, or None when the kit has none of that name."""
    from kit.tpm import Tpm

    sealed = config.keys_dir / f"{name}.tpm"
    if sealed.exists():
        where = tcti(config)
        if where is None:
            from sync.errors import VaultError

            raise VaultError(
                id=f"Rahasia '{name}' tersegel di TPM, tetapi TPM tidak ada",
                en=f"Secret '{name}' is sealed in the TPM, but there is no TPM",
                hint_id="Periksa modul TPM dan security.tpm di kit.toml",
                hint_en="Check the TPM module and security.tpm in kit.toml",
                code="tpm_unavailable")
        with Tpm(where) as tpm:
            return tpm.unseal(_read_private(sealed))
    plain = config.keys_dir / name
    return _read_private(plain) if plain.exists() else None


def agent_key(config: KitConfig) -> DataKey:
    """The key for the agent's place data at rest (encrypt with a context per use);
    made on first use."""
    raw = machine_secret(config, AGENT_KEY)
    if raw is None or len(raw) != 32:
        raw = secrets.token_bytes(32)
        put_machine_secret(config, AGENT_KEY, raw)
    return DataKey(raw)


def broker_password(config: KitConfig) -> str | None:
    """The kit's broker password: the machine secret, else ``mqtt.password_file`` (a plain
    file named in the configuration), else None (log in without one)."""
    raw = machine_secret(config, BROKER_PASSWORD)
    if raw is not None:
        return raw.decode("utf-8").strip()
    if config.mqtt.password_file:
        return read_secret_file(Path(config.mqtt.password_file), "mqtt.password_file")
    return None
