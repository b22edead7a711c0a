"""``jaranijo agent`` and the ``jaranijo office serve|assign|command|kits`` actions.

Thin shells over :mod:`sync.agent` and :mod:`office.receiver`. ``kit/cli.py``
calls :func:`register` with its top-level subparsers and
:func:`register_office` with the actions of its ``office`` group.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from kit.errors import JaranIjoError, ValidationError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``agent`` to the top-level ``jaranijo`` commands."""
    p = sub.add_parser(
        "agent", help="run the kit agent: telemetry, record upload, assignments, commands",
        description="The kit's link to the office (run by systemd as jaranijo-agent.service). "
                    "Reads [kit], [mqtt], [devices] and the optional [agent] table of the "
                    "kit configuration; stops cleanly on SIGTERM.")
    p.set_defaults(func=cmd_agent)


def register_office(office_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve``, ``assign``, ``command`` and ``kits`` to ``jaranijo office``."""
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
    p.set_defaults(func=cmd_office_serve)

    p = office_sub.add_parser(
        "assign", help="seal and sign an assignment for a kit; 'office serve' sends it",
        description="Seal an assignment JSON file to the kit's box key, sign it with the "
                    "office's key and queue it in DB. The running 'office serve' sends it "
                    "and again whenever the kit comes online, until the kit confirms.")
    p.add_argument("file", help="assignment JSON (as 'jaranijo assignment import' reads)")
    p.add_argument("--kit", required=True, help="kit id, e.g. blitar-kit-01")
    p.add_argument("--kits", required=True, metavar="DIR", help="kits' public key folders")
    _db_keys(p)
    p.set_defaults(func=cmd_office_assign)

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
    p.set_defaults(func=cmd_office_command)

    p = office_sub.add_parser("kits", help="every kit the office has heard from")
    p.add_argument("--db", required=True, help="the office database file")
    p.set_defaults(func=cmd_office_kits)


def _db_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="the office database file (created)")
    p.add_argument("--keys", required=True, metavar="DIR",
                   help="office key folder (office-sign.key, office-seal.pub)")


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def cmd_agent(args: argparse.Namespace) -> int:
    from kit.cli import config_path
    from sync.agent import run_agent

    return run_agent(config_path(args))


def cmd_office_serve(args: argparse.Namespace) -> int:
    from office.receiver import (
        BrokerSettings,
        KitDirectory,
        OfficeDb,
        OfficeKeysForLink,
        OfficeReceiver,
    )
    from sync.agent import Notifier
    from sync.protocol import OFFICE_USER

    password = None
    if args.mqtt_password_file:
        password = _read_secret(Path(args.mqtt_password_file))
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
    Notifier().notify("READY=1")
    receiver.serve(stop)
    receiver.db.close()
    return 0


def cmd_office_assign(args: argparse.Namespace) -> int:
    from kit.records import read_assignment_file
    from kit.vault import KitPublicKeys, SigningKey, read_key_file
    from office.receiver import OfficeDb, seal_assignment
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


def cmd_office_command(args: argparse.Namespace) -> int:
    from kit.vault import SigningKey, read_key_file
    from office.receiver import OfficeDb, make_command

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


def cmd_office_kits(args: argparse.Namespace) -> int:
    from office.receiver import OfficeDb

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


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise JaranIjoError(
            id=f"Berkas sandi {path} tidak dapat dibaca ({exc.__class__.__name__})",
            en=f"Password file {path} cannot be read ({exc.__class__.__name__})",
            hint_id="Periksa jalur dan hak baca berkas", hint_en="Check the path and permissions",
            code="password_file") from None
