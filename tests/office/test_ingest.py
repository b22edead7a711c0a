"""The office receiver against a flooding kit, without a broker: quotas, expiry, refusals.

Issue 10, finding 9: 300 uploads opened and never finished in under a second left
37.5 MiB at the office for good, and every garbage message added a row and a log line.
Messages go straight to :meth:`OfficeReceiver._on_message` (what paho would call); what
the office answers is caught in place of publishing it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from office.ingest import MAX_OPEN_UPLOADS
from sync import protocol as p
from tests.office.receiver import KIT, TOPICS, BenchOffice


class Office(BenchOffice):
    def chunk(self, rid: str, size: int, offset: int, data: bytes) -> None:
        self.send(TOPICS.up, p.encode_chunk(p.Chunk(rid, b"\1" * 32, size, offset, data)))

    def stored_bytes(self) -> int:
        return int(self.db.conn.execute(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM chunks").fetchone()[0])


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return Office(tmp_path)


def rid(i: int) -> str:
    return f"0193a2c4-0000-7000-8000-{i:012d}"


def test_a_flood_of_opened_uploads_leaves_at_most_the_quota(office: Office,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    caplog.set_level(logging.INFO, logger="office.receiver")
    data = os.urandom(p.MAX_CHUNK_DATA)
    started = time.monotonic()
    for i in range(300):  # each the first chunk of a record of the largest size, never finished
        office.chunk(rid(i), p.MAX_RECORD_BYTES, 0, data)
    assert time.monotonic() - started < 60
    count, held = office.db.open_uploads(KIT)
    assert count == MAX_OPEN_UPLOADS
    assert held == office.stored_bytes() == MAX_OPEN_UPLOADS * p.MAX_CHUNK_DATA  # not 37.5 MiB
    busy = [pr for _, pr in office.sent if pr.kind == "reject"]
    assert len(busy) == 300 - MAX_OPEN_UPLOADS
    assert {(pr.reason, pr.retry_s) for pr in busy} == {("busy", 600)}
    assert all(r["reason"] == "busy" for r in office.db.refusal_counts())
    assert sum(r["n"] for r in office.db.refusal_counts()) == 300 - MAX_OPEN_UPLOADS
    assert len(office.db.refusals()) <= 2  # one a minute; the flood may straddle a minute
    assert sum("refused" in r.getMessage() for r in caplog.records) <= 2
    # An upload already held goes on: the quota stops new ones, not the kit's work.
    office.chunk(rid(0), p.MAX_RECORD_BYTES, p.MAX_CHUNK_DATA, data)
    assert office.sent[-1][1] == p.Progress("have", rid(0), have=2 * p.MAX_CHUNK_DATA)


def test_the_bytes_of_a_kits_unfinished_uploads_are_capped(tmp_path: Path) -> None:
    office = Office(tmp_path, max_open_upload_bytes=3 * 1024)
    office.chunk(rid(1), 10_000, 0, b"a" * 2048)
    office.chunk(rid(2), 10_000, 0, b"b" * 1024)
    office.chunk(rid(2), 10_000, 1024, b"b" * 1024)  # one byte over
    assert office.sent[-1][1].kind == "reject" and office.sent[-1][1].reason == "busy"
    assert office.db.open_uploads(KIT) == (2, 3 * 1024)
    # What it held of the refused record stays: the kit resends from 0 and is told 1024.
    office.chunk(rid(2), 10_000, 0, b"b" * 1024)
    assert office.sent[-1][1] == p.Progress("have", rid(2), have=1024)


def test_a_stale_upload_expires_and_the_kit_starts_it_again(office: Office) -> None:
    office.chunk(rid(1), 10_000, 0, b"a" * 4096)
    office.chunk(rid(2), 10_000, 0, b"b" * 4096)
    assert office.db.open_uploads(KIT) == (2, 8192)
    day_ago = time.time() - office.receiver.broker.stale_upload_s - 1
    office.db.conn.execute("UPDATE uploads SET updated_at = ? WHERE record_id = ?",
                           (day_ago, rid(1)))
    assert office.receiver.expire_stale_uploads() == 1
    assert office.db.upload(KIT, rid(1)) is None
    assert office.db.upload(KIT, rid(2)) is not None  # a recent one stays
    assert office.stored_bytes() == 4096
    # The kit, resuming where it was, is told the office holds nothing: it starts again.
    office.chunk(rid(1), 10_000, 4096, b"a" * 4096)
    assert office.sent[-1][1] == p.Progress("have", rid(1), have=0, gap=True)
    office.chunk(rid(1), 10_000, 0, b"a" * 4096)
    assert office.sent[-1][1] == p.Progress("have", rid(1), have=4096)


def test_the_receiver_expires_stale_uploads_as_it_runs(tmp_path: Path) -> None:
    office = Office(tmp_path, stale_upload_s=0.0, expire_every_s=0.0)
    office.chunk(rid(1), 10_000, 0, b"a" * 4096)
    office.receiver.client = None  # no broker, and no attempt to reach one for now
    office.receiver._next_connect = time.monotonic() + 3600
    office.receiver._tick()
    assert office.db.open_uploads(KIT) == (0, 0)


def test_a_thousand_garbage_messages_leave_a_bounded_trace(office: Office,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.INFO, logger="office.receiver")
    office.receiver.batching = True  # a refused payload is counted at once, never held
    kinds = [(TOPICS.up, b"\x00garbage"), (TOPICS.health, b"\xff\xff"),
             (TOPICS.status, b'{"v":2,"online":true}'), (f"{TOPICS.base}/nonsense", b"x")]
    for i in range(1000):
        office.send(*kinds[i % len(kinds)])
    counts = office.db.refusal_counts()  # a topic that names no kit counts under '-'
    assert sum(r["n"] for r in counts) == 1000
    assert len(counts) <= 2 * len(kinds)  # a row per kind and minute
    assert len(office.db.refusals()) <= 2 * len(kinds)
    lines = [r for r in caplog.records if r.name == "office.receiver"]
    assert len(lines) <= 2 * len(kinds), [r.getMessage() for r in lines]
    assert office.receiver.counters["refused"] == 1000
    assert office.receiver._telemetry == [] and office.db.kits() == []


def test_an_unregistered_kit_flooding_chunks_costs_counters_not_log_lines(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="office.receiver")
    stranger = p.KitTopics("blitar-kit-99")  # no key folder at the office
    for i in range(500):
        office.send(stranger.up, p.encode_chunk(p.Chunk(rid(i), b"\1" * 32, 10_000, 0,
                                                        b"x" * 1024)))
    assert {(r["kit_id"], r["reason"]) for r in office.db.refusal_counts()} == \
        {("blitar-kit-99", "kit_unknown")}
    assert sum(r["n"] for r in office.db.refusal_counts()) == 500
    assert office.db.open_uploads("blitar-kit-99") == (0, 0)
    assert len(caplog.records) <= 4, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
def test_offline_points_for_owntracks_are_not_stored_twice(tmp_path: Path,
                                                           batching: bool) -> None:
    """The kit repeats its offline path as OwnTracks locations (conn "o") after /track; the
    office keeps each point once, from /track, and the kit's location stays its live one."""
    office = Office(tmp_path)
    office.receiver.batching = batching  # as serve() runs it; the batch written below
    live = p.Position(lat=-8.0954, lon=112.1609, tst=int(time.time()))
    office.send(TOPICS.location, p.encode_location(live, kit_id=KIT))
    old = p.Position(lat=-8.1210, lon=112.2030, tst=live.tst - 3600)
    office.send(TOPICS.track, p.encode_track([old]))
    office.send(TOPICS.location, p.encode_location(old, kit_id=KIT, conn="o"))
    assert len(office.receiver._telemetry) == (2 if batching else 0)  # conn "o": not held
    office.receiver.flush_telemetry()
    sources = [(r["tst"], r["source"]) for r in office.db.positions(KIT)]
    assert sources == [(old.tst, "track"), (live.tst, "location")]
    assert json.loads(office.db.kit(KIT)["location"])["lat"] == live.lat


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batched"])
def test_a_retained_location_is_where_the_kit_was_not_that_it_is_online(tmp_path: Path,
                                                                         batching: bool) -> None:
    office = Office(tmp_path)
    office.receiver.batching = batching
    then = p.Position(lat=-8.0954, lon=112.1609, tst=int(time.time()) - 7200)
    office.send(TOPICS.location, p.encode_location(then, kit_id=KIT), retain=True)
    office.receiver.flush_telemetry()
    kit = office.db.kit(KIT)
    assert kit is not None and kit["location"]
    assert kit["location_at"] == pytest.approx(then.tst)
    assert not kit.get("last_seen")
