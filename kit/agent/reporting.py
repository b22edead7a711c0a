"""What the agent reports when: telemetry by exception, on a timer, and the offline track.

Pure decisions on readings and clocks (no devices, no broker), so tests and the
benchmark drive them with a simulated day. The rules are in sync/PROTOCOL.md
("Telemetry").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kit.shared_readings import seal_status, unseal_status
from sync import protocol as p

if TYPE_CHECKING:
    from kit.agent.sampling import Snapshot
    from kit.agent.settings import AgentSettings
    from kit.store import Store
    from kit.vault import DataKey

log = logging.getLogger(__name__)


def distance_m(a: p.Position, b: p.Position) -> float:
    """Great-circle distance (haversine), metres."""
    r = 6_371_000.0
    la1, la2 = math.radians(a.lat), math.radians(b.lat)
    dla, dlo = la2 - la1, math.radians(b.lon - a.lon)
    h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))


@dataclass
class TelemetryPolicy:
    """Decides when a location or health report is due (reports by exception and by timer)."""

    settings: AgentSettings
    last_location: p.Position | None = None
    last_location_at: float | None = None
    last_health: p.Health | None = None
    last_health_at: float | None = None
    moved_at: float | None = None

    def mode(self, snapshot: Snapshot, now: float) -> str:
        s = self.settings
        pos = snapshot.position
        if pos is not None:
            fast = pos.speed_mps is not None and pos.speed_mps >= s.moving_speed_mps
            far = self.last_location is not None and \
                distance_m(pos, self.last_location) >= s.moving_distance_m
            if fast or far:
                self.moved_at = now
        if self.moved_at is not None and now - self.moved_at < s.moving_hold_s:
            return "moving"
        power = snapshot.power
        if power is not None and power.percent is not None and not power.charging \
                and power.percent <= s.low_battery_percent:
            return "low_battery"
        return "idle"

    def interval(self, mode: str) -> float:
        s = self.settings
        return {"moving": s.interval_moving_s, "low_battery": s.interval_low_battery_s}.get(
            mode, s.interval_idle_s)

    def location_due(self, snapshot: Snapshot, now: float, mode: str) -> str | None:
        """The OwnTracks trigger for a location report due now, or None."""
        pos = snapshot.position
        if pos is None:
            return None
        if self.last_location_at is None:
            return "p"
        since = now - self.last_location_at
        if since >= self.interval(mode):
            return "t" if mode == "moving" else "p"
        if self.last_location is not None and since >= self.settings.min_interval_s \
                and distance_m(pos, self.last_location) >= self.settings.moving_distance_m:
            return "t"
        return None

    def health_due(self, health: p.Health, now: float, mode: str) -> bool:
        """Health follows its own timer: moving changes where the kit is, not how it is, so
        only a low battery makes it faster; changes are reported by exception."""
        if self.last_health_at is None or self.last_health is None:
            return True
        since = now - self.last_health_at
        if since >= self.interval("low_battery" if mode == "low_battery" else "idle"):
            return True
        return since >= self.settings.min_interval_s and self.is_news(self.last_health, health)

    def is_news(self, old: p.Health, new: p.Health) -> bool:
        """A change the office should hear about before the next timed report."""
        s = self.settings

        def moved(a: float | None, b: float | None, step: float) -> bool:
            return (a is None) != (b is None) or (a is not None and b is not None
                                                   and abs(a - b) >= step)

        charging = new.battery_state in (2, 3)
        return (
            old.battery_state != new.battery_state
            # Draining is news; filling up on the charger is not (its start and end are).
            or (not charging and moved(old.battery_percent, new.battery_percent,
                                       s.battery_step_percent))
            or old.registered != new.registered or old.access_tech != new.access_tech
            or old.operator != new.operator
            or moved(old.rssi_dbm, new.rssi_dbm, s.signal_step_db)
            or moved(old.rsrp_dbm, new.rsrp_dbm, s.signal_step_db)
            or old.outbox_count != new.outbox_count
            # "recording:photo" -> "recording:fingers" is not news; "idle" -> "recording" is.
            or (old.ui_state or "").split(":")[0] != (new.ui_state or "").split(":")[0]
            or (old.fix_age_s is None) != (new.fix_age_s is None)
            or (old.minutes_left is None) != (new.minutes_left is None)
        )

    def location_sent(self, pos: p.Position, now: float) -> None:
        self.last_location, self.last_location_at = pos, now

    def health_sent(self, health: p.Health, now: float) -> None:
        self.last_health, self.last_health_at = health, now


class Track:
    """The path driven while offline: bounded, thinned when full, persisted in kit_status."""

    STATUS_KEY = "agent_track"

    def __init__(self, max_points: int, min_distance_m: float) -> None:
        self.max_points = max_points
        self.min_distance_m = min_distance_m
        self.points: list[p.Position] = []
        self.dirty = False

    def add(self, pos: p.Position) -> bool:
        if self.points and (pos.tst <= self.points[-1].tst or
                            distance_m(pos, self.points[-1]) < self.min_distance_m):
            return False
        self.points.append(pos)
        if len(self.points) > self.max_points:
            # Keep the first and every other point after it; moving points spaced
            # twice as far keep the shape of the drive at half the resolution.
            self.points = self.points[::2]
            self.min_distance_m *= 2
        self.dirty = True
        return True

    def clear(self, base_distance_m: float) -> None:
        self.points = []
        self.min_distance_m = base_distance_m
        self.dirty = True

    def save(self, store: Store, key: DataKey) -> None:
        """Keep the track (times and places) encrypted under the agent's machine key."""
        if self.dirty:
            if self.points:
                seal_status(store, self.STATUS_KEY, {
                    "min_distance_m": self.min_distance_m,
                    "points": [[q.tst, q.lat, q.lon, q.acc_m] for q in self.points]}, key)
            else:
                store.delete_status(self.STATUS_KEY)  # sent: nothing of it is kept
            self.dirty = False

    def load(self, store: Store, key: DataKey) -> None:
        raw = store.status(self.STATUS_KEY)
        if raw is None:
            return
        if isinstance(raw, dict) and "points" in raw and "sealed" not in raw:
            data: Any = raw  # kept in clear before it was encrypted: read once, rewrite sealed
            self.dirty = True
        else:
            data = unseal_status(store, self.STATUS_KEY, key)
        if not isinstance(data, dict):
            return
        try:
            self.points = [p.Position(lat=float(la), lon=float(lo), tst=int(t),
                                      acc_m=None if acc is None else float(acc))
                           for t, la, lo, acc in data.get("points", [])][-self.max_points:]
            self.min_distance_m = max(self.min_distance_m, float(data.get("min_distance_m", 0)))
        except (TypeError, ValueError):
            log.warning("stored offline track is damaged; starting a new one")
            self.points = []
            self.dirty = True

