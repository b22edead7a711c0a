"""What the agent hands the kiosk through the store: the latest GNSS fix and the modem's view.

Only the agent opens the GNSS and modem ports (two readers of one serial port
would each get half the bytes; DESIGN.md s4), so it writes what it reads into
the store's ``kit_status`` and the kiosk reads it back from there. Both sides
call the functions here, so the stored layout lives in this one place and
neither side builds or picks apart a dict by hand.

>>> share_gnss_fix(store, fix)                 # the agent, after each new fix  # doctest: +SKIP
>>> shared_gnss_fix(store, max_age_s=30.0)     # the kiosk, stamping a record   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sensors.gnss import GnssFix

if TYPE_CHECKING:
    from kit.store import Store

GNSS_FIX_KEY = "gnss_fix"
MODEM_KEY = "modem"


def share_gnss_fix(store: Store, fix: GnssFix) -> None:
    """Keep ``fix`` in the store for the kiosk (it stamps records with it)."""
    store.set_status(GNSS_FIX_KEY, {
        "lat": fix.lat, "lon": fix.lon, "accuracy_m": fix.accuracy_m,
        "altitude_m": fix.altitude_m, "speed_kmh": fix.speed_kmh, "course_deg": fix.course_deg,
        "satellites": fix.satellites, "hdop": fix.hdop, "fix_quality": fix.fix_quality,
        "time_utc": fix.time_utc.isoformat()})


def shared_gnss_fix(store: Store, *, max_age_s: float = 30.0,
                    now: datetime | None = None) -> GnssFix | None:
    """The fix the agent last shared, or None: none shared, unreadable, or its time more than
    ``max_age_s`` before ``now`` (the wall clock). Its ``age_s`` is that difference."""
    data = store.status(GNSS_FIX_KEY)
    if not isinstance(data, dict):
        return None
    try:
        when = datetime.fromisoformat(data["time_utc"])
        age = ((now or datetime.now(UTC)) - when).total_seconds()
        if age > max_age_s:
            return None
        satellites = data.get("satellites")
        return GnssFix(lat=float(data["lat"]), lon=float(data["lon"]),
                       accuracy_m=_number(data.get("accuracy_m")),
                       altitude_m=_number(data.get("altitude_m")),
                       speed_kmh=_number(data.get("speed_kmh")),
                       course_deg=_number(data.get("course_deg")),
                       satellites=None if satellites is None else int(satellites),
                       hdop=_number(data.get("hdop")),
                       fix_quality=int(data.get("fix_quality", 1)),
                       time_utc=when, age_s=max(0.0, age))
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ModemView:
    """What the kiosk's status bar shows of the modem, whose port only the agent may open."""

    registered: bool | None = None
    operator: str | None = None
    access_tech: str | None = None
    rssi_dbm: float | None = None
    rsrp_dbm: float | None = None


def share_modem_view(store: Store, view: ModemView | None) -> None:
    """Keep the modem's view in the store for the kiosk (None: no modem reading)."""
    store.set_status(MODEM_KEY, None if view is None else dataclasses.asdict(view))


def shared_modem_view(store: Store) -> ModemView | None:
    """The modem's view the agent last shared, or None; a field of the wrong type reads as
    unknown (None)."""
    data = store.status(MODEM_KEY)
    if not isinstance(data, dict):
        return None
    registered = data.get("registered")

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    def number(key: str) -> float | None:
        value = data.get(key)
        return float(value) if isinstance(value, int | float) and \
            not isinstance(value, bool) and math.isfinite(value) else None

    return ModemView(registered=registered if isinstance(registered, bool) else None,
                     operator=text("operator"), access_tech=text("access_tech"),
                     rssi_dbm=number("rssi_dbm"), rsrp_dbm=number("rsrp_dbm"))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
