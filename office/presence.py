"""What the office knows of each kit's presence, place and health, and how live it is.

:class:`KitData` is a ``kits`` row with its JSON columns read (as :mod:`office.ingest`
writes them); :func:`staleness` decides, in one place, what is live and what is stale from
the reporting periods of ``sync/PROTOCOL.md`` (Telemetry; Sessions and presence). The fleet
pages (:mod:`office.web.fleet`) and the alerts (:mod:`office.alerts`) both judge kits by it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from office.models import Kit

# -- the protocol's periods (sync/PROTOCOL.md, "Agent settings" defaults) -----------------
INTERVAL_MOVING_S = 60.0  # location while moving
INTERVAL_IDLE_S = 900.0  # location and health while idle
INTERVAL_LOW_BATTERY_S = 300.0  # location and health on a low, discharging battery
LOW_BATTERY_PERCENT = 20
KEEPALIVE_S = 120.0  # MQTT keepalive: the broker declares a silent kit lost after 1.5 x
WILL_DELAY_S = 120.0  # and publishes its will this much later
STALE_FACTOR = 1.5  # a report may come late by half a period (timers, QoS 0 losses) ...
STALE_MARGIN_S = 30.0  # ... plus the closest spacing of reports (min_interval_s)
# The longest a kit in good order stays unheard: one idle period, then the time the broker
# takes to notice it gone (keepalive x 1.5) and to publish its will (the will delay).
PRESENCE_S = INTERVAL_IDLE_S + KEEPALIVE_S * STALE_FACTOR + WILL_DELAY_S


@dataclass(frozen=True)
class Staleness:
    """How live each part of a kit's report is at ``now``.

    ``presence`` is ``online``, ``offline`` (its status says so: shutdown or lost), ``silent``
    (its status says online but nothing came for longer than :data:`PRESENCE_S`: the will
    or the office's link went missing) or ``unknown`` (never reported). ``*_period_s`` is
    the reporting period the kit's own state implies; ``*_stale`` whether that part is
    older than the period x :data:`STALE_FACTOR` + :data:`STALE_MARGIN_S`.
    """

    presence: str
    location_period_s: float
    location_stale: bool
    health_period_s: float
    health_stale: bool

    @property
    def online(self) -> bool:
        return self.presence == "online"


def staleness(kit: KitData, now: float) -> Staleness:
    """Judge a kit's presence, location and health at ``now`` (Unix seconds).

    - **Online** needs the last status to say online (a birth; a will or shutdown says
      offline) *and* the kit to have been heard from (``last_seen``) within
      :data:`PRESENCE_S` = idle period + keepalive x 1.5 + will delay (1,200 s): a kit
      reports at least once an idle period, and a kit that stops is declared lost by the
      broker within keepalive x 1.5 + will delay. (Keepalive pings reach the broker only,
      so an idle kit is quite properly unheard for up to 900 s.)
    - **Location** is stale when older than its period x 1.5 + 30 s. The period is the
      kit's: 60 s when its last report was taken moving (OwnTracks ``t: "t"``), 300 s on a
      low (< 20 %) discharging battery, else 900 s. A kit that stopped shows its last
      moving position greyed until its next idle report: the office cannot know it stopped.
    - **Health** (battery, signal, GNSS fix, records waiting) is stale when older than its
      period x 1.5 + 30 s: 300 s on a low discharging battery, else 900 s.
    - An offline (or silent) kit's values are all stale: nothing is live about a kit that
      is not there.
    """
    low = kit.low_battery
    if kit.status_at is None and kit.last_seen is None:
        presence = "unknown"
    elif not kit.status_online:
        presence = "offline"
    elif kit.last_seen is None or now - kit.last_seen > PRESENCE_S:
        presence = "silent"
    else:
        presence = "online"
    moving = kit.location.get("t") == "t"
    loc_period = INTERVAL_MOVING_S if moving else (
        INTERVAL_LOW_BATTERY_S if low else INTERVAL_IDLE_S)
    health_period = INTERVAL_LOW_BATTERY_S if low else INTERVAL_IDLE_S

    def old(at: float | None, period: float) -> bool:
        return presence != "online" or at is None or \
            now - at > period * STALE_FACTOR + STALE_MARGIN_S

    return Staleness(presence, loc_period, old(kit.location_at, loc_period),
                     health_period, old(kit.health_at, health_period))


@dataclass(frozen=True)
class KitData:
    """A ``kits`` row with its JSON columns read (as :mod:`office.ingest` writes them)."""

    kit_id: str
    status_online: bool
    status: dict[str, Any]
    status_at: float | None
    health: dict[str, Any]
    health_at: float | None
    location: dict[str, Any]
    location_at: float | None
    last_seen: float | None

    @classmethod
    def of(cls, kit: Kit) -> KitData:
        return cls(kit.kit_id, bool(kit.online), _json(kit.status), kit.status_at,
                   _json(kit.health), kit.health_at, _json(kit.location), kit.location_at,
                   kit.last_seen)

    @property
    def battery(self) -> tuple[int | None, int, float | None]:
        """The newest battery reading: percent, OwnTracks ``bs`` state, and when."""
        from_health = (self.health.get("battery_percent"), self.health.get("battery_state"),
                       self.health_at)
        from_location = (self.location.get("batt"), self.location.get("bs"), self.location_at)
        best = from_health
        if from_location[0] is not None and (
                from_health[0] is None or (from_location[2] or 0) > (from_health[2] or 0)):
            best = from_location
        percent, state, at = best
        return (None if percent is None else int(percent), int(state or 0), at)

    @property
    def low_battery(self) -> bool:
        percent, state, _at = self.battery
        return percent is not None and percent < LOW_BATTERY_PERCENT and state in (0, 1)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}



def day_start(now: float) -> float:
    """Local (WIB) midnight before ``now``, as Unix seconds."""
    local = timezone.localtime(dt.datetime.fromtimestamp(now, tz=dt.UTC))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
