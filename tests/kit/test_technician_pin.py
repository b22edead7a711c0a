"""The technician menu: no factory PIN, only the hash provisioning writes, five tries."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.config import load_config
from kit.provision import Provisioned, provision_kit
from kit.visit import TECHNICIAN_MAX_ATTEMPTS, VisitController
from sync.envelope import OfficeKeys
from tests.conftest import FAST_ARGON2, OFFICER, PIN
from tests.kit.test_config_cli import run_cli

TECH_PIN = "13572468"


def provisioned(tmp_path: Path, technician_pin: str | None = TECH_PIN) -> Provisioned:
    OfficeKeys.generate().save(tmp_path / "office")
    return provision_kit(kit_id="blitar-kit-01", data_dir=tmp_path / "kit",
                         office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
                         technician_pin=technician_pin, settings={"security": FAST_ARGON2})


def controller(config_path: Path) -> VisitController:
    return VisitController(load_config(config_path))


def test_provisioning_writes_only_a_hash_and_the_pin_works(tmp_path: Path) -> None:
    done = provisioned(tmp_path)
    text = done.config_path.read_text(encoding="utf-8")
    assert TECH_PIN not in text
    stored = load_config(done.config_path).ui.technician_pin_hash
    assert stored.startswith("$argon2id$")
    kiosk = controller(done.config_path)
    try:
        assert kiosk.technician_pin_ok(TECH_PIN)
        assert not kiosk.technician_pin_ok("246810")
    finally:
        kiosk.store.close()


def test_factory_pin_refused_on_fresh_kit(tmp_path: Path) -> None:
    import kit.visit

    assert not hasattr(kit.visit, "DEFAULT_TECHNICIAN_PIN")
    done = provisioned(tmp_path, technician_pin=None)  # a PIN is made up and shown once
    assert len(done.generated_technician_pin) >= 6
    assert done.generated_technician_pin not in done.config_path.read_text(encoding="utf-8")
    assert any(done.generated_technician_pin in line for line in done.summary())
    kiosk = controller(done.config_path)
    try:
        if done.generated_technician_pin != "246810":
            assert not kiosk.technician_pin_ok("246810")
        assert kiosk.technician_pin_ok(done.generated_technician_pin)
    finally:
        kiosk.store.close()


def test_no_hash_means_no_technician_menu(tmp_path: Path) -> None:
    done = provisioned(tmp_path)
    config = load_config(done.config_path)
    config.ui.technician_pin_hash = ""
    kiosk = VisitController(config)
    try:
        assert not kiosk.technician_pin_ok("246810")
        assert not kiosk.technician_pin_ok(TECH_PIN)
    finally:
        kiosk.store.close()


def test_sixth_try_after_five_wrong_is_refused_even_with_the_right_pin(tmp_path: Path) -> None:
    done = provisioned(tmp_path)
    kiosk = controller(done.config_path)
    try:
        for _ in range(TECHNICIAN_MAX_ATTEMPTS):
            assert not kiosk.technician_pin_ok("000000")
        assert not kiosk.technician_pin_ok(TECH_PIN)
    finally:
        kiosk.store.close()
    # The count is in the store: a restarted kiosk is still locked.
    again = controller(done.config_path)
    try:
        assert not again.technician_pin_ok(TECH_PIN)
    finally:
        again.store.close()


def test_wrong_then_right_resets_the_count(tmp_path: Path) -> None:
    done = provisioned(tmp_path)
    kiosk = controller(done.config_path)
    try:
        for _ in range(TECHNICIAN_MAX_ATTEMPTS - 1):
            assert not kiosk.technician_pin_ok("000000")
        assert kiosk.technician_pin_ok(TECH_PIN)
        assert kiosk.technician_failures() == 0
    finally:
        kiosk.store.close()


@pytest.mark.parametrize("stdin, generated", [("4829135071\n24681357\n", False),
                                              ("4829135071\n\n", True)])
def test_cli_provision_reads_or_makes_up_the_technician_pin(tmp_path: Path, stdin: str,
                                                           generated: bool) -> None:
    office = tmp_path / "office"
    assert run_cli("office", "keygen", "--dir", str(office)).returncode == 0
    kit_dir = tmp_path / "kit"
    result = run_cli("provision", "--kit-id", "blitar-kit-01", "--data-dir", str(kit_dir),
                     "--office-public", str(office), "--officer", "P-0001", "--pin-stdin",
                     stdin=stdin)
    assert result.returncode == 0, result.stderr
    config = load_config(kit_dir / "kit.toml")
    assert config.ui.technician_pin_hash.startswith("$argon2id$")
    assert ("Technician PIN" in result.stdout) == generated
    pin = "24681357"
    if generated:
        line = next(x for x in result.stdout.splitlines() if "Technician PIN" in x)
        pin = line.rsplit(" ", 1)[-1]
    kiosk = VisitController(config)
    try:
        assert not kiosk.technician_pin_ok("246810")
        assert kiosk.technician_pin_ok(pin)
    finally:
        kiosk.store.close()
