"""The one `jaranijo` command line: what every subcommand costs before it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("cv2", "numpy", "PIL", "kivy", "django", "tpm2_pytss", "scipy", "skimage",
         "weasyprint")


def test_the_command_line_loads_nothing_heavy_to_register_its_commands() -> None:
    """The agent and the kiosk on a kit start through `jaranijo`, which registers every
    subcommand first (demo, emulate, office...): registering must not import OpenCV, NumPy,
    the TPM library or Django, which cost tens of MiB of a 250 MB budget (issue 15). Run in
    a fresh interpreter: this test process has them all loaded already."""
    code = ("import json, sys\nfrom sync.cli import build_parser\nbuild_parser()\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


# The office's and the rig's extras, by distribution, and the module each installs; a kit
# image has none of them (cryptography: tpm2-pytss, a kit dependency, needs it anyway).
EXTRA_MODULES = {
    "cryptography": None, "django": "django", "argon2-cffi": "argon2", "django-axes": "axes",
    "uvicorn": "uvicorn", "psycopg": "psycopg", "holidays": "holidays", "fpdf2": "fpdf",
    "wsq": "wsq", "weasyprint": "weasyprint", "pyhanko": "pyhanko",
    "pyhanko-certvalidator": "pyhanko_certvalidator", "python-calamine": "python_calamine",
    "openpyxl": "openpyxl", "scikit-image": "skimage",
}
# Run first in a fresh interpreter: the kit as its image has it (a None in sys.modules
# makes an import fail and find_spec say "not installed", as a missing package does).
AS_ON_A_KIT = ("import sys\n"
               f"for m in {[m for m in EXTRA_MODULES.values() if m]!r}:\n"
               "    sys.modules[m] = None\n")


def on_a_kit(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", AS_ON_A_KIT + code, *args],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock", KIVY_NO_ARGS="1"))


def test_the_extras_named_here_are_the_office_and_rig_extras_of_pyproject() -> None:
    """So the kit-side checks below hide every package the kit image leaves out."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {Requirement(r).name for r in extras["office"] + extras["rig"]}
    assert names == set(EXTRA_MODULES)


def test_every_kit_module_imports_without_the_office_and_the_rig() -> None:
    """Every module of sync, sensors, kit and ui (what the kit image runs) imports with the
    office's and the rig's packages absent."""
    code = ("import importlib, json, pkgutil\nbad = {}\n"
            "for pkg in ('sync', 'sensors', 'kit', 'ui'):\n"
            "    for info in pkgutil.walk_packages(importlib.import_module(pkg).__path__, "
            "pkg + '.'):\n"
            "        try:\n            importlib.import_module(info.name)\n"
            "        except Exception as exc:\n            bad[info.name] = repr(exc)\n"
            "print(json.dumps(bad))")
    done = on_a_kit(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {}


def test_on_a_kit_office_and_demo_say_they_are_not_installed_and_what_to_install(
        tmp_path: Path) -> None:
    """`jaranijo office ...` and `jaranijo demo` refuse in one line, in the chosen language,
    with the extra to install; the kit's own commands are there as usual."""
    run = "from sync.cli import main\nsys.exit(main(sys.argv[1:]))"
    office = on_a_kit(run, "office", "keygen", "--dir", str(tmp_path / "keys"))
    assert office.returncode == 2, office.stderr
    assert office.stderr.strip() == (
        "jaranijo: 'jaranijo office' tidak terpasang di mesin ini (tidak ada modul django, "
        "weasyprint; sebuah kit hanya membawa bagian kit). Pasang dengan: pip install "
        "'jaranijo[office]' (./bootstrap memasang semuanya)")
    assert not (tmp_path / "keys").exists()
    demo = on_a_kit(run, "--lang", "en", "demo", "--headless")
    assert demo.returncode == 2, demo.stderr
    assert "'jaranijo demo' is not installed on this machine" in demo.stderr
    assert "pip install 'jaranijo[office,rig]'" in demo.stderr
    assert "Traceback" not in office.stderr + demo.stderr
    listed = on_a_kit(run, "--help")
    assert listed.returncode == 0, listed.stderr
    for command in ("agent", "ui", "firstboot", "selftest", "officer", "emulate"):
        assert f"\n    {command} " in listed.stdout, (command, listed.stdout)
    assert "office-side tools (not installed here:" in listed.stdout


def test_an_empty_answer_from_the_metadata_cache_is_read_again_from_the_folders(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A long-running process was once handed no commands by importlib.metadata's cached
    listings; the parser then reads each jaranijo metadata folder itself, and only when
    there is none says which it read."""
    from importlib.metadata import EntryPoints

    from sync import cli

    monkeypatch.setattr(cli, "entry_points", lambda **_kw: EntryPoints([]))
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    # one command from each package's entry point: kit, office, demo, ui, sensors
    assert {"selftest", "office", "demo", "ui", "emulate"} <= set(sub.choices)  # type: ignore[arg-type]

    # an installed kit's metadata (jaranijo-<version>.dist-info), without the checkout's
    monkeypatch.setattr(sys, "path", [sysconfig.get_paths()["purelib"]])
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert "selftest" in sub.choices  # type: ignore[operator]

    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    with pytest.raises(SystemExit) as stop:
        cli.build_parser()
    assert "no jaranijo distribution on sys.path" in str(stop.value)
