"""Fixtures shared by every suite: a provisioned kit on an emulated rig."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.config import KitConfig
from kit.domain import SAMPLE_ASSIGNMENT_PATH, Assignment
from kit.provision import open_vault, provision_kit
from kit.records import store_assignment
from kit.store import Store
from kit.vault import KitPublicKeys, OfficeKeys

OFFICER, PIN = "P-0001", "482913"
FAST_ARGON2 = {"argon2_opslimit": 1, "argon2_memlimit_mib": 8}


@dataclass
class KitOnRig:
    """A kit provisioned in a temp folder, its devices emulated, an assignment loaded."""

    root: Path
    config: KitConfig
    rig: object
    office: OfficeKeys
    kit_public: KitPublicKeys
    assignment: Assignment

    @property
    def control_fifo(self) -> Path:
        return self.root / "devices" / "control"


@pytest.fixture
def kit_on_rig(tmp_path: Path) -> Iterator[KitOnRig]:
    from sensors.emulated.rig import EmulatedRig

    office = OfficeKeys.generate()
    office.save(tmp_path / "office")
    rig = EmulatedRig(tmp_path / "devices", fingerprint_baud=115200)
    rig.start()
    paths = rig.paths
    try:
        provisioned = provision_kit(
            kit_id="blitar-kit-01", data_dir=tmp_path / "kit",
            office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
            settings={"security": FAST_ARGON2, "devices": {
                "fingerprint": {"port": str(paths["fingerprint"]), "baud": 115200},
                "gnss": {"port": str(paths["gps"])},
                "modem": {"port": str(paths["modem"])},
                "battery": {"kind": "sysfs", "sysfs_dir": str(paths["power_supply"])},
                "camera": {"kind": "emulated"},
            }})
        assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
        with Store.open(provisioned.config.store_path) as store:
            key = open_vault(provisioned.config, store).unlock(OFFICER, PIN)
            store_assignment(store, key, assignment)
        yield KitOnRig(tmp_path, provisioned.config, rig, office,
                       provisioned.kit_keys.public, assignment)
    finally:
        rig.stop()
