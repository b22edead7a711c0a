"""The kit-office protocol over MQTT 5: topics, payloads, checks. Shared by both ends.

See ``sync/PROTOCOL.md`` for the picture; this module is the one place that
says how each payload is laid out, and the only code that turns wire bytes
into values. Every ``decode_*`` function takes bytes straight off the
network, refuses anything oversized, malformed, of another version or out
of range with a :class:`ProtocolError` naming the reason, and raises
nothing else: a process that catches ``ProtocolError`` around a decoder
cannot be crashed by a payload.

Topic tree (``{kit}`` is the kit id, also its broker user name)::

    jaranijo-v1/kits/{kit}           kit -> office  location, OwnTracks JSON, retained
    jaranijo-v1/kits/{kit}/status    kit -> office  JSON, retained; birth and last will (lwt)
    jaranijo-v1/kits/{kit}/health    kit -> office  CBOR, QoS 0
    jaranijo-v1/kits/{kit}/track     kit -> office  CBOR, QoS 1: the path driven while offline
    jaranijo-v1/kits/{kit}/up        kit -> office  CBOR, QoS 1: one chunk of a sealed record
    jaranijo-v1/kits/{kit}/ack       kit -> office  CBOR, QoS 1: assignment received (or refused)
    jaranijo-v1/kits/{kit}/result    kit -> office  CBOR, QoS 1: outcome of a command
    jaranijo-v1/kits/{kit}/rcpt      office -> kit  CBOR, QoS 1: upload progress, receipts
    jaranijo-v1/kits/{kit}/assign    office -> kit  CBOR, QoS 1: a sealed, signed assignment
    jaranijo-v1/kits/{kit}/cmd       office -> kit  CBOR, QoS 1: a signed command
    jaranijo-v1/office/status        office -> all  JSON, retained; birth and last will

The protocol version sits in the first topic level (so OwnTracks Recorder,
which takes levels 2 and 3 as user and device, files every kit as device
``{kit}`` of user ``kits``) and in every payload (``v``).

>>> topics = KitTopics("blitar-kit-01")
>>> topics.health
'jaranijo-v1/kits/blitar-kit-01/health'
>>> decode_status(encode_status(Status(online=True, session=3, tst=1763880000)))
Status(online=True, session=3, tst=1763880000, software='', reason='', security='')
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import socket
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2
import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from sync.envelope import SIGN_DOMAIN, canonical, read_header
from sync.errors import JaranIjoError, VaultError

PROTOCOL_VERSION = 1
ROOT = f"jaranijo-v{PROTOCOL_VERSION}"
#: The office's broker user. The underscore keeps it out of the kit-id alphabet
#: (``[a-z0-9-]``), so no kit can ever be provisioned under the office's name.
OFFICE_USER = "jaranijo_office"
OFFICE_STATUS_TOPIC = f"{ROOT}/office/status"

# Leaves under jaranijo-v1/kits/{kit}/ ("" is the base topic itself: the location).
KIT_TO_OFFICE = ("", "status", "health", "track", "up", "ack", "result")
OFFICE_TO_KIT = ("rcpt", "assign", "cmd")

# Largest payload accepted for each kind of message, in bytes. The broker's
# message_size_limit should sit above the largest (a chunk) as a first fence.
MAX_CHUNK_DATA = 128 * 1024
MAX_RECORD_BYTES = 32 * 1024 * 1024

# Record refusals (``rcpt`` ``reject``): the longest wait the office may ask for, and the
# reasons that are final -- sending the same bytes again can never change the answer
# (``conflict``: the office holds other bytes under that id; ``too_large``). The kit keeps
# such a record, marked ``refused``, and never sends it again by itself: only a later answer
# of the office about that record (its receipt, or a reject with another reason) releases it.
MAX_RETRY_S = 7 * 86400
TERMINAL_REFUSALS = frozenset({"conflict", "too_large"})
LIMITS = {
    "location": 1024,
    "status": 1024,
    "health": 1024,
    "track": 64 * 1024,
    "up": MAX_CHUNK_DATA + 1024,
    "ack": 1024,
    "result": 4096,
    "rcpt": 1024,
    "assign": 1024 * 1024,
    "cmd": 4096,
    "office_status": 1024,
}

RECEIPT_DOMAIN = "jaranijo-receipt-v1"
COMMAND_DOMAIN = "jaranijo-command-v1"
COMMANDS = ("ping", "lock", "wipe", "selftest", "config", "resend")

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
KIT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,31}$")
UI_STATE_RE = re.compile(r"^[a-z][a-z0-9_:.-]{0,31}$")


class ProtocolError(JaranIjoError):
    """A payload or topic that breaks the protocol; ``reason`` is a short slug for logs."""

    code = "protocol"

    def __init__(self, reason: str, en: str, id: str | None = None) -> None:
        self.reason = reason
        super().__init__(
            id=id or f"Pesan ditolak ({reason}): {en}",
            en=f"Message refused ({reason}): {en}",
            hint_id="Pesan diabaikan; pengirim perlu memperbaiki atau mengirim ulang",
            hint_en="The message is ignored; the sender must fix or resend it",
            code=f"protocol_{reason}",
        )


# ---------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------


def check_kit_id(kit_id: str) -> str:
    """A kit id usable as one topic level and broker user name, or ProtocolError."""
    if not isinstance(kit_id, str) or not KIT_ID_RE.match(kit_id):
        raise ProtocolError("bad_kit_id", f"kit id {kit_id!r} is not 3-32 of [a-z0-9-]")
    return kit_id


@dataclass(frozen=True)
class KitTopics:
    """Every topic of one kit."""

    kit_id: str

    def __post_init__(self) -> None:
        check_kit_id(self.kit_id)

    @property
    def base(self) -> str:
        return f"{ROOT}/kits/{self.kit_id}"

    def leaf(self, name: str) -> str:
        return self.base if name == "" else f"{self.base}/{name}"

    @property
    def location(self) -> str:
        return self.base

    @property
    def status(self) -> str:
        return self.leaf("status")

    @property
    def health(self) -> str:
        return self.leaf("health")

    @property
    def track(self) -> str:
        return self.leaf("track")

    @property
    def up(self) -> str:
        return self.leaf("up")

    @property
    def ack(self) -> str:
        return self.leaf("ack")

    @property
    def result(self) -> str:
        return self.leaf("result")

    @property
    def rcpt(self) -> str:
        return self.leaf("rcpt")

    @property
    def assign(self) -> str:
        return self.leaf("assign")

    @property
    def cmd(self) -> str:
        return self.leaf("cmd")


def office_subscriptions() -> list[str]:
    """What the office subscribes to: every kit-to-office leaf of every kit."""
    return [f"{ROOT}/kits/+" if leaf == "" else f"{ROOT}/kits/+/{leaf}"
            for leaf in KIT_TO_OFFICE]


def parse_kit_topic(topic: str) -> tuple[str, str]:
    """``(kit_id, leaf)`` of a kit-to-office topic; ``leaf`` is "location" for the base."""
    parts = topic.split("/")
    if len(parts) not in (3, 4) or parts[0] != ROOT or parts[1] != "kits":
        raise ProtocolError("bad_topic", f"topic {topic!r} is not a kit topic")
    kit_id = check_kit_id(parts[2])
    leaf = parts[3] if len(parts) == 4 else ""
    if leaf not in KIT_TO_OFFICE:
        raise ProtocolError("bad_topic", f"topic {topic!r} is not a kit-to-office topic")
    return kit_id, leaf or "location"


def mosquitto_acl(office_users: Iterable[str] = (OFFICE_USER,),
                  readers: Iterable[str] = (), revoked: Iterable[str] = ()) -> str:
    """A Mosquitto ACL file: each kit writes only its own topics, reads only its own inbox.

    ``%u`` is the connecting user name; run the broker with
    ``use_username_as_clientid true`` so no client can take over another
    kit's session by choosing its client id (which also means one
    connection per user name: give every office process its own user in
    ``office_users``).
    ``readers`` are read-only users such as OwnTracks Recorder or a fleet
    dashboard: they read every kit's location (the base topic) and status
    (presence, the will) and the office status, nothing else -- no
    commands, assignments, receipts, record chunks, health or tracks.
    ``revoked`` are kits reported lost: denied the whole tree (:func:`revoked_acl_lines`),
    on top of their login being removed.
    """
    lines = [
        "# Jaran Ijo broker ACL (generated by sync.protocol.mosquitto_acl).",
        "# The office reads and writes the whole tree.",
    ]
    for office_user in office_users:
        lines += [f"user {office_user}", f"topic readwrite {ROOT}/#"]
    for reader in readers:
        lines += [f"user {reader}", f"topic read {ROOT}/kits/+",
                  f"topic read {ROOT}/kits/+/status", f"topic read {OFFICE_STATUS_TOPIC}"]
    lines += [
        "",
        "# Every other user is a kit whose user name is its kit id.",
    ]
    for leaf in KIT_TO_OFFICE:
        lines.append(f"pattern write {ROOT}/kits/%u" + (f"/{leaf}" if leaf else ""))
    for leaf in OFFICE_TO_KIT:
        lines.append(f"pattern read {ROOT}/kits/%u/{leaf}")
    lines.append(f"pattern read {OFFICE_STATUS_TOPIC}")
    for kit_id in revoked:
        lines += revoked_acl_lines(kit_id)
    return "\n".join(lines) + "\n"


def revoked_acl_lines(kit_id: str) -> list[str]:
    """A revoked kit's ACL entry: a user block denying it every topic. Mosquitto checks a
    user's own entries before the patterns and a ``deny`` match refuses at once, so the
    patterns above no longer let it publish or read anything, even if its login came back
    (a restored backup of the password file)."""
    return ["", f"# revoked: {check_kit_id(kit_id)}", f"user {kit_id}", f"topic deny {ROOT}/#"]


# ---------------------------------------------------------------------------------------------
# Decoding helpers: every check in one place, every failure a ProtocolError
# ---------------------------------------------------------------------------------------------


def _check_size(payload: bytes, kind: str) -> None:
    if not isinstance(payload, bytes | bytearray):
        raise ProtocolError("malformed", f"{kind} payload is not bytes")
    if len(payload) > LIMITS[kind]:
        raise ProtocolError("oversized", f"{kind} payload of {len(payload)} bytes "
                                         f"exceeds {LIMITS[kind]}")


def _load_cbor(payload: bytes, kind: str) -> dict[str, Any]:
    _check_size(payload, kind)
    try:
        value = cbor2.loads(bytes(payload))
    except Exception:  # cbor2 raises many types on garbage; all mean "malformed"
        raise ProtocolError("malformed", f"{kind} payload is not CBOR") from None
    return _check_map(value, kind)


def _load_json(payload: bytes, kind: str) -> dict[str, Any]:
    _check_size(payload, kind)
    try:
        value = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError("malformed", f"{kind} payload is not JSON") from None
    return _check_map(value, kind)


def _check_map(value: Any, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ProtocolError("malformed", f"{kind} payload is not a map with text keys")
    version = value.get("v", PROTOCOL_VERSION if kind == "location" else None)
    if version != PROTOCOL_VERSION:
        raise ProtocolError("version", f"{kind} payload has version {version!r}, "
                                       f"expected {PROTOCOL_VERSION}")
    return value


def _int(data: Mapping[str, Any], key: str, kind: str, lo: int, hi: int, *,
         required: bool = False) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProtocolError("malformed", f"{kind}: '{key}' is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError("malformed", f"{kind}: '{key}' must be a whole number "
                                         f"{lo}..{hi}")
    return value


def _req_int(data: Mapping[str, Any], key: str, kind: str, lo: int, hi: int) -> int:
    value = _int(data, key, kind, lo, hi, required=True)
    assert value is not None
    return value


def _num(data: Mapping[str, Any], key: str, kind: str, lo: float, hi: float, *,
         required: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProtocolError("malformed", f"{kind}: '{key}' is missing")
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not lo <= value <= hi):
        raise ProtocolError("malformed", f"{kind}: '{key}' must be a number {lo}..{hi}")
    return float(value)


def _text(data: Mapping[str, Any], key: str, kind: str, max_len: int = 64, *,
          required: bool = False, pattern: re.Pattern[str] | None = None) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProtocolError("malformed", f"{kind}: '{key}' is missing")
        return None
    if not isinstance(value, str) or len(value) > max_len or not value.isprintable():
        raise ProtocolError("malformed", f"{kind}: '{key}' must be printable text "
                                         f"of at most {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise ProtocolError("malformed", f"{kind}: '{key}' has characters not allowed there")
    return value


def _req_text(data: Mapping[str, Any], key: str, kind: str, max_len: int = 64,
              pattern: re.Pattern[str] | None = None) -> str:
    value = _text(data, key, kind, max_len, required=True, pattern=pattern)
    assert value is not None
    return value


def _bool(data: Mapping[str, Any], key: str, kind: str, *,
          required: bool = False) -> bool | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProtocolError("malformed", f"{kind}: '{key}' is missing")
        return None
    if not isinstance(value, bool):
        raise ProtocolError("malformed", f"{kind}: '{key}' must be true or false")
    return value


def _bytes(data: Mapping[str, Any], key: str, kind: str, *, min_len: int = 0,
           max_len: int) -> bytes:
    value = data.get(key)
    if not isinstance(value, bytes) or not min_len <= len(value) <= max_len:
        raise ProtocolError("malformed", f"{kind}: '{key}' must be {min_len}..{max_len} bytes")
    return value


TST_MAX = 2**40  # a Unix time in seconds; far beyond any real date, small enough to catch junk


# ---------------------------------------------------------------------------------------------
# Status (kit and office): JSON, retained, birth message and last will
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """A kit's presence, retained on its status topic.

    ``session`` counts the kit's broker connections; it only grows, so an
    ``online=False`` will left from an older connection is recognisably
    older than a newer birth message. ``reason`` says why a kit went
    offline: ``shutdown`` (clean stop) or ``lost`` (the broker sent the
    last will after the will delay). ``security`` (in the birth message) is how the
    kit keeps its keys: ``tpm``, or ``software`` (no TPM: the weaker mode, which the
    office shows against the kit).
    """

    online: bool
    session: int
    tst: int
    software: str = ""
    reason: str = ""
    security: str = ""


def encode_status(status: Status) -> bytes:
    """The status JSON; an offline one is also an OwnTracks ``_type: lwt`` message.

    OwnTracks Recorder reads ``_type`` and ``tst`` and ignores the rest; the
    office reads the rest and ignores ``_type``.
    """
    data: dict[str, Any] = {"v": PROTOCOL_VERSION, "online": status.online,
                            "ses": status.session, "tst": status.tst}
    if not status.online:
        data = {"_type": "lwt", **data}
    if status.software:
        data["sw"] = status.software
    if status.reason:
        data["why"] = status.reason
    if status.security:
        data["sec"] = status.security
    return json.dumps(data, separators=(",", ":")).encode()


def decode_status(payload: bytes) -> Status:
    d = _load_json(payload, "status")
    return Status(
        online=bool(_bool(d, "online", "status", required=True)),
        session=_req_int(d, "ses", "status", 0, 2**53),
        tst=_req_int(d, "tst", "status", 0, TST_MAX),
        software=_text(d, "sw", "status", 40) or "",
        reason=_text(d, "why", "status", 40) or "",
        security=_choice(d, "sec", "status", SECURITY_MODES),
    )


SECURITY_MODES = ("tpm", "software")


def _choice(d: dict[str, Any], key: str, what: str, allowed: tuple[str, ...]) -> str:
    value = _text(d, key, what, 20) or ""
    if value and value not in allowed:
        raise ProtocolError("malformed", f"{what}: {key!r} must be one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class OfficeStatus:
    """Whether the office service is up (retained; its last will says when it is not)."""

    online: bool
    tst: int


def encode_office_status(status: OfficeStatus) -> bytes:
    return json.dumps({"v": PROTOCOL_VERSION, "online": status.online, "tst": status.tst},
                      separators=(",", ":")).encode()


def decode_office_status(payload: bytes) -> OfficeStatus:
    d = _load_json(payload, "office_status")
    return OfficeStatus(online=bool(_bool(d, "online", "office_status", required=True)),
                        tst=_req_int(d, "tst", "office_status", 0, TST_MAX))


# ---------------------------------------------------------------------------------------------
# Location: OwnTracks _type=location JSON, readable by OwnTracks Recorder and Frontend
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """One GNSS position: degrees (WGS 84), metres, metres per second, degrees from north."""

    lat: float
    lon: float
    tst: int
    acc_m: float | None = None
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None


def tracker_id(kit_id: str) -> str:
    """OwnTracks' two-character label on the map: the kit id's last two letters or digits."""
    chars = [c for c in kit_id if c.isalnum()]
    return "".join(chars[-2:]).upper() or "JI"


def encode_location(position: Position, *, kit_id: str, battery_percent: float | None = None,
                    battery_state: int | None = None, trigger: str = "t",
                    conn: str = "m") -> bytes:
    """The OwnTracks location JSON for ``position``.

    Coordinates are rounded to 5 decimals (about 1.1 m, below any GNSS
    receiver's accuracy), speed to whole km/h and course to whole degrees,
    as OwnTracks apps send them; ``conn`` is ``m`` because a kit only
    reaches the broker over the mobile network, or ``o`` (OwnTracks'
    "offline") for a point of the offline track sent after a reconnect.
    """
    data: dict[str, Any] = {"_type": "location", "tid": tracker_id(kit_id),
                            "tst": int(position.tst), "lat": round(position.lat, 5),
                            "lon": round(position.lon, 5)}
    if position.acc_m is not None:
        data["acc"] = max(0, round(position.acc_m))
    if position.alt_m is not None:
        data["alt"] = round(position.alt_m)
    if position.speed_mps is not None:
        data["vel"] = max(0, round(position.speed_mps * 3.6))
    if position.course_deg is not None:
        data["cog"] = round(position.course_deg) % 360
    if battery_percent is not None:
        data["batt"] = max(0, min(100, round(battery_percent)))
    if battery_state is not None:
        data["bs"] = battery_state
    data["conn"] = conn
    data["t"] = trigger
    return json.dumps(data, separators=(",", ":")).encode()


def encode_track_locations(points: Iterable[Position], *, kit_id: str) -> list[bytes]:
    """The offline track as OwnTracks locations, each with its own ``tst``.

    OwnTracks Recorder files them under their own time, so the path driven
    while offline appears in its history; ``conn: "o"`` (offline) and
    ``t: "p"`` mark them as points taken while the kit had no link.
    """
    return [encode_location(q, kit_id=kit_id, trigger="p", conn="o") for q in points]


def decode_location(payload: bytes) -> tuple[Position, dict[str, Any]]:
    """The position in an OwnTracks location message, and the whole checked JSON object."""
    d = _load_json(payload, "location")
    if d.get("_type") != "location":
        raise ProtocolError("malformed", "location: '_type' must be 'location'")
    lat = _num(d, "lat", "location", -90, 90, required=True)
    lon = _num(d, "lon", "location", -180, 180, required=True)
    vel = _num(d, "vel", "location", 0, 2000)
    for key, lo, hi in (("batt", 0, 100), ("bs", 0, 3), ("cog", 0, 360)):
        _int(d, key, "location", lo, hi)
    _text(d, "tid", "location", 2)
    assert lat is not None and lon is not None
    return Position(
        lat=lat, lon=lon, tst=_req_int(d, "tst", "location", 0, TST_MAX),
        acc_m=_num(d, "acc", "location", 0, 1e6),
        alt_m=_num(d, "alt", "location", -1000, 20000),
        speed_mps=None if vel is None else vel / 3.6,
        course_deg=_num(d, "cog", "location", 0, 360),
    ), d


# ---------------------------------------------------------------------------------------------
# Health: compact CBOR with short keys
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """Everything the office watches besides the position. No personal data.

    Each field is None when its device is missing or has not answered.
    ``battery_state`` uses OwnTracks' ``bs`` numbers (0 unknown, 1 on
    battery, 2 charging, 3 full). ``fix_age_s`` is how old the last GNSS
    fix is; ``outbox_oldest_s`` how long the oldest record has waited.
    ``software`` and ``operator`` change rarely, so they travel only when
    they change and once per connection (see ``slow`` in :func:`encode_health`).
    """

    tst: int
    session: int = 0
    battery_percent: int | None = None
    battery_state: int = 0
    voltage_mv: int | None = None
    minutes_left: int | None = None
    registered: bool | None = None
    access_tech: str | None = None
    operator: str | None = None
    rssi_dbm: int | None = None
    rsrp_dbm: int | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None
    fix_age_s: int | None = None
    disk_free_mib: int | None = None
    uptime_s: int | None = None
    outbox_count: int = 0
    outbox_oldest_s: int | None = None
    software: str | None = None
    ui_state: str | None = None


# Field name -> wire key, and the slow fields sent only on change.
HEALTH_KEYS = {
    "tst": "tst", "session": "ses", "battery_percent": "b", "battery_state": "bs",
    "voltage_mv": "mv", "minutes_left": "ml", "registered": "reg", "access_tech": "at",
    "operator": "op", "rssi_dbm": "rssi", "rsrp_dbm": "rsrp", "rsrq_db": "rsrq",
    "sinr_db": "sinr", "fix_age_s": "fa", "disk_free_mib": "df", "uptime_s": "up",
    "outbox_count": "ob", "outbox_oldest_s": "oa", "software": "sw", "ui_state": "ui",
}
SLOW_FIELDS = ("operator", "software")


def _half_db(value: float) -> float | int:
    """RSRQ and SINR come in 0.5 dB steps; CBOR then stores them in a 16-bit float."""
    rounded = round(value * 2) / 2
    return int(rounded) if rounded == int(rounded) else rounded


def encode_health(health: Health, *, slow: bool | Collection[str] = True) -> bytes:
    """CBOR for ``health``; None fields are left out, and of the slow fields only those
    named in ``slow`` (all with True, none with False)."""
    data: dict[str, Any] = {"v": PROTOCOL_VERSION}
    send_slow = set(SLOW_FIELDS) if slow is True else set(slow or ())
    for name, key in HEALTH_KEYS.items():
        value = getattr(health, name)
        if value is None or (name in SLOW_FIELDS and name not in send_slow):
            continue
        if name in ("rsrq_db", "sinr_db"):
            value = _half_db(value)
        data[key] = value
    return cbor2.dumps(data, canonical=True)


def decode_health(payload: bytes) -> Health:
    d = _load_cbor(payload, "health")
    k = "health"
    return Health(
        tst=_req_int(d, "tst", k, 0, TST_MAX),
        session=_int(d, "ses", k, 0, 2**53) or 0,
        battery_percent=_int(d, "b", k, 0, 100),
        battery_state=_int(d, "bs", k, 0, 3) or 0,
        voltage_mv=_int(d, "mv", k, 0, 100_000),
        minutes_left=_int(d, "ml", k, 0, 100_000),
        registered=_bool(d, "reg", k),
        access_tech=_text(d, "at", k, 16),
        operator=_text(d, "op", k, 32),
        rssi_dbm=_int(d, "rssi", k, -150, 0),
        rsrp_dbm=_int(d, "rsrp", k, -160, 0),
        rsrq_db=_num(d, "rsrq", k, -40, 10),
        sinr_db=_num(d, "sinr", k, -30, 60),
        fix_age_s=_int(d, "fa", k, 0, TST_MAX),
        disk_free_mib=_int(d, "df", k, 0, 2**40),
        uptime_s=_int(d, "up", k, 0, TST_MAX),
        outbox_count=_int(d, "ob", k, 0, 1_000_000) or 0,  # a kit holds hundreds at most
        outbox_oldest_s=_int(d, "oa", k, 0, TST_MAX),
        software=_text(d, "sw", k, 40),
        ui_state=_text(d, "ui", k, 32, pattern=UI_STATE_RE),
    )


# ---------------------------------------------------------------------------------------------
# Track: the path driven while the kit could not reach the broker, delta-coded
# ---------------------------------------------------------------------------------------------

MAX_TRACK_POINTS = 2000


def encode_track(points: Iterable[Position]) -> bytes:
    """CBOR: the first point in full, then [seconds, lat, lon, accuracy] steps in 1e-5 deg.

    Consecutive points of a track are close in time and space, so the
    differences are small integers and CBOR stores most in 1-3 bytes.
    """
    pts = list(points)
    if not pts:
        return cbor2.dumps({"v": PROTOCOL_VERSION, "n": 0}, canonical=True)
    t0, la0, lo0 = pts[0].tst, round(pts[0].lat * 1e5), round(pts[0].lon * 1e5)
    steps: list[list[int]] = []
    pt, pla, plo = t0, la0, lo0
    for p in pts:
        t, la, lo = int(p.tst), round(p.lat * 1e5), round(p.lon * 1e5)
        step = [t - pt, la - pla, lo - plo]
        if p.acc_m is not None:
            step.append(max(0, round(p.acc_m)))
        steps.append(step)
        pt, pla, plo = t, la, lo
    return cbor2.dumps({"v": PROTOCOL_VERSION, "n": len(pts), "t0": t0, "la0": la0,
                        "lo0": lo0, "d": steps}, canonical=True)


def decode_track(payload: bytes) -> list[Position]:
    d = _load_cbor(payload, "track")
    n = _req_int(d, "n", "track", 0, MAX_TRACK_POINTS)
    if n == 0:
        return []
    t = _req_int(d, "t0", "track", 0, TST_MAX)
    la = _req_int(d, "la0", "track", -9_000_000, 9_000_000)
    lo = _req_int(d, "lo0", "track", -18_000_000, 18_000_000)
    steps = d.get("d")
    if not isinstance(steps, list) or len(steps) != n:
        raise ProtocolError("malformed", "track: 'd' must list one step per point")
    out: list[Position] = []
    for step in steps:
        if (not isinstance(step, list) or len(step) not in (3, 4)
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in step)):
            raise ProtocolError("malformed", "track: a step must be 3 or 4 whole numbers")
        t, la, lo = t + step[0], la + step[1], lo + step[2]
        if not (0 <= t <= TST_MAX and -9_000_000 <= la <= 9_000_000
                and -18_000_000 <= lo <= 18_000_000):
            raise ProtocolError("malformed", "track: a point falls outside the globe or time")
        out.append(Position(lat=la / 1e5, lon=lo / 1e5, tst=t,
                            acc_m=float(step[3]) if len(step) == 4 else None))
    return out


# ---------------------------------------------------------------------------------------------
# Records: chunks up, progress and signed receipts down
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Bytes ``off .. off+len(data)`` of the sealed record ``record_id`` (``size`` bytes in
    all, SHA-256 ``sha256``). Every chunk carries the record's size and hash, so the
    office can start or resume a record from whichever chunk reaches it first."""

    record_id: str
    sha256: bytes
    size: int
    offset: int
    data: bytes


def encode_chunk(chunk: Chunk) -> bytes:
    return cbor2.dumps({"v": PROTOCOL_VERSION, "rid": chunk.record_id, "sha": chunk.sha256,
                        "size": chunk.size, "off": chunk.offset, "data": chunk.data},
                       canonical=True)


def decode_chunk(payload: bytes, *, max_data: int = MAX_CHUNK_DATA) -> Chunk:
    d = _load_cbor(payload, "up")
    k = "chunk"
    size = _req_int(d, "size", k, 1, MAX_RECORD_BYTES)
    offset = _req_int(d, "off", k, 0, MAX_RECORD_BYTES - 1)
    data = _bytes(d, "data", k, min_len=1, max_len=max_data)
    if offset + len(data) > size:
        raise ProtocolError("malformed", "chunk: data runs past the record's size")
    return Chunk(record_id=_req_text(d, "rid", k, pattern=ID_RE),
                 sha256=_bytes(d, "sha", k, min_len=32, max_len=32),
                 size=size, offset=offset, data=data)


@dataclass(frozen=True)
class Progress:
    """From the office about one record.

    * ``have`` -- the office holds bytes ``0 .. have`` durably (send from there);
    * ``done`` -- the whole record is stored durably and verified; signed receipt;
    * ``reject`` -- the office will not keep it (``reason``); ``have`` is 0 and
      the kit must start that record again after ``retry_s`` seconds.

    ``gap`` on a ``have`` says a chunk arrived beyond ``have`` and was not
    kept (bytes went missing on the way): the kit resends from ``have``.
    """

    kind: str
    record_id: str
    have: int = 0
    gap: bool = False
    sha256: bytes = b""
    stored_at: int = 0
    signature: bytes = b""
    reason: str = ""
    retry_s: int = 0


def receipt_message(kit_id: str, record_id: str, sha256: bytes, stored_at: int) -> bytes:
    return canonical([RECEIPT_DOMAIN, kit_id, record_id, sha256, stored_at])


def sign_receipt(key: SigningKey, kit_id: str, record_id: str, sha256: bytes,
                 stored_at: int) -> Progress:
    sig = key.sign(receipt_message(kit_id, record_id, sha256, stored_at)).signature
    return Progress("done", record_id, sha256=sha256, stored_at=stored_at, signature=sig)


def verify_receipt(progress: Progress, key: VerifyKey, kit_id: str, sha256: bytes) -> None:
    """Raise ProtocolError unless ``progress`` is the office's receipt for exactly this record."""
    if progress.kind != "done" or progress.sha256 != sha256:
        raise ProtocolError("wrong_record", "receipt is for other bytes than the kit holds")
    try:
        key.verify(receipt_message(kit_id, progress.record_id, progress.sha256,
                                   progress.stored_at), progress.signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise ProtocolError("bad_signature", "receipt is not signed by the office") from None


def encode_progress(p: Progress) -> bytes:
    data: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": p.kind, "rid": p.record_id}
    if p.kind == "have":
        data["have"] = p.have
        if p.gap:
            data["gap"] = True
    elif p.kind == "done":
        data.update(sha=p.sha256, at=p.stored_at, sig=p.signature)
    else:
        data.update(why=p.reason, retry=p.retry_s)
    return cbor2.dumps(data, canonical=True)


def decode_progress(payload: bytes) -> Progress:
    d = _load_cbor(payload, "rcpt")
    k = "receipt"
    kind = _req_text(d, "t", k, 8)
    rid = _req_text(d, "rid", k, pattern=ID_RE)
    if kind == "have":
        return Progress(kind, rid, have=_req_int(d, "have", k, 0, MAX_RECORD_BYTES),
                        gap=bool(_bool(d, "gap", k)))
    if kind == "done":
        return Progress(kind, rid, sha256=_bytes(d, "sha", k, min_len=32, max_len=32),
                        stored_at=_req_int(d, "at", k, 0, TST_MAX),
                        signature=_bytes(d, "sig", k, min_len=64, max_len=64))
    if kind == "reject":
        return Progress(kind, rid, reason=_req_text(d, "why", k, 40),
                        retry_s=_int(d, "retry", k, 0, MAX_RETRY_S) or 0)
    raise ProtocolError("malformed", f"receipt: unknown kind {kind!r}")


# ---------------------------------------------------------------------------------------------
# Assignments: a sealed envelope (kit.vault.seal) to the kit's box key, signed by the office
# ---------------------------------------------------------------------------------------------

ASSIGNMENT_KIND = "assignment"


@dataclass(frozen=True)
class AssignmentMessage:
    assignment_id: str
    envelope: bytes


def encode_assignment(message: AssignmentMessage) -> bytes:
    return cbor2.dumps({"v": PROTOCOL_VERSION, "aid": message.assignment_id,
                        "env": message.envelope}, canonical=True)


def decode_assignment(payload: bytes) -> AssignmentMessage:
    d = _load_cbor(payload, "assign")
    return AssignmentMessage(
        assignment_id=_req_text(d, "aid", "assignment", pattern=ID_RE),
        envelope=_bytes(d, "env", "assignment", min_len=1, max_len=LIMITS["assign"]),
    )


def verify_envelope(blob: bytes, signer: VerifyKey) -> dict[str, Any]:
    """Check a sealed envelope's signature *without* opening it; return its clear header.

    The agent holds no key that opens an assignment (the kit's box key is
    in the vault under the officers' data key), yet it must know the
    office signed it before storing and acknowledging it.
    """
    try:
        header = read_header(blob)
        outer = cbor2.loads(blob)
        message = canonical([SIGN_DOMAIN, header, outer["ct"]])
        signer.verify(message, outer["sig"])
    except VaultError as exc:
        raise ProtocolError("malformed", f"envelope: {exc.message['en']}") from None
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError, KeyError):
        raise ProtocolError("bad_signature", "envelope is not signed by the office") from None
    return header


@dataclass(frozen=True)
class AssignmentAck:
    """The kit's answer to an assignment: stored (``ok``) or refused with ``reason``.

    With ``opened`` it reports a second step, sent later by the agent: an officer's
    session on the kiosk opened the version sealed at ``sealed_at`` and stored it
    (``ok``), or could not open it (not ``ok``, ``reason`` the error's code). Encoded
    as ``"op": true`` only when set, so a plain receipt keeps its old bytes.
    """

    assignment_id: str
    ok: bool
    sealed_at: str = ""
    reason: str = ""
    opened: bool = False


def encode_assignment_ack(ack: AssignmentAck) -> bytes:
    data: dict[str, Any] = {"v": PROTOCOL_VERSION, "ok": ack.ok}
    if ack.assignment_id:  # "" when the message was too broken to tell
        data["aid"] = ack.assignment_id
    if ack.sealed_at:
        data["sa"] = ack.sealed_at
    if ack.reason:
        data["why"] = ack.reason[:200]
    if ack.opened:
        data["op"] = True
    return cbor2.dumps(data, canonical=True)


def decode_assignment_ack(payload: bytes) -> AssignmentAck:
    d = _load_cbor(payload, "ack")
    k = "assignment ack"
    return AssignmentAck(assignment_id=_text(d, "aid", k, pattern=ID_RE) or "",
                         ok=bool(_bool(d, "ok", k, required=True)),
                         sealed_at=_text(d, "sa", k, 40) or "",
                         reason=_text(d, "why", k, 200) or "",
                         opened=bool(_bool(d, "op", k)))


# ---------------------------------------------------------------------------------------------
# Commands: signed by the office, for one kit, with an expiry and a unique id
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """``name`` with ``args`` for ``kit_id``, valid from ``issued_at`` until ``expires_at``
    (Unix seconds). ``command_id`` is unique; a kit runs each id at most once."""

    command_id: str
    kit_id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    issued_at: int = 0
    expires_at: int = 0

    def body(self) -> dict[str, Any]:
        return {"id": self.command_id, "kit": self.kit_id, "name": self.name,
                "args": self.args, "iat": self.issued_at, "exp": self.expires_at}


def sign_command(command: Command, key: SigningKey) -> bytes:
    """The wire form of ``command``, signed with the office's signing key."""
    body = command.body()
    sig = key.sign(canonical([COMMAND_DOMAIN, body])).signature
    return cbor2.dumps({"v": PROTOCOL_VERSION, "body": body, "sig": sig}, canonical=True)


def _check_args(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict) or len(args) > 16:
        raise ProtocolError("malformed", "command: 'args' must be a map of at most 16 entries")
    for key, value in args.items():
        if not isinstance(key, str) or not ID_RE.match(key):
            raise ProtocolError("malformed", "command: argument names must be short words")
        if not isinstance(value, str | int | float | bool) or (
                isinstance(value, str) and len(value) > 200):
            raise ProtocolError("malformed", "command: argument values must be short scalars")
    return args


def verify_command(payload: bytes, key: VerifyKey, *, kit_id: str, now: float,
                   max_skew_s: float = 300.0, max_lifetime_s: float = 7 * 86400,
                   seen: Callable[[str], bool] | None = None) -> Command:
    """Check a command completely; return it, or raise ProtocolError with the reason.

    Order matters: size and shape first, then the signature (nothing
    unsigned is looked at further), then the kit it is for, its validity
    window (``stale`` once expired, ``not_yet_valid`` when issued in the
    future beyond the clock skew allowed), and last whether ``seen`` knows
    the id already (``replayed``).
    """
    d = _load_cbor(payload, "cmd")
    body = d.get("body")
    if not isinstance(body, dict):
        raise ProtocolError("malformed", "command: 'body' must be a map")
    sig = _bytes(d, "sig", "command", min_len=64, max_len=64)
    try:
        key.verify(canonical([COMMAND_DOMAIN, body]), sig)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise ProtocolError("bad_signature", "command is not signed by the office") from None
    k = "command"
    command = Command(
        command_id=_req_text(body, "id", k, pattern=ID_RE),
        kit_id=_req_text(body, "kit", k, 32),
        name=_req_text(body, "name", k, 16),
        args=_check_args(body.get("args", {})),
        issued_at=_req_int(body, "iat", k, 0, TST_MAX),
        expires_at=_req_int(body, "exp", k, 0, TST_MAX),
    )
    if set(body) - {"id", "kit", "name", "args", "iat", "exp"}:
        raise ProtocolError("malformed", "command: unknown fields in the body")
    if command.name not in COMMANDS:
        raise ProtocolError("unknown_command", f"command {command.name!r} is not one of "
                                               f"{', '.join(COMMANDS)}")
    if command.kit_id != kit_id:
        raise ProtocolError("wrong_kit", "command is addressed to another kit")
    if command.expires_at <= command.issued_at or (
            command.expires_at - command.issued_at > max_lifetime_s):
        raise ProtocolError("malformed", "command: validity window is empty or too long")
    if now > command.expires_at:
        raise ProtocolError("stale", "command has expired")
    if command.issued_at > now + max_skew_s:
        raise ProtocolError("not_yet_valid", "command is issued in the future (check clocks)")
    if seen is not None and seen(command.command_id):
        raise ProtocolError("replayed", "command id was already received")
    return command


def peek_command_id(payload: bytes) -> str | None:
    """The id inside a command payload, unverified: only to address a rejection."""
    try:
        d = _load_cbor(payload, "cmd")
        body = d.get("body")
        if isinstance(body, dict):
            return _text(body, "id", "command", pattern=ID_RE)
    except ProtocolError:
        pass
    return None


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    ok: bool
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def encode_result(result: CommandResult) -> bytes:
    """CBOR for a command's outcome; ``command_id`` is "" when the command was too broken
    to tell (it is then left out), and the reason is cut to 200 characters."""
    data: dict[str, Any] = {"v": PROTOCOL_VERSION, "ok": result.ok}
    if result.command_id:
        data["id"] = result.command_id
    if result.reason:
        data["why"] = result.reason[:200]
    if result.result:
        data["res"] = result.result
    return cbor2.dumps(data, canonical=True)


def decode_result(payload: bytes) -> CommandResult:
    d = _load_cbor(payload, "result")
    k = "result"
    res = d.get("res", {})
    if not isinstance(res, dict):
        raise ProtocolError("malformed", "result: 'res' must be a map")
    return CommandResult(command_id=_text(d, "id", k, pattern=ID_RE) or "",
                         ok=bool(_bool(d, "ok", k, required=True)),
                         reason=_text(d, "why", k, 200) or "", result=res)


# ---------------------------------------------------------------------------------------------
# Small shared tools
# ---------------------------------------------------------------------------------------------


def backoff_s(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: about base, 2 base, 4 base ... capped, times 0.5-1.

    Kits and the office both use it, so a broker coming back is not hit by every
    client in the same second.
    """
    return min(cap, base * 2.0 ** max(0, attempt - 1)) * (0.5 + rng.random() / 2)


def no_delay(client: Any) -> None:
    """Switch Nagle's algorithm off on a paho client's socket (paho leaves it on).

    The upload is a conversation of small packets (a chunk's PUBACK, the
    office's confirmation); with Nagle on one side and delayed ACKs on the
    other, each waits up to 40 ms (Linux) for nothing.
    """
    sock = client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def close_without_goodbye(client: Any) -> None:
    """Close a paho client's socket without a DISCONNECT packet.

    A clean DISCONNECT makes the broker discard the last will; closing the
    socket keeps it, so the peer learns (after the will delay) that we are gone.
    """
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
