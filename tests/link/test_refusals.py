"""Refused records against a real Mosquitto: a final refusal is final, a long wait is waited.

Issue 10, finding 8: the office's ``conflict`` refusal asks for a day's wait, longer than
the agent's ``retry_max_s``, and the agent took that for a clock jump and sent the record
again about once a second, for ever.
"""

from __future__ import annotations

import hashlib
import signal
import time

from office.db import OfficeDb
from office.outbound import make_command
from sync import protocol as p
from tests.link.harness import KIT_A, LinkWorld, agent_log, office_count, queue_records
from tests.waiting import wait_until

QUIET_S = 8.0  # with AGENT_FAST (retry_max_s 2 s) the old agent resent ~8 times in this


def refused(db: OfficeDb, reason: str) -> int:
    """How many chunks the office refused for ``reason`` (every one counted)."""
    return sum(r["n"] for r in db.refusal_counts(KIT_A) if r["reason"] == reason)


def test_a_record_refused_as_conflict_is_sent_once_and_kept_refused(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    records = queue_records(kit, world, 3)  # 2-20 kB each: one chunk per record
    rid = sorted(records)[0]
    # The office already holds other bytes under that id (e.g. a forgery uploaded first).
    other = b"other sealed bytes"
    db = world.office.db()
    db.finish_record(KIT_A, rid, hashlib.sha256(other).hexdigest(), other,
                     "2026-11-23T09:00:00+00:00", False)
    world.office.start(world.broker)
    agent = world.start_agent(kit)
    wait_until(lambda: office_count(db) == 3, 20,
               lambda: f"the two other records stored\n{agent_log(kit)}")
    wait_until(lambda: refused(db, "conflict") >= 1, 10, "the office refusing the conflict")
    time.sleep(QUIET_S)
    assert refused(db, "conflict") == 1, f"the refused record was sent again\n{agent_log(kit)}"
    assert db.record_blob(KIT_A, rid) == other
    with kit.store() as store:
        (entry,) = store.outbox()
        assert entry["record_id"] == rid
        assert entry["state"] == "refused" and entry["last_error"] == "conflict"
        assert store.record_blob(rid) is not None, "the kit dropped a record nobody holds"

    # A restart does not release it either: the state is in the store.
    session = (db.kit(KIT_A) or {})["session"]
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0
    agent = world.start_agent(kit, log_name="agent2.log")
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1 and
               db.kit(KIT_A)["session"] > session, 15, "the agent back online")
    time.sleep(QUIET_S / 2)
    assert refused(db, "conflict") == 1, agent_log(kit, "agent2.log")
    with kit.store() as store:
        assert [(e["record_id"], e["state"]) for e in store.outbox()] == [(rid, "refused")]
        genuine = store.record_blob(rid)
    assert genuine is not None

    # Review: the office takes the quarantined (genuine) bytes, then asks the kit again.
    (kept,) = db.quarantined(KIT_A)
    assert kept["sha256"] == hashlib.sha256(genuine).hexdigest()
    assert db.quarantine_take(KIT_A, rid, kept["sha256"])
    command, payload = make_command(KIT_A, "resend", {"record": rid}, world.office.keys.sign)
    db.queue_command(command, payload)
    wait_until(lambda: _outbox(kit) == [], 20,
               lambda: f"the released record acknowledged\n{agent_log(kit, 'agent2.log')}")
    assert db.record_blob(KIT_A, rid) == genuine
    wait_until(lambda: (db.command(command.command_id) or {}).get("result_ok") == 1, 10,
               "the kit's answer to resend")
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0


def _outbox(kit: object) -> list[dict[str, object]]:
    with kit.store() as store:  # type: ignore[attr-defined]
        return store.outbox()


def test_a_long_wait_asked_by_the_office_is_honoured(world: LinkWorld) -> None:
    """A wait beyond the agent's retry_max_s is the office's wish, not a clock jump."""
    kit = world.provision(KIT_A, register=False)
    queue_records(kit, world, 1)
    world.office.start(world.broker, retry_s={"kit_unknown": 3600})
    db = world.office.db()
    world.start_agent(kit)
    wait_until(lambda: refused(db, "kit_unknown") >= 1, 15, "the office refusing an unknown kit")
    time.sleep(QUIET_S)
    assert refused(db, "kit_unknown") == 1, f"sent again before the wait\n{agent_log(kit)}"
    with kit.store() as store:
        (entry,) = store.outbox()
        assert entry["state"] == "queued" and entry["last_error"] == "kit_unknown"
        assert entry["next_attempt_at"] > time.time() + 3000


def test_a_kit_over_its_upload_quota_backs_off_and_gets_everything_through(
        world: LinkWorld) -> None:
    """``busy`` (finding 9's quota) is a wait, not a loop, and never loses a record."""
    kit = world.provision(KIT_A, agent={"chunk_bytes": 1024})  # many chunks per record
    records = queue_records(kit, world, 4)
    db = world.office.db()
    # Another upload of this kit, abandoned, fills its quota until it expires in 3 s.
    db.append_chunk(KIT_A, p.Chunk("0193a2c4-0000-7000-8000-abandoned000", b"\1" * 32, 10_000,
                                   0, b"x" * 1024), 0, b"x" * 1024)
    world.office.start(world.broker, max_open_uploads=1, stale_upload_s=3.0,
                       expire_every_s=0.5)
    started = time.monotonic()
    world.start_agent(kit)
    with kit.store() as store:
        wait_until(lambda: office_count(db) == 4 and not store.outbox(), 60,
                   lambda: f"every record stored despite the quota\n{agent_log(kit)}")
    elapsed = time.monotonic() - started
    busy = refused(db, "busy")
    assert busy >= 1, "the quota was never reached: the test shows nothing"
    # Each refused record waits at least the office's 1 s (AGENT_FAST backoff 0.5-2 s): at
    # most a window's worth of chunks refused per record and second, not one per turn.
    assert busy <= 4 * 4 * (elapsed + 1), (busy, elapsed)
    assert {r["record_id"] for r in db.records(KIT_A)} == set(records)
    assert db.open_uploads(KIT_A) == (0, 0)
