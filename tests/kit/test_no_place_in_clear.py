"""A copy of the kit's files, without an officer's PIN, shows no visit's place, time or outcome.

The agent shares a GNSS fix and keeps a track driven offline; an officer records one
resident (the record stamped with the agent's fix), pauses another, and notes that a third
refused and a fourth was not at home. Every byte of every file under the kit's data folder
(``kit.db``, its WAL and shared memory, the key folder) is then searched for the places as
they used to be stored (``-8.09``, the JSON numbers), the target ids, and the outcome names;
the audit log must not name the recordings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit.agent.reporting import Track
from kit.devices import KitDevices
from kit.keyring import agent_key
from kit.provision import Provisioned, open_vault, provision_kit
from kit.records import load_assignment, store_assignment, target_ref, target_states
from kit.shared_readings import share_gnss_fix, shared_gnss_fix
from kit.store import Store
from kit.vault import Argon2Cost, DataKey, PinVault
from kit.workflow import KitContext, RecordingFlow, WorkflowSettings
from office.records import open_record
from sensors.gnss import GnssFix
from sync import protocol as p
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment, Outcome, PhotoCapture, TargetStatus
from sync.envelope import OfficeKeys, OfficePublicKeys, canonical
from tests.conftest import FAST_ARGON2, OFFICER, PIN

LAT, LON = -8.09412, 112.16833  # the bedside (Blitar)
CHEAP = Argon2Cost(opslimit=1, memlimit=8 * 1024 * 1024)
TRACK = [(-8.09587, 112.17021), (-8.09733, 112.17544), (-8.09861, 112.18102)]


@dataclass
class Visited:
    provisioned: Provisioned
    office: OfficeKeys
    assignment: Assignment
    sealed_id: str
    paused_id: str
    refused_id: str
    not_home_id: str


def fix_now() -> GnssFix:
    return GnssFix(lat=LAT, lon=LON, accuracy_m=4.0, altitude_m=167.0, speed_kmh=0.0,
                   course_deg=None, satellites=9, hdop=0.9, fix_quality=1,
                   time_utc=datetime.now(UTC) - timedelta(seconds=1), age_s=0.2)


def photo() -> PhotoCapture:
    return PhotoCapture(jpeg=b"\xff\xd8" + bytes([80]) * 3000, width=640, height=480,
                        quality_score=80, quality_threshold=50, below_threshold_reason=None,
                        captured_at=datetime.now(UTC))


def agent_shares_places(config: object, store: Store) -> None:
    """What the agent does (kit/agent/service.py): share its fix, keep the offline track."""
    key = agent_key(config)  # type: ignore[arg-type]
    share_gnss_fix(store, fix_now(), key)
    track = Track(max_points=100, min_distance_m=10)
    now = int(time.time())
    for n, (lat, lon) in enumerate(TRACK):
        assert track.add(p.Position(lat=lat, lon=lon, tst=now - 600 + 60 * n, acc_m=5.0))
    track.save(store, key)


@pytest.fixture
def visited(tmp_path: Path) -> Iterator[Visited]:
    office = OfficeKeys.generate()
    office.save(tmp_path / "office")
    done = provision_kit(kit_id="blitar-kit-01", data_dir=tmp_path / "kit",
                         office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
                         technician_pin="13572468", settings={"security": FAST_ARGON2})
    config = done.config
    assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    with Store.open(config.store_path) as store:
        agent_shares_places(config, store)
        key = open_vault(config, store).unlock(OFFICER, PIN)
        store_assignment(store, key, assignment)
        # The kiosk takes the agent's fix through the store, as it does with no receiver.
        devices = KitDevices(config)
        ctx = KitContext(store=store, data_key=key, signer=done.kit_keys.sign,
                         office=OfficePublicKeys.load(config.keys_dir), kit_id=config.kit.id,
                         officers=[OFFICER],
                         settings=WorkflowSettings(finger_attempts=3, finger_threshold=40),
                         gnss_fix=devices.gnss_fix, devices=dict, clock=time.time)
        first, second, third, fourth = assignment.targets[:4]
        flow = RecordingFlow.start(ctx, first)
        flow.add_photo(photo())
        flow.accept_photo()
        flow.approve_photo(True)
        while (position := flow.next_finger()) is not None:
            flow.add_finger(position, b"\x89PNG" + bytes([position]) * 500, 70)
        flow.next()
        flow.sign([[(0.1, 0.1, 0.0), (0.2, 0.3, 0.1), (0.4, 0.2, 0.2)]], b"\x89PNGsig")
        flow.set_witness("Sulastri", "perangkat desa", consent=True)
        sealed = flow.seal()
        paused = RecordingFlow.start(ctx, second)
        paused.add_photo(photo())
        paused.pause()
        RecordingFlow.start(ctx, third).not_recorded(Outcome.REFUSED, "keluarga menolak")
        RecordingFlow.start(ctx, fourth).not_recorded(Outcome.NOT_HOME)
        key.forget()
    yield Visited(done, office, assignment, sealed.id, paused.recording.id, third.id, fourth.id)


def kit_files(data_dir: Path) -> dict[str, bytes]:
    return {str(f.relative_to(data_dir)): f.read_bytes()
            for f in sorted(data_dir.rglob("*")) if f.is_file()}


def needles(v: Visited) -> dict[str, bytes]:
    out = {"latitude as text": b"-8.09", "latitude as JSON": json.dumps(LAT).encode(),
           "longitude as JSON": json.dumps(LON).encode(), "longitude as text": b"112.16",
           "track longitude": b"112.17", "refused": b"refused", "not_home": b"not_home"}
    for lat, lon in TRACK:
        out[f"track point {lat}"] = json.dumps(lat).encode()
        out[f"track point {lon}"] = json.dumps(lon).encode()
    for n, target in enumerate(v.assignment.targets):
        out[f"target {n + 1} id"] = target.id.encode()
    return out


def test_no_visit_place_time_or_outcome_in_any_kit_file(visited: Visited) -> None:
    config = visited.provisioned.config
    # Search while a connection is open (the WAL still holds the writes) and after it closed.
    with Store.open(config.store_path) as store:
        assert Path(f"{config.store_path}-wal").exists()
        open_files = kit_files(config.data_dir)
        audit = store.audit_log(500)
    closed_files = kit_files(config.data_dir)
    assert "kit.db" in open_files and "kit.db-wal" in open_files
    for files in (open_files, closed_files):
        for name, raw in files.items():
            for what, needle in needles(visited).items():
                assert needle not in raw, f"{what} found in {name}"
    # The audit log names no recording (nor when it was started, paused or sealed).
    events = {e["event"] for e in audit}
    assert {"recording_started", "recording_paused", "record_sealed"} <= events
    for entry in audit:
        for rid in (visited.sealed_id, visited.paused_id):
            assert rid not in json.dumps(entry), entry


def test_an_officer_still_reads_what_the_kit_must_show(visited: Visited) -> None:
    config = visited.provisioned.config
    first, second, third, fourth = visited.assignment.targets[:4]
    with Store.open(config.store_path) as store:
        vault = open_vault(config, store)
        key = vault.unlock(OFFICER, PIN)
        states = target_states(store, key, visited.assignment.id)
        assert states[first.id] == (str(TargetStatus.RECORDED), "recorded")
        assert states[second.id][0] == str(TargetStatus.IN_PROGRESS)
        assert states[third.id] == (str(TargetStatus.NOT_RECORDED), "refused")
        assert states[fourth.id] == (str(TargetStatus.NOT_RECORDED), "not_home")
        # With the box key (a vault secret) the audit log names its recordings again.
        box = vault.get_secret(key, "kit-box")
        subjects = {e["subject"] for e in store.audit_log(500, box_key=box)}
        assert {visited.sealed_id, visited.paused_id} <= subjects
        assert {e["subject"] for e in store.audit_log(500)
                if e["event"] == "record_sealed"} == {"(sealed)"}
        blob = store.record_blob(visited.sealed_id)
        # The kiosk still reads the agent's fix (the status bar, the next record's stamp).
        fix = shared_gnss_fix(store, agent_key(config), max_age_s=3600)
        assert fix is not None and fix.lat == LAT
        assert shared_gnss_fix(store, DataKey(bytes(32)), max_age_s=3600) is None
        key.forget()
    assert blob is not None
    _, opened = open_record(blob, visited.office,
                            lambda _k: visited.provisioned.kit_keys.public.sign)
    assert opened.gnss is not None and (opened.gnss.lat, opened.gnss.lon) == (LAT, LON)
    # The offline track, kept encrypted, loads back for sending.
    with Store.open(config.store_path) as store:
        track = Track(max_points=100, min_distance_m=10)
        track.load(store, agent_key(config))
        assert [(q.lat, q.lon) for q in track.points] == TRACK
        track.clear(10)
        track.save(store, agent_key(config))  # sent: nothing of it is kept
        assert store.status(Track.STATUS_KEY) is None


def test_a_kit_kept_before_the_change_is_converted(tmp_path: Path) -> None:
    """m005 drops what it can without a key; the first unlocked session rewrites the rest."""
    assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    first, second = assignment.targets[:2]
    db = tmp_path / "kit.db"
    with Store.open(db) as store:
        key = PinVault(store, CHEAP).initialise(OFFICER, PIN)
        store_assignment(store, key, assignment)
        # Make it the old layout: rows under the targets' ids, statuses in clear, ...
        store.conn.execute("DELETE FROM targets")
        for n, target in enumerate(assignment.targets):
            blob = key.encrypt(canonical(target.to_canonical()), f"target:{target.id}")
            store.conn.execute(
                "INSERT INTO targets (id, assignment_id, position, status, outcome, updated_at, "
                "payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (target.id, assignment.id, n, "not_recorded" if n == 0 else "pending",
                 "refused" if n == 0 else "", time.time(), blob))
        store.put_draft("0193a2c4-0000-7000-8000-00000000d001", second.id, "photo",
                        key.encrypt(b"draft", "draft:x"), time.time() + 3600)
        store.conn.execute("INSERT INTO records (id, kind, target_id, sealed_at, stored_at, "
                           "size, sha256) VALUES ('r-1', 'recording', ?, 't', 0, 0, '')",
                           (first.id,))
        store.conn.execute("INSERT INTO audit (ts, event, subject) VALUES "
                           "(1, 'recording_started', 'r-1')")
        store.set_status("gnss_fix", {"lat": LAT, "lon": LON})
        # ... and the schema before m005.
        store.conn.execute("ALTER TABLE targets DROP COLUMN state")
        store.conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_no_visit_in_clear'")
    with Store.open(db) as store:  # m005 runs
        assert store.status("gnss_fix") is None
        assert store.conn.execute("SELECT target_id FROM records").fetchall() == [(None,)]
        assert [e["subject"] for e in store.audit_log()
                if e["event"] == "recording_started"] == [""]
        key = PinVault(store, CHEAP).unlock(OFFICER, PIN)
        states = target_states(store, key, assignment.id)
        assert states[first.id] == ("not_recorded", "refused")
        assert states[second.id] == ("pending", "")
        rows = store.conn.execute("SELECT id, status, outcome FROM targets").fetchall()
        assert all(r == (target_ref(key, t.id), "", "")
                   for r, t in zip(rows, assignment.targets, strict=True)), rows
        assert [d["target_id"] for d in store.drafts()] == [target_ref(key, second.id)]
        assert load_assignment(store, key, assignment.id) == assignment
        assert target_states(store, key, assignment.id) == states
