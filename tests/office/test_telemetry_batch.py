"""Telemetry written in batches (issue 11), and old health samples pruned.

Location, health and track messages are held in memory and written one transaction a batch
(``OfficeReceiver.flush_telemetry`` -> ``OfficeDb.write_telemetry``), coalesced per kit.
What must not change: the rows are those one-by-one processing leaves, a status after
telemetry sees it, a bad payload is refused at once and costs the others nothing, a batch
the database refuses is written again message by message, shutdown writes what is
pending. On SQLite and on PostgreSQL (``tests/postgres.py``). Messages go straight to
``OfficeReceiver._on_message`` as in ``tests/office/receiver.py``; the batch's age is
moved by hand, never waited for.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from office.db import OfficeDb, Telemetry, _kit_lock_key
from office.ingest import BrokerSettings, KitDirectory, OfficeKeysForLink, OfficeReceiver
from sync import protocol as p
from sync.envelope import OfficeKeys
from tests.postgres import PostgresServer

KIT, OTHER, THIRD = "blitar-kit-01", "blitar-kit-02", "blitar-kit-03"
T0 = 1_795_000_000.0


def new_database(request: pytest.FixtureRequest, tmp_path: Path, vendor: str, name: str) -> str:
    """A new, empty office database: a SQLite file, or a database of its own on the
    session's PostgreSQL server (as tests/office/test_db.py makes them)."""
    if vendor == "sqlite":
        return str(tmp_path / f"{name}.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    db_name = f"batch_{secrets.token_hex(6)}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db_name}")
    return f"postgresql://{server.user}@{server.host}:{server.port}/{db_name}"


class Office:
    """A receiver on ``target`` (no broker), its clock ``now`` (None: the real one)."""

    def __init__(self, root: Path, target: str, **settings: Any) -> None:
        root.mkdir(parents=True, exist_ok=True)
        OfficeKeys.generate().save(root / "keys")
        (root / "kits").mkdir(exist_ok=True)
        self.now: float | None = None
        self.db = OfficeDb.open(target)
        self.receiver = OfficeReceiver(self.db, OfficeKeysForLink.load(root / "keys"),
                                       KitDirectory(root / "kits"), BrokerSettings(**settings),
                                       clock=lambda: time.time() if self.now is None
                                       else self.now)
        self.receiver.client = object()  # type: ignore[assignment]  # paho's, for _on_message
        self.receiver.publish = lambda topic, payload: True  # type: ignore[method-assign]

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        message = mqtt.MQTTMessage(topic=topic.encode())
        message.payload = payload
        message.retain = retain
        self.receiver._on_message(self.receiver.client, None, message)  # type: ignore[arg-type]

    def kit(self, kit_id: str = KIT) -> dict[str, Any]:
        return self.db.kit(kit_id) or {}

    def samples(self) -> list[tuple[Any, ...]]:
        return [tuple(r)[1:] for r in self.db.conn.execute(
            "SELECT id, kit_id, tst, battery, battery_state, rssi, rsrp, sinr, outbox "
            "FROM health_samples ORDER BY id")]

    def all_positions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.conn.execute(
            "SELECT kit_id, tst, lat, lon, acc, source FROM positions ORDER BY kit_id, tst")]


@pytest.fixture(params=["sqlite", "postgresql"])
def make_office(request: pytest.FixtureRequest, tmp_path: Path
                ) -> Iterator[Callable[..., Office]]:
    """Offices on new databases of the test's vendor; ``batching`` on unless told."""
    made: list[Office] = []

    def make(*, batching: bool = True, **settings: Any) -> Office:
        name = f"office{len(made)}"
        office = Office(tmp_path / name, new_database(request, tmp_path, request.param, name),
                        **settings)
        office.receiver.batching = batching
        made.append(office)
        return office

    yield make
    for office in made:
        office.db.close()


def health(kit: str = KIT, *, battery: int = 80, slow: bool = False, outbox: int = 0,
           tst: int | None = None) -> tuple[str, bytes]:
    report = p.Health(tst=tst or int(T0), session=1, battery_percent=battery, battery_state=1,
                      registered=True, access_tech="LTE", operator="Telkomsel", rssi_dbm=-67,
                      rsrp_dbm=-92, sinr_db=11.5, outbox_count=outbox, software="0.3.1",
                      ui_state="idle")
    return p.KitTopics(kit).health, p.encode_health(report, slow=slow)


def location(kit: str = KIT, *, lat: float = -8.0954, tst: int | None = None,
             conn: str = "m") -> tuple[str, bytes]:
    return p.KitTopics(kit).location, p.encode_location(
        p.Position(lat=lat, lon=112.1609, tst=tst or int(T0), acc_m=6), kit_id=kit,
        battery_percent=77, battery_state=1, conn=conn)


def track(kit: str, points: list[tuple[float, int]]) -> tuple[str, bytes]:
    return p.KitTopics(kit).track, p.encode_track(
        [p.Position(lat=lat, lon=112.2, tst=t, acc_m=12) for lat, t in points])


def status(kit: str = KIT, *, session: int = 1) -> tuple[str, bytes]:
    return p.KitTopics(kit).status, p.encode_status(p.Status(
        online=True, session=session, tst=int(T0), software="0.3.1", security="tpm"))


# ---------------------------------------------------------------------------------------------
# When a batch is written
# ---------------------------------------------------------------------------------------------


def test_telemetry_waits_for_its_batch_then_a_tick_writes_it(
        make_office: Callable[..., Office]) -> None:
    office = make_office(telemetry_batch_s=30.0)
    office.send(*health(slow=True))
    office.send(*location())
    assert office.db.kit(KIT) is None and office.samples() == []  # held, not yet written
    office.receiver.client = None  # no broker, and no attempt to reach one for now
    office.receiver._next_connect = time.monotonic() + 3600
    office.receiver._next_expiry = time.monotonic() + 3600  # (the expiry writes it too)
    office.receiver._tick()  # younger than 30 s: still held
    assert office.db.kit(KIT) is None
    office.receiver._telemetry_since -= 60.0  # aged by hand, not waited for
    office.receiver._tick()
    kit = office.kit()
    assert json.loads(kit["health"])["battery_percent"] == 80
    assert json.loads(kit["location"])["lat"] == -8.0954
    assert len(office.samples()) == 1 and len(office.db.positions(KIT)) == 1
    assert office.receiver.counters["telemetry"] == 2


def test_a_full_batch_is_written_at_once(make_office: Callable[..., Office]) -> None:
    office = make_office(telemetry_batch_max=3, telemetry_batch_s=3600.0)
    office.send(*health(KIT))
    office.send(*health(OTHER))
    assert office.samples() == []
    office.send(*location(THIRD))
    assert [k["kit_id"] for k in office.db.kits()] == [KIT, OTHER, THIRD]
    assert len(office.samples()) == 2


def test_without_batching_each_message_is_written_at_once(
        make_office: Callable[..., Office]) -> None:
    # What a caller without serve()'s loop (a script, tests/office/receiver.py) gets.
    office = make_office(batching=False)
    office.send(*health(slow=True))
    assert json.loads(office.kit()["health"])["software"] == "0.3.1"
    office.send(*location())
    assert office.kit()["location"]


def test_a_status_after_health_sees_the_health_written(
        make_office: Callable[..., Office]) -> None:
    office = make_office(telemetry_batch_s=3600.0)
    seen: list[dict[str, Any]] = []
    on_status = office.receiver._on_status

    def spy(kit_id: str, st: p.Status, now: float, retained: bool) -> bool:
        seen.append(office.kit(kit_id))  # what the status handling reads when it starts
        return on_status(kit_id, st, now, retained)

    office.receiver._on_status = spy  # type: ignore[method-assign]
    office.now = T0
    office.send(*health(battery=61, slow=True))
    office.send(*location(lat=-8.1))
    office.now = T0 + 1
    office.send(*status())
    assert len(seen) == 1
    assert json.loads(seen[0]["health"])["battery_percent"] == 61
    assert json.loads(seen[0]["location"])["lat"] == -8.1
    kit = office.kit()
    assert kit["online"] == 1 and kit["status_at"] == T0 + 1 and kit["last_seen"] == T0 + 1
    assert kit["health_at"] == T0 and json.loads(kit["health"])["operator"] == "Telkomsel"
    assert office.receiver._telemetry == []


def test_the_pending_batch_is_written_on_shutdown(make_office: Callable[..., Office],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="office.receiver")
    office = make_office(telemetry_batch_s=3600.0)
    office.send(*health(KIT))
    office.send(*location(OTHER))
    office.send(*track(THIRD, [(-8.2, int(T0) - 60), (-8.21, int(T0) - 30)]))
    assert office.db.kits() == []
    office.receiver.client = None
    office.receiver._shutdown()
    assert [k["kit_id"] for k in office.db.kits()] == [KIT, OTHER, THIRD]
    assert [q["tst"] for q in office.db.positions(THIRD)] == [int(T0) - 60, int(T0) - 30]
    assert len(office.samples()) == 1
    assert "office receiver stopped" in caplog.text


def test_serve_turns_batching_on_and_writes_what_is_left_when_it_stops(
        make_office: Callable[..., Office]) -> None:
    office = make_office(batching=False, telemetry_batch_s=3600.0)
    receiver = office.receiver
    receiver.client = None
    receiver._next_connect = time.monotonic() + 3600
    ticks = 0

    def tick() -> None:  # stands for the network loop delivering two messages
        nonlocal ticks
        ticks += 1
        assert receiver.batching
        office.send(*health(KIT))
        office.send(*location(KIT))
        assert office.db.kit(KIT) is None
        receiver.stop()

    receiver._tick = tick  # type: ignore[method-assign]
    receiver.serve()
    assert ticks == 1 and not receiver.batching
    assert office.kit()["health"] and office.kit()["location"]


# ---------------------------------------------------------------------------------------------
# Bad payloads and failing writes
# ---------------------------------------------------------------------------------------------


def test_a_bad_payload_in_the_middle_does_not_lose_the_others(
        make_office: Callable[..., Office]) -> None:
    office = make_office(telemetry_batch_s=3600.0)
    office.send(*health(battery=55, slow=True))
    office.send(p.KitTopics(KIT).health, b"\xff\xff")  # not CBOR
    office.send(*location(lat=-8.3))
    office.send(p.KitTopics(KIT).location, b'{"_type":"location","lat":500}')
    office.send(p.KitTopics(KIT).track, b"\x00")
    # Refused and counted at once; nothing of them held.
    assert office.receiver.counters["refused"] == 3
    assert {r["leaf"] for r in office.db.refusal_counts(KIT)} == {"health", "location",
                                                                  "track"}
    assert len(office.receiver._telemetry) == 2
    assert office.receiver.flush_telemetry() == 2
    kit = office.kit()
    assert json.loads(kit["health"])["battery_percent"] == 55
    assert json.loads(kit["location"])["lat"] == -8.3
    assert len(office.samples()) == 1 and len(office.db.positions(KIT)) == 1


def test_a_batch_the_database_refuses_is_written_one_by_one(
        make_office: Callable[..., Office], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from django.db import IntegrityError

    office = make_office(telemetry_batch_s=3600.0)
    write = office.db.write_telemetry

    def refusing(batch: list[Telemetry]) -> None:  # a row the database will not take
        if any(t.health is not None and t.health.outbox_count == 13 for t in batch):
            raise IntegrityError("refused for the test")
        write(batch)

    monkeypatch.setattr(office.db, "write_telemetry", refusing)
    office.send(*health(KIT, battery=70, slow=True))
    office.send(*health(OTHER, outbox=13))
    office.send(*location(OTHER))
    office.send(*health(THIRD, battery=40))
    office.receiver.flush_telemetry()
    assert json.loads(office.kit(KIT)["health"])["battery_percent"] == 70
    assert json.loads(office.kit(THIRD)["health"])["battery_percent"] == 40
    assert office.kit(OTHER)["location"] and not office.kit(OTHER).get("health")
    assert [s[0] for s in office.samples()] == [KIT, THIRD]
    assert office.receiver.counters["telemetry_lost"] == 1
    assert office.receiver.counters["telemetry"] == 3
    assert "one by one" in caplog.text and OTHER in caplog.text


def test_a_failing_flush_is_logged_and_the_receiver_keeps_running(
        make_office: Callable[..., Office], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from django.db import OperationalError

    office = make_office(telemetry_batch_s=3600.0)
    write = office.db.write_telemetry
    failures = [OperationalError("database is locked")]

    def failing_once(batch: list[Telemetry]) -> None:
        if failures:
            raise failures.pop()
        write(batch)

    monkeypatch.setattr(office.db, "write_telemetry", failing_once)
    office.send(*health(KIT))
    office.send(*health(OTHER))
    office.send(*status(THIRD))  # the flush before it fails; the status is still handled
    assert office.kit(THIRD)["online"] == 1
    assert office.db.kit(KIT) is None  # that batch was dropped, once, with a log line
    assert office.receiver.counters["telemetry_lost"] == 2
    assert "writing 2 telemetry message(s) failed" in caplog.text
    office.send(*health(KIT, battery=33))
    office.receiver.flush_telemetry()
    assert json.loads(office.kit(KIT)["health"])["battery_percent"] == 33


def test_a_value_the_database_refuses_loses_only_its_message(tmp_path: Path,
                                                             postgres: PostgresServer) -> None:
    """A row the database refuses (here a CHECK constraint the test adds; in the field a
    value a column cannot hold) makes the batch fail; it is written again message by
    message, so only that message is lost. (An outbox count too large for PostgreSQL's
    integer column, 2**31, is refused at decoding since the limit became 1,000,000.)"""
    server = postgres
    name = f"batch_{secrets.token_hex(6)}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    office = Office(tmp_path, f"postgresql://{server.user}@{server.host}:{server.port}/{name}",
                    telemetry_batch_s=3600.0)
    with psycopg.connect(f"host={server.host} port={server.port} user={server.user} "
                         f"dbname={name}", autocommit=True) as conn:
        conn.execute("ALTER TABLE health_samples ADD CONSTRAINT no_13 CHECK (battery <> 13)")
    office.receiver.batching = True
    try:
        office.send(*health(KIT, battery=70))
        office.send(*health(OTHER, battery=13))
        office.send(*location(OTHER))
        office.receiver.flush_telemetry()
        assert [s[0] for s in office.samples()] == [KIT]
        assert office.kit(OTHER)["location"] and not office.kit(OTHER).get("health")
        assert office.receiver.counters["telemetry_lost"] == 1
        refused_before = office.receiver.counters["refused"]
        office.send(*health(OTHER, outbox=2**31))
        assert office.receiver.counters["refused"] == refused_before + 1
    finally:
        office.db.close()


# ---------------------------------------------------------------------------------------------
# Coalescing
# ---------------------------------------------------------------------------------------------


def mixed_traffic() -> list[tuple[str, bytes, bool]]:
    """Messages of three kits touching every column telemetry writes, in a tangled order:
    ``(topic, payload, retained)``."""
    t = int(T0)
    return [
        (*location(KIT, lat=-8.0, tst=t - 7200), True),  # retained: where it was, not seen
        (*health(KIT, battery=90, slow=True), False),
        (*location(KIT, lat=-8.01, tst=t + 1), False),
        (*track(OTHER, [(-8.3, t - 300), (-8.31, t - 240)]), False),
        (*location(OTHER, lat=-8.31, tst=t - 240, conn="o"), False),  # ignored
        (*health(KIT, battery=88), False),  # no slow fields: software/operator stay
        (*location(THIRD, lat=-8.5, tst=t - 50), True),
        (*health(OTHER, battery=20, slow=True, outbox=3), False),
        (*location(KIT, lat=-8.02, tst=t + 1), False),  # same tst: the first point stays
        (*track(OTHER, []), False),  # empty: only last_seen
        (*health(OTHER, battery=19), False),
        (*location(KIT, lat=-8.03, tst=t + 9), False),
    ]


def test_coalescing_gives_the_rows_of_one_by_one_processing(
        make_office: Callable[..., Office]) -> None:
    one_by_one = make_office(batching=False)
    batched = make_office(telemetry_batch_s=3600.0)
    for office in (one_by_one, batched):
        office.db.set_kit(KIT, health=json.dumps({"software": "0.2.9", "minutes_left": 300}),
                          online=1, session=4)  # a row from before, with older health
        for i, (topic, payload, retained) in enumerate(mixed_traffic()):
            office.now = T0 + i
            office.send(topic, payload, retain=retained)
    assert len(batched.receiver._telemetry) == 11 and batched.db.kit(OTHER) is None
    batched.receiver.flush_telemetry()
    assert batched.db.kits() == one_by_one.db.kits()
    assert batched.all_positions() == one_by_one.all_positions()
    assert batched.samples() == one_by_one.samples()
    kit = batched.kit(KIT)  # and those rows are the right ones
    assert json.loads(kit["health"])["battery_percent"] == 88
    assert json.loads(kit["health"])["software"] == "0.3.1"
    assert json.loads(kit["health"])["minutes_left"] == 300  # from before, never re-sent
    assert json.loads(kit["location"])["lat"] == -8.03 and kit["location_at"] == T0 + 11
    assert kit["last_seen"] == T0 + 11 and kit["session"] == 4
    assert [(q["tst"], q["lat"], q["source"]) for q in batched.db.positions(KIT)] == [
        (int(T0) - 7200, -8.0, "location"), (int(T0) + 1, -8.01, "location"),
        (int(T0) + 9, -8.03, "location")]  # exact floats, the first of one tst kept
    third = batched.kit(THIRD)
    assert third["location_at"] == T0 - 50 and not third.get("last_seen")
    assert batched.kit(OTHER)["last_seen"] == T0 + 10


def test_a_batch_locks_each_kit_in_sorted_order(make_office: Callable[..., Office],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    office = make_office(telemetry_batch_s=3600.0)
    locked: list[list[str]] = []
    lock_kits = office.db.lock_kits
    monkeypatch.setattr(office.db, "lock_kits",
                        lambda kits: (locked.append(list(kits)), lock_kits(kits)))
    for kit in (THIRD, KIT, OTHER, KIT):
        office.send(*health(kit))
    office.receiver.flush_telemetry()
    assert locked == [[KIT, OTHER, THIRD]]


def test_lock_kits_holds_every_kits_lock_until_the_commit(tmp_path: Path,
                                                          postgres: PostgresServer) -> None:
    """What keeps a second worker's chunk or status of one of those kits waiting."""
    name = f"batch_{secrets.token_hex(6)}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    db = OfficeDb.open(f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}")
    kits = [f"blitar-kit-{i:02d}" for i in range(5, 0, -1)]
    try:
        with psycopg.connect(postgres.conninfo() + f" dbname={name}", autocommit=True) as other:
            def free(kit: str) -> bool:
                got = other.execute("SELECT pg_try_advisory_lock(%s)",
                                    (_kit_lock_key(kit),)).fetchone()
                if got and got[0]:
                    other.execute("SELECT pg_advisory_unlock(%s)", (_kit_lock_key(kit),))
                return bool(got and got[0])

            with db.transaction():
                db.lock_kits(kits)
                assert [free(k) for k in kits] == [False] * 5
                assert free("blitar-kit-09")
            assert [free(k) for k in kits] == [True] * 5
    finally:
        db.close()


def test_two_workers_writing_the_same_kits_never_deadlock(tmp_path: Path,
                                                          postgres: PostgresServer) -> None:
    """Two share-group workers, each a batch of the same 40 kits, in opposite orders of
    arrival, over and over: the locks go in sorted kit order, so neither ever waits on the
    other in a circle (PostgreSQL would break a deadlock with an error)."""
    import threading

    name = f"batch_{secrets.token_hex(6)}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    db = OfficeDb.open(f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}")
    kits = [f"blitar-kit-{i:02d}" for i in range(40)]
    errors: list[BaseException] = []

    def worker(order: list[str], start: threading.Barrier) -> None:
        try:
            start.wait()
            for i in range(15):
                db.write_telemetry([Telemetry(k, {"health_at": T0 + i}, health=p.Health(
                    tst=int(T0), battery_percent=50), at=T0 + i) for k in order])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            db.close()  # this thread's connection

    start = threading.Barrier(2)
    threads = [threading.Thread(target=worker, args=(order, start))
               for order in (kits, kits[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        counts = db.conn.execute("SELECT kit_id, COUNT(*) FROM health_samples GROUP BY kit_id "
                                 "ORDER BY kit_id").fetchall()
        assert [tuple(r) for r in counts] == [(k, 30) for k in kits]
    finally:
        db.close()


# ---------------------------------------------------------------------------------------------
# Pruning old health samples
# ---------------------------------------------------------------------------------------------


def add_samples(db: OfficeDb, kit: str, times: list[float]) -> None:
    db.write_telemetry([Telemetry(kit, {"health_at": t}, health=p.Health(tst=int(t)), at=t)
                        for t in times])


def test_pruning_deletes_only_old_samples_in_bounded_steps(
        make_office: Callable[..., Office]) -> None:
    office = make_office()
    db = office.db
    cutoff = T0 - 35 * 86400
    add_samples(db, KIT, [cutoff - 86400 * d for d in range(1, 8)] + [cutoff, T0])
    add_samples(db, OTHER, [T0 - 3600, T0])  # nothing old
    add_samples(db, THIRD, [cutoff - 1, cutoff - 2, cutoff + 1])
    db.conn.execute("DELETE FROM kits WHERE kit_id = %s", (THIRD,))  # samples of no kit row
    # At most 3 rows a delete and 5 a call: two calls, the first saying there is more.
    assert db.prune_health_samples(cutoff, rows=3, budget=5) == (5, False)
    assert db.prune_health_samples(cutoff, rows=3, budget=5) == (4, True)
    assert db.prune_health_samples(cutoff, rows=3, budget=5) == (0, True)
    assert sorted((s[0], s[1]) for s in office.samples()) == [
        (KIT, cutoff), (KIT, T0), (OTHER, T0 - 3600), (OTHER, T0), (THIRD, cutoff + 1)]


def test_the_receiver_prunes_with_the_expiry_of_stale_uploads(
        make_office: Callable[..., Office]) -> None:
    office = make_office(expire_every_s=0.0, health_retention_s=10 * 86400)
    office.now = T0
    add_samples(office.db, KIT, [T0 - 11 * 86400, T0 - 9 * 86400, T0])
    receiver = office.receiver
    receiver.client = None
    receiver._next_connect = time.monotonic() + 3600
    receiver._tick()
    assert [s[1] for s in office.samples()] == [T0 - 9 * 86400, T0]
    assert BrokerSettings().health_retention_s == 35 * 86400  # the default: 35 days
