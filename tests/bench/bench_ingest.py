"""Telemetry ingest on one core: 1,000 simulated kits' location and health reports.

``python -m tests.bench.bench_ingest [--profile] [--messages N] [--no-postgres]``.
Figures printed, nothing asserted.

Encoded payloads (:func:`sync.protocol.encode_location`, :func:`~sync.protocol.encode_health`,
realistic values: positions around Blitar, battery, modem, outbox) for 1,000 kit ids, half
location and half health, are handed straight to :meth:`OfficeReceiver._on_message` as
paho would (no broker: :class:`tests.office.receiver.BenchOffice`'s way). Telemetry needs no
registered kit (only records are checked against ``KitDirectory``). Measured: messages per
second, one thread, wall clock, twice: the receiver as ``serve()`` runs it, telemetry grouped
in batches (``OfficeReceiver.batching``: one transaction per batch of at most
``telemetry_batch_max`` messages, the last partial batch's flush included in the time), and
with batching off, one transaction per message (what it did before issue 11), so the ratio of
the two is the gain of batching. ``serve()``'s loop around it (paho's socket reads, a batch's
age check each tick) is not measured.

Baseline, in the same run and the same database: the same rows written by plain SQL from a
plain driver (``sqlite3`` / ``psycopg``), into tables of their own: for a location the kit
row upserted and the position inserted, for health the kit row upserted; one transaction
per message, as the receiver committed each message before batching; twice: with commits
that wait for the disk (``synchronous=FULL`` on SQLite, ``synchronous_commit=on`` on
PostgreSQL), the promise records get, and with the receiver's telemetry commits, which do
not wait (:meth:`office.db.OfficeDb.telemetry_transaction`: ``NORMAL`` / ``off``). Against
the second, the unbatched receiver shows its own work (decoding and checking the payload,
the health merge under the kit's lock, Django's cursor); the batched one, what sharing a
commit among hundreds of messages wins back.

On SQLite, then on a throwaway PostgreSQL 15 (``tests/postgres.py``'s ``start_postgres``)
when its binaries are installed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from office.db import OfficeDb
from office.ingest import BrokerSettings, KitDirectory, OfficeKeysForLink, OfficeReceiver
from sync import protocol as p
from sync.envelope import OfficeKeys

KITS = 1000
TARGET = 5000  # messages a second


def kit_ids() -> list[str]:
    return [f"blitar-kit-{i:04d}" for i in range(KITS)]


def payloads(count: int, seed: int = 1) -> list[tuple[str, bytes, dict[str, Any]]]:
    """``(topic, payload, fields)``: location and health in turn, kits in turn; ``fields``
    is what the baseline writes for it."""
    rng = random.Random(seed)
    kits = kit_ids()
    where = {k: (-8.0954 + rng.uniform(-0.3, 0.3), 112.1609 + rng.uniform(-0.3, 0.3))
             for k in kits}
    battery = {k: rng.randrange(30, 100) for k in kits}
    first_health = set(kits)
    out: list[tuple[str, bytes, dict[str, Any]]] = []
    tst = int(time.time()) - count
    for i in range(count):
        kit_id = kits[(i // 2) % KITS]
        topics = p.KitTopics(kit_id)
        tst += 1
        if i % 2 == 0:
            lat, lon = where[kit_id]
            lat, lon = lat + rng.gauss(0, 0.0005), lon + rng.gauss(0, 0.0005)
            where[kit_id] = (lat, lon)
            position = p.Position(lat=lat, lon=lon, tst=tst, acc_m=round(rng.uniform(3, 25), 1),
                                  speed_mps=round(rng.uniform(0, 12), 1),
                                  course_deg=rng.randrange(360), alt_m=rng.randrange(90, 400))
            payload = p.encode_location(position, kit_id=kit_id, battery_percent=battery[kit_id],
                                        battery_state=1, trigger="t")
            _, data = p.decode_location(payload)
            out.append((topics.location, payload, {"kind": "location", "kit": kit_id,
                                                   "position": position,
                                                   "json": json.dumps(data)}))
        else:
            battery[kit_id] = max(5, battery[kit_id] - rng.randrange(0, 2))
            health = p.Health(
                tst=tst, session=3, battery_percent=battery[kit_id], battery_state=1,
                voltage_mv=3700 + rng.randrange(400), minutes_left=rng.randrange(60, 600),
                registered=True, access_tech="lte", operator="Telkomsel",
                rssi_dbm=-rng.randrange(60, 100), rsrp_dbm=-rng.randrange(80, 120),
                rsrq_db=-round(rng.uniform(5, 15), 1), sinr_db=round(rng.uniform(0, 20), 1),
                fix_age_s=rng.randrange(0, 30), disk_free_mib=rng.randrange(2000, 30000),
                uptime_s=tst % 86400, outbox_count=rng.randrange(0, 4),
                outbox_oldest_s=rng.randrange(0, 600), software="1.4.2", ui_state="idle")
            slow = kit_id in first_health
            first_health.discard(kit_id)
            payload = p.encode_health(health, slow=slow)
            out.append((topics.health, payload, {
                "kind": "health", "kit": kit_id,
                "json": json.dumps({k: v for k, v in health.__dict__.items()
                                    if v is not None})}))
    return out


def receiver_for(target: str | Path, keys_dir: Path, kits_dir: Path) -> OfficeReceiver:
    receiver = OfficeReceiver(OfficeDb.open(target), OfficeKeysForLink.load(keys_dir),
                              KitDirectory(kits_dir), BrokerSettings())
    receiver.client = object()  # type: ignore[assignment]
    receiver.publish = lambda topic, payload: True  # type: ignore[method-assign]
    return receiver


def feed(receiver: OfficeReceiver, messages: list[tuple[str, bytes, dict[str, Any]]],
         *, batched: bool = True) -> float:
    """Seconds to hand every message to the receiver, one after the other, and have all of
    them written (the last batch flushed)."""
    receiver.batching = batched
    prepared = []
    for topic, payload, _ in messages:
        message = mqtt.MQTTMessage(topic=topic.encode())
        message.payload = payload
        prepared.append(message)
    client = receiver.client
    began = time.perf_counter()
    for message in prepared:
        receiver._on_message(client, None, message)  # type: ignore[arg-type]
    receiver.flush_telemetry()
    return time.perf_counter() - began


# -- baselines: the same rows, plain SQL, one transaction a message --------------------------
BASE_TABLES = (
    "CREATE TABLE IF NOT EXISTS bench_kits (kit_id TEXT PRIMARY KEY, health TEXT, "
    "health_at DOUBLE PRECISION, location TEXT, location_at DOUBLE PRECISION, "
    "last_seen DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS bench_positions (kit_id TEXT NOT NULL, tst BIGINT NOT NULL, "
    "lat DOUBLE PRECISION NOT NULL, lon DOUBLE PRECISION NOT NULL, acc DOUBLE PRECISION, "
    "source TEXT NOT NULL, PRIMARY KEY (kit_id, tst, source))",
)
UPSERT_LOCATION = ("INSERT INTO bench_kits (kit_id, location, location_at, last_seen) VALUES "
                   "({m}, {m}, {m}, {m}) ON CONFLICT (kit_id) DO UPDATE SET location = "
                   "excluded.location, location_at = excluded.location_at, last_seen = "
                   "excluded.last_seen")
INSERT_POSITION = ("INSERT INTO bench_positions VALUES ({m}, {m}, {m}, {m}, {m}, {m}) "
                   "ON CONFLICT DO NOTHING")
UPSERT_HEALTH = ("INSERT INTO bench_kits (kit_id, health, health_at, last_seen) VALUES "
                 "({m}, {m}, {m}, {m}) ON CONFLICT (kit_id) DO UPDATE SET health = "
                 "excluded.health, health_at = excluded.health_at, last_seen = "
                 "excluded.last_seen")


def base_rows(fields: dict[str, Any], now: float) -> list[tuple[str, tuple[Any, ...]]]:
    kit_id = fields["kit"]
    if fields["kind"] == "location":
        q: p.Position = fields["position"]
        return [(UPSERT_LOCATION, (kit_id, fields["json"], now, now)),
                (INSERT_POSITION, (kit_id, q.tst, q.lat, q.lon, q.acc_m, "location"))]
    return [(UPSERT_HEALTH, (kit_id, fields["json"], now, now))]


def baseline(execute: Callable[[str, tuple[Any, ...]], Any], commit: Callable[[], None],
             mark: str, messages: list[tuple[str, bytes, dict[str, Any]]]) -> float:
    sql = {s: s.format(m=mark) for s in (UPSERT_LOCATION, INSERT_POSITION, UPSERT_HEALTH)}
    began = time.perf_counter()
    for _, _, fields in messages:
        for statement, args in base_rows(fields, time.time()):
            execute(sql[statement], args)
        commit()
    return time.perf_counter() - began


def sqlite_baseline(path: Path, messages: list[tuple[str, bytes, dict[str, Any]]],
                    durable: bool) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    for table in BASE_TABLES:
        conn.execute(table)
    state = {"open": False}

    def execute(sql: str, args: tuple[Any, ...]) -> None:
        if not state["open"]:
            conn.execute("BEGIN IMMEDIATE")
            state["open"] = True
        conn.execute(sql, args)

    def commit() -> None:
        conn.execute("COMMIT")
        state["open"] = False

    try:
        return baseline(execute, commit, "?", messages)
    finally:
        conn.close()


def postgres_baseline(conninfo: str, messages: list[tuple[str, bytes, dict[str, Any]]],
                      durable: bool) -> float:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        for table in BASE_TABLES:
            conn.execute(table)
        conn.execute(f"SET synchronous_commit = {'on' if durable else 'off'}")
        conn.commit()
        return baseline(lambda sql, args: conn.execute(sql, args), conn.commit, "%s", messages)


def report(name: str, count: int, receiver_s: float, single_s: float, durable_s: float,
           relaxed_s: float) -> None:
    def rate(seconds: float) -> str:
        return f"{count / seconds:7.0f} msg/s ({1e6 * seconds / count:5.0f} µs)"

    print(f"  {name}\n"
          f"    receiver, batched                          {rate(receiver_s)}   target "
          f"{TARGET}: {'met' if count / receiver_s >= TARGET else 'NOT met'}\n"
          f"    receiver, one transaction per message      {rate(single_s)}   batched "
          f"{single_s / receiver_s:.1f}x as fast\n"
          f"    baseline, plain SQL, commit waits on disk  {rate(durable_s)}\n"
          f"    baseline, plain SQL, commit as telemetry's {rate(relaxed_s)}   batched receiver "
          f"at {relaxed_s / receiver_s:.2f} of its speed", flush=True)


def profile(receiver: OfficeReceiver, messages: list[tuple[str, bytes, dict[str, Any]]]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    feed(receiver, messages)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    print("\n".join(out.getvalue().splitlines()[:40]))


ROUNDS = 4  # receiver and baselines take turns, so the disk's moods fall on all of them


def run(target: str | Path, label: str, keys_dir: Path, kits_dir: Path,
        messages: list[tuple[str, bytes, dict[str, Any]]],
        base: Callable[[list[tuple[str, bytes, dict[str, Any]]], bool], float],
        *, with_profile: bool) -> None:
    receiver = receiver_for(target, keys_dir, kits_dir)
    feed(receiver, messages[: len(messages) // 10])  # warm up: kits' rows exist, caches hot
    base(messages[: len(messages) // 10], True)
    receiver_s = single_s = durable_s = relaxed_s = 0.0
    step = len(messages) // ROUNDS
    for i in range(ROUNDS):
        part = messages[i * step:(i + 1) * step]
        receiver_s += feed(receiver, part)
        single_s += feed(receiver, part, batched=False)  # the same rows again, one by one
        durable_s += base(part, True)
        relaxed_s += base(part, False)
    report(label, step * ROUNDS, receiver_s, single_s, durable_s, relaxed_s)
    stored = receiver.db.conn.execute("SELECT COUNT(*) FROM kits").fetchone()[0]
    lost = receiver.counters["telemetry_lost"]
    if stored != KITS or receiver.counters["refused"] or lost:
        print(f"  (!) {stored} kits stored, {receiver.counters['refused']} messages refused, "
              f"{lost} lost")
    if with_profile:
        profile(receiver, messages[: min(len(messages), 4000)])
    receiver.db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_ingest")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the receiver")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--dir", default=None, help="where the SQLite file goes (its disk "
                                                    "sets the commit cost)")
    args = parser.parse_args(argv if argv is not None else [])
    messages = payloads(args.messages)
    print(f"telemetry ingest, one thread: {args.messages} messages (half location, half "
          f"health) from {KITS} kits; receiver batches of at most "
          f"{BrokerSettings().telemetry_batch_max}, baselines one transaction a message")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        OfficeKeys.generate().save(root / "keys")
        (root / "kits").mkdir()
        db_path = root / "office.db"
        run(db_path, f"SQLite ({root})", root / "keys", root / "kits", messages,
            lambda part, durable: sqlite_baseline(db_path, part, durable),
            with_profile=args.profile)
        if args.no_postgres:
            return
        from tests.postgres import PG_BIN, start_postgres

        if not (PG_BIN / "postgres").exists():
            print(f"  PostgreSQL: not measured ({PG_BIN} has no server)")
            return
        with start_postgres() as server:
            url = f"postgresql://{server.user}@{server.host}:{server.port}/{server.dbname}"
            run(url, "PostgreSQL 15 (local, TCP)", root / "keys", root / "kits", messages,
                lambda part, durable: postgres_baseline(server.conninfo(), part, durable),
                with_profile=args.profile)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
