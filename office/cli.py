"""``jaranijo office``: keygen, open, serve, assign, command, kits.

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

from sync.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``jaranijo office`` and its actions."""
    office_sub = sub.add_parser("office", help="office-side tools").add_subparsers(
        dest="office_command", required=True, metavar="ACTION")
    p = office_sub.add_parser("keygen", help="create the office's seal and sign key pairs")
    p.add_argument("--dir", required=True, help="folder for the key files (created)")
    p.set_defaults(func=cmd_keygen)
    p = office_sub.add_parser("open", help="verify and open one sealed record file")
    p.add_argument("file")
    p.add_argument("--keys", required=True, help="folder with the office's secret keys")
    p.add_argument("--kit-public", required=True, help="folder with the kit's public keys")
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
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--mqtt-user", default=None,
                   help="broker user of the office (default: jaranijo_office)")
    p.add_argument("--mqtt-password-file", default=None, metavar="FILE")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca-file", default="", help="CA certificate for --tls")
    p.add_argument("--open-records", action="store_true",
                   help="also open each record with office-seal.key before the receipt "
                        "(needs the secret seal key in --keys)")
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
        "command", help="sign a command for a kit (ping, lock, wipe, selftest, config)",
        description="Queue a signed command; 'office serve' sends it. A kit runs it once, "
                    "only before it expires. 'wipe' crypto-erases the kit's officer keys and "
                    "drafts for good. 'config' takes KEY=VALUE settings of the [agent] table.")
    p.add_argument("name", choices=("ping", "lock", "wipe", "selftest", "config"))
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE",
                   help="for 'config': e.g. interval_idle_s=600")
    p.add_argument("--kit", required=True)
    p.add_argument("--valid-for", type=int, default=3600, metavar="SECONDS",
                   help="how long the kit may still accept it (default 3600)")
    _db_keys(p)
    p.set_defaults(func=cmd_command)

    p = office_sub.add_parser("kits", help="every kit the office has heard from")
    p.add_argument("--db", required=True, help="the office database file")
    p.set_defaults(func=cmd_kits)


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


def cmd_open(args: argparse.Namespace) -> int:
    import json

    from office.records import open_record
    from sync.envelope import KitPublicKeys, OfficeKeys

    office = OfficeKeys.load(Path(args.keys))
    kit_public = KitPublicKeys.load(Path(args.kit_public))
    header, recording = open_record(Path(args.file).read_bytes(), office,
                                    lambda _kit_id: kit_public.sign)
    summary = {"header": header, "outcome": str(recording.outcome),
               "fingers": len(recording.fingers), "photo": recording.photo is not None}
    print(json.dumps(summary, indent=2, default=str))
    return 0


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
                       tls=args.tls, ca_file=args.ca_file))
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
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
    if settings and args.name != "config":
        raise ValidationError(id="Hanya 'config' menerima KUNCI=NILAI",
                              en="Only 'config' takes KEY=VALUE settings", code="bad_args")
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
          f"{'waiting':>7} {'received':>8}")
    for k in kits:
        health = json.loads(k.get("health") or "{}")
        seen = f"{now - k['last_seen']:.0f}s" if k.get("last_seen") else "-"
        batt = health.get("battery_percent")
        print(f"{k['kit_id']:<16} {'online' if k['online'] else 'offline':<8} "
              f"{k['session']:>7} {seen:>8} {'-' if batt is None else f'{batt}%':>5} "
              f"{health.get('access_tech') or '-':<5} {health.get('outbox_count', '-'):>7} "
              f"{records[k['kit_id']]:>8}")
    return 0


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
