"""The kit's configuration: one TOML file, checked strictly.

A technician edits ``/etc/jaranijo/kit.toml`` by hand, so a typo must not
silently fall back to a default: an unknown key or a value of the wrong type
stops the program with one line naming the file, the key and the fix.

Example::

    [kit]
    id = "blitar-kit-01"
    data_dir = "/var/lib/jaranijo"

    [devices.fingerprint]
    port = "/dev/jaranijo/fingerprint"
    baud = 57600
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensors.settings import DevicesSection
from sync.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/jaranijo/kit.toml")


@dataclass
class KitSection:
    id: str = ""
    data_dir: str = "/var/lib/jaranijo"
    language: str = "id"


@dataclass
class SecuritySection:
    # Argon2id cost for unlocking the officer's key slot. 3 passes over 64 MiB
    # takes about 0.5 s on a Raspberry Pi 4 (see tests/bench/bench_core.py).
    argon2_opslimit: int = 3
    argon2_memlimit_mib: int = 64
    pin_max_attempts: int = 5
    idle_lock_minutes: int = 5
    # The TPM that guards the PIN slots and machine secrets (kit/tpm.py): "auto" uses
    # /dev/tpmrm0 when the kernel has one, "off" none, or a TCTI such as
    # "swtpm:host=127.0.0.1,port=2321". Read at provisioning and at every unlock.
    tpm: str = "auto"


@dataclass
class MqttSection:
    host: str = "localhost"
    # TLS on 8883 by default: the broker password must not cross the mobile network in
    # clear. ca_file is the office CA ('jaranijo office ca init'); empty means the
    # system's CA store (an office broker with a public certificate).
    port: int = 8883
    username: str = ""
    password_file: str = ""
    tls: bool = True
    ca_file: str = ""
    # An optional client certificate and key from the office CA (brokers with
    # require_certificate); the kit still logs in with its password.
    cert_file: str = ""
    key_file: str = ""


@dataclass
class UiSection:
    # Argon2id hash (nacl.pwhash.argon2id.str) of the technician menu's PIN, written by
    # provisioning; empty means the technician menu cannot be opened (no default PIN).
    technician_pin_hash: str = ""


@dataclass
class KitConfig:
    kit: KitSection = field(default_factory=KitSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    devices: DevicesSection = field(default_factory=DevicesSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    ui: UiSection = field(default_factory=UiSection)
    # The agent's timers and sizes; checked key by key by kit.agent.settings.AgentSettings
    # (kept there, beside the code they tune; see sync/PROTOCOL.md).
    agent: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file this came from; not a TOML key

    @property
    def data_dir(self) -> Path:
        return Path(self.kit.data_dir)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "kit.db"


def load_config(path: str | Path) -> KitConfig:
    """Read and check a kit configuration file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            id=f"Berkas konfigurasi {path} tidak ada",
            en=f"Configuration file {path} does not exist",
            hint_id="Jalankan 'jaranijo provision' atau beri --config BERKAS",
            hint_en="Run 'jaranijo provision' or pass --config FILE",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            id=f"{path}: bukan teks UTF-8",
            en=f"{path}: not UTF-8 text",
            hint_id="Simpan ulang berkas sebagai UTF-8",
            hint_en="Save the file again as UTF-8",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            id=f"{path}: TOML tidak sah ({exc})",
            en=f"{path}: invalid TOML ({exc})",
            hint_id="Perbaiki baris yang disebut",
            hint_en="Fix the line named",
        ) from None
    config = _build(KitConfig, raw, path, "")
    config.source = str(path)
    _check_values(config, path)
    return config


def config_from_dict(raw: dict[str, Any], origin: str = "<memory>") -> KitConfig:
    """Build a configuration from a mapping, with the same checks as a file."""
    config = _build(KitConfig, raw, Path(origin), "")
    config.source = origin
    _check_values(config, Path(origin))
    return config


def dump_config(config: KitConfig) -> str:
    """The configuration as TOML text (only what differs from nothing is omitted)."""
    lines: list[str] = []
    _dump(dataclasses.asdict(config), [], lines)
    return "\n".join(lines).strip() + "\n"


def _dump(data: dict[str, Any], prefix: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and k != "source"}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and scalars:
        lines.append(f"\n[{'.'.join(prefix)}]")
    for key, value in scalars.items():
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables.items():
        _dump(value, [*prefix, key], lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _build(cls: type, raw: Any, path: Path, where: str) -> Any:
    if not isinstance(raw, dict):
        raise _type_error(path, where, "a table", raw)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for key, value in raw.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            known = ", ".join(fields)
            suggestion_en = f"did you mean '{close[0]}'?" if close else f"known keys: {known}"
            suggestion_id = f"maksudnya '{close[0]}'?" if close else f"kunci yang dikenal: {known}"
            raise ConfigError(
                id=f"{path}: kunci tidak dikenal '{name}'",
                en=f"{path}: unknown key '{name}'",
                hint_id=f"Hapus atau perbaiki; {suggestion_id}",
                hint_en=f"Remove or correct it; {suggestion_en}",
            )
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            values[key] = _build(kind, value, path, name)
        else:
            values[key] = _coerce(kind, value, path, name)
    return cls(**values)


def _coerce(kind: Any, value: Any, path: Path, name: str) -> Any:
    if isinstance(kind, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise _type_error(path, name, "a whole number", value)
    if typing.get_origin(kind) is dict:
        kind = dict
    if not isinstance(value, kind):
        expected = {str: "text in quotes", int: "a whole number", float: "a number",
                    bool: "true or false"}.get(kind, kind.__name__)
        raise _type_error(path, name, expected, value)
    return value


def _type_error(path: Path, name: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(
        id=f"{path}: '{name}' harus {expected} (bukan {value!r})",
        en=f"{path}: '{name}' must be {expected} (not {value!r})",
        hint_id="Perbaiki nilainya",
        hint_en="Correct the value",
    )


def _check_values(config: KitConfig, path: Path) -> None:
    problems: list[tuple[str, str]] = []
    if config.kit.language not in ("id", "en"):
        problems.append(("kit.language", '"id" or "en"'))
    if config.security.pin_max_attempts < 1:
        problems.append(("security.pin_max_attempts", "at least 1"))
    if config.security.argon2_opslimit < 1:
        problems.append(("security.argon2_opslimit", "at least 1"))
    if not 1 <= config.security.argon2_memlimit_mib <= 4096:
        problems.append(("security.argon2_memlimit_mib", "between 1 and 4096"))
    if config.devices.fingerprint.baud not in [9600 * n for n in range(1, 13)]:
        problems.append(("devices.fingerprint.baud", "9600 x N for N 1..12 (57600 or 115200)"))
    if config.devices.battery.kind not in ("sysfs", "ina219", "emulated", "none"):
        problems.append(("devices.battery.kind", '"sysfs", "ina219", "emulated" or "none"'))
    if config.devices.camera.kind not in ("picamera2", "opencv", "emulated"):
        problems.append(("devices.camera.kind", '"picamera2", "opencv" or "emulated"'))
    if not 1 <= config.mqtt.port <= 65535:
        problems.append(("mqtt.port", "between 1 and 65535 (8883 for TLS)"))
    if problems:
        key, rule = problems[0]
        raise ConfigError(
            id=f"{path}: nilai '{key}' tidak sah",
            en=f"{path}: value of '{key}' is not valid",
            hint_id=f"Harus {rule}",
            hint_en=f"It must be {rule}",
        )
    _check_tls_files(config.mqtt, path)


def _check_tls_files(mqtt: MqttSection, path: Path) -> None:
    """The [mqtt] TLS keys must make sense together (cert and key both, only with TLS)."""
    if not mqtt.tls:
        if mqtt.cert_file or mqtt.key_file:
            raise ConfigError(
                id=f"{path}: 'mqtt.cert_file' dan 'mqtt.key_file' hanya berlaku dengan tls = true",
                en=f"{path}: 'mqtt.cert_file' and 'mqtt.key_file' only apply with tls = true",
                hint_id="Setel tls = true (port 8883) atau hapus kedua kunci itu",
                hint_en="Set tls = true (port 8883) or remove both keys",
            )
        return
    if bool(mqtt.cert_file) != bool(mqtt.key_file):
        raise ConfigError(
            id=f"{path}: 'mqtt.cert_file' dan 'mqtt.key_file' harus diisi berdua",
            en=f"{path}: 'mqtt.cert_file' and 'mqtt.key_file' must be given together",
            hint_id="Isi keduanya (dari 'jaranijo office ca client') atau hapus keduanya",
            hint_en="Give both (from 'jaranijo office ca client') or remove both",
        )
    # Whether the files can be read is the agent's question, when it connects (it names
    # them in its log and retries): a missing certificate must not stop the kiosk, which
    # records visits offline without the link.
