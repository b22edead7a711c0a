"""``jaranijo``: the one command line for kits, technicians and the office.

Each subcommand is a thin shell over ``kit/``, ``sensors/``, ``sync/`` and
``office/``. An expected fault prints one line (in the kit's language) and
exits 2; only a bug prints a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kit import __version__
from kit.config import DEFAULT_CONFIG_PATH, KitConfig, load_config
from kit.errors import JaranIjoError, ValidationError

EXIT_FAULT = 2

Handler = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("JARANIJO_CONFIG") or DEFAULT_CONFIG_PATH)


def read_config(args: argparse.Namespace) -> KitConfig:
    return load_config(config_path(args))


class PinReader:
    """PINs from the terminal (hidden), or one per line from stdin with --pin-stdin."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin

    def __call__(self, prompt: str) -> str:
        if self.from_stdin:
            line = sys.stdin.readline()
            if not line:
                raise ValidationError(id="PIN tidak diberikan di stdin",
                                      en="No PIN given on stdin", code="pin_missing")
            return line.strip()
        return getpass.getpass(prompt)


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from kit.demo import run_demo

    return run_demo(headless=args.headless, keep=Path(args.keep) if args.keep else None,
                    lang=args.lang)


def cmd_record(args: argparse.Namespace) -> int:
    from kit.headless import HeadlessDriver, fifo_writer, load_script
    from sensors.devices import KitDevices

    config = read_config(args)
    script = load_script(Path(args.script))
    control = args.emulator_control or script.emulator_control
    devices = KitDevices.open(config)
    try:
        driver = HeadlessDriver(config, devices, print, lang=args.lang,
                                emulator_control=fifo_writer(Path(control)) if control else None)
        sealed = driver.run(script)
    finally:
        devices.close()
    print(f"{len(sealed)} record(s) sealed and queued for upload")
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    import signal
    import threading

    from sensors.emulated.rig import EmulatedRig

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmulatedRig(Path(args.dir), fingerprint_baud=args.fingerprint_baud) as rig:
        for name, path in rig.paths.items():
            print(f"{name:<12} {path}")
        print(f"{'control':<12} {rig.control_path}  (echo 'fingerprint unplug' > it)")
        print("Running; Ctrl-C stops.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from ui.app import run_kiosk

    return run_kiosk(read_config(args), lang=args.lang if args.lang_given else None)


def cmd_office_keygen(args: argparse.Namespace) -> int:
    from kit.vault import OfficeKeys, fingerprint

    directory = Path(args.dir)
    keys = OfficeKeys.generate()
    keys.save(directory)
    print(f"Office keys written to {directory}/")
    print(f"  seal key  {fingerprint(bytes(keys.seal_public))}  (kits encrypt records to it)")
    print(f"  sign key  {fingerprint(bytes(keys.sign.verify_key))}  (signs assignments, commands)")
    print("Give office-seal.pub and office-sign.pub to the technician who provisions kits.")
    print("Keep office-*.key secret and backed up: without office-seal.key no record opens.")
    return 0


def cmd_office_open(args: argparse.Namespace) -> int:
    import json

    from kit.vault import KitPublicKeys, OfficeKeys
    from office.records import open_record

    office = OfficeKeys.load(Path(args.keys))
    kit_public = KitPublicKeys.load(Path(args.kit_public))
    header, recording = open_record(Path(args.file).read_bytes(), office,
                                    lambda _kit_id: kit_public.sign)
    summary = {"header": header, "outcome": str(recording.outcome),
               "fingers": len(recording.fingers), "photo": recording.photo is not None}
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    from kit.provision import check_kit_id, provision_kit

    check_kit_id(args.kit_id)
    pin = PinReader(args.pin_stdin)(f"New PIN for officer {args.officer}: ")
    done = provision_kit(kit_id=args.kit_id, data_dir=Path(args.data_dir),
                         office_public=Path(args.office_public), officer=args.officer, pin=pin,
                         config_path=Path(args.config) if args.config else None,
                         settings={"kit": {"language": args.lang}})
    print("\n".join(done.summary()))
    return 0


def cmd_officer_add(args: argparse.Namespace) -> int:
    from kit.provision import open_vault
    from kit.store import Store

    config = read_config(args)
    read_pin = PinReader(args.pin_stdin)
    with Store.open(config.store_path, create=False) as store:
        vault = open_vault(config, store)
        key = vault.unlock(args.by, read_pin(f"PIN of officer {args.by}: "))
        vault.add_officer(key, args.officer, read_pin(f"New PIN for officer {args.officer}: "))
        key.forget()
    print(f"Officer {args.officer} can now unlock this kit.")
    return 0


def cmd_assignment_import(args: argparse.Namespace) -> int:
    from kit.provision import open_vault
    from kit.records import read_assignment_file, store_assignment
    from kit.store import Store

    config = read_config(args)
    assignment = read_assignment_file(Path(args.file))
    with Store.open(config.store_path, create=False) as store:
        pin = PinReader(args.pin_stdin)(f"PIN of {args.officer}: ")
        key = open_vault(config, store).unlock(args.officer, pin)
        store_assignment(store, key, assignment)
        key.forget()
    print(f"Assignment {assignment.id}: {len(assignment.targets)} targets stored (encrypted).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from kit.store import Store

    config = read_config(args)
    with Store.open(config.store_path, create=False) as store:
        outbox = store.outbox()
        print(f"kit            {config.kit.id}")
        print(f"assignments    {len(store.assignments())}")
        print(f"drafts         {len(store.drafts())}")
        print(f"records        {len(store.record_ids())}")
        print(f"waiting upload {len(outbox)}")
        print(f"officer slots  {len(store.key_slot_ids())}")
    return 0


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaranijo",
        description="Jaran Ijo: home KTP-el recording kit (SI JARAN IJO, Disdukcapil "
                    "Kabupaten Blitar) and its office link.",
    )
    parser.add_argument("--version", action="version", version=f"jaranijo {__version__}")
    parser.add_argument("--config", help=f"kit configuration file (default: $JARANIJO_CONFIG "
                                         f"or {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--lang", choices=("id", "en"), default=None,
                        help="language of messages (default: id, or $JARANIJO_LANG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the whole system on emulated devices and narrate it")
    p.add_argument("--headless", action="store_true", help="no kiosk window, even with a display")
    p.add_argument("--keep", metavar="DIR", help="keep the demo's files in DIR (default: temp)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ui", help="start the kiosk touchscreen UI from the kit configuration")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("record", help="run a visit from a script file on the configured devices")
    p.add_argument("--script", required=True, help="visit script (TOML); see kit/headless.py")
    p.add_argument("--emulator-control", metavar="FIFO",
                   help="an emulated rig's control FIFO, to tell the emulated sensor who is there")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "emulate", help="run every emulated device on pseudo-terminals until interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start the emulated fingerprint sensor, GNSS receiver, LTE modem and a\n"
                    "battery (power_supply tree) in DIR. Point the kit configuration at\n"
                    "DIR/fingerprint, DIR/gps, DIR/modem and DIR/power_supply.",
        epilog=_emulate_epilog())
    p.add_argument("--dir", required=True, help="folder for the device links (created)")
    p.add_argument("--fingerprint-baud", type=int, default=57600,
                   help="the emulated sensor's line rate (57600 or 115200)")
    p.set_defaults(func=cmd_emulate)

    p = sub.add_parser("provision", help="create a kit's identity, keys, store and config")
    p.add_argument("--kit-id", required=True, help="e.g. blitar-kit-01 (also its MQTT user)")
    p.add_argument("--data-dir", required=True, help="where the kit keeps keys and its store")
    p.add_argument("--office-public", required=True, metavar="DIR",
                   help="folder with office-seal.pub and office-sign.pub")
    p.add_argument("--officer", required=True, help="id of the first officer (gets a PIN slot)")
    p.add_argument("--pin-stdin", action="store_true", help="read PINs from stdin, one a line")
    p.set_defaults(func=cmd_provision)

    officer = sub.add_parser("officer", help="officer PIN slots").add_subparsers(
        dest="officer_command", required=True, metavar="ACTION")
    p = officer.add_parser("add", help="give an officer a PIN (needs another officer's PIN)")
    p.add_argument("--officer", required=True, help="the officer to add or re-PIN")
    p.add_argument("--by", required=True, help="an officer who can already unlock the kit")
    p.add_argument("--pin-stdin", action="store_true", help="read PINs from stdin, one a line")
    p.set_defaults(func=cmd_officer_add)

    assignment = sub.add_parser("assignment", help="visit assignments").add_subparsers(
        dest="assignment_command", required=True, metavar="ACTION")
    p = assignment.add_parser("import", help="store an assignment JSON file, encrypted")
    p.add_argument("file")
    p.add_argument("--officer", required=True, help="officer whose PIN unlocks the kit")
    p.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin")
    p.set_defaults(func=cmd_assignment_import)

    p = sub.add_parser("status", help="what the kit holds (no personal data)")
    p.set_defaults(func=cmd_status)

    office = sub.add_parser("office", help="office-side tools").add_subparsers(
        dest="office_command", required=True, metavar="ACTION")
    p = office.add_parser("keygen", help="create the office's seal and sign key pairs")
    p.add_argument("--dir", required=True, help="folder for the key files (created)")
    p.set_defaults(func=cmd_office_keygen)
    p = office.add_parser("open", help="verify and open one sealed record file")
    p.add_argument("file")
    p.add_argument("--keys", required=True, help="folder with the office's secret keys")
    p.add_argument("--kit-public", required=True, help="folder with the kit's public keys")
    p.set_defaults(func=cmd_office_open)

    from sync.cli import register as register_agent
    from sync.cli import register_office

    register_agent(sub)
    register_office(office)

    return parser


def _emulate_epilog() -> str:
    try:
        from sensors.emulated.rig import controls_help
    except ImportError:  # a broken install still gets the rest of --help
        return ""
    return ("Fault controls: write a line 'DEVICE CONTROL [ARGS]' to DIR/control, e.g.\n"
            "  echo 'fingerprint unplug' > DIR/control\n\n" + controls_help())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = args.lang or os.environ.get("JARANIJO_LANG")
    args.lang_given = chosen in ("id", "en")
    args.lang = chosen if args.lang_given else "id"
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.func
    try:
        return handler(args)
    except JaranIjoError as exc:
        print(f"jaranijo: {exc.text(args.lang)}", file=sys.stderr)
        return EXIT_FAULT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
