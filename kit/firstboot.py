"""First boot: provision a kit from the technician's file on the boot partition.

The technician writes ``jaranijo-provision.toml`` to the SD card's FAT boot partition
(``/boot/firmware/`` on a running kit) from any PC; on the kit's first boot
``jaranijo-firstboot.service`` runs ``jaranijo firstboot``, which:

1. parses the file and refuses it with a reason per field (Indonesian and English) when
   anything is wrong -- the file then stays, so the technician can fix it and reboot;
2. provisions the kit through :func:`kit.provision.provision_kit` (which generates the
   kit's own keys), gives every officer a PIN slot sealed with their one-time
   enrolment code, and marks those slots as needing a new PIN;
3. prints the key fingerprints (kit and office) for the technician to compare with the
   office's kit page;
4. only then shreds the file (overwritten with random bytes, synced, unlinked): it holds
   the broker password and the enrolment codes.

The file::

    [kit]
    id = "blitar-kit-01"
    language = "id"                       # "id" or "en"

    [broker]
    url = "mqtts://broker.example.go.id:8883"
    username = "blitar-kit-01"            # default: the kit id
    password = "the kit's broker password"
    ca_file = "jaranijo-ca.crt"           # or ca_pem = "-----BEGIN ..."; none: system CAs

    [office]
    seal_public = "base64 of 32 bytes"    # or seal_public_file = "office-seal.pub"
    sign_public = "base64 of 32 bytes"    # or sign_public_file = "office-sign.pub"
    seal_fingerprint = "5ea19465227f8f3a" # optional: refused unless the key matches
    sign_fingerprint = "f7566fde3f85d5a1"

    [[officers]]
    id = "P-0001"
    enrolment_code = "4829135071"         # 10-12 digits, used once: the officer sets a PIN

    [technician]
    pin = "97531864"                      # optional: made up and shown once when absent

    [settings]                            # optional: kit.toml tables (devices, security...)

Relative file names are relative to the provisioning file's folder.

One-time enrolment codes: :class:`kit.vault.PinVault` has no "must change" slot kind,
so each officer's slot is sealed with the code (a valid PIN: 10-12 digits passes both
the TPM and the software rule) and the officers are listed in the store status
``pin_change_required``. An officer on that list who logs in gets a "PIN change
required" session (:attr:`kit.session.OfficerSession.must_set_pin`): the kiosk shows its
"Buat PIN baru" screen and the kit refuses everything else until
:meth:`kit.visit.VisitController.set_pin` has re-sealed the slot with the officer's own PIN
(``PinVault.add_officer`` re-PINs it) and struck them off the list, in one transaction --
see the README section "First boot".
"""

from __future__ import annotations

import base64
import binascii
import os
import pwd
import re
import secrets
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kit.config import DEFAULT_CONFIG_PATH, KitConfig, config_from_dict, load_config
from sync.envelope import KEY_MAGIC, OfficePublicKeys, fingerprint
from sync.errors import JaranIjoError, ValidationError
from sync.protocol import KIT_ID_RE

DEFAULT_FILE = Path("/boot/firmware/jaranijo-provision.toml")
DEFAULT_DATA_DIR = Path("/var/lib/jaranijo")  # the services' StateDirectory=jaranijo
PIN_CHANGE_KEY = "pin_change_required"  # store status: officers whose slot holds a code
CODE_RE = re.compile(r"^[0-9]{10,12}$")
OFFICER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
TECH_PIN_RE = re.compile(r"^[0-9]{6,12}$")
KNOWN = {"kit": {"id", "language"},
         "broker": {"url", "username", "password", "ca_file", "ca_pem"},
         "office": {"seal_public", "sign_public", "seal_public_file", "sign_public_file",
                    "seal_fingerprint", "sign_fingerprint"},
         "technician": {"pin"}}
TOP = {"kit", "broker", "office", "officers", "technician", "settings"}


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field of the file, in both languages."""

    field: str
    id: str
    en: str

    def line(self) -> str:
        return f"{self.field}: {self.id} / {self.en}"


class ProvisionFileError(ValidationError):
    """The provisioning file cannot be used; ``problems`` has one entry per bad field."""

    code = "provision_file"

    def __init__(self, path: Path, problems: list[FieldProblem]) -> None:
        self.problems = problems
        listed_id = "; ".join(f"{p.field}: {p.id}" for p in problems)
        listed_en = "; ".join(f"{p.field}: {p.en}" for p in problems)
        super().__init__(id=f"{path}: berkas penyiapan ditolak ({listed_id})",
                         en=f"{path}: provisioning file refused ({listed_en})",
                         hint_id="Perbaiki berkas itu lalu nyalakan ulang kit",
                         hint_en="Fix the file, then restart the kit")


@dataclass
class Officer:
    id: str
    code: str = field(repr=False)


@dataclass
class ProvisionFile:
    """A checked provisioning file (secrets kept out of ``repr``)."""

    kit_id: str
    language: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    ca_pem: str | None
    office: OfficePublicKeys
    officers: list[Officer]
    technician_pin: str | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)


def _decode_key(value: str) -> bytes | None:
    """A 32-byte public key from base64, or from a copied key-file line
    (``jaranijo-key-v1 office-seal-public BASE64``)."""
    text = value.strip()
    parts = text.split()
    if len(parts) == 3 and parts[0] == KEY_MAGIC:
        text = parts[2]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def parse_provision_file(path: Path) -> ProvisionFile:
    """Read and check the file; :class:`ProvisionFileError` lists every bad field."""
    problems: list[FieldProblem] = []

    def bad(name: str, id_text: str, en_text: str) -> None:
        problems.append(FieldProblem(name, id_text, en_text))

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProvisionFileError(path, [FieldProblem("(file)", "berkas tidak ada",
                                                     "the file does not exist")]) from None
    except UnicodeDecodeError:
        raise ProvisionFileError(path, [FieldProblem("(file)", "bukan teks UTF-8",
                                                     "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionFileError(path, [FieldProblem(
            "(file)", f"TOML tidak sah ({exc})", f"invalid TOML ({exc})")]) from None
    base = path.parent

    for key in sorted(set(raw) - TOP):
        bad(key, "bagian tidak dikenal", "unknown section")
    tables: dict[str, dict[str, Any]] = {}
    for name in ("kit", "broker", "office", "technician"):
        table = raw.get(name, {})
        if not isinstance(table, dict):
            bad(name, "harus berupa tabel [" + name + "]", f"must be a [{name}] table")
            table = {}
        for key in sorted(set(table) - KNOWN[name]):
            bad(f"{name}.{key}", "kunci tidak dikenal", "unknown key")
        tables[name] = table

    def text(section: str, key: str, *, required: bool = True) -> str | None:
        value = tables[section].get(key)
        if value is None:
            if required:
                bad(f"{section}.{key}", "wajib diisi", "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            bad(f"{section}.{key}", "harus berupa teks yang tidak kosong",
                "must be non-empty text")
            return None
        return value.strip()

    # [kit]
    kit_id = text("kit", "id") or ""
    if kit_id and not KIT_ID_RE.match(kit_id):
        bad("kit.id", "3-32 huruf kecil, angka atau '-', mis. blitar-kit-01",
            "3-32 lower-case letters, digits or '-', e.g. blitar-kit-01")
    language = text("kit", "language", required=False) or "id"
    if language not in ("id", "en"):
        bad("kit.language", 'harus "id" atau "en"', 'must be "id" or "en"')

    # [broker]
    host, port = "", 8883
    url = text("broker", "url")
    if url:
        parts = urlsplit(url)
        try:
            port = parts.port or 8883
        except ValueError:
            port = 0
        if parts.scheme != "mqtts":
            bad("broker.url", "harus mqtts://HOST:PORT (TLS wajib: kata sandi lewat jaringan "
                "seluler)", "must be mqtts://HOST:PORT (TLS is required: the password "
                "crosses the mobile network)")
        elif not parts.hostname:
            bad("broker.url", "nama server tidak ada", "has no host name")
        elif not 1 <= port <= 65535 or parts.path not in ("", "/") or parts.username:
            bad("broker.url", "port 1-65535, tanpa path atau nama pengguna",
                "port 1-65535, with no path or user name")
        else:
            host = parts.hostname
    username = text("broker", "username", required=False) or kit_id
    password = text("broker", "password") or ""
    if password and len(password) < 8:
        bad("broker.password", "minimal 8 karakter", "at least 8 characters")
    ca_pem: str | None = None
    ca_file = text("broker", "ca_file", required=False)
    inline_ca = text("broker", "ca_pem", required=False)
    if ca_file and inline_ca:
        bad("broker.ca_file", "isi ca_file atau ca_pem, bukan keduanya",
            "give ca_file or ca_pem, not both")
    elif ca_file:
        try:
            ca_pem = (base / ca_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            bad("broker.ca_file", f"tidak dapat dibaca ({exc.__class__.__name__})",
                f"cannot be read ({exc.__class__.__name__})")
    elif inline_ca:
        ca_pem = inline_ca
    if ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in ca_pem:
        bad("broker.ca_file" if ca_file else "broker.ca_pem", "bukan sertifikat PEM",
            "not a PEM certificate")
        ca_pem = None

    # [office]
    keys: dict[str, bytes] = {}
    for which in ("seal", "sign"):
        inline = text("office", f"{which}_public", required=False)
        named = text("office", f"{which}_public_file", required=False)
        name = f"office.{which}_public"
        if inline and named:
            bad(name, f"isi {which}_public atau {which}_public_file, bukan keduanya",
                f"give {which}_public or {which}_public_file, not both")
            continue
        if named:
            name = f"office.{which}_public_file"
            try:
                inline = (base / named).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                bad(name, f"tidak dapat dibaca ({exc.__class__.__name__})",
                    f"cannot be read ({exc.__class__.__name__})")
                continue
        if not inline:
            bad(name, "wajib diisi (base64) atau beri berkasnya",
                "is required (base64) or give its file")
            continue
        key = _decode_key(inline)
        if key is None:
            bad(name, "bukan kunci publik 32 byte dalam base64",
                "not a 32-byte public key in base64")
            continue
        expected = text("office", f"{which}_fingerprint", required=False)
        if expected and expected.lower() != fingerprint(key):
            bad(f"office.{which}_fingerprint",
                f"tidak cocok dengan kunci (kunci: {fingerprint(key)})",
                f"does not match the key (key: {fingerprint(key)})")
            continue
        keys[which] = key
    office = None
    if set(keys) == {"seal", "sign"}:
        from nacl.public import PublicKey
        from nacl.signing import VerifyKey

        if keys["seal"] == keys["sign"]:
            bad("office.sign_public", "sama dengan kunci segel: salin kunci yang benar",
                "same as the seal key: copy the right key")
        else:
            office = OfficePublicKeys(seal=PublicKey(keys["seal"]),
                                      sign=VerifyKey(keys["sign"]))

    # [[officers]]
    officers: list[Officer] = []
    listed = raw.get("officers")
    if listed is None or listed == []:
        bad("officers", "minimal satu petugas ([[officers]] dengan id dan enrolment_code)",
            "at least one officer ([[officers]] with id and enrolment_code)")
    elif not isinstance(listed, list) or not all(isinstance(o, dict) for o in listed):
        bad("officers", "harus berupa daftar [[officers]]", "must be a list of [[officers]]")
    else:
        seen: set[str] = set()
        for n, entry in enumerate(listed, 1):
            where = f"officers[{n}]"
            for key in sorted(set(entry) - {"id", "enrolment_code"}):
                hint = " (PIN tidak boleh di berkas; pakai kode pendaftaran)" if key == "pin" \
                    else ""
                hint_en = " (no PINs in the file: use an enrolment code)" if key == "pin" \
                    else ""
                bad(f"{where}.{key}", f"kunci tidak dikenal{hint}", f"unknown key{hint_en}")
            officer_id = entry.get("id")
            code = entry.get("enrolment_code")
            if not isinstance(officer_id, str) or not OFFICER_RE.match(officer_id):
                bad(f"{where}.id", "1-32 huruf, angka, '.', '_' atau '-', mis. P-0001",
                    "1-32 letters, digits, '.', '_' or '-', e.g. P-0001")
                continue
            if officer_id in seen:
                bad(f"{where}.id", f"petugas {officer_id} disebut dua kali",
                    f"officer {officer_id} is listed twice")
                continue
            seen.add(officer_id)
            if not isinstance(code, str) or not CODE_RE.match(code):
                bad(f"{where}.enrolment_code", "10-12 angka (sebagai teks, dalam tanda kutip)",
                    "10-12 digits (as text, in quotes)")
                continue
            officers.append(Officer(officer_id, code))
        codes = [o.code for o in officers]
        if len(set(codes)) != len(codes):
            bad("officers", "setiap petugas harus punya kode sendiri",
                "every officer needs a code of their own")

    technician_pin = text("technician", "pin", required=False)
    if technician_pin and not TECH_PIN_RE.match(technician_pin):
        bad("technician.pin", "6-12 angka", "6-12 digits")

    settings = raw.get("settings", {})
    if not isinstance(settings, dict) or not all(isinstance(v, dict)
                                                 for v in settings.values()):
        bad("settings", "harus berisi tabel seperti di kit.toml ([settings.devices] ...)",
            "must hold tables as in kit.toml ([settings.devices] ...)")
        settings = {}
    for forbidden in ("kit", "mqtt", "ui"):
        if forbidden in settings:
            bad(f"settings.{forbidden}", "diatur oleh bagian lain berkas ini",
                "is set by the other sections of this file")
    if settings and not any(p.field.startswith("settings") for p in problems):
        try:  # the same checks kit.toml gets, before anything is written
            config_from_dict({**settings, "kit": {"id": "check-kit"}}, "[settings]")
        except JaranIjoError as exc:
            bad("settings", exc.text("id"), exc.text("en"))

    if problems:
        raise ProvisionFileError(path, problems)
    assert office is not None
    return ProvisionFile(kit_id, language, host, port, username, password, ca_pem, office,
                         officers, technician_pin, dict(settings))


def shred(path: Path) -> None:
    """Overwrite the file with random bytes (synced), then unlink it and sync the folder.

    On an SD card the controller may keep the old blocks elsewhere (wear levelling): the
    overwrite makes the file unreadable through the file system, not forensically gone.
    """
    size = path.stat().st_size
    with open(path, "r+b", buffering=0) as out:
        out.write(secrets.token_bytes(max(size, 1)))
        os.fsync(out.fileno())
    path.unlink()
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    except OSError:  # FAT and some others cannot sync a directory: the unlink stands
        pass
    finally:
        os.close(folder)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def provision_from_file(spec: ProvisionFile, *, config_path: Path,
                        data_dir: Path) -> tuple[KitConfig, list[str]]:
    """Provision the kit the file describes; returns its configuration and what to show."""
    from kit.provision import open_vault, provision_kit
    from kit.store import Store

    settings: dict[str, Any] = {k: dict(v) for k, v in spec.settings.items()}
    settings["kit"] = {"language": spec.language}
    data = data_dir.resolve()
    if (data / "kit.db").exists() or (data / "keys").exists():
        raise ValidationError(
            id=f"{data} sudah berisi kit (kit.db atau keys): tidak ditimpa",
            en=f"{data} already holds a kit (kit.db or keys): not overwriting it",
            hint_id="Kosongkan folder itu bila memang ingin menyiapkan ulang",
            hint_en="Empty that folder if you really mean to provision again",
            code="already_provisioned")
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    mqtt: dict[str, Any] = {"host": spec.host, "port": spec.port,
                            "username": spec.username, "tls": True}
    if spec.ca_pem:
        ca = data / "broker-ca.pem"
        fd = os.open(ca, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(spec.ca_pem)
        mqtt["ca_file"] = str(ca)
    settings["mqtt"] = mqtt
    first, *others = spec.officers
    with tempfile.TemporaryDirectory(prefix="jaranijo-office-keys-") as office_dir:
        spec.office.save(Path(office_dir))
        done = provision_kit(kit_id=spec.kit_id, data_dir=data, office_public=Path(office_dir),
                             officer=first.id, pin=first.code,
                             technician_pin=spec.technician_pin,
                             broker_password=spec.password, config_path=config_path,
                             settings=settings)
    with Store.open(done.config.store_path, create=False) as store:
        vault = open_vault(done.config, store)
        key = vault.unlock(first.id, first.code)
        try:
            for officer in others:
                vault.add_officer(key, officer.id, officer.code)
        finally:
            key.forget()
        store.set_status(PIN_CHANGE_KEY, [o.id for o in spec.officers])
        store.audit("firstboot", subject=spec.kit_id, detail=f"officers={len(spec.officers)}")
    lines = done.summary()
    lines += [f"  office seal  {fingerprint(bytes(spec.office.seal))}",
              f"  office sign  {fingerprint(bytes(spec.office.sign))}",
              f"Officers with a one-time enrolment code: {', '.join(o.id for o in spec.officers)}"
              " (each sets a PIN at first login)"]
    return done.config, lines


def run_firstboot(path: Path = DEFAULT_FILE, *, config_path: Path | None = None,
                  data_dir: Path | None = None, owner: str | None = None,
                  lang: str | None = None, out: Callable[[str], None] = print) -> int:
    """``jaranijo firstboot``: 0 provisioned (file shredded), 2 refused (file kept)."""
    config_path = config_path or DEFAULT_CONFIG_PATH
    try:
        spec = parse_provision_file(path)
    except ProvisionFileError as exc:
        out("Berkas penyiapan ditolak / provisioning file refused: " + str(path))
        for problem in exc.problems:
            out("  " + problem.line())
        out("Berkas tidak dihapus: perbaiki lalu nyalakan ulang kit. / The file was kept: fix "
            "it, then restart the kit.")
        return 2
    lang = lang or spec.language
    owner_ids: tuple[int, int] | None = None
    if owner:
        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            out(f"--owner {owner}: pengguna tidak ada / no such user")
            return 2
        owner_ids = (entry.pw_uid, entry.pw_gid)
    try:
        config, lines = provision_from_file(spec, config_path=config_path,
                                            data_dir=data_dir or DEFAULT_DATA_DIR)
        if owner_ids is not None:
            _chown_tree(config.data_dir, *owner_ids)
            os.chown(config_path, *owner_ids)
        load_config(config_path)  # what the services will read: it must load
    except JaranIjoError as exc:
        out(("Penyiapan gagal: " if lang != "en" else "Provisioning failed: ")
            + exc.text(lang))
        out("Berkas tidak dihapus. / The file was kept.")
        return 2
    for line in lines:
        out(line)
    shred(path)
    out(("Bandingkan sidik kunci di atas dengan halaman kit di kantor. Berkas penyiapan "
         "sudah dihapus.") if lang != "en" else
        "Compare the key fingerprints above with the kit's page at the office. The "
        "provisioning file has been deleted.")
    return 0
