"""``jaranijo demo``: the whole system on emulated devices, narrated step by step.

A throwaway office and kit in a temporary folder (or ``--keep DIR``): the
office makes its keys, a technician provisions the kit, the emulated
devices come up on pseudo-terminals, an assignment of invented residents
of Desa Papungan (Kanigoro) arrives, an officer logs in, and the headless
driver walks a visit with three residents through the real drivers: one
recorded fully, one with two amputated fingers who cannot sign, one who
refuses. The office then opens what was sealed, and the kit shows it
cannot.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from kit.domain import SAMPLE_ASSIGNMENT_PATH, Assignment
from kit.errors import JaranIjoError
from kit.headless import HeadlessDriver, Visit, VisitScript
from kit.provision import open_vault, provision_kit
from kit.records import store_assignment
from kit.store import Store
from kit.vault import OfficeKeys, VaultError, open_sealed, read_header
from kit.workflow import describe
from office.records import open_record

OFFICER, PIN = "P-0001", "482913"
DEMO_BAUD = 115200  # the sensor set to its faster rate: 3.5 s per fingerprint image


class Narrator:
    def __init__(self) -> None:
        self.n = 0
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        self.n += 1
        print(f"\n[{time.monotonic() - self.started:6.1f}s] {self.n}. {title}", flush=True)

    def say(self, text: str) -> None:
        print(textwrap.indent(text, "     "), flush=True)


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="jaranijo-demo-") as tmp:
        yield Path(tmp)


def run_demo(*, headless: bool, keep: Path | None, lang: str) -> int:
    if not headless and os.environ.get("DISPLAY"):
        print("(The kiosk window is not built yet; running headless.)")
    tell = Narrator()
    with workspace(keep) as root:
        tell.step("Office: create the office's seal and sign key pairs")
        office_dir = root / "office" / "keys"
        office = OfficeKeys.generate()
        office.save(office_dir)
        tell.say(f"office keys in {office_dir}")

        tell.step("Emulated devices come up on pseudo-terminals")
        from sensors.emulated.rig import EmulatedRig

        rig = EmulatedRig(root / "devices", fingerprint_baud=DEMO_BAUD)
        rig.start()
        try:
            for name, path in rig.paths.items():
                target = os.readlink(path) if path.is_symlink() else "(folder)"
                tell.say(f"{name:<12} {path} -> {target}")
            return _visit(tell, root, office, rig, lang)
        finally:
            rig.stop()


def _visit(tell: Narrator, root: Path, office: OfficeKeys, rig: object, lang: str) -> int:
    from sensors.devices import KitDevices

    paths = rig.paths  # type: ignore[attr-defined]
    tell.step("Technician: provision kit blitar-kit-01 (keys, store, first officer)")
    provisioned = provision_kit(
        kit_id="blitar-kit-01", data_dir=root / "kit", office_public=root / "office" / "keys",
        officer=OFFICER, pin=PIN,
        settings={
            "kit": {"language": lang},
            "devices": {
                "fingerprint": {"port": str(paths["fingerprint"]), "baud": DEMO_BAUD},
                "gnss": {"port": str(paths["gps"])},
                "modem": {"port": str(paths["modem"])},
                "battery": {"kind": "sysfs", "sysfs_dir": str(paths["power_supply"])},
                "camera": {"kind": "emulated"},
            },
        })
    tell.say("\n".join(provisioned.summary()))
    config = provisioned.config

    tell.step("Office: an assignment for Desa Papungan (invented residents) reaches the kit")
    assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    assignment.validate()
    tell.say(f"{len(assignment.targets)} targets, visit {assignment.visit_date}, "
             f"NIK and KK of every target checked")
    with Store.open(config.store_path) as store:
        vault = open_vault(config, store)
        tell.step("Officer logs in: a wrong PIN first, then the right one")
        try:
            vault.unlock(OFFICER, "000000")
        except VaultError as exc:
            tell.say(f"kiosk says: {exc.text(lang)}")
        key = vault.unlock(OFFICER, PIN)
        tell.say("unlocked: the officers' data key is in memory")
        store_assignment(store, key, assignment)
        key.forget()
        tell.say("assignment stored, every name, NIK and address encrypted")

    tell.step("Kit devices open through their real drivers")
    devices = KitDevices.open(config)
    try:
        for name in ("camera", "fingerprint", "gnss", "battery"):
            problem = devices.missing(lang).get(name)
            tell.say(f"{name:<12} {'ready' if problem is None else 'MISSING: ' + problem}")
        fix = devices.gnss.fix(timeout=5.0) if devices.gnss is not None else None
        if fix is not None:
            accuracy = f"+/- {fix.accuracy_m:.0f} m" if fix.accuracy_m is not None else ""
            tell.say(f"GNSS fix {fix.lat:.5f}, {fix.lon:.5f} {accuracy}, "
                     f"{fix.satellites or '?'} satellites")
        if devices.battery is not None:
            status = devices.battery.read()
            tell.say(f"battery {status.percent:.0f}%, {status.status}")
        if devices.fingerprint is not None:
            tell.say(f"fingerprint sensor: {devices.identities()['fingerprint']}")

        tell.step("Bedside visits (the headless driver drives the same API as the kiosk)")
        script = VisitScript(officer=OFFICER, pin=PIN, assignment=assignment.id, visits=[
            Visit(target=1, witness={"name": "Sulastri", "role": "perangkat desa",
                                     "consent": True}),
            Visit(target=2, exceptions={4: "amputated", 5: "amputated"},
                  cannot_sign="kedua tangan lemah (stroke)",
                  witness={"name": "Sunarti", "role": "anak kandung", "consent": True}),
            Visit(target=3, outcome="refused", note="keluarga menolak perekaman hari ini"),
        ])
        driver = HeadlessDriver(config, devices, tell.say, lang=lang,
                                emulator_control=rig.control_line)  # type: ignore[attr-defined]
        sealed = driver.run(script)
    finally:
        devices.close()

    tell.step("What the kit holds now")
    with Store.open(config.store_path) as store:
        statuses = {t["id"]: t["status"] for t in store.targets(assignment.id)}
        for n, target in enumerate(assignment.targets, start=1):
            tell.say(f"target {n}: {statuses[target.id]}")
        tell.say(f"{len(store.outbox())} sealed records wait for upload")
        blobs = [store.record_blob(s.id) for s in sealed]
    db_bytes = config.store_path.read_bytes()
    wal = Path(f"{config.store_path}-wal")
    db_bytes += wal.read_bytes() if wal.exists() else b""
    leaks = [t for t in assignment.targets for secret in (t.name, t.nik)
             if secret.encode() in db_bytes]
    tell.say(f"byte search of kit.db and its WAL for every name and NIK: "
             f"{'FOUND ' + str(len(leaks)) if leaks else 'none found'}")

    tell.step("Office opens the sealed records; the kit cannot")
    kit_public = provisioned.kit_keys.public
    for blob in blobs:
        if blob is None:
            continue
        header = read_header(blob)
        _, recording = open_record(blob, office, lambda _kit: kit_public.sign)
        summary = describe(recording)
        tell.say(f"record {header['record_id']} from {header['kit_id']}: {summary['outcome']}; "
                 f"photo {summary['photo']}, {summary['fingers_captured']} fingerprints, "
                 f"exceptions {summary['finger_exceptions'] or 'none'}, "
                 f"signature {summary['signature']}")
        try:
            open_sealed(blob, recipient=provisioned.kit_keys.box, sender=kit_public.sign)
        except JaranIjoError as exc:
            tell.say(f"  the kit's own key: {exc.text(lang)}")
    tell.step("Done")
    return 0
