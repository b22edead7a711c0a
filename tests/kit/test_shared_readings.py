"""What the agent shares with the kiosk through the store: the GNSS fix and the modem's view."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kit.shared_readings import (
    GNSS_FIX_KEY,
    MODEM_KEY,
    ModemView,
    seal_status,
    share_gnss_fix,
    share_modem_view,
    shared_gnss_fix,
    shared_modem_view,
)
from kit.store import Store
from kit.vault import DataKey
from sensors.gnss import GnssFix

NOW = datetime(2026, 11, 23, 3, 0, 0, tzinfo=UTC)
FIX = GnssFix(lat=-8.13012, lon=112.21811, accuracy_m=5.0, altitude_m=167.0, speed_kmh=31.0,
              course_deg=270.0, satellites=9, hdop=1.0, fix_quality=1,
              time_utc=NOW - timedelta(seconds=4), age_s=0.4)
KEY = DataKey(bytes(range(32)))


def test_a_shared_fix_reads_back_as_the_same_reading(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kit.db") as store:
        assert shared_gnss_fix(store, KEY, now=NOW) is None
        share_gnss_fix(store, FIX, KEY)
        back = shared_gnss_fix(store, KEY, now=NOW)
        assert back == dataclasses.replace(FIX, age_s=4.0)
        # Older than the bedside's: not shown, not stamped on a record.
        assert shared_gnss_fix(store, KEY, now=NOW + timedelta(seconds=30)) is None
        assert shared_gnss_fix(store, KEY, max_age_s=60,
                               now=NOW + timedelta(seconds=30)) is not None
        # Kept encrypted: the place is not in the row, and it opens with this key only.
        assert "-8.13" not in str(store.status(GNSS_FIX_KEY))
        assert shared_gnss_fix(store, DataKey(bytes(32)), now=NOW) is None
        assert shared_gnss_fix(store, None, now=NOW) is None


def test_a_damaged_or_older_shared_fix_is_read_as_well_as_it_can_be(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kit.db") as store:
        for damaged in ({"lat": "north"}, {"lat": 1, "lon": 2, "time_utc": "yesterday"},
                        {"lat": 1, "lon": 2, "time_utc": "2026-11-23T03:00:00"}, [1, 2], "x"):
            seal_status(store, GNSS_FIX_KEY, damaged, KEY)
            assert shared_gnss_fix(store, KEY, now=NOW) is None
        # Not sealed (a fix kept in clear by an older agent), or the ciphertext damaged.
        for damaged in ({"lat": FIX.lat, "lon": FIX.lon, "time_utc": FIX.time_utc.isoformat()},
                        {"sealed": "not base64!"}, {"sealed": "AAAA"}):
            store.set_status(GNSS_FIX_KEY, damaged)
            assert shared_gnss_fix(store, KEY, now=NOW) is None
        # The layout written before the speed and course were shared still reads.
        seal_status(store, GNSS_FIX_KEY, {
            "lat": FIX.lat, "lon": FIX.lon, "accuracy_m": 5.0, "altitude_m": None,
            "satellites": None, "hdop": 1.0, "time_utc": FIX.time_utc.isoformat()}, KEY)
        fix = shared_gnss_fix(store, KEY, now=NOW)
        assert fix is not None and fix.speed_kmh is None and fix.satellites is None
        assert fix.fix_quality == 1


def test_the_modem_view_round_trips_and_tolerates_wrong_types(tmp_path: Path) -> None:
    view = ModemView(registered=True, operator="Telkomsel", access_tech="LTE",
                     rssi_dbm=-71.0, rsrp_dbm=-98.0)
    with Store.open(tmp_path / "kit.db") as store:
        assert shared_modem_view(store) is None
        share_modem_view(store, view)
        assert shared_modem_view(store) == view
        share_modem_view(store, None)
        assert shared_modem_view(store) is None
        store.set_status(MODEM_KEY, {"registered": "yes", "operator": 5, "rssi_dbm": "strong",
                                     "rsrp_dbm": True})
        assert shared_modem_view(store) == ModemView()
