"""The kit's subcommands of ``jaranijo``: provision, firstboot, officer, assignment, status,
record, agent, selftest, tpm-unlock, technician-unlock.

Thin shells over ``kit/``; :mod:`sync.cli` finds :func:`register` through
the ``jaranijo.commands`` entry points and runs the chosen handler.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from kit.config import DEFAULT_CONFIG_PATH, KitConfig, load_config
from sync.errors import JaranIjoError, ValidationError

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

    def optional(self, prompt: str) -> str:
        """Like a call, but "" when stdin has no more lines (an answer that may be left out)."""
        try:
            return self(prompt)
        except ValidationError:
            return ""


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------


def cmd_record(args: argparse.Namespace) -> int:
    from kit.devices import KitDevices
    from kit.scripted_visit import ScriptedVisits, fifo_writer, load_script

    config = read_config(args)
    script = load_script(Path(args.script), PinReader(args.pin_stdin))
    control = args.emulator_control or script.emulator_control
    devices = KitDevices.open(config)
    try:
        driver = ScriptedVisits(config, devices, print, lang=args.lang,
                                emulator_control=fifo_writer(Path(control)) if control else None)
        sealed = driver.run(script)
    finally:
        devices.close()
    print(f"{len(sealed)} record(s) sealed and queued for upload")
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    from kit.provision import check_kit_id, provision_kit

    check_kit_id(args.kit_id)
    read_pin = PinReader(args.pin_stdin)
    pin = read_pin(f"New PIN for officer {args.officer}: ")
    # The technician menu's PIN: the next line (or prompt); empty makes one up, printed once.
    technician_pin = read_pin("New technician PIN (6-12 digits; empty: make one up): ")
    # The kit's broker password (from the office): sealed in the TPM, never in kit.toml.
    password = read_pin.optional("Broker password for this kit (empty: none): ")
    done = provision_kit(kit_id=args.kit_id, data_dir=Path(args.data_dir),
                         office_public=Path(args.office_public), officer=args.officer, pin=pin,
                         technician_pin=technician_pin or None, broker_password=password or None,
                         config_path=Path(args.config) if args.config else None,
                         settings={"kit": {"language": args.lang}})
    print("\n".join(done.summary()))
    return 0


def cmd_officer_add(args: argparse.Namespace) -> int:
    from kit.firstboot import PIN_CHANGE_KEY
    from kit.provision import open_vault
    from kit.session import refuse_weak_pin
    from kit.store import Store

    config = read_config(args)
    read_pin = PinReader(args.pin_stdin)
    with Store.open(config.store_path, create=False) as store:
        vault = open_vault(config, store)
        key = vault.unlock(args.by, read_pin(f"PIN of officer {args.by}: "))
        try:
            pin = read_pin(f"New PIN for officer {args.officer}: ")
            refuse_weak_pin(pin)
            # The new officer types their own PIN here: an enrolment code their slot held
            # before is replaced, so they are no longer asked to choose one at first login.
            with store.transaction():
                vault.add_officer(key, args.officer, pin)
                listed = store.status(PIN_CHANGE_KEY, [])
                if isinstance(listed, list) and args.officer in listed:
                    store.set_status(PIN_CHANGE_KEY, [o for o in listed if o != args.officer])
        finally:
            key.forget()
    print(f"Officer {args.officer} can now unlock this kit.")
    return 0


def cmd_assignment_import(args: argparse.Namespace) -> int:
    from kit.provision import open_vault
    from kit.records import store_assignment
    from kit.store import Store
    from sync.domain import read_assignment_file

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
    from kit import keyring
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
        try:
            security = keyring.security_line(config, "en")[1]
        except JaranIjoError as exc:  # the TPM cannot be asked: the rest still shows
            security = f"UNKNOWN: {exc.text('en')}"
        print(f"key security   {security}")
    return 0


def cmd_tpm_unlock(args: argparse.Namespace) -> int:
    from kit import keyring
    from kit.tpm import Tpm

    config = read_config(args)
    where = keyring.tcti(config)
    if where is None:
        raise ValidationError(id="Kit ini tidak memakai TPM", en="This kit has no TPM",
                              code="tpm_unavailable")
    code = PinReader(args.code_stdin)("TPM lockout code (from the office's safe): ")
    with Tpm(where) as tpm:
        tpm.clear_lockout(code)
    print("TPM PIN lockout cleared.")
    return 0


def cmd_technician_unlock(args: argparse.Namespace) -> int:
    from kit.provision import open_vault
    from kit.store import Store
    from kit.visit import TECHNICIAN_FAILURES_KEY

    config = read_config(args)
    with Store.open(config.store_path, create=False) as store:
        key = open_vault(config, store).unlock(
            args.officer, PinReader(args.pin_stdin)(f"PIN of officer {args.officer}: "))
        key.forget()
        store.set_status(TECHNICIAN_FAILURES_KEY, 0)
        store.audit("technician_lockout_cleared", actor=args.officer)
    print("Technician menu unlocked.")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    """Every check of :mod:`kit.selftest` on the devices opened here; exit 1 when a required
    one fails. Stop the kiosk and the agent first: they hold the devices."""
    import json
    import logging

    from kit.devices import ALL, KitDevices
    from kit.selftest import Devices, Options, run_selftest

    config = read_config(args)
    lang = args.lang if getattr(args, "lang_given", False) else config.kit.language

    def prompt(seconds: str) -> None:
        print(f"Place a finger on the sensor (within {seconds} s)..." if lang == "en" else
              f"Letakkan jari di sensor sidik jari (dalam {seconds} detik)...",
              file=sys.stderr, flush=True)

    devices = KitDevices.open(config, want=ALL)
    try:
        result = run_selftest(config, Devices.of(devices), lang=lang, options=Options(
            finger_timeout=None if args.no_finger else args.finger_timeout,
            fix_timeout=args.fix_timeout, prompt=prompt))
    finally:
        devices.close()
    try:
        result.save(config.data_dir)
    except OSError as exc:  # a full or read-only disk: the result still shows
        logging.getLogger(__name__).warning("self-test result not kept: %s", exc)
    if args.json:
        print(json.dumps(result.as_dict(lang), ensure_ascii=False, indent=1))
    else:
        print(result.text(lang))
    return 0 if result.ok else 1


def cmd_firstboot(args: argparse.Namespace) -> int:
    from kit.firstboot import run_firstboot

    lang = args.lang if getattr(args, "lang_given", False) else None
    return run_firstboot(Path(args.file), config_path=config_path(args), owner=args.owner,
                         data_dir=Path(args.data_dir) if args.data_dir else None, lang=lang,
                         out=print)


def cmd_agent(args: argparse.Namespace) -> int:
    from kit.agent.service import run_agent

    return run_agent(config_path(args))


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the kit's commands to ``jaranijo``."""
    p = sub.add_parser("record", help="run a visit from a script file on the configured devices")
    p.add_argument("--script", required=True,
                   help="visit script (TOML); see kit/scripted_visit.py")
    p.add_argument("--emulator-control", metavar="FIFO",
                   help="an emulated rig's control FIFO, to tell the emulated sensor who is there")
    p.add_argument("--pin-stdin", action="store_true",
                   help="read the officer's PIN from stdin (when the script has no pin_env)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("provision", help="create a kit's identity, keys, store and config")
    p.add_argument("--kit-id", required=True, help="e.g. blitar-kit-01 (also its MQTT user)")
    p.add_argument("--data-dir", required=True, help="where the kit keeps keys and its store")
    p.add_argument("--office-public", required=True, metavar="DIR",
                   help="folder with office-seal.pub and office-sign.pub")
    p.add_argument("--officer", required=True, help="id of the first officer (gets a PIN slot)")
    p.add_argument("--pin-stdin", action="store_true",
                   help="read PINs from stdin, one a line: the officer's, then the technician's "
                        "(an empty line makes one up and prints it once)")
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser(
        "firstboot", help="provision this kit from the technician's file on the boot partition",
        description="Reads the provisioning file (TOML: kit id, broker, credentials, office "
                    "keys, officers with one-time enrolment codes, language), refuses it "
                    "with a reason per field when it is wrong, else provisions the kit, "
                    "prints the key fingerprints to compare with the office, and shreds "
                    "the file. Run by jaranijo-firstboot.service.")
    p.add_argument("--file", default="/boot/firmware/jaranijo-provision.toml",
                   help="the provisioning file (default: %(default)s)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the kit keeps keys and its store (default /var/lib/jaranijo)")
    p.add_argument("--owner", default=None, metavar="USER",
                   help="hand the data folder and the configuration to this user (the "
                        "service runs as root; the kit's services as 'jaranijo')")
    p.set_defaults(func=cmd_firstboot)

    p = sub.add_parser(
        "selftest", help="check every device, the clock, disk, keys, store and broker",
        description="The technician's check at checkout and return. Exit code 0 only when "
                    "every required check passes; the result is kept in the data folder "
                    "(selftest-last.json). Stop the kiosk and the agent first "
                    "(systemctl stop jaranijo-kiosk jaranijo-agent): they hold the devices.")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-finger", action="store_true",
                   help="skip the fingerprint image (no finger is placed)")
    p.add_argument("--finger-timeout", type=float, default=15.0, metavar="S",
                   help="how long to wait for a finger on the sensor (default 15 s)")
    p.add_argument("--fix-timeout", type=float, default=5.0, metavar="S",
                   help="how long to wait for a GNSS fix (default 5 s)")
    p.set_defaults(func=cmd_selftest)

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

    p = sub.add_parser("tpm-unlock", help="clear the TPM's PIN lockout with its lockout code")
    p.add_argument("--code-stdin", action="store_true", help="read the code from stdin")
    p.set_defaults(func=cmd_tpm_unlock)

    p = sub.add_parser("technician-unlock",
                       help="clear the technician menu's lockout (needs an officer's PIN)")
    p.add_argument("--officer", required=True, help="an officer who can unlock the kit")
    p.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin")
    p.set_defaults(func=cmd_technician_unlock)

    p = sub.add_parser(
        "agent", help="run the kit agent: telemetry, record upload, assignments, commands",
        description="The kit's link to the office (run by systemd as jaranijo-agent.service). "
                    "Reads [kit], [mqtt], [devices] and the optional [agent] table of the "
                    "kit configuration; stops cleanly on SIGTERM.")
    p.set_defaults(func=cmd_agent)
