"""The kit's and the office's systemd units and udev rules, checked without booting anything.

``systemd-analyze verify`` parses every unit as systemd would (unknown options, bad values,
missing executables: the ExecStart path is pointed at this checkout's ``jaranijo``), and the
hardening each unit promises is checked option by option, so a later edit that drops one
fails here rather than on a kit in the field.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
UNITS = sorted(p for p in SYSTEMD.iterdir() if p.suffix in (".service", ".path"))
INSTALLED_BIN = "/opt/jaranijo/.venv/bin/jaranijo"

# Every long-running service of the project, hardened the same way.
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
    "ProtectHome": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
    "RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes", "SystemCallArchitectures": "native",
    "DevicePolicy": "closed",
}
SERVICES = {
    "jaranijo-agent.service": {"user": "jaranijo", "groups": {"dialout", "i2c", "tss"},
                               "mdwe": True},
    "jaranijo-kiosk.service": {"user": "jaranijo",
                               "groups": {"video", "render", "input", "dialout", "gpio", "tss"},
                               "mdwe": False},
    "jaranijo-office.service": {"user": "jaranijo-office", "groups": set(), "mdwe": True},
    "jaranijo-office-web.service": {"user": "jaranijo-office", "groups": set(), "mdwe": True},
    "jaranijo-firstboot.service": {"user": None, "groups": set(), "mdwe": True},
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (repeated keys kept)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(name: str) -> dict[str, list[str]]:
    return parse_unit(SYSTEMD / name)["Service"]


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    here = Path(sys.executable).parent / "jaranijo"
    assert here.exists(), "the venv has no jaranijo entry point (pip install -e .)"
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text(encoding="utf-8").replace(INSTALLED_BIN, str(here)),
                        encoding="utf-8")
        copies.append(str(copy))
    done = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # verify exits 0 on some warnings: none may mention our units.
    ours = [line for line in done.stderr.splitlines() if "jaranijo" in line]
    assert ours == [], "\n".join(ours)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_is_hardened(name: str) -> None:
    s = service(name)
    for key, value in HARDENING.items():
        assert s.get(key) == [value], f"{name}: {key}={value} missing ({s.get(key)})"
    assert s.get("CapabilityBoundingSet"), f"{name}: no CapabilityBoundingSet"
    assert "@system-service" in s.get("SystemCallFilter", [""])[0]
    assert s.get("RestrictAddressFamilies"), f"{name}: address families not restricted"
    assert s.get("StateDirectory"), f"{name}: no StateDirectory"
    assert (s.get("MemoryDenyWriteExecute") == ["yes"]) == SERVICES[name]["mdwe"]
    expected = SERVICES[name]
    if expected["user"] is not None:
        assert s["User"] == [expected["user"]]
        assert s.get("CapabilityBoundingSet") == [""], f"{name}: a user service needs no caps"
        groups = set(" ".join(s.get("SupplementaryGroups", [])).split())
        assert groups == expected["groups"], f"{name}: groups {groups}"


def test_agent_is_a_watched_notify_service() -> None:
    s = service("jaranijo-agent.service")
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    # kit/agent/service.py Notifier pings every WATCHDOG_USEC/3: a value systemd passes on.
    assert int(s["WatchdogSec"][0]) >= 30
    assert s["Restart"][0] in ("on-failure", "always")
    unit = parse_unit(SYSTEMD / "jaranijo-agent.service")["Unit"]
    assert "StartLimitBurst" in unit and "StartLimitIntervalSec" in unit
    source = (ROOT / "kit" / "agent" / "service.py").read_text(encoding="utf-8")
    for state in ("READY=1", "WATCHDOG=1", "STOPPING=1"):
        assert state in source, f"the agent never sends {state}"


def test_kiosk_owns_tty1_and_starts_after_but_without_the_agent() -> None:
    unit = parse_unit(SYSTEMD / "jaranijo-kiosk.service")
    after = " ".join(unit["Unit"]["After"]).split()
    assert "jaranijo-agent.service" in after
    assert "Requires" not in unit["Unit"] and "BindsTo" not in unit["Unit"]
    s = unit["Service"]
    assert s["TTYPath"] == ["/dev/tty1"]
    assert "SDL_VIDEODRIVER=kmsdrm" in s["Environment"]
    assert s["Restart"][0] in ("on-failure", "always")
    allowed = " ".join(s["DeviceAllow"])
    for device in ("char-drm", "char-input", "/dev/tty1"):
        assert device in allowed


def test_office_units_run_serve_and_web() -> None:
    assert " office serve " in service("jaranijo-office.service")["ExecStart"][0]
    assert " office web " in service("jaranijo-office-web.service")["ExecStart"][0]


def test_firstboot_runs_only_with_the_file_and_before_the_kit() -> None:
    unit = parse_unit(SYSTEMD / "jaranijo-firstboot.service")
    assert unit["Unit"]["ConditionPathExists"] == ["/boot/firmware/jaranijo-provision.toml"]
    before = " ".join(unit["Unit"]["Before"]).split()
    assert {"jaranijo-agent.service", "jaranijo-kiosk.service"} <= set(before)
    assert unit["Service"]["Type"] == ["oneshot"]
    assert "firstboot --file /boot/firmware/jaranijo-provision.toml" in \
        unit["Service"]["ExecStart"][0]


# ---------------------------------------------------------------------------------------------
# udev rules
# ---------------------------------------------------------------------------------------------

RULE_TERM = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|=|:=)\s*"([^"]*)"\s*(?:,|$)')


def parse_rules(text: str) -> list[list[tuple[str, str, str]]]:
    """udev rule lines as lists of (key, operator, value); raises on a line it cannot read."""
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        terms, pos = [], 0
        while pos < len(line):
            match = RULE_TERM.match(line, pos)
            if match is None:
                raise ValueError(f"line {number}: cannot parse at {line[pos:]!r}")
            terms.append(match.groups())
            pos = match.end()
        rules.append(terms)
    return rules


def test_the_rule_parser_refuses_a_broken_line() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_rules('SUBSYSTEM=="tty", ATTRS{idVendor}=10c4')


def test_udev_rules_name_each_device_by_its_usb_ids() -> None:
    rules = parse_rules((SYSTEMD / "99-jaranijo.rules").read_text(encoding="utf-8"))
    assert rules
    links: dict[str, set[tuple[str, str]]] = {}
    for terms in rules:
        match = {k: v for k, op, v in terms if op == "=="}
        assert match.get("SUBSYSTEM") == "tty"
        assert re.fullmatch(r"[0-9a-f]{4}", match.get("ATTRS{idVendor}", ""))
        assert re.fullmatch(r"[0-9a-f]{4}", match.get("ATTRS{idProduct}", ""))
        [link] = [v for k, op, v in terms if k == "SYMLINK" and op == "+="]
        assert link.startswith("jaranijo/")
        ids = (match["ATTRS{idVendor}"], match["ATTRS{idProduct}"])
        links.setdefault(link, set()).add(ids)
        if link in ("jaranijo/gps", "jaranijo/modem"):  # two ports of one modem: by interface
            assert match.get("ENV{ID_USB_INTERFACE_NUM}") in ("01", "02")
    assert set(links) == {"jaranijo/fingerprint", "jaranijo/gps", "jaranijo/modem"}
    assert {("10c4", "ea60"), ("1a86", "7523"), ("0403", "6001")} <= links["jaranijo/fingerprint"]
    assert ("1e0e", "9001") in links["jaranijo/gps"] & links["jaranijo/modem"]
