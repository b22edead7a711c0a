"""``jaranijo selftest`` on the emulated rig: every device, the clock, disk, keys, store and a
real Mosquitto, the way a technician runs it at checkout (kit/selftest.py)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from kit import keyring
from kit.config import dump_config
from kit.selftest import LAST_RESULT_FILE, Check, SelfTestResult, agent_answer, load_last
from office.broker import MOSQUITTO, LocalBroker
from sync.cli import main
from tests.conftest import KitOnRig, kit_rig

KIT_PASSWORD = "kit-broker-secret-1"


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[KitOnRig]:
    """The rig's kit (unpaced fingerprint sensor) logging in to a real local Mosquitto."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    broker = LocalBroker(tmp_path / "broker", {"blitar-kit-01": KIT_PASSWORD})
    broker.start()
    try:
        with kit_rig(tmp_path, paced=False) as on_rig:
            config = on_rig.config
            config.mqtt.host, config.mqtt.port = "127.0.0.1", broker.port
            config.mqtt.username, config.mqtt.ca_file = "blitar-kit-01", str(broker.ca_file)
            Path(config.source).write_text(dump_config(config), encoding="utf-8")
            keyring.put_machine_secret(config, keyring.BROKER_PASSWORD, KIT_PASSWORD.encode())
            yield on_rig
    finally:
        broker.stop()


def selftest(kit: KitOnRig, capsys: pytest.CaptureFixture[str], *extra: str,
             lang: str = "id") -> tuple[int, str]:
    code = main(["--config", kit.config.source, "--lang", lang, "selftest",
                 "--finger-timeout", "10", *extra])
    return code, capsys.readouterr().out


def checks_of(output: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(output)["checks"]}


def test_everything_passes_on_the_rig(kit: KitOnRig, mock_pins: MockFactory,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out = selftest(kit, capsys, "--json")
    result = json.loads(out)
    checks = checks_of(out)
    failed = {n: c["value"] for n, c in checks.items() if c["required"] and not c["ok"]}
    assert code == 0 and result["ok"] and failed == {}, failed
    for name in ("fingerprint", "fingerprint_image", "camera", "gnss", "gnss_fix", "modem",
                 "network", "battery", "gpio", "clock", "disk", "key_files", "store",
                 "broker", "broker_login"):
        assert checks[name]["status"] == "pass", (name, checks[name])
    assert "capacity=300" in checks["fingerprint"]["value"]
    assert "256x288" in checks["fingerprint_image"]["value"]
    assert "photo quality" in checks["camera"]["value"]
    assert "fix age" in checks["gnss_fix"]["value"]
    assert "Telkomsel" in checks["network"]["value"] or "dBm" in checks["network"]["value"]
    assert "%" in checks["battery"]["value"]
    assert "GNSS" in checks["clock"]["value"]
    assert "CONNACK" in checks["broker_login"]["value"]
    # The software key mode (no TPM on this machine) is reported, and it is optional.
    assert checks["key_security"]["required"] is False
    # Kept on the kit for the checkout record, the kit user's alone.
    kept = kit.config.data_dir / LAST_RESULT_FILE
    assert kept.stat().st_mode & 0o777 == 0o600
    last = load_last(kit.config.data_dir)
    assert last is not None and last["ok"] is True and last["kit"] == "blitar-kit-01"


def test_an_unplugged_fingerprint_sensor_fails_with_its_message(
        kit: KitOnRig, mock_pins: MockFactory, capsys: pytest.CaptureFixture[str]) -> None:
    kit.rig.control("fingerprint", "unplug")
    code, out = selftest(kit, capsys)
    assert code == 1
    [line] = [x for x in out.splitlines() if "Sensor sidik jari" in x]
    assert line.split()[0] == "GAGAL" and "wajib" in line
    step = out.splitlines()[out.splitlines().index(line) + 1]
    assert step.strip().startswith("->") and len(step.strip()) > 10
    assert "Hasil: GAGAL" in out
    last = load_last(kit.config.data_dir)
    assert last is not None and "fingerprint" in last["failed_required"]


@pytest.mark.filterwarnings("ignore::gpiozero.PinFactoryFallback")
def test_a_missing_optional_device_is_reported_but_does_not_fail(
        kit: KitOnRig, capsys: pytest.CaptureFixture[str]) -> None:
    model = Path("/proc/device-tree/model")
    if model.exists() and "Raspberry" in model.read_text(errors="replace"):
        pytest.skip("this machine has GPIO")
    previous = Device.pin_factory
    Device.pin_factory = None  # off a Pi gpiozero finds no pins: the GPIO is missing
    try:
        code, out = selftest(kit, capsys, "--json", lang="en")
    finally:
        Device.pin_factory = previous
    gpio = checks_of(out)["gpio"]
    assert gpio["status"] == "fail" and gpio["required"] is False
    assert "GPIO" in gpio["value"] and gpio["next_step"]
    assert code == 0 and json.loads(out)["ok"] is True


def test_a_key_file_open_to_others_fails(kit: KitOnRig, mock_pins: MockFactory,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    secret = kit.config.keys_dir / keyring.AGENT_KEY
    os.chmod(secret, 0o644)
    code, out = selftest(kit, capsys, "--json", "--no-finger", lang="en")
    keys = checks_of(out)["key_files"]
    assert code == 1 and keys["status"] == "fail" and keys["required"]
    assert "agent-key 0644" in keys["value"]
    assert f"chmod 600 {secret}" in keys["next_step"]
    assert json.loads(out)["failed_required"] == ["key_files"]


def test_no_broker_fails_reachability_with_the_next_step(
        kit: KitOnRig, mock_pins: MockFactory, capsys: pytest.CaptureFixture[str]) -> None:
    config = kit.config
    config.mqtt.port = 1  # nothing listens there
    Path(config.source).write_text(dump_config(config), encoding="utf-8")
    code, out = selftest(kit, capsys, "--no-finger")
    assert code == 1
    assert "Server tidak terjangkau" in out


def test_the_agents_answer_keeps_the_fields_the_office_reads(
        kit: KitOnRig, mock_pins: MockFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """The office's alert and command page read the agent's answer (office/alerts.py
    SelfTest.faults, office/web/commands.py result_text); a failed required check shows."""
    os.chmod(kit.config.keys_dir / keyring.AGENT_KEY, 0o640)
    code, out = selftest(kit, capsys, "--json", "--no-finger")
    assert code == 1
    saved = json.loads(out)
    from kit.selftest import Check

    result = SelfTestResult([Check(c["name"], c["required"], c["status"], c["value"])
                             for c in saved["checks"]], saved["kit"], 0.0)
    answer = agent_answer(result, device_problems=["gnss_stale"], keys_mode="software",
                          disk_free_mib=1234)
    assert {"store", "gnss", "modem", "battery", "disk_free_mib", "keys",
            "problems"} <= set(answer)
    assert answer["store"] == "ok" and answer["gnss"] == "fix"
    assert answer["modem"] == "registered" and isinstance(answer["battery"], int)
    assert "key_files" in answer["failed"]
    from office.db import setup_django

    setup_django()
    from office.alerts import SelfTest  # needs Django set up

    faults = SelfTest(True, answer).faults()
    assert "selftest_key_files" in faults["problems"] and "gnss_stale" in faults["problems"]


def test_the_agents_command_runs_the_same_checks(kit_on_rig: KitOnRig) -> None:
    """The office's ``selftest`` command: the agent's own devices are checked for real, the
    kiosk's are skipped (it holds them), and the full result is kept on the kit."""
    from kit.agent.service import Agent
    from kit.agent.settings import load_agent_config

    agent = Agent.from_config(load_agent_config(kit_on_rig.config.source))
    try:
        agent.connected = True  # the command came over the link
        answer = agent.self_test()
    finally:
        agent.sources.close()
        agent.store.close()
    assert answer["store"] == "ok" and answer["modem"] == "registered"
    assert answer["gnss"] in ("fix", "no_fix") and isinstance(answer["battery"], int)
    assert answer["keys"] == "software" and answer["problems"] == ""
    last = load_last(kit_on_rig.config.data_dir)
    assert last is not None and last["source"] == "agent"
    checks = {c["name"]: c for c in last["checks"]}
    assert checks["fingerprint"]["status"] == "skip" and checks["camera"]["status"] == "skip"
    assert checks["gpio"]["status"] == "skip"
    assert checks["modem"]["status"] == "pass" and checks["broker_login"]["status"] == "pass"


# -- the image's promises (check_system) ----------------------------------------------------------


def _system(tmp_path: Path, *, root: str = "overlay", data: str | None = "ext4",
            running: tuple[str, ...] = ("jaranijo-agent.service", "jaranijo-kiosk.service"),
            ssh: bool = False, image: bool = True, agent: bool = True,
            enabled: tuple[str, ...] = ("jaranijo-agent.service", "jaranijo-kiosk.service"),
            ) -> dict[str, Any]:
    """check_system over a made-up /proc and cgroup tree, as {name: (status, value)}."""
    from kit.selftest import check_system

    tmp_path.mkdir(parents=True, exist_ok=True)
    mark = tmp_path / "COMMIT"
    if image:
        mark.write_text("0" * 40)
    lines = [f"{'overlay' if root == 'overlay' else '/dev/mmcblk0p2'} / {root} ro 0 0"]
    if data:
        lines.append(f"/dev/mmcblk0p3 /var/lib/jaranijo-data {data} rw 0 0")
    mounts = tmp_path / "mounts"
    mounts.write_text("\n".join(lines) + "\n")
    slice_dir = tmp_path / "system.slice"
    for unit in running:
        (slice_dir / unit).mkdir(parents=True)
        (slice_dir / unit / "cgroup.procs").write_text("310\n")
    (slice_dir / "jaranijo-kiosk.service").mkdir(parents=True, exist_ok=True)  # stopped: empty
    tcp = tmp_path / "tcp"
    header = "  sl  local_address rem_address   st tx_queue rx_queue\n"
    mqtt = "   0: 0100007F:075B 00000000:0000 0A 00000000:00000000\n"
    tcp.write_text(header + mqtt + ("   1: 00000000:0016 00000000:0000 0A 0:0\n" if ssh else
                                    "   1: 0100007F:A2C4 0100007F:0016 01 0:0\n"))
    wants = tmp_path / "multi-user.target.wants"
    wants.mkdir()
    for unit in enabled:  # as systemctl enable makes them: links to the unit files
        (tmp_path / unit).write_text("[Unit]\n")
        (wants / unit).symlink_to(tmp_path / unit)
    checks = check_system(running=agent, mark=mark, mounts=mounts, slice_dir=slice_dir,
                          wants=wants, tcp=[tcp])
    return {c.name: (c.status, c.value, c.next_id) for c in checks}


def test_a_kit_image_is_checked_for_its_overlay_data_partition_services_and_ssh(
        tmp_path: Path) -> None:
    good = _system(tmp_path / "good")
    assert {n: s for n, (s, _v, _x) in good.items()} == {
        "root_overlay": "pass", "data_partition": "pass", "services": "pass", "ssh": "pass"}
    assert "/dev/mmcblk0p3" in good["data_partition"][1]

    bad = _system(tmp_path / "bad", root="ext4", data=None, running=("jaranijo-agent.service",),
                  ssh=True)
    assert {n: s for n, (s, _v, _x) in bad.items()} == {
        "root_overlay": "fail", "data_partition": "fail", "services": "fail", "ssh": "fail"}
    assert "jaranijo.overlay=1" in bad["root_overlay"][2]
    assert bad["services"][1] == "not running: jaranijo-kiosk.service"
    assert "systemctl disable --now ssh.service" in bad["ssh"][2]
    # an outgoing connection to port 22 is not a server
    assert _system(tmp_path / "client")["ssh"][0] == "pass"
    assert _system(tmp_path / "vfat", data="vfat")["data_partition"][0] == "fail"
    # jaranijo selftest runs with the services stopped (README): they must be enabled
    stopped = _system(tmp_path / "cli", agent=False, running=())
    assert stopped["services"][:2] == ("pass", "agent and kiosk enabled at boot")
    off = _system(tmp_path / "off", agent=False, enabled=("jaranijo-agent.service",))
    assert off["services"][:2] == ("fail", "not enabled: jaranijo-kiosk.service")


def test_a_kit_set_up_by_hand_skips_the_image_checks(tmp_path: Path) -> None:
    assert _system(tmp_path, root="ext4", image=False) == {
        "root_overlay": ("skip", "not a kit image (set up by hand)", "")}


# -- the office's self-test with the kiosk's part -------------------------------------------------


def test_the_office_selftest_includes_the_kiosks_devices(kit_on_rig: KitOnRig) -> None:
    """The agent answers the office once the kiosk, which holds the camera and the sensor,
    has tested them; without a kiosk heartbeat it answers at once and says why."""
    from kit.agent.service import Agent
    from kit.agent.settings import load_agent_config
    from kit.devices import KitDevices
    from kit.selftest import ANSWER_KEY, KIOSK_ALIVE_KEY, REQUEST_KEY
    from kit.visit import VisitController

    config = kit_on_rig.config
    agent = Agent.from_config(load_agent_config(config.source))
    devices = KitDevices.open(config, want=("camera", "fingerprint"))
    kiosk = VisitController(config, devices=devices)
    try:
        agent.connected = True
        agent._start_selftest("cmd-no-kiosk")  # no heartbeat yet: answered now
        assert agent._selftest_pending is None
        checks = {c["name"]: c for c in load_last(config.data_dir)["checks"]}
        assert checks["fingerprint"]["status"] == "skip"
        assert "kiosk not running" in checks["fingerprint"]["value"]
        assert agent.store.status(REQUEST_KEY) is None, "an answered request left for the kiosk"

        kiosk.ui_alive_at = 0.0  # the kiosk's window is built, not drawn yet
        kiosk.set_ui_state("screen:login")  # the first screen, before any status was read
        assert agent.store.status("ui_state") is None, "written from the screen's thread"
        kiosk.tick()
        assert agent.store.status("ui_state") is None, "a screen not yet drawn was reported"
        kiosk.ui_alive_at = time.time() - 100  # a kiosk whose main loop froze
        kiosk.tick()
        assert agent.store.status(KIOSK_ALIVE_KEY) is None, "a frozen screen sent a heartbeat"
        kiosk.ui_alive_at = time.time()  # drawing
        kiosk.tick()  # the heartbeat
        assert agent.store.status("ui_state") == "screen:login", "the first screen was lost"
        agent._start_selftest("cmd-with-kiosk")
        assert agent._selftest_pending is not None, "the agent answered without the kiosk"
        kiosk.tick()  # sees the request, tests its devices on a thread
        for _ in range(1200):  # the kiosk's thread: a sensor read and a camera frame
            if agent.store.status(ANSWER_KEY, {}).get("id") == "cmd-with-kiosk":
                break
            time.sleep(0.05)
        agent._selftest_tick(0.0)
        assert agent._selftest_pending is None
        last = load_last(config.data_dir)
        checks = {c["name"]: c for c in last["checks"]}
        assert checks["fingerprint"]["status"] == "pass", checks["fingerprint"]
        assert "system_id=0x" in checks["fingerprint"]["value"]
        assert checks["camera"]["status"] == "pass", checks["camera"]
        assert checks["gnss"]["status"] == "pass" and checks["modem"]["status"] == "pass"
        answer = agent_answer(SelfTestResult(
            [Check(c["name"], c["required"], c["status"], c["value"]) for c in last["checks"]],
            last["kit"], 0.0), keys_mode="software", disk_free_mib=1)
        assert answer["checks"]["fingerprint"] == "pass" and answer["checks"]["camera"] == "pass"
        kiosk.tick()  # the same request is not tested twice
        assert kiosk._selftest_seen == "cmd-with-kiosk"
        # A second request while one waits: the first is answered at once, not dropped.
        agent._start_selftest("cmd-a")
        agent._start_selftest("cmd-b")
        assert agent._selftest_pending is not None and agent._selftest_pending[0] == "cmd-b"
        first = {c["name"]: c for c in load_last(config.data_dir)["checks"]}
        assert first["fingerprint"]["value"] == "held by the kiosk; another self-test was asked"
    finally:
        kiosk.close()
        devices.close()
        agent.sources.close()
        agent.store.close()
