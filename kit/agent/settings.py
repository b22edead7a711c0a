"""The agent's settings: the ``[agent]`` table of the kit configuration, checked key by key.

The keys, their types and defaults are listed in sync/PROTOCOL.md ("Agent settings");
the office may change a few of them with a signed ``config`` command (:data:`REMOTE_SETTINGS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.config import KitConfig, load_config
from sync import protocol as p
from sync.errors import ConfigError


@dataclass
class AgentSettings:
    """The agent's timers and sizes: the ``[agent]`` table of the kit configuration.

    Defaults suit a kit on a paid mobile data plan; tests shorten the timers.
    """

    poll_s: float = 5.0                 # how often the devices are read
    interval_moving_s: float = 60.0     # report period while the kit moves
    interval_idle_s: float = 900.0      # report period while it stands still
    interval_low_battery_s: float = 300.0  # report period on a low, discharging battery
    min_interval_s: float = 30.0        # no report by exception closer together than this
    moving_speed_mps: float = 1.0       # faster than a slow walk counts as moving
    moving_distance_m: float = 250.0    # a position this far from the last one sent is news
    moving_hold_s: float = 180.0        # stay in "moving" this long after the last movement
    low_battery_percent: float = 20.0
    battery_step_percent: float = 5.0   # battery news: a change of this many points
    signal_step_db: float = 10.0        # network news: RSSI/RSRP moved this much
    track_min_distance_m: float = 100.0  # offline track: a point per this much movement
    track_max_points: int = 500
    chunk_bytes: int = 64 * 1024        # record upload chunk, at most 128 KiB
    upload_window: int = 4              # chunks sent ahead of the office's confirmation
    upload_stall_s: float = 60.0        # no word from the office this long: resend
    retry_base_s: float = 30.0          # first wait after the office refuses a record
    retry_max_s: float = 3600.0         # longest wait between tries of one record
    reconnect_min_s: float = 2.0
    reconnect_max_s: float = 300.0
    connect_timeout_s: float = 20.0
    # Each keepalive is a PINGREQ/PINGRESP pair, ~200 bytes with TCP/IP headers: 120 s costs
    # ~140 kB a day; a dead link is noticed after 1.5 x keepalive, then the will delay runs.
    keepalive_s: int = 120
    will_delay_s: int = 120             # offline only after this long without the kit
    session_expiry_s: int = 7 * 86400   # the broker keeps the kit's session and queue this long
    max_clock_skew_s: float = 300.0     # commands issued this far in the future still count
    command_max_lifetime_s: float = 7 * 86400
    # The office's self-test waits this long for the kiosk to test the camera and the
    # fingerprint sensor (it holds them); a kiosk mid-capture answers after the capture.
    selftest_kiosk_wait_s: float = 30.0

    def check(self, origin: str = "[agent]") -> None:
        problems = []
        if not 1024 <= self.chunk_bytes <= p.MAX_CHUNK_DATA:
            problems.append(("chunk_bytes", f"between 1024 and {p.MAX_CHUNK_DATA}"))
        if self.upload_window < 1:
            problems.append(("upload_window", "at least 1"))
        if self.track_max_points < 10 or self.track_max_points > p.MAX_TRACK_POINTS:
            problems.append(("track_max_points", f"between 10 and {p.MAX_TRACK_POINTS}"))
        if self.session_expiry_s < self.will_delay_s:
            problems.append(("session_expiry_s", "at least will_delay_s"))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value <= 0 and f.name not in ("will_delay_s",):
                problems.append((f.name, "above 0"))
        if problems:
            key, rule = problems[0]
            raise ConfigError(id=f"{origin}: nilai 'agent.{key}' tidak sah",
                              en=f"{origin}: value of 'agent.{key}' is not valid",
                              hint_id=f"Harus {rule}", hint_en=f"It must be {rule}")

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], origin: str = "[agent]") -> AgentSettings:
        """Settings from a TOML table, as strictly as :mod:`kit.config` reads its own."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(id=f"{origin}: kunci tidak dikenal 'agent.{key}'",
                                  en=f"{origin}: unknown key 'agent.{key}'",
                                  hint_id=f"Kunci yang dikenal: {', '.join(known)}",
                                  hint_en=f"Known keys: {', '.join(known)}")
            values[key] = _coerce_setting(key, known[key].type, value, origin)
        settings = cls(**values)
        settings.check(origin)
        return settings

    def with_changes(self, changes: dict[str, Any], origin: str) -> AgentSettings:
        return AgentSettings.from_mapping({**dataclasses.asdict(self), **changes}, origin)


def _coerce_setting(key: str, kind: Any, value: Any, origin: str) -> Any:
    wanted = {"float": float, "int": int}.get(str(kind), kind)
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            wanted is int and not isinstance(value, int)):
        raise ConfigError(id=f"{origin}: 'agent.{key}' harus angka",
                          en=f"{origin}: 'agent.{key}' must be a number",
                          hint_id="Perbaiki nilainya", hint_en="Correct the value")
    return float(value) if wanted is float else value


# What the office may change with a signed "config" command.
REMOTE_SETTINGS = ("poll_s", "interval_moving_s", "interval_idle_s", "interval_low_battery_s",
                   "min_interval_s", "moving_distance_m", "low_battery_percent",
                   "chunk_bytes", "upload_window", "retry_max_s")


def load_agent_config(path: str | Path) -> tuple[KitConfig, AgentSettings]:
    """The kit configuration and the agent's ``[agent]`` table, from one TOML file.

    :class:`kit.config.KitConfig` keeps ``[agent]`` as a table; its keys are
    checked here, by :class:`AgentSettings`.
    """
    path = Path(path)
    config = load_config(path)
    raw_agent: Any = config.agent
    if not isinstance(raw_agent, dict):
        raise ConfigError(id=f"{path}: 'agent' harus tabel", en=f"{path}: 'agent' must be a table",
                          hint_id="Tulis [agent] di baris tersendiri",
                          hint_en="Write [agent] on a line of its own")
    return config, AgentSettings.from_mapping(raw_agent, str(path))
