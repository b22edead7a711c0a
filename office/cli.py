"""``jaranijo office``: keygen, ca, open, serve, web, assign, command, kits, quarantine.

Thin shells over ``office/``; :mod:`sync.cli` finds :func:`register` through
the ``jaranijo.commands`` entry points.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from sync.cli import not_installed
from sync.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``jaranijo office`` and its actions (a refusal where the office extra is not
    installed, as on a kit)."""
    if not_installed(sub, "office", "office", ("django", "weasyprint", "cryptography"),
                     "office-side tools"):
        return
    office_sub = sub.add_parser("office", help="office-side tools").add_subparsers(
        dest="office_command", required=True, metavar="ACTION")
    p = office_sub.add_parser("keygen", help="create the office's seal and sign key pairs")
    p.add_argument("--dir", required=True, help="folder for the key files (created)")
    p.set_defaults(func=cmd_keygen)
    _register_ca(office_sub)
    p = office_sub.add_parser(
        "open", help="verify and open one sealed record file: what each finger, the photo "
                     "and the signature hold",
        description="For a technician without the web app: checks the kit's signature, "
                    "opens the record with the office's seal key (in memory) and prints the "
                    "outcome, the photo, each of the ten fingers (captured with its quality, "
                    "an exception and its reason, or not captured), the signature, the "
                    "witness and what keeps a partial record from being complete. With "
                    "--out the images are written to a folder: the only place decrypted "
                    "images are ever written, so keep that folder safe and delete it after.")
    p.add_argument("file")
    p.add_argument("--keys", required=True, help="folder with the office's secret keys")
    p.add_argument("--kit-public", required=True, help="folder with the kit's public keys")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write photo.jpg, finger-N.png (500 ppi, as captured), "
                        "exception-N.jpg and signature.png here (created, owner-only)")
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON (no images, no names)")
    p.set_defaults(func=cmd_open)

    p = office_sub.add_parser(
        "serve", help="receive records and telemetry from kits; send assignments and commands",
        description="The office end of the link. Stores records (verified, still sealed) in "
                    "DB, answers every kit with receipts, and sends what 'office assign' and "
                    "'office command' queued. Stops cleanly on SIGTERM.")
    _db_keys(p)
    p.add_argument("--kits", required=True, metavar="DIR",
                   help="a folder per kit id with kit-sign.pub and kit-box.pub")
    p.add_argument("--mqtt-host", default="localhost")
    p.add_argument("--mqtt-port", type=int, default=8883, help="default 8883 (TLS)")
    p.add_argument("--mqtt-user", default=None,
                   help="broker user of the office (default: jaranijo_office)")
    p.add_argument("--mqtt-password-file", default=None, metavar="FILE")
    p.add_argument("--no-tls", dest="tls", action="store_false",
                   help="connect without TLS (only to a broker on this machine)")
    p.add_argument("--tls", dest="tls", action="store_true", default=True,
                   help=argparse.SUPPRESS)  # the default; kept for older unit files
    p.add_argument("--ca-file", default="", metavar="FILE",
                   help="the office CA certificate ('office ca init'); default: the system's "
                        "CA store")
    p.add_argument("--cert-file", default="", metavar="FILE",
                   help="client certificate, for a broker with require_certificate")
    p.add_argument("--key-file", default="", metavar="FILE", help="its key")
    p.add_argument("--open-records", action="store_true",
                   help="also open each record with office-seal.key before the receipt "
                        "(needs the secret seal key in --keys)")
    p.add_argument("--share-group", default="", metavar="NAME",
                   help="one of several workers splitting the kits' traffic (MQTT 5 shared "
                        "subscriptions '$share/NAME/...'): every worker the same NAME and "
                        "--db (PostgreSQL across machines), each its own --mqtt-user")
    p.set_defaults(func=cmd_serve)

    p = office_sub.add_parser(
        "assign", help="seal and sign an assignment for a kit; 'office serve' sends it",
        description="Seal an assignment JSON file to the kit's box key, sign it with the "
                    "office's key and queue it in DB. The running 'office serve' sends it "
                    "and again whenever the kit comes online, until the kit confirms.")
    p.add_argument("file", help="assignment JSON (as 'jaranijo assignment import' reads)")
    p.add_argument("--kit", required=True, help="kit id, e.g. blitar-kit-01")
    p.add_argument("--kits", required=True, metavar="DIR", help="kits' public key folders")
    _db_keys(p)
    p.set_defaults(func=cmd_assign)

    p = office_sub.add_parser(
        "command", help="sign a command for a kit (ping, lock, wipe, selftest, config, resend)",
        description="Queue a signed command; 'office serve' sends it. A kit runs it once, "
                    "only before it expires. 'wipe' crypto-erases the kit's officer keys and "
                    "drafts for good. 'config' takes KEY=VALUE settings of the [agent] table. "
                    "'resend record=ID' asks the kit again for a record the office refused "
                    "for good (after 'office quarantine take', or a raised size limit).")
    p.add_argument("name", choices=("ping", "lock", "wipe", "selftest", "config", "resend"))
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE",
                   help="for 'config': e.g. interval_idle_s=600; for 'resend': record=ID")
    p.add_argument("--kit", required=True)
    p.add_argument("--valid-for", type=int, default=3600, metavar="SECONDS",
                   help="how long the kit may still accept it (default 3600)")
    _db_keys(p)
    p.set_defaults(func=cmd_command)

    p = office_sub.add_parser(
        "web", help="serve the office web app (fleet monitor) on this PC",
        description="The web app for office staff, over HTTP on --listen (put a TLS proxy "
                    "in front to serve other PCs). Reads the same database as 'office "
                    "serve', which keeps receiving if the web app stops. Create the first "
                    "account with 'office createadmin'.")
    p.add_argument("--db", required=True,
                   help="the office database: a SQLite file or a postgresql:// URL")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="the web app's folder (its secret key); default: beside a SQLite "
                        "--db, else /var/lib/jaranijo-office")
    p.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT")
    p.add_argument("--keys", metavar="DIR", default=None,
                   help="the office keys folder (office-sign.key): lets the kit page send "
                        "signed commands (ping, self-test, lock, wipe)")
    p.add_argument("--kits", metavar="DIR", default=None,
                   help="the kits' public key folders: with --keys, the record pages open "
                        "stored records (in memory only)")
    p.add_argument("--broker", metavar="DIR", default=None,
                   help="the broker's folder (passwd, acl, mosquitto.pid) the web app may "
                        "change: revoking a lost kit removes its login there and reloads "
                        "the broker")
    p.set_defaults(func=cmd_web)

    p = office_sub.add_parser(
        "createadmin", help="create an administrator of the office web app",
        description="Creates a user in the role 'admin' (everything, including managing "
                    "users). There is no default account or password: run this once for "
                    "the first account. The password is asked twice on the terminal (or "
                    "read from one line of standard input with --password-stdin) and must "
                    "pass the password rules (at least 10 characters, not common, not all "
                    "digits, not like the user name).")
    p.add_argument("--db", required=True,
                   help="the office database: a SQLite file or a postgresql:// URL")
    p.add_argument("--username", default=None, help="the new user's name (asked if not given)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input instead of the terminal")
    p.set_defaults(func=cmd_createadmin)

    p = office_sub.add_parser(
        "alerts", help="the open alerts (battery, GNSS fix, records waiting, self-test, ...)",
        description="Lists the open alerts, as the web app's /alerts/ page shows them. "
                    "'office serve' judges every kit every 30 s; --evaluate judges them once "
                    "now first (raising and clearing alerts in DB).")
    p.add_argument("--db", required=True, help="the office database")
    p.add_argument("--evaluate", action="store_true",
                   help="judge every kit now before listing")
    p.set_defaults(func=cmd_alerts)

    p = office_sub.add_parser("kits", help="every kit the office has heard from")
    p.add_argument("--db", required=True, help="the office database file")
    p.set_defaults(func=cmd_kits)

    p = office_sub.add_parser(
        "revoke", help="revoke a kit reported lost: its broker login removed, uploads held",
        description="What the kit page's 'Cabut kit' does, for the broker's machine: the "
                    "revocation is recorded in DB, the kit's line removed from the broker's "
                    "password file, a deny entry added to its ACL, and the broker told to "
                    "reload (SIGHUP to the pid in DIR/mosquitto.pid), which drops the kit. "
                    "Whatever the kit still uploads is held in quarantine. Run it again to "
                    "retry the broker part.")
    p.add_argument("kit")
    p.add_argument("--db", required=True, help="the office database")
    p.add_argument("--broker", required=True, metavar="DIR",
                   help="the folder holding the broker's passwd, acl (and mosquitto.pid)")
    p.add_argument("--reason", required=True, help="why (e.g. lost on a visit; police report)")
    p.add_argument("--by", default="", help="who decided it (for the audit log)")
    p.set_defaults(func=cmd_revoke)

    quarantine = office_sub.add_parser(
        "quarantine", help="records kept aside because their id collided with a stored one",
        description="A record whose id collides with a stored record (other bytes) is kept "
                    "here, not lost: with a kit's key stolen, the forgery may have come "
                    "first. Review both, then 'take' the quarantined one (the stored one "
                    "moves to quarantine) or 'drop' it.").add_subparsers(
        dest="quarantine_command", required=True, metavar="ACTION")
    p = quarantine.add_parser("list", help="what is kept aside")
    p.add_argument("--db", required=True, help="the office database file")
    p.set_defaults(func=cmd_quarantine)
    for action, text in (("take", "make the quarantined bytes the record"),
                         ("drop", "discard the quarantined bytes")):
        p = quarantine.add_parser(action, help=text)
        p.add_argument("--db", required=True, help="the office database file")
        p.add_argument("--kit", required=True)
        p.add_argument("--record", required=True, help="the record id")
        p.add_argument("--sha", required=True, metavar="HEX",
                       help="the quarantined bytes' SHA-256 (a unique prefix of 8+ will do)")
        p.set_defaults(func=cmd_quarantine)


def _register_ca(office_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ca_sub = office_sub.add_parser(
        "ca", help="the office's small CA: TLS certificates for the broker and kits",
        description="Kits reach the broker over TLS (port 8883) and trust one CA "
                    "certificate, the office's. 'init' makes the CA once; 'server' issues "
                    "the broker's certificate (cafile, certfile, keyfile in mosquitto.conf); "
                    "'client' issues an optional certificate for a kit (broker with "
                    "require_certificate true; the kit still logs in with its password)."
    ).add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    p = ca_sub.add_parser("init", help="make the office CA (ca.crt, ca.key)")
    p.add_argument("--dir", required=True, help="folder for the CA (created); keep ca.key secret")
    p.add_argument("--force", action="store_true",
                   help="replace an existing CA (every kit must then get the new ca.crt)")
    p.set_defaults(func=cmd_ca_init)
    p = ca_sub.add_parser("server", help="issue the broker's server certificate")
    p.add_argument("--ca", required=True, metavar="DIR", help="the CA folder of 'ca init'")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for server.crt/.key")
    p.add_argument("--host", action="append", required=True, metavar="NAME",
                   help="a DNS name or IP address kits connect to (repeat for more)")
    p.set_defaults(func=cmd_ca_server)
    p = ca_sub.add_parser("client", help="issue a kit's client certificate (CN = kit id)")
    p.add_argument("--ca", required=True, metavar="DIR", help="the CA folder of 'ca init'")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for KIT.crt/.key")
    p.add_argument("--kit", required=True, help="kit id, e.g. blitar-kit-01")
    p.set_defaults(func=cmd_ca_client)


def _db_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="the office database file (created)")
    p.add_argument("--keys", required=True, metavar="DIR",
                   help="office key folder (office-sign.key, office-seal.pub)")


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from sync.envelope import OfficeKeys, fingerprint

    directory = Path(args.dir)
    keys = OfficeKeys.generate()
    keys.save(directory)
    print(f"Office keys written to {directory}/")
    print(f"  seal key  {fingerprint(bytes(keys.seal_public))}  (kits encrypt records to it)")
    print(f"  sign key  {fingerprint(bytes(keys.sign.verify_key))}  (signs assignments, commands)")
    print("Give office-seal.pub and office-sign.pub to the technician who provisions kits.")
    print("Keep office-*.key secret and backed up: without office-seal.key no record opens.")
    return 0


def _ca_files(directory: str) -> Any:
    from office.certs import CA_CERT, CA_KEY, CaFiles

    return CaFiles(Path(directory) / CA_CERT, Path(directory) / CA_KEY)


def cmd_ca_init(args: argparse.Namespace) -> int:
    from office.certs import make_ca

    ca = make_ca(Path(args.dir), overwrite=args.force)
    print(f"CA kantor dibuat / Office CA made: {ca.cert}")
    print(f"  Salin {ca.cert.name} ke setiap kit ([mqtt] ca_file) / "
          f"Copy {ca.cert.name} to every kit ([mqtt] ca_file)")
    print(f"  Simpan {ca.key} rahasia dan dicadangkan / Keep {ca.key} secret and backed up")
    return 0


def cmd_ca_server(args: argparse.Namespace) -> int:
    from office.certs import issue_server

    cert, key = issue_server(_ca_files(args.ca), Path(args.out), args.host)
    print(f"Sertifikat server / Server certificate: {cert} ({', '.join(args.host)})")
    print(f"  Kunci / Key: {key}")
    print("  Di mosquitto.conf / In mosquitto.conf: listener 8883, cafile, certfile, keyfile")
    return 0


def cmd_ca_client(args: argparse.Namespace) -> int:
    from office.certs import issue_client
    from sync.protocol import check_kit_id

    kit_id = check_kit_id(args.kit)
    cert, key = issue_client(_ca_files(args.ca), Path(args.out), kit_id)
    print(f"Sertifikat klien untuk {kit_id} / Client certificate for {kit_id}: {cert}")
    print(f"  Kunci / Key: {key}")
    print("  Di kit / On the kit: [mqtt] cert_file dan/and key_file")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    """Verify and open one record file; print what it holds; ``--out``: write its images."""
    from office.records import open_record
    from sync.envelope import KitPublicKeys, OfficeKeys

    office = OfficeKeys.load(Path(args.keys))
    kit_public = KitPublicKeys.load(Path(args.kit_public))
    try:
        blob = Path(args.file).read_bytes()
    except OSError as exc:
        raise ValidationError(id=f"{args.file} tidak dapat dibaca ({exc.strerror or exc})",
                              en=f"{args.file} cannot be read ({exc.strerror or exc})",
                              code="file") from None
    header, recording = open_record(blob, office, lambda _kit_id: kit_public.sign)
    lang = getattr(args, "lang", "id") or "id"
    written = _write_record_images(recording, Path(args.out)) if args.out else []
    if args.json:
        print(json.dumps(_open_summary(header, recording, written), indent=2, default=str))
    else:
        print(_open_report(header, recording, lang, written))
    return 0


def _open_summary(header: dict[str, Any], recording: Any, written: list[Path]) -> dict[str, Any]:
    """``office open --json``: the header and what was captured (no names, no images)."""
    from office.records import missing_parts
    from sync.domain import FingerPosition

    fingers = {}
    for position in FingerPosition:
        c = recording.fingers.get(position)
        fingers[str(int(position))] = (
            {"state": "captured", "quality": c.quality_score, "attempts": c.attempts,
             "low_quality_accepted": c.low_quality_accepted} if c is not None and c.captured
            else {"state": "exception", "reason": c.exception.value, "note": c.exception_note,
                  "photo": c.exception_photo_jpeg is not None}
            if c is not None and c.exception is not None else {"state": "not_captured"})
    photo, signature, witness = recording.photo, recording.signature, recording.witness
    return {
        "header": header, "target_id": recording.target.id,
        "outcome": None if recording.outcome is None else recording.outcome.value,
        "outcome_note": recording.outcome_note,
        "photo": None if photo is None else {
            "width": photo.width, "height": photo.height, "quality": photo.quality_score,
            "threshold": photo.quality_threshold, "reason": photo.below_threshold_reason},
        "fingers": fingers,
        "signature": None if signature is None else {
            "signed": signature.image_png is not None,
            "cannot_sign_reason": signature.cannot_sign_reason},
        "witness": None if witness is None else {"role": witness.role,
                                                  "consent": witness.consent},
        "missing": missing_parts(recording), "written": [str(p) for p in written],
    }


def _open_report(header: dict[str, Any], recording: Any, lang: str,
                 written: list[Path]) -> str:
    """``office open``: the record as a technician reads it, in ``lang`` (id or en). The
    resident is named by target id only: the terminal may be seen or logged."""
    import datetime as dt
    import zoneinfo

    from office.records import missing_parts
    from sync.domain import FingerPosition, Outcome

    en = lang == "en"

    def say(id_text: str, en_text: str) -> str:
        return en_text if en else id_text

    wib = zoneinfo.ZoneInfo("Asia/Jakarta")

    def when(t: dt.datetime | None) -> str:
        return "—" if t is None else t.astimezone(wib).strftime("%Y-%m-%d %H:%M:%S WIB")

    r = recording
    lines = [say(f"Rekaman {r.id} dari kit {header.get('kit_id')}: tanda tangan kit sah, "
                 "dibuka dengan kunci kantor",
                 f"Record {r.id} from kit {header.get('kit_id')}: kit signature valid, "
                 "opened with the office key"),
             say(f"  Sasaran: {r.target.id} (Ds. {r.target.address.desa}, "
                 f"Kec. {r.target.address.kecamatan})",
                 f"  Target: {r.target.id} ({r.target.address.desa}, "
                 f"{r.target.address.kecamatan})")]
    outcome = say("belum dipilih", "none") if r.outcome is None else r.outcome.label(lang)
    lines.append(say("  Hasil: ", "  Outcome: ") + outcome +
                 (f" ({r.outcome_note})" if r.outcome_note else ""))
    took = ""
    if r.finished_at is not None:
        minutes, secs = divmod(int((r.finished_at - r.started_at).total_seconds()), 60)
        took = " · " + say(f"lama {minutes} mnt {secs} dtk", f"took {minutes} min {secs} s")
    lines.append(say("  Waktu: ", "  Time: ") + f"{when(r.started_at)} → "
                 f"{when(r.finished_at)}{took}")
    lines.append(say("  Petugas: ", "  Officers: ") + ", ".join(r.officers))
    if r.gnss is not None:
        lines.append(f"  GNSS: {r.gnss.lat:.5f}, {r.gnss.lon:.5f} ± {r.gnss.accuracy_m:.0f} m")
    else:
        lines.append(say("  GNSS: tidak ada posisi", "  GNSS: no fix"))
    w = r.witness
    lines.append(say("  Saksi: ", "  Witness: ") + (say("tidak ada", "none") if w is None else
                 f"{w.role}, " + (say("menyetujui perekaman", "consented") if w.consent
                                  else say("tidak menyatakan persetujuan", "no consent"))))
    p = r.photo
    if p is None:
        lines.append(say("  Foto wajah: tidak ada", "  Face photo: none"))
    else:
        verdict = say("memenuhi batas", "meets the threshold") if p.ok else \
            say("di bawah batas", "below the threshold") + \
            (f" ({p.below_threshold_reason})" if p.below_threshold_reason else "")
        lines.append(say("  Foto wajah: ", "  Face photo: ") +
                     f"{p.width}x{p.height} JPEG, " + say("mutu", "quality") +
                     f" {p.quality_score} (" + say("batas", "threshold") +
                     f" {p.quality_threshold}), {verdict}")
    if r.outcome is None or r.outcome.carries_biometrics or r.fingers:
        lines.append(say("  Sidik jari:", "  Fingers:"))
        for position in FingerPosition:
            c = r.fingers.get(position)
            if c is not None and c.captured:
                what = say("direkam, mutu", "captured, quality") + f" {c.quality_score}, " + \
                    say(f"{c.attempts} kali percobaan", f"{c.attempts} attempt(s)") + \
                    (say(", mutu rendah diterima", ", low quality accepted")
                     if c.low_quality_accepted else "")
            elif c is not None and c.exception is not None:
                what = say("pengecualian: ", "exception: ") + c.exception.label(lang) + \
                    (f" ({c.exception_note})" if c.exception_note else "") + \
                    (say(", ada foto bukti", ", with a photo")
                     if c.exception_photo_jpeg else "")
            else:
                what = say("tidak direkam", "not captured")
            lines.append(f"    {int(position):>2} {position.label(lang):<20} {what}")
    s = r.signature
    if s is not None and s.image_png is not None:
        lines.append(say("  Tanda tangan: ada", "  Signature: present"))
    elif s is not None and s.cannot_sign_reason:
        lines.append(say("  Tanda tangan: tidak dapat tanda tangan: ",
                         "  Signature: cannot sign: ") + s.cannot_sign_reason)
    else:
        lines.append(say("  Tanda tangan: tidak ada", "  Signature: none"))
    missing = missing_parts(r)
    if not missing:
        lines.append(say("  Lengkap: waktu 14 hari kerja KTP-el mulai dari penerimaan",
                         "  Complete: the 14-working-day KTP-el clock starts on receipt"))
    else:
        labels = []
        for code in missing:
            kind, _sep, value = code.partition(":")
            if kind == "finger":
                labels.append(FingerPosition(int(value)).label(lang) + say(" belum", ""))
            elif kind == "photo":
                labels.append(say("foto wajah belum", "face photo"))
            elif kind == "signature":
                labels.append(say("tanda tangan belum", "signature"))
            elif value == "partial":
                labels.append(say("ditandai terekam sebagian", "marked partly recorded"))
            elif value in {o.value for o in Outcome}:
                labels.append(say("hasil: ", "outcome: ") + Outcome(value).label(lang))
            else:
                labels.append(say("hasil belum dipilih", "no outcome"))
        lines.append(say("  Belum lengkap: ", "  Missing: ") + "; ".join(labels))
        lines.append(say("  Sasaran ini dapat dijadwalkan lagi pada kunjungan berikutnya.",
                         "  This target can go on a later visit."))
    if written:
        lines.append(say(f"  Ditulis ke {written[0].parent}: ",
                         f"  Written to {written[0].parent}: ") +
                     ", ".join(p.name for p in written))
        lines.append(say("  Gambar ini data pribadi: hapus foldernya setelah selesai.",
                         "  These images are personal data: delete the folder when done."))
    return "\n".join(lines)


def _write_record_images(recording: Any, out: Path) -> list[Path]:
    """``office open --out``: the record's images as captured, in ``out`` (owner-only)."""
    import os

    from sync.domain import FingerPosition

    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    files: list[tuple[str, bytes]] = []
    if recording.photo is not None:
        files.append(("photo.jpg", recording.photo.jpeg))
    for position in FingerPosition:
        c = recording.fingers.get(position)
        if c is not None and c.image_png is not None:
            files.append((f"finger-{int(position)}.png", c.image_png))
        if c is not None and c.exception_photo_jpeg is not None:
            files.append((f"exception-{int(position)}.jpg", c.exception_photo_jpeg))
    if recording.signature is not None and recording.signature.image_png is not None:
        files.append(("signature.png", recording.signature.image_png))
    written = []
    for name, data in files:
        path = out / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        written.append(path)
    return written


def cmd_serve(args: argparse.Namespace) -> int:
    from office.db import OfficeDb
    from office.ingest import BrokerSettings, KitDirectory, OfficeKeysForLink, OfficeReceiver
    from sync.envelope import read_secret_file
    from sync.protocol import OFFICE_USER

    password = None
    if args.mqtt_password_file:
        password = read_secret_file(Path(args.mqtt_password_file), "mqtt-password")
    receiver = OfficeReceiver(
        OfficeDb.open(args.db), OfficeKeysForLink.load(args.keys, open_records=args.open_records),
        KitDirectory(args.kits),
        BrokerSettings(host=args.mqtt_host, port=args.mqtt_port,
                       username=args.mqtt_user or OFFICE_USER, password=password,
                       client_id=args.mqtt_user or OFFICE_USER,
                       tls=args.tls, ca_file=args.ca_file, cert_file=args.cert_file,
                       key_file=args.key_file, share_group=args.share_group))
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from office.alerts import AlertWatch

    # Alerts are judged here, beside the ingest (every worker of a share group may: the
    # database keeps one open alert per kit and kind); a daemon thread, so it never holds
    # up the shutdown.
    threading.Thread(target=AlertWatch(receiver.db.alias).run, args=(stop,),
                     name="alert-watch", daemon=True).start()
    _notify_ready()
    receiver.serve(stop)
    receiver.db.close()
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    from nacl.signing import SigningKey

    from office.db import OfficeDb
    from office.outbound import seal_assignment
    from sync.domain import read_assignment_file
    from sync.envelope import KitPublicKeys, read_key_file
    from sync.protocol import check_kit_id

    kit_id = check_kit_id(args.kit)
    assignment = read_assignment_file(Path(args.file))
    assignment.validate()
    if assignment.kit_id != kit_id:
        raise ValidationError(
            id=f"Penugasan ini untuk kit {assignment.kit_id}, bukan {kit_id}",
            en=f"This assignment names kit {assignment.kit_id}, not {kit_id}",
            hint_id="Perbaiki kit_id di berkas atau pilihan --kit",
            hint_en="Correct kit_id in the file or the --kit option", code="wrong_kit")
    kit_keys = KitPublicKeys.load(Path(args.kits) / kit_id)
    sign = SigningKey(read_key_file(Path(args.keys) / "office-sign.key", "office-sign-secret",
                                    secret=True))
    envelope, sealed_at = seal_assignment(assignment.to_canonical(), assignment.id, kit_id,
                                          kit_keys, sign)
    db = OfficeDb.open(args.db)
    try:
        db.queue_assignment(kit_id, assignment.id, sealed_at, envelope)
    finally:
        db.close()
    print(f"Assignment {assignment.id} ({len(assignment.targets)} targets) sealed for {kit_id} "
          f"and queued; 'office serve' sends it when the kit is online.")
    return 0


def cmd_command(args: argparse.Namespace) -> int:
    from nacl.signing import SigningKey

    from office.db import OfficeDb
    from office.outbound import make_command
    from sync.envelope import read_key_file

    settings: dict[str, Any] = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(id=f"'{item}' bukan KUNCI=NILAI", en=f"'{item}' is not KEY=VALUE",
                                  code="bad_args")
        settings[key] = _scalar(value)
    if settings and args.name not in ("config", "resend"):
        raise ValidationError(id="Hanya 'config' dan 'resend' menerima KUNCI=NILAI",
                              en="Only 'config' and 'resend' take KEY=VALUE settings",
                              code="bad_args")
    if args.name == "resend" and (set(settings) != {"record"} or
                                  not isinstance(settings["record"], str)):
        raise ValidationError(id="'resend' memerlukan record=ID", en="'resend' needs record=ID",
                              code="bad_args")
    sign = SigningKey(read_key_file(Path(args.keys) / "office-sign.key", "office-sign-secret",
                                    secret=True))
    command, payload = make_command(args.kit, args.name, settings, sign,
                                    lifetime_s=args.valid_for)
    db = OfficeDb.open(args.db)
    try:
        db.queue_command(command, payload)
    finally:
        db.close()
    until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(command.expires_at))
    print(f"Command {command.name} {command.command_id} for {command.kit_id} queued "
          f"(valid until {until}).")
    return 0


def cmd_kits(args: argparse.Namespace) -> int:
    from office.db import OfficeDb

    db = OfficeDb.open(args.db)
    try:
        kits = db.kits()
        records = {k["kit_id"]: len(db.records(k["kit_id"])) for k in kits}
    finally:
        db.close()
    now = time.time()
    print(f"{'kit':<16} {'state':<8} {'session':>7} {'seen':>8} {'batt':>5} {'net':<5} "
          f"{'waiting':>7} {'received':>8}  keys")
    for k in kits:
        health = json.loads(k.get("health") or "{}")
        security = json.loads(k.get("status") or "{}").get("security") or "?"
        seen = f"{now - k['last_seen']:.0f}s" if k.get("last_seen") else "-"
        batt = health.get("battery_percent")
        print(f"{k['kit_id']:<16} {'online' if k['online'] else 'offline':<8} "
              f"{k['session']:>7} {seen:>8} {'-' if batt is None else f'{batt}%':>5} "
              f"{health.get('access_tech') or '-':<5} {health.get('outbox_count', '-'):>7} "
              f"{records[k['kit_id']]:>8}  "
              f"{'SOFTWARE (no TPM)' if security == 'software' else security}")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from office.db import OfficeDb

    db = OfficeDb.open(args.db)
    try:
        from office.alerts import detail_figures, evaluate
        from office.models import Alert

        if args.evaluate:
            summary = evaluate(using=db.alias)
            print(f"Evaluated {summary.kits} kits: {len(summary.raised)} raised, "
                  f"{len(summary.cleared)} cleared.")
        rows = list(Alert.objects.using(db.alias).filter(cleared_at__isnull=True)
                    .order_by("raised_at"))
        print(f"{'kit':<16} {'alert':<21} {'since':<16} {'acknowledged':<22} figures")
        for a in rows:
            since = time.strftime("%Y-%m-%d %H:%M", time.localtime(a.raised_at))
            acked = "-" if a.acked_at is None else (
                f"{a.acked_by} {time.strftime('%H:%M', time.localtime(a.acked_at))}")
            figures = " ".join(f"{k}={v}" for k, v in sorted(detail_figures(a).items()))
            print(f"{a.kit_id:<16} {a.kind:<21} {since:<16} {acked:<22} {figures}")
        if not rows:
            print("No open alerts.")
    finally:
        db.close()
    return 0


def web_environment(db: str, data: str | None) -> dict[str, str]:
    """The environment the web app's settings read (office/web/settings.py)."""
    env = {"JARANIJO_OFFICE_DB": db, "JARANIJO_OFFICE_WEB": "1"}
    if data:
        env["JARANIJO_OFFICE_DATA"] = data
    elif not db.startswith(("postgresql://", "postgres://")):
        env["JARANIJO_OFFICE_DATA"] = str(Path(db).resolve().parent)
    return env


def cmd_web(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    host, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValidationError(id=f"--listen '{args.listen}' bukan HOST:PORT",
                              en=f"--listen '{args.listen}' is not HOST:PORT",
                              code="bad_args")
    os.environ.update(web_environment(args.db, args.data))
    if args.keys:
        os.environ["JARANIJO_OFFICE_KEYS"] = str(Path(args.keys).resolve())
    if args.kits:
        os.environ["JARANIJO_OFFICE_KITS"] = str(Path(args.kits).resolve())
    if args.broker:
        os.environ["JARANIJO_OFFICE_BROKER"] = str(Path(args.broker).resolve())
    import logging
    import sys

    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from office.db import OfficeDb

    OfficeDb.open(args.db).close()  # migrated before the first request
    print(f"Office web app on http://{host}:{port}/ (database {args.db})", flush=True)
    uvicorn.run("office.web.asgi:application", host=host, port=int(port), lifespan="off",
                log_level="warning", access_log=False)
    return 0


def cmd_createadmin(args: argparse.Namespace) -> int:
    import getpass
    import os
    import sys

    env = web_environment(args.db, None)
    env.pop("JARANIJO_OFFICE_WEB")  # serves no pages: makes no secret key or folder
    os.environ.update(env)
    from office.db import OfficeDb

    db = OfficeDb.open(args.db)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.db import transaction
    from django.utils import translation

    users = get_user_model().objects.db_manager(db.alias)
    username = (args.username if args.username is not None
                else input("Nama pengguna / user name: ")).strip()
    if not username:
        raise ValidationError(id="Nama pengguna kosong", en="The user name is empty",
                              code="bad_args")
    if users.filter(username=username).exists():
        raise ValidationError(
            id=f"Pengguna '{username}' sudah ada; tidak diubah",
            en=f"User '{username}' already exists; it was not changed",
            hint_id="Pilih nama lain", hint_en="Choose another name", code="user_exists")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Kata sandi / password: ")
        if getpass.getpass("Ulangi kata sandi / repeat password: ") != password:
            raise ValidationError(id="Kedua kata sandi berbeda", en="The passwords differ",
                                  code="bad_password")
    reasons: dict[str, str] = {}
    for lang in ("id", "en"):  # the validators word their reasons as they run
        with translation.override(lang):
            try:
                validate_password(password, user=users.model(username=username))
            except DjangoValidationError as exc:
                reasons[lang] = "; ".join(str(m).rstrip(".") for m in exc.messages)
    if reasons:
        raise ValidationError(
            id=f"Kata sandi ditolak: {reasons['id']}", en=f"Password refused: {reasons['en']}",
            hint_id="Tidak ada yang dibuat", hint_en="Nothing was created",
            code="bad_password")
    from office.models import AuditEntry

    with transaction.atomic(using=db.alias):
        user = users.create_user(username=username, password=password, is_staff=True,
                                 is_superuser=True)
        user.groups.add(Group.objects.using(db.alias).get(name="admin"))
        AuditEntry(username=username, roles="admin", action="create_user", subject=username,
                   detail="office createadmin (command line)").save(using=db.alias)
    print(f"Administrator '{username}' dibuat / created.")
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from office.db import OfficeDb

    db = OfficeDb.open(args.db)
    try:
        if args.quarantine_command == "list":
            rows = db.quarantined()
            print(f"{'kit':<16} {'record':<36} {'sha256':<16} {'bytes':>9}  received"
                  "          why")
            for r in rows:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["received_at"]))
                failed = db.untrusted(r["kit_id"], r["record_id"], r["sha256"])
                why = f"failed its check: {failed[0]}" if failed else "held for review"
                print(f"{r['kit_id']:<16} {r['record_id']:<36} {r['sha256'][:16]:<16} "
                      f"{r['size']:>9}  {when}  {why}")
            if not rows:
                print("Nothing in quarantine.")
            return 0
        sha = args.sha.strip().lower()
        matches = [r["sha256"] for r in db.quarantined(args.kit)
                   if r["record_id"] == args.record and r["sha256"].startswith(sha)]
        if len(sha) < 8 or len(matches) != 1:
            raise ValidationError(
                id="Tidak ada satu catatan karantina yang cocok dengan kit, ID dan hash itu",
                en="No single quarantined record matches that kit, id and hash",
                hint_id="Lihat 'jaranijo office quarantine list'",
                hint_en="See 'jaranijo office quarantine list'", code="not_found")
        if args.quarantine_command == "take":
            failed = db.untrusted(args.kit, args.record, matches[0])
            if failed is not None:
                raise ValidationError(
                    id=f"Rekaman ini gagal diperiksa saat diterima ({failed[0]}) dan tidak "
                       "boleh menjadi rekaman",
                    en=f"These bytes failed their check on receipt ({failed[0]}: {failed[1]}) "
                       "and may not become a record",
                    hint_id="Buang dengan 'drop'; kit dapat mengirim ulang yang asli",
                    hint_en="Discard them with 'drop'; the kit can send the real one again",
                    code="untrusted")
            held_only = db.record(args.kit, args.record) is None  # a revoked kit's upload
            if not db.quarantine_take(args.kit, args.record, matches[0]):
                raise ValidationError(id="Tidak ada catatan tersimpan dengan ID itu",
                                      en="No stored record has that id", code="not_found")
            if held_only:
                print(f"Record {args.record} of {args.kit} is now stored (the reviewed bytes "
                      f"{matches[0][:16]}).")
                return 0
            print(f"Record {args.record} of {args.kit} is now the reviewed bytes "
                  f"{matches[0][:16]}; the bytes stored before are in quarantine. If the kit "
                  f"still holds it as refused: office command resend record={args.record}")
        else:
            db.quarantine_drop(args.kit, args.record, matches[0])
            print(f"Quarantined bytes {matches[0][:16]} of record {args.record} discarded.")
        return 0
    finally:
        db.close()


def _scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _notify_ready() -> None:
    """Tell systemd (Type=notify) that the office end is up; nothing outside systemd."""
    import os

    if os.environ.get("NOTIFY_SOCKET"):
        import sdnotify

        sdnotify.SystemdNotifier().notify("READY=1")


def cmd_revoke(args: argparse.Namespace) -> int:
    import os

    from office.db import OfficeDb
    from sync.protocol import check_kit_id

    kit_id = check_kit_id(args.kit)
    if len(args.reason.strip()) < 10:
        raise ValidationError(id="Alasan terlalu singkat: minimal 10 huruf",
                              en="The reason is too short: at least 10 characters",
                              code="bad_args")
    env = web_environment(args.db, None)
    env.pop("JARANIJO_OFFICE_WEB")  # serves no pages: makes no secret key or folder
    os.environ.update(env)
    db = OfficeDb.open(args.db)
    try:
        from office.web.commands import revoke

        revocation = revoke(kit_id, args.reason.strip(), broker_dir=args.broker,
                            username=args.by or os.environ.get("USER", "technician"))
    finally:
        db.close()
    if revocation.broker_done_at is None:
        print(f"Kit {kit_id} is revoked at the office, but the broker is not done: "
              f"{revocation.broker_error}")
        return 1
    if revocation.broker_error:
        print(f"Kit {kit_id} revoked: broker login removed and the ACL denies it; "
              f"{revocation.broker_error}. Its uploads are held in quarantine.")
        return 0
    print(f"Kit {kit_id} revoked: broker login removed, ACL denies it, broker reloaded; "
          "its uploads are held in quarantine.")
    return 0
