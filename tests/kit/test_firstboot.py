"""First-boot provisioning from the technician's file (kit/firstboot.py): a good file makes
a kit and is shredded; a bad field is refused with its reason and the file is kept."""

from __future__ import annotations

import base64
import copy
import json
import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from kit.config import load_config
from kit.firstboot import (
    PIN_CHANGE_KEY,
    ProvisionFileError,
    parse_provision_file,
    run_firstboot,
    shred,
)
from kit.provision import open_vault
from kit.store import Store
from sync.cli import main
from sync.envelope import OfficeKeys, fingerprint
from tests.conftest import FAST_ARGON2

OFFICE = OfficeKeys.generate()
SEAL = base64.b64encode(bytes(OFFICE.public.seal)).decode()
SIGN = base64.b64encode(bytes(OFFICE.public.sign)).decode()
GOOD: dict[str, Any] = {
    "kit": {"id": "blitar-kit-07", "language": "id"},
    "broker": {"url": "mqtts://broker.example.go.id:8883", "password": "kit-07-broker-pw"},
    "office": {"seal_public": SEAL, "sign_public": SIGN,
               "sign_fingerprint": fingerprint(bytes(OFFICE.public.sign))},
    "technician": {"pin": "97531864"},
    "officers": [{"id": "P-0001", "enrolment_code": "4829135071"},
                 {"id": "P-0002", "enrolment_code": "7391046285"}],
    "settings": {"security": FAST_ARGON2},
}


def toml_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value).lower() \
        if isinstance(value, bool) else str(value)


def dump(data: dict[str, Any]) -> str:
    """Just enough TOML for a provisioning file: tables, sub-tables, arrays of tables."""
    lines: list[str] = []

    def table(name: str, body: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        subs = {}
        for key, value in body.items():
            if isinstance(value, dict):
                subs[key] = value
            else:
                lines.append(f"{key} = {toml_value(value)}")
        for key, value in subs.items():
            table(f"{name}.{key}", value)

    for name, body in data.items():
        if isinstance(body, list):
            for entry in body:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in entry.items()]
        elif isinstance(body, dict):
            table(name, body)
        else:
            lines.insert(0, f"{name} = {toml_value(body)}")
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    boot = tmp_path / "boot"
    boot.mkdir(exist_ok=True)
    path = boot / "jaranijo-provision.toml"
    path.write_text(data if isinstance(data, str) else dump(data), encoding="utf-8")
    return path


def firstboot(tmp_path: Path, path: Path) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = run_firstboot(path, config_path=tmp_path / "etc" / "kit.toml",
                         data_dir=tmp_path / "kit", out=lines.append)
    return code, lines


def test_a_good_file_provisions_the_kit_and_is_shredded(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    code, lines = firstboot(tmp_path, path)
    assert code == 0, "\n".join(lines)
    assert not path.exists()
    assert list(path.parent.iterdir()) == []
    config = load_config(tmp_path / "etc" / "kit.toml")
    assert config.kit.id == "blitar-kit-07"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == \
        ("broker.example.go.id", 8883, True)
    assert config.mqtt.username == "blitar-kit-07"
    text = "\n".join(lines)
    # The fingerprints the technician compares with the office: the kit's new keys and the
    # office's as the kit now trusts them.
    assert fingerprint(bytes(OFFICE.public.seal)) in text
    assert fingerprint(bytes(OFFICE.public.sign)) in text
    assert "kit sign key" in text and "kit box key" in text
    assert "4829135071" not in text and "kit-07-broker-pw" not in text
    from kit import keyring

    assert keyring.broker_password(config) == "kit-07-broker-pw"
    with Store.open(config.store_path, create=False) as store:
        vault = open_vault(config, store)
        for officer in GOOD["officers"]:  # each code opens the kit once, to set a PIN
            vault.unlock(officer["id"], officer["enrolment_code"]).forget()
        assert store.status(PIN_CHANGE_KEY) == ["P-0001", "P-0002"]
    assert (config.keys_dir / "office-sign.pub").exists()


def test_keys_and_ca_from_files_beside_it(tmp_path: Path) -> None:
    from office.certs import make_ca

    boot = tmp_path / "boot"
    OFFICE.public.save(boot)
    ca = make_ca(tmp_path / "ca")
    (boot / "jaranijo-ca.crt").write_bytes(ca.cert.read_bytes())
    data = copy.deepcopy(GOOD)
    data["office"] = {"seal_public_file": "office-seal.pub",
                      "sign_public_file": "office-sign.pub"}
    data["broker"]["ca_file"] = "jaranijo-ca.crt"
    code, lines = firstboot(tmp_path, write(tmp_path, data))
    assert code == 0, "\n".join(lines)
    config = load_config(tmp_path / "etc" / "kit.toml")
    assert Path(config.mqtt.ca_file).read_bytes() == ca.cert.read_bytes()


def test_the_cli_provisions_from_the_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    me = pwd.getpwuid(os.getuid()).pw_name  # the service hands the kit to "jaranijo"
    code = main(["--config", str(tmp_path / "etc" / "kit.toml"), "firstboot", "--file",
                 str(path), "--data-dir", str(tmp_path / "kit"), "--owner", me])
    assert code == 0 and not path.exists()
    assert (tmp_path / "kit" / "kit.db").stat().st_uid == os.getuid()
    assert "Bandingkan sidik kunci" in capsys.readouterr().out


def change(**edits: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        where: Any = data
        for part in parents:
            where = where[int(part)] if isinstance(where, list) else where[part]
        if value is None:
            del where[last]
        else:
            where[last] = value
    return data


BAD = [
    ("kit.id", change(kit__id="Blitar Kit 7"), "huruf kecil", "lower-case"),
    ("kit.id", change(kit__id=None), "wajib diisi", "is required"),
    ("kit.language", change(kit__language="fr"), '"id" atau "en"', '"id" or "en"'),
    ("broker.url", change(broker__url="mqtt://broker.example.go.id:1883"), "TLS wajib",
     "TLS is required"),
    ("broker.url", change(broker__url="mqtts://:8883"), "nama server", "host name"),
    ("broker.url", change(broker__url="mqtts://host:99999"), "port", "port"),
    ("broker.password", change(broker__password="short"), "8 karakter", "8 characters"),
    ("broker.ca_pem", change(broker__ca_pem="not a certificate"), "bukan sertifikat",
     "not a PEM certificate"),
    ("office.seal_public", change(office__seal_public="bm90IGEga2V5"), "32 byte", "32-byte"),
    ("office.sign_public_file", change(office__sign_public=None,
                                       office__sign_public_file="missing.pub"),
     "tidak dapat dibaca", "cannot be read"),
    ("office.sign_fingerprint", change(office__sign_fingerprint="0000000000000000"),
     "tidak cocok", "does not match"),
    ("officers[1].enrolment_code", change(officers__0__enrolment_code="1234"), "10-12 angka",
     "10-12 digits"),
    ("officers[2].pin", change(officers__1__pin="123456"), "PIN tidak boleh",
     "no PINs in the file"),
    ("officers[2].id", change(officers__1__id="P-0001"), "dua kali", "twice"),
    ("officers", change(officers=None), "minimal satu petugas", "at least one officer"),
    ("technician.pin", change(technician__pin="12ab"), "6-12 angka", "6-12 digits"),
    ("settings", change(settings__security={"argon2_memlimit_mib": 0}), "tidak sah",
     "not valid"),
    ("settings.mqtt", change(settings__mqtt={"host": "x"}), "bagian lain", "other sections"),
    ("wifi", change(wifi={"ssid": "x"}), "tidak dikenal", "unknown section"),
    ("(file)", "kit = [ this is not toml", "TOML tidak sah", "invalid TOML"),
]


@pytest.mark.parametrize(("field", "data", "why_id", "why_en"), BAD,
                         ids=[f"{b[0]}-{n}" for n, b in enumerate(BAD)])
def test_a_bad_field_is_refused_with_its_reason_and_the_file_kept(
        tmp_path: Path, field: str, data: dict[str, Any] | str, why_id: str,
        why_en: str) -> None:
    path = write(tmp_path, data)
    before = path.read_bytes()
    code, lines = firstboot(tmp_path, path)
    assert code == 2
    assert path.read_bytes() == before, "a refused file must stay as the technician wrote it"
    [line] = [x for x in lines if x.strip().startswith(f"{field}:")]
    assert why_id in line and why_en in line, line
    assert not (tmp_path / "kit" / "kit.db").exists()
    assert not (tmp_path / "etc" / "kit.toml").exists()


def test_every_bad_field_is_listed_at_once(tmp_path: Path) -> None:
    data = change(kit__id="X", broker__password="short", officers__0__enrolment_code="1")
    with pytest.raises(ProvisionFileError) as refused:
        parse_provision_file(write(tmp_path, data))
    fields = [p.field for p in refused.value.problems]
    assert fields == ["kit.id", "broker.password", "officers[1].enrolment_code"]


def test_an_already_provisioned_kit_is_not_overwritten(tmp_path: Path) -> None:
    assert firstboot(tmp_path, write(tmp_path, GOOD))[0] == 0
    path = write(tmp_path, GOOD)
    code, lines = firstboot(tmp_path, path)
    assert code == 2 and path.exists()
    assert any("already" in line for line in lines)


def test_shred_overwrites_before_unlinking(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.toml"
    path.write_bytes(b"password = 'x'\n" * 10)
    seen: list[bytes] = []
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        seen.append(self.read_bytes())
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    shred(path)
    monkeypatch.undo()
    assert not path.exists()
    assert len(seen[0]) == 150 and b"password" not in seen[0]
