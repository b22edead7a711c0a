"""Configuration files and the command line's handling of expected faults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kit.config import config_from_dict, dump_config, load_config
from sync.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kit.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[kit]\nid = "blitar-kit-01"\n'
                                         '[devices.fingerprint]\nbaud = 115200\n'))
    assert config.kit.id == "blitar-kit-01"
    assert config.devices.fingerprint.baud == 115200
    assert config.devices.fingerprint.port == "/dev/jaranijo/fingerprint"
    assert config.security.pin_max_attempts == 5


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    config = config_from_dict({"kit": {"id": "kit-07", "data_dir": "/tmp/x \"y\""}})
    again = load_config(write(tmp_path, dump_config(config)))
    again.source = config.source
    assert again == config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[kit]\nidd = "x"\n', "unknown key 'kit.idd'. Remove or correct it; did you mean 'id'"),
        ('[devices.fingerprnt]\nbaud = 57600\n', "did you mean 'fingerprint'"),
        ('[devices.fingerprint]\nbaud = "57600"\n', "must be a whole number"),
        ('[devices.fingerprint]\nbaud = 50000\n', "devices.fingerprint.baud"),
        ('[kit]\nlanguage = "jv"\n', "kit.language"),
        ('[kit\nid = 1\n', "invalid TOML"),
        ('[security]\npin_max_attempts = true\n', "whole number"),
        ('kit = 3\n', "must be a table"),
    ],
)
def test_config_typos_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.text("en")
    assert str(path) in message
    assert expected in message


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync.cli", "--lang", "en", *args],
                          capture_output=True, text=True, input=stdin, timeout=120)


def test_cli_fault_is_one_line_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, '[kit]\nid = "kit-01"\nflavour = "x"\n')
    result = run_cli("--config", str(path), "status")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "unknown key 'kit.flavour'" in result.stderr


def test_cli_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"), "status")
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "provision" in result.stderr


def test_provision_then_refuse_exposed_key(tmp_path: Path) -> None:
    office = tmp_path / "office"
    assert run_cli("office", "keygen", "--dir", str(office)).returncode == 0
    kit_dir = tmp_path / "kit"
    result = run_cli("provision", "--kit-id", "blitar-kit-01", "--data-dir", str(kit_dir),
                     "--office-public", str(office), "--officer", "P-0001", "--pin-stdin",
                     stdin="4829135071\n\n")
    assert result.returncode == 0, result.stderr
    config = kit_dir / "kit.toml"
    assert load_config(config).kit.id == "blitar-kit-01"
    assert (kit_dir / "keys" / "agent-key").stat().st_mode & 0o777 == 0o600
    assert not (kit_dir / "keys" / "kit-sign.key").exists()  # under the data key instead
    assert "NO TPM: software key slots" in result.stdout
    status = run_cli("--config", str(config), "status")
    assert status.returncode == 0 and "officer slots  1" in status.stdout
    assert "key security   software: NO TPM, weaker mode" in status.stdout
    # A second provisioning of the same kit is refused, nothing overwritten.
    again = run_cli("provision", "--kit-id", "blitar-kit-01", "--data-dir", str(kit_dir),
                    "--office-public", str(office), "--officer", "P-0001", "--pin-stdin",
                    stdin="4829135071\n97531864\n")
    assert again.returncode == 2 and "already provisioned" in again.stderr
    # Wrong PIN when adding an officer: one line, exit 2.
    added = run_cli("--config", str(config), "officer", "add", "--officer", "P-0002",
                    "--by", "P-0001", "--pin-stdin", stdin="000000\n123456\n")
    assert added.returncode == 2 and "Wrong officer ID or PIN" in added.stderr


def test_corrupt_store_via_cli(tmp_path: Path) -> None:
    data = tmp_path / "kit"
    data.mkdir()
    (data / "kit.db").write_bytes(b"\x00garbage" * 500)
    config = write(tmp_path, f'[kit]\nid = "kit-01"\ndata_dir = "{data}"\n')
    result = run_cli("--config", str(config), "status")
    assert result.returncode == 2
    assert "damaged" in result.stderr and "Traceback" not in result.stderr


def test_assignment_import_via_cli(tmp_path: Path) -> None:
    from sync.domain import SAMPLE_ASSIGNMENT_PATH

    office = tmp_path / "office"
    assert run_cli("office", "keygen", "--dir", str(office)).returncode == 0
    kit_dir = tmp_path / "kit"
    assert run_cli("provision", "--kit-id", "blitar-kit-01", "--data-dir", str(kit_dir),
                   "--office-public", str(office), "--officer", "P-0001", "--pin-stdin",
                   stdin="4829135071\n97531864\n").returncode == 0
    config = str(kit_dir / "kit.toml")
    missing = run_cli("--config", config, "assignment", "import", str(tmp_path / "none.json"),
                      "--officer", "P-0001", "--pin-stdin", stdin="4829135071\n")
    assert missing.returncode == 2 and "cannot be read" in missing.stderr
    done = run_cli("--config", config, "assignment", "import", str(SAMPLE_ASSIGNMENT_PATH),
                   "--officer", "P-0001", "--pin-stdin", stdin="4829135071\n")
    assert done.returncode == 0, done.stderr
    assert "6 targets stored (encrypted)" in done.stdout
    assert "assignments    1" in run_cli("--config", config, "status").stdout
