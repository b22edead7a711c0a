"""What the agent hands the kiosk through the store: the latest GNSS fix and the modem's view.

Only the agent opens the GNSS and modem ports (two readers of one serial port
would each get half the bytes; DESIGN.md s4), so it writes what it reads into
the store's ``kit_status`` and the kiosk reads it back from there. Both sides
call the functions here, so the stored layout lives in this one place and
neither side builds or picks apart a dict by hand.

The fix is a place, so it is kept encrypted under the machine key
(:func:`kit.keyring.agent_key`), which both processes read with no officer present; a
copy of the SD card without that key shows neither where nor when. Only the latest fix is
kept (one row, replaced).

>>> share_gnss_fix(store, fix, key)              # the agent, after each new fix  # doctest: +SKIP
>>> shared_gnss_fix(store, key, max_age_s=30.0)  # the kiosk, stamping a record   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sensors.gnss import GnssFix
from sync.errors import JaranIjoError

if TYPE_CHECKING:
    from kit.store import Store
    from kit.vault import DataKey

log = logging.getLogger(__name__)

GNSS_FIX_KEY = "gnss_fix"
MODEM_KEY = "modem"


def seal_status(store: Store, status_key: str, value: Any, key: DataKey) -> None:
    """Keep ``value`` (JSON) in ``kit_status`` encrypted under ``key``, bound to its row."""
    blob = key.encrypt(json.dumps(value).encode(), f"kit_status:{status_key}")
    store.set_status(status_key, {"sealed": base64.b64encode(blob).decode("ascii")})


def unseal_status(store: Store, status_key: str, key: DataKey | None) -> Any:
    """The value :func:`seal_status` kept, or None: none kept, no key, or it does not open
    (a damaged row, another kit's key, a value from before it was encrypted)."""
    data = store.status(status_key)
    if data is None:
        return None
    if key is None:
        return None
    try:
        if not isinstance(data, dict) or not isinstance(data.get("sealed"), str):
            raise ValueError("not sealed")
        blob = base64.b64decode(data["sealed"], validate=True)
        return json.loads(key.decrypt(blob, f"kit_status:{status_key}"))
    except (ValueError, binascii.Error, JaranIjoError):
        log.warning("stored %s does not open; treated as absent", status_key)
        return None


def share_gnss_fix(store: Store, fix: GnssFix, key: DataKey) -> None:
    """Keep ``fix`` in the store for the kiosk (it stamps records with it), encrypted."""
    seal_status(store, GNSS_FIX_KEY, {
        "lat": fix.lat, "lon": fix.lon, "accuracy_m": fix.accuracy_m,
        "altitude_m": fix.altitude_m, "speed_kmh": fix.speed_kmh, "course_deg": fix.course_deg,
        "satellites": fix.satellites, "hdop": fix.hdop, "fix_quality": fix.fix_quality,
        "time_utc": fix.time_utc.isoformat()}, key)


def shared_gnss_fix(store: Store, key: DataKey | None, *, max_age_s: float = 30.0,
                    now: datetime | None = None) -> GnssFix | None:
    """The fix the agent last shared, or None: none shared, unreadable (or no ``key``), or its
    time more than ``max_age_s`` before ``now`` (the wall clock). Its ``age_s`` is that
    difference."""
    data = unseal_status(store, GNSS_FIX_KEY, key)
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
