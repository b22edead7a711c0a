"""The protocol's payloads and the agent's reporting rules, without a broker.

Every decoder meets garbage from hypothesis and must answer with a
ProtocolError (never another exception); every encoder round-trips.
"""

from __future__ import annotations

import dataclasses
import json
import random

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from kit.agent.reporting import TelemetryPolicy, Track, distance_m
from kit.agent.sampling import NetworkReading, PowerReading, Snapshot
from kit.agent.settings import AgentSettings
from sync import protocol as p
from sync.protocol import backoff_s

DECODERS = [p.decode_status, p.decode_office_status, p.decode_location, p.decode_health,
            p.decode_track, p.decode_chunk, p.decode_progress, p.decode_assignment,
            p.decode_assignment_ack, p.decode_result]

cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(
        ["v", "rid", "sha", "size", "off", "data", "t", "have", "tst", "ses", "online", "n",
         "d", "t0", "la0", "lo0", "aid", "env", "ok", "id", "body", "sig", "lat", "lon"]),
        children, max_size=8),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | cbor_values.map(lambda v: cbor2.dumps(v))
       | cbor_values.map(lambda v: json.dumps(v, default=repr).encode()))
def test_no_payload_crashes_a_decoder(payload: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(payload)
        except p.ProtocolError as exc:
            assert exc.reason and exc.code.startswith("protocol_")


@settings(max_examples=200, deadline=None)
@given(cbor_values)
def test_no_payload_crashes_command_checks(body: object) -> None:
    key = SigningKey.generate()
    for payload in (cbor2.dumps({"v": 1, "body": body, "sig": b"\0" * 64}),
                    cbor2.dumps({"v": 1, "body": body,
                                 "sig": key.sign(p.canonical([p.COMMAND_DOMAIN, body]))
                                 .signature})):
        with pytest.raises(p.ProtocolError):
            p.verify_command(payload, key.verify_key, kit_id="blitar-kit-01", now=1e9)


def test_payloads_round_trip() -> None:
    health = p.Health(tst=1763880000, session=4, battery_percent=76, battery_state=1,
                      voltage_mv=7412, minutes_left=310, registered=True, access_tech="LTE",
                      operator="Telkomsel", rssi_dbm=-75, rsrp_dbm=-95, rsrq_db=-10.5,
                      sinr_db=12.0, fix_age_s=1, disk_free_mib=20480, uptime_s=3600,
                      outbox_count=3, outbox_oldest_s=600, software="0.1.0",
                      ui_state="recording:photo")
    assert p.decode_health(p.encode_health(health)) == health
    slim = p.decode_health(p.encode_health(health, slow=False))
    assert slim.operator is None and slim.software is None and slim.rsrq_db == -10.5
    verbose = json.dumps(dataclasses.asdict(health), separators=(",", ":")).encode()
    assert len(p.encode_health(health)) < len(verbose) / 2
    points = [p.Position(lat=-8.09876 + i * 0.0007, lon=112.16543 + i * 0.0003,
                         tst=1763880000 + 30 * i, acc_m=5.0) for i in range(50)]
    assert p.decode_track(p.encode_track(points)) == [
        p.Position(lat=round(q.lat, 5), lon=round(q.lon, 5), tst=q.tst, acc_m=5.0)
        for q in points]
    assert len(p.encode_track(points)) < 50 * 12
    chunk = p.Chunk("0193a2c4-0000-7000-8000-000000000001", b"\1" * 32, 100, 40, b"x" * 60)
    assert p.decode_chunk(p.encode_chunk(chunk)) == chunk
    key = SigningKey.generate()
    receipt = p.sign_receipt(key, "blitar-kit-01", chunk.record_id, chunk.sha256, 1763880000)
    decoded = p.decode_progress(p.encode_progress(receipt))
    p.verify_receipt(decoded, key.verify_key, "blitar-kit-01", chunk.sha256)
    with pytest.raises(p.ProtocolError, match="bad_signature"):
        p.verify_receipt(decoded, key.verify_key, "blitar-kit-02", chunk.sha256)
    with pytest.raises(p.ProtocolError, match="wrong_record"):
        p.verify_receipt(decoded, key.verify_key, "blitar-kit-01", b"\2" * 32)
    position, data = p.decode_location(p.encode_location(
        points[0], kit_id="blitar-kit-07", battery_percent=55.4, battery_state=2))
    assert data["tid"] == "07" and data["batt"] == 55 and data["bs"] == 2
    assert position.lat == -8.09876


def test_assignment_ack_says_opened_only_when_it_was() -> None:
    aid, sa = "0193a2c4-5e10-7c3a-9b41-6d2f0e8a1b01", "2026-11-23T09:00:00.000000+00:00"
    receipt = p.AssignmentAck(aid, ok=True, sealed_at=sa)
    wire = p.encode_assignment_ack(receipt)
    assert "op" not in cbor2.loads(wire)  # a plain receipt keeps its old bytes
    assert p.decode_assignment_ack(wire) == receipt and not receipt.opened
    opened = p.AssignmentAck(aid, ok=True, sealed_at=sa, opened=True)
    assert cbor2.loads(p.encode_assignment_ack(opened))["op"] is True
    assert p.decode_assignment_ack(p.encode_assignment_ack(opened)) == opened
    failed = p.AssignmentAck(aid, ok=False, sealed_at=sa, reason="bad_signature", opened=True)
    assert p.decode_assignment_ack(p.encode_assignment_ack(failed)) == failed
    with pytest.raises(p.ProtocolError, match="true or false"):
        p.decode_assignment_ack(cbor2.dumps({"v": 1, "aid": aid, "ok": True, "op": 1}))


def test_chunks_that_run_past_the_record_or_are_too_big_are_refused() -> None:
    good = p.Chunk("r-1", b"\1" * 32, 100, 0, b"x" * 100)
    with pytest.raises(p.ProtocolError, match="malformed"):
        p.decode_chunk(p.encode_chunk(p.Chunk("r-1", b"\1" * 32, 100, 50, b"x" * 60)))
    with pytest.raises(p.ProtocolError, match="malformed"):
        p.decode_chunk(p.encode_chunk(good), max_data=99)
    with pytest.raises(p.ProtocolError, match="oversized"):
        p.decode_chunk(b"\0" * (p.LIMITS["up"] + 1))
    with pytest.raises(p.ProtocolError, match="malformed"):
        p.decode_chunk(p.encode_chunk(p.Chunk("../etc", b"\1" * 32, 100, 0, b"x")))


def test_topics_and_acl() -> None:
    assert p.parse_kit_topic("jaranijo-v1/kits/blitar-kit-01") == ("blitar-kit-01", "location")
    assert p.parse_kit_topic("jaranijo-v1/kits/blitar-kit-01/up") == ("blitar-kit-01", "up")
    for bad in ("jaranijo-v1/kits/blitar-kit-01/cmd", "jaranijo-v1/kits/+/up",
                "jaranijo-v1/kits/BLITAR/up", "jaranijo-v1/office/status", "x/y/z"):
        with pytest.raises(p.ProtocolError):
            p.parse_kit_topic(bad)
    acl = p.mosquitto_acl(readers=["recorder"])
    assert "pattern write jaranijo-v1/kits/%u/up" in acl
    assert "pattern read jaranijo-v1/kits/%u/cmd" in acl
    assert "pattern write jaranijo-v1/kits/%u/cmd" not in acl
    # A reader (OwnTracks Recorder, a dashboard) sees where kits are and whether they are
    # online; never commands, assignments, receipts, records, health or tracks.
    reader = acl.split("user recorder\n")[1].split("\n\n")[0].splitlines()
    assert reader == ["topic read jaranijo-v1/kits/+", "topic read jaranijo-v1/kits/+/status",
                      "topic read jaranijo-v1/office/status"]
    assert "topic read jaranijo-v1/#" not in acl.split("user recorder")[1]


# ---------------------------------------------------------------------------------------------
# Reporting policy
# ---------------------------------------------------------------------------------------------

HOME = p.Position(lat=-8.1300, lon=112.2180, tst=1763880000)


def health(**kw: object) -> p.Health:
    base = {"tst": 0, "battery_percent": 80, "battery_state": 1, "registered": True,
            "access_tech": "LTE", "rssi_dbm": -75, "rsrp_dbm": -95}
    return p.Health(**{**base, **kw})  # type: ignore[arg-type]


def test_policy_reports_by_exception_and_by_mode_dependent_timer() -> None:
    s = AgentSettings()
    policy = TelemetryPolicy(s)
    snap = Snapshot(position=HOME, power=PowerReading(80, 7.6, False, 1))
    assert policy.mode(snap, 0) == "idle"
    assert policy.location_due(snap, 0, "idle") == "p"
    policy.location_sent(HOME, 0)
    policy.health_sent(health(), 0)
    # Standing still: nothing until the idle timer.
    assert policy.location_due(snap, 600, "idle") is None
    assert not policy.health_due(health(tst=600, battery_percent=79), 600, "idle")
    assert policy.location_due(snap, s.interval_idle_s, "idle") == "p"
    assert policy.health_due(health(), s.interval_idle_s, "idle")
    # News: a battery step, the network changing, records piling up -> at once.
    soon = s.min_interval_s
    for news in (health(battery_percent=74), health(access_tech="GSM"),
                 health(registered=False), health(rsrp_dbm=-110), health(outbox_count=1),
                 health(ui_state="recording"), health(fix_age_s=2),
                 health(battery_state=2), health(minutes_left=300)):
        assert policy.health_due(news, soon, "idle"), news
    assert not policy.health_due(health(outbox_count=1), soon / 2, "idle"), "too close"
    # Not news: the next recording step, or filling up on the charger.
    policy.health_sent(health(ui_state="recording:photo"), soon)
    assert not policy.health_due(health(ui_state="recording:fingers"), 3 * soon, "idle")
    policy.health_sent(health(battery_state=2, battery_percent=40), soon)
    assert not policy.health_due(health(battery_state=2, battery_percent=60), 3 * soon, "idle")
    # Moving speeds up position reports, not health reports.
    assert not policy.health_due(health(battery_state=2, battery_percent=40),
                                 soon + s.interval_moving_s, "moving")
    # Moving: 300 m from the last report is news, and the timer gets faster.
    moved = p.Position(lat=HOME.lat + 0.0027, lon=HOME.lon, tst=HOME.tst + 30)
    assert s.moving_distance_m < distance_m(HOME, moved) < 320
    moving = Snapshot(position=moved, power=snap.power)
    assert policy.mode(moving, 30) == "moving"
    assert policy.location_due(moving, 30, "moving") == "t"
    assert policy.interval("moving") < policy.interval("low_battery") < policy.interval("idle")
    # Still "moving" for moving_hold_s after the last movement, then idle again.
    policy.location_sent(moved, 30)
    assert policy.mode(Snapshot(position=moved, power=snap.power), 100) == "moving"
    assert policy.mode(Snapshot(position=moved, power=snap.power), 30 + s.moving_hold_s) == "idle"
    # Low and discharging -> faster reports; charging -> not low.
    low = Snapshot(position=moved, power=PowerReading(15, 7.0, False, 1))
    assert policy.mode(low, 1000) == "low_battery"
    assert policy.mode(Snapshot(position=moved, power=PowerReading(15, 7.0, True, 2)),
                       1000) == "idle"
    assert policy.mode(Snapshot(network=NetworkReading(True)), 1000) == "idle"


def test_offline_track_stays_bounded_and_keeps_the_whole_drive() -> None:
    track = Track(max_points=50, min_distance_m=100)
    rng = random.Random(3)
    lat, lon = -8.10, 112.20
    for i in range(2000):  # a long day's ride, a fix every 5 s
        lat += 0.0002 + rng.uniform(-0.00005, 0.00005)
        lon += 0.0001
        track.add(p.Position(lat=lat, lon=lon, tst=1763880000 + 5 * i))
    assert len(track.points) <= 50
    assert track.points[0].tst == 1763880000  # the start of the drive is kept
    assert track.points[-1].tst > 1763880000 + 5 * 1900  # and its end
    assert track.min_distance_m > 100
    # Standing still adds nothing.
    last = track.points[-1]
    assert not track.add(p.Position(lat=last.lat, lon=last.lon, tst=last.tst + 600))
    assert len(p.encode_track(track.points)) <= p.LIMITS["track"]


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    rng = random.Random(1)
    waits = [backoff_s(n, 30, 3600, rng) for n in range(1, 12)]
    assert 15 <= waits[0] <= 30 and all(w <= 3600 for w in waits)
    assert waits[-1] >= 1800


def test_offline_status_is_an_owntracks_lwt_and_keeps_the_office_fields() -> None:
    """Finding 10a: OwnTracks Recorder needs ``_type: lwt``; the office reads the rest."""
    will = p.Status(online=False, session=7, tst=1_795_468_813, software="0.1.0", reason="lost")
    data = json.loads(p.encode_status(will))
    assert data["_type"] == "lwt" and data["tst"] == will.tst
    assert {k: data[k] for k in ("v", "online", "ses", "sw", "why")} == {
        "v": 1, "online": False, "ses": 7, "sw": "0.1.0", "why": "lost"}
    assert p.decode_status(p.encode_status(will)) == will
    birth = p.Status(online=True, session=7, tst=1_795_468_900, software="0.1.0")
    assert "_type" not in json.loads(p.encode_status(birth))  # an lwt would say "gone"
    assert p.decode_status(p.encode_status(birth)) == birth


def test_offline_track_as_owntracks_locations_with_their_own_times() -> None:
    """Finding 10c: each point of the offline track becomes an OwnTracks location."""
    points = [p.Position(lat=-8.1 + i * 0.001, lon=112.16 + i * 0.001, tst=1_795_468_000 + 60 * i,
                         acc_m=5.0) for i in range(3)]
    messages = p.encode_track_locations(points, kit_id="kit-01")
    assert len(messages) == 3
    for point, raw in zip(points, messages, strict=True):
        position, data = p.decode_location(raw)
        assert data["_type"] == "location" and data["tid"] == "01"
        assert data["tst"] == point.tst and data["conn"] == "o" and data["t"] == "p"
        assert abs(position.lat - point.lat) < 1e-5 and abs(position.lon - point.lon) < 1e-5
        assert len(raw) < 120


def test_the_birth_message_says_how_the_kit_keeps_its_keys() -> None:
    """Finding 1: the office sees a kit in the weaker (no-TPM) mode."""
    birth = p.Status(online=True, session=3, tst=1_795_468_900, security="software")
    assert json.loads(p.encode_status(birth))["sec"] == "software"
    assert p.decode_status(p.encode_status(birth)) == birth
    bad = json.dumps({"v": 1, "online": True, "ses": 3, "tst": 1_795_468_900, "sec": "maybe"})
    with pytest.raises(p.ProtocolError, match="must be one of tpm, software"):
        p.decode_status(bad.encode())
