"""Telemetry from the emulated devices, through the real drivers, agent and broker.

The rig's GNSS, modem and battery twins speak NMEA, AT commands and sysfs
files; the agent reads them with the kit's drivers and reports. A second
office user reads the wire (a reader user such as OwnTracks Recorder may
read only the location and status: see tests/link/test_tls.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from sensors.emulated.rig import EmulatedRig
from sync import protocol as p
from tests.link.harness import INJECTOR, KIT_A, LinkWorld, agent_log, queue_records
from tests.waiting import wait_until

# Reports only by exception here: the timers are far beyond the test's length.
BY_EXCEPTION = {"interval_moving_s": 600.0, "interval_idle_s": 600.0,
                "interval_low_battery_s": 600.0, "min_interval_s": 1.0, "poll_s": 0.5}


@pytest.fixture
def rig(tmp_path: Path):
    with EmulatedRig(tmp_path / "rig", control_fifo=False) as running:
        yield running


def test_telemetry_carries_every_field_from_the_emulated_devices(
        world: LinkWorld, rig: EmulatedRig) -> None:
    devices = {"gnss": {"port": str(rig.paths["gps"]), "baud": 9600},
               "modem": {"port": str(rig.paths["modem"]), "baud": 115200},
               "battery": {"kind": "sysfs", "sysfs_dir": str(rig.paths["power_supply"])}}
    kit = world.provision(KIT_A, devices=devices, agent=BY_EXCEPTION)
    queue_records(kit, world, 2)  # no office runs: they stay waiting, as in a dead zone
    with kit.store() as store:
        store.set_status("ui_state", "recording:fingerprints")
    topics = p.KitTopics(KIT_A)
    monitor = world.broker.client(INJECTOR)  # health is the office's: readers get location only
    monitor.subscribe(topics.location)
    monitor.subscribe(topics.health)
    # A kernel fuel gauge reports whole percent: at the default 0.25 %/min the charge would
    # not move for minutes, and the kit cannot tell how long it will last.
    rig.control("battery", "rate", "3")
    started = time.time()
    world.start_agent(kit)

    def healths() -> list[p.Health]:
        return [p.decode_health(m) for m in monitor.on(topics.health)]

    def merged() -> p.Health:
        """Reports folded as the office folds them: a field keeps its last known value."""
        state: dict[str, object] = {}
        for h in healths():
            state.update({k: v for k, v in dataclasses.asdict(h).items() if v is not None})
        return p.Health(**state)  # type: ignore[arg-type]

    # Position, as OwnTracks apps send it: Recorder and Frontend map it unchanged.
    raw = wait_until(lambda: monitor.on(topics.location), 20,
                     lambda: f"a location report\n{agent_log(kit)}")[0]
    position, data = p.decode_location(raw)
    assert data["_type"] == "location" and data["tid"] == "01" and data["conn"] == "m"
    assert -8.3 < position.lat < -7.9 and 112.0 < position.lon < 112.5  # Kabupaten Blitar
    assert abs(position.tst - started) < 60
    for key in ("acc", "alt", "vel", "cog", "batt", "bs", "t"):
        assert key in data, f"location lacks {key}: {data}"

    # The first report may leave the kit before the receiver's first fix; the fix
    # arriving is news of its own.
    wait_until(lambda: [h for h in healths() if h.fix_age_s is not None], 10,
               "a health report with the GNSS fix")
    first = merged()
    assert first.registered is True and first.access_tech == "LTE"
    assert first.operator and "telkomsel" in first.operator.lower()
    assert first.rssi_dbm == -75 and first.rsrp_dbm == -95
    assert first.rsrq_db is not None and first.sinr_db is not None
    assert first.battery_state == 1 and first.voltage_mv and 3000 < first.voltage_mv < 4300
    assert first.battery_percent is not None and 70 <= first.battery_percent <= 77
    assert first.fix_age_s is not None and first.fix_age_s < 10
    assert first.disk_free_mib and first.uptime_s and first.software
    assert first.outbox_count == 2 and first.outbox_oldest_s is not None
    assert first.ui_state == "recording:fingerprints" and first.session >= 1

    # By exception: the network changes -> a report within seconds, not at the 600 s timer.
    count = len(healths())
    rig.control("modem", "operator", "indosat")
    changed = wait_until(lambda: [h for h in healths()[count:] if h.operator and
                                  "indosat" in h.operator.lower()], 10, "a report of the change")
    assert changed[0].tst - first.tst < 30

    # The battery's time estimate needs a minute of watching; then every field is there.
    wait_until(lambda: [h for h in healths() if h.minutes_left is not None], 90,
               lambda: f"a report with the battery's minutes left\n{agent_log(kit)}")
    complete = merged()
    missing = [f.name for f in dataclasses.fields(complete) if getattr(complete, f.name) is None]
    assert missing == [], f"health lacks {missing}"
    assert 0 < complete.minutes_left < 100_000  # type: ignore[operator]
    # Slow fields travel once per connection and on change only; the office merges them.
    assert sum(h.software is not None for h in healths()) == 1
    # No flood: everything sent had a reason (start, the change, the estimate, the track).
    assert len(healths()) <= 6, [dataclasses.asdict(h) for h in healths()]
    assert json.loads(raw)["batt"] == first.battery_percent
