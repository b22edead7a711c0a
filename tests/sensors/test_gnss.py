"""The GNSS driver (pyserial + pynmea2) against the emulated receiver or a real one.

Tests without ``require_emulator()`` run unchanged on a bench with
``--gps-port /dev/ttyUSB1`` (the receiver must see the sky). The others
inject faults through the emulator's controls and compare the driver's
fix with what the emulator sent for that very second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sensors.errors import DeviceError
from sensors.gnss import UERE_M, GnssFix, NmeaGnss
from tests.waiting import wait_until

pytestmark = pytest.mark.hil

SLACK_S = 0.5  # scheduling margin allowed on top of a call's own timeout


def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(a))


def fix_after(gnss: NmeaGnss, moment: datetime, timeout: float = 4.0) -> GnssFix:
    """The first fix whose receiver time is later than ``moment``."""
    return wait_until(
        lambda: (f := gnss.fix(timeout=0.2)) is not None and f.time_utc > moment and f,
        timeout, f"a fix after {moment:%H:%M:%S}",
    )


def problem_code(gnss: NmeaGnss) -> str | None:
    problem = gnss.problem()
    return problem.code if problem is not None else None


@pytest.fixture
def first_fix_timeout(gps_device: Any) -> float:
    # A real receiver may need a cold start (~35 s, longer indoors near a window).
    return 6.0 if gps_device.emulated else 120.0


@pytest.fixture
def gnss(gps_device: Any) -> Iterator[NmeaGnss]:
    receiver = NmeaGnss(gps_device.url, 9600, silence_s=1.5, reopen_interval_s=0.2)
    yield receiver
    receiver.close()


def test_fix_has_sane_values(gnss: NmeaGnss, first_fix_timeout: float) -> None:
    fix = gnss.require_fix(timeout=first_fix_timeout)
    assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180
    assert fix.fix_quality >= 1
    assert fix.satellites is not None and fix.satellites >= 3
    assert fix.hdop is not None and fix.hdop > 0
    assert fix.accuracy_m == pytest.approx(UERE_M * fix.hdop, abs=0.01)
    assert fix.speed_kmh is not None and fix.speed_kmh >= 0
    assert fix.age_s <= 2.0
    # The receiver's UTC and the bench clock agree when both are right.
    assert abs((fix.time_utc - datetime.now(UTC)).total_seconds()) < 10
    assert gnss.problem() is None


def test_clean_stream_has_no_rejected_lines(gnss: NmeaGnss, first_fix_timeout: float) -> None:
    first = gnss.require_fix(timeout=first_fix_timeout)
    fix_after(gnss, first.time_utc)
    counters = gnss.counters()
    assert counters.sentences >= 8  # two seconds of RMC, GGA, GSA and GSV at least
    assert counters.rejected == 0, counters
    assert counters.reconnects == 0 and counters.read_errors == 0


def test_fix_matches_the_emulated_position(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    fix = gnss.require_fix(timeout=6)
    truth = emulator.truth_at(fix.time_utc)
    assert truth is not None and truth.fix
    # NMEA carries 1/100000 of a minute (2 cm); everything else must be exact.
    assert metres_between(fix.lat, fix.lon, truth.lat, truth.lon) < 0.05
    assert fix.altitude_m == pytest.approx(truth.altitude_m, abs=0.05)
    assert fix.speed_kmh == pytest.approx(truth.speed_kmh, abs=0.01)
    assert fix.course_deg == pytest.approx(truth.course_deg, abs=0.01)
    assert fix.satellites == truth.satellites
    assert fix.hdop == truth.hdop
    assert fix.accuracy_m == pytest.approx(UERE_M * truth.hdop)
    # GSV follows GGA and RMC in each second's burst.
    wait_until(lambda: gnss.satellites_in_view() == truth.in_view, 2, "the satellites in view")


def test_moving_receiver_covers_the_road(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    first = gnss.require_fix(timeout=6)
    second = fix_after(gnss, first.time_utc)
    third = fix_after(gnss, second.time_utc)
    seconds = (third.time_utc - first.time_utc).total_seconds()
    travelled = metres_between(first.lat, first.lon, third.lat, third.lon)
    assert travelled == pytest.approx(emulator.speed_kmh / 3.6 * seconds, abs=0.5)
    assert first.lat < -8.0 and 112.1 < first.lon < 112.4  # in Kabupaten Blitar


def test_position_control_and_standing_still(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    gnss.require_fix(timeout=6)
    emulator.control("position", "-8.0952", "112.1609", "167")  # a fictional house in Blitar
    # The second already on the wire when the control landed still shows the ride.
    fix = wait_until(lambda: (f := gnss.fix(timeout=0.2)) and f.speed_kmh == 0.0 and f, 4,
                     "the held position")
    assert metres_between(fix.lat, fix.lon, -8.0952, 112.1609) < 0.05
    assert fix.altitude_m == pytest.approx(167.0)
    assert fix.speed_kmh == 0.0
    emulator.control("move")
    moving = wait_until(lambda: (f := gnss.fix(timeout=0.2)) and f.speed_kmh and f, 4, "moving")
    assert moving.speed_kmh == pytest.approx(emulator.speed_kmh, abs=0.01)
    emulator.control("stop-moving")
    held = wait_until(lambda: (f := gnss.fix(timeout=0.2)) and f.speed_kmh == 0.0 and f, 4,
                      "standing still")
    later = fix_after(gnss, held.time_utc)
    assert metres_between(held.lat, held.lon, later.lat, later.lon) < 0.05


def test_fix_loss_is_reported_and_recovers(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    before = gnss.require_fix(timeout=6)
    emulator.control("fix-loss", "2.5")
    wait_until(lambda: problem_code(gnss) == "gnss_no_fix", 3, "the no-fix report")
    problem = gnss.problem()
    assert problem is not None and problem.device == "gnss" and problem.operation == "fix"
    assert "satellites in view" in problem.text("en") and "satelit" in problem.text("id")
    stale = gnss.fix()
    assert stale is not None and stale.time_utc >= before.time_utc and stale.age_s > 0.5
    started = time.monotonic()
    with pytest.raises(DeviceError) as raised:
        gnss.require_fix(timeout=0.3, max_age_s=0.5)
    assert time.monotonic() - started < 0.3 + SLACK_S
    assert raised.value.code == "gnss_no_fix"
    recovered = fix_after(gnss, stale.time_utc, timeout=5)
    assert recovered.age_s < 1.5
    assert gnss.problem() is None


def test_cold_start_searches_then_acquires(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    gnss.require_fix(timeout=6)
    emulator.control("cold-start", "3")
    wait_until(lambda: problem_code(gnss) == "gnss_no_fix", 3, "the no-fix report")
    wait_until(lambda: (n := gnss.satellites_in_view()) is not None and n < 10, 3,
               "a sky still being searched")
    fix = gnss.require_fix(timeout=5, max_age_s=1.0)
    assert fix.satellites is not None and fix.satellites >= 4
    wait_until(lambda: gnss.satellites_in_view() == 10, 2, "the whole sky in view")


def test_garbage_is_skipped_and_counted(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    first = gnss.require_fix(timeout=6)
    emulator.control("garbage", "3")
    fixes = [fix_after(gnss, first.time_utc)]
    for _ in range(2):
        fixes.append(fix_after(gnss, fixes[-1].time_utc))
    counters = gnss.counters()
    assert counters.checksum_errors >= 1
    assert counters.truncated >= 1
    assert counters.garbage >= 1
    for fix in fixes:  # the good sentences between the junk still give exact fixes
        truth = emulator.truth_at(fix.time_utc)
        assert truth is not None
        assert metres_between(fix.lat, fix.lon, truth.lat, truth.lon) < 0.05
        assert fix.altitude_m == pytest.approx(truth.altitude_m, abs=0.05)
    assert gnss.reading and gnss.problem() is None


def test_unreadable_line_is_reported(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    gnss.require_fix(timeout=6)
    emulator.control("garbage", "3", "only")
    wait_until(lambda: problem_code(gnss) == "gnss_garbled", 3.5, "the unreadable-data report")
    problem = gnss.problem()
    assert problem is not None and problem.operation == "read"
    assert "baud 9600" in problem.text("en")
    assert gnss.fix(timeout=0.5, max_age_s=0.5) is None
    wait_until(lambda: gnss.problem() is None, 4, "recovery after the noise")


def test_unplugged_receiver_is_reported_and_reopened(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    before = gnss.require_fix(timeout=6)
    emulator.control("unplug")
    wait_until(lambda: problem_code(gnss) == "gnss_disconnected", 2, "the disconnect report")
    problem = gnss.problem()
    assert problem is not None and problem.device == "gnss"
    assert problem.operation == "read" and "USB" in problem.text("en")
    stale = wait_until(lambda: (f := gnss.fix()) and f.age_s > 0.3 and f, 2, "an ageing fix")
    assert stale.time_utc >= before.time_utc
    started = time.monotonic()
    assert gnss.fix(timeout=0.3, max_age_s=0.3) is None
    assert time.monotonic() - started < 0.3 + SLACK_S
    emulator.control("replug")
    after = fix_after(gnss, before.time_utc, timeout=5)
    assert after.age_s < 1.5
    counters = gnss.counters()
    # >= 1: a reopen can race the old pty's teardown, fail its first read, and retry.
    assert counters.reconnects >= 1 and counters.read_errors >= counters.reconnects


def test_stalled_receiver_is_reported_and_recovers(gps_device: Any, gnss: NmeaGnss) -> None:
    emulator = gps_device.require_emulator()
    before = gnss.require_fix(timeout=6)
    emulator.control("stall", "3")
    wait_until(lambda: problem_code(gnss) == "gnss_silent", 3, "the silence report")
    problem = gnss.problem()
    assert problem is not None and problem.operation == "read"
    assert "silent" in problem.text("en") and "diam" in problem.text("id")
    started = time.monotonic()
    with pytest.raises(DeviceError) as raised:
        gnss.require_fix(timeout=0.4, max_age_s=0.5)
    assert time.monotonic() - started < 0.4 + SLACK_S
    assert raised.value.code == "gnss_silent"
    fix_after(gnss, before.time_utc, timeout=5)
    assert gnss.problem() is None


def test_missing_port_is_reported_without_blocking(tmp_path: Path) -> None:
    receiver = NmeaGnss(str(tmp_path / "no-such-gps"), 9600, reopen_interval_s=0.1)
    try:
        started = time.monotonic()
        with pytest.raises(DeviceError) as raised:
            receiver.require_fix(timeout=0.5)
        assert time.monotonic() - started < 0.5 + SLACK_S
        error = raised.value
        assert (error.device, error.operation, error.code) == ("gnss", "open", "gnss_disconnected")
        assert "no-such-gps" in error.text("id") and "no-such-gps" in error.text("en")
        assert receiver.reading  # keeps trying, so a receiver plugged in later is found
    finally:
        receiver.close()


def test_controls_refuse_bad_input(gps_device: Any) -> None:
    emulator = gps_device.require_emulator()
    assert set(emulator.CONTROLS) >= {"fix-loss", "cold-start", "garbage", "stop-moving", "move",
                                      "unplug", "replug", "stall", "position"}
    for name, args in [("teleport", ()), ("fix-loss", ()), ("fix-loss", ("soon",)),
                       ("stall", ("-1",)), ("position", ("-91", "112")),
                       ("position", ("-8.1",)), ("move", ("fast",)), ("garbage", ("x", "y"))]:
        with pytest.raises(ValueError):
            emulator.control(name, *args)
