"""The kit-office link against a real Mosquitto: isolation, presence, store-and-forward.

The agent runs as the service runs it (its own process, from the kit's
config file); the office receiver runs in a thread; the broker is a real
Mosquitto with the production ACL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from sync import protocol as p
from sync.envelope import RECORD_KIND, open_sealed, seal
from tests.link.harness import (
    KIT_A,
    KIT_B,
    MONITOR,
    LinkWorld,
    agent_log,
    office_count,
    queue_records,
)
from tests.waiting import wait_until

NOT_AUTHORIZED = 0x87


# ---------------------------------------------------------------------------------------------
# Broker ACL
# ---------------------------------------------------------------------------------------------


def test_a_kit_can_neither_publish_as_another_nor_read_its_inbox(world: LinkWorld) -> None:
    office = world.broker.client(p.OFFICE_USER)
    office.subscribe(f"{p.ROOT}/#")
    kit_a = world.broker.client(KIT_A)
    kit_b = world.broker.client(KIT_B)
    a, b = p.KitTopics(KIT_A), p.KitTopics(KIT_B)

    # Kit A writes under kit B's name: the broker refuses and the office never sees it.
    fake = p.encode_status(p.Status(online=False, session=99, tst=1, reason="forged"))
    assert kit_a.publish(b.status, fake).value == NOT_AUTHORIZED
    assert kit_a.publish(b.up, b"\xa0").value == NOT_AUTHORIZED
    assert kit_a.publish(a.cmd, b"self-made command").value == NOT_AUTHORIZED
    # Its own topics work (the control that shows the office would have seen it).
    own = p.encode_status(p.Status(online=True, session=1, tst=1))
    assert kit_a.publish(a.status, own).value == 0
    wait_until(lambda: office.on(a.status), 5, "kit A's own status at the office")

    # Kit A tries to read kit B's assignments and commands, directly and by wildcard.
    # (Mosquitto 2.0 grants such a subscription and checks read access per message.)
    for topic in (b.assign, b.cmd, b.rcpt, f"{p.ROOT}/#"):
        kit_a.subscribe(topic)
    kit_b.subscribe(b.assign)
    office.publish(b.assign, b"for kit B only")
    office.publish(b.cmd, b"for kit B only")
    office.publish(a.assign, b"for kit A")
    wait_until(lambda: kit_b.on(b.assign), 5, "kit B's assignment at kit B")
    wait_until(lambda: kit_a.on(a.assign), 5, "kit A's own assignment at kit A")
    time.sleep(0.3)  # a window for what must not come: kit B's messages, were they let through
    assert kit_a.on(b.assign) == [] and kit_a.on(b.cmd) == []
    assert {m.topic for m in kit_a.messages} == {a.assign}
    assert office.on(b.status) == [], "a forged status reached the office"

    # Kit A cannot take over kit B's session by choosing B's client id: the broker uses the
    # user name as client id, so kit B stays connected.
    intruder = world.broker.client(KIT_A, client_id=KIT_B)
    time.sleep(0.3)  # a window for what must not happen: kit B taken off the broker
    assert kit_b.client.is_connected()
    for c in (intruder, kit_a, kit_b, office):
        c.close()


# ---------------------------------------------------------------------------------------------
# Presence: birth, last will after the will delay, no flapping on a short drop
# ---------------------------------------------------------------------------------------------


def test_status_goes_offline_only_after_the_will_delay(world: LinkWorld) -> None:
    delay = 4
    kit = world.provision(KIT_A, agent={"will_delay_s": delay})
    world.office.start(world.broker)
    db = world.office.db()
    watcher = world.broker.client(MONITOR)
    watcher.subscribe(p.KitTopics(KIT_A).status)

    def statuses() -> list[p.Status]:
        return [p.decode_status(m) for m in watcher.on(p.KitTopics(KIT_A).status)]

    agent = world.start_agent(kit)
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1, 10, "kit online at the office")
    first = statuses()[-1]
    assert first.online and first.session >= 1 and first.software

    # A short drop: killed and back within the will delay -> never shown offline.
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    dropped = time.monotonic()
    agent = world.start_agent(kit)
    wait_until(lambda: any(s.online and s.session > first.session for s in statuses()), delay,
               "the restarted agent's birth message, within the will delay")
    time.sleep(max(0.0, dropped + delay + 1.0 - time.monotonic()))  # past the first will delay
    assert not any(not s.online for s in statuses()), "a short drop flapped the kit offline"

    # Killed for good: offline, but only after the will delay.
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    killed = time.monotonic()
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 0, 10, "kit offline at the office")
    elapsed = time.monotonic() - killed
    assert elapsed >= delay - 0.3, f"offline after {elapsed:.1f} s, before the {delay} s delay"
    last = statuses()[-1]
    assert not last.online and last.reason == "lost"
    assert last.session == max(s.session for s in statuses())


def test_clean_stop_says_shutdown_at_once(world: LinkWorld) -> None:
    kit = world.provision(KIT_A, agent={"will_delay_s": 30})
    world.office.start(world.broker)
    db = world.office.db()
    agent = world.start_agent(kit)
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1, 10, "kit online")
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0, agent_log(kit)
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 0, 5,
               "offline without waiting for the 30 s will delay")
    assert json.loads(db.kit(KIT_A)["status"])["reason"] == "shutdown"  # type: ignore[index]


# ---------------------------------------------------------------------------------------------
# Records: store and forward through broker outages and agent kills
# ---------------------------------------------------------------------------------------------


def test_200_records_arrive_once_through_outages_and_kills(world: LinkWorld) -> None:
    kit = world.provision(KIT_A, agent={"chunk_bytes": 4096, "upload_window": 4})
    world.broker.stop()
    expected = queue_records(kit, world, 200)
    agent = world.start_agent(kit)
    office_thread_started = world.office.start  # the office comes up with the broker
    world.broker.start()
    office_thread_started(world.broker)
    db = world.office.db()

    events = []
    started = time.monotonic()

    def half_way() -> int:
        """Records at the office, once past the threshold while one is half received."""
        partial = db.conn.execute("SELECT COUNT(*) FROM uploads WHERE have > 0").fetchone()[0]
        return office_count(db) if partial else 0

    def at(threshold: int, action: str) -> None:
        nonlocal agent
        count = wait_until(lambda: half_way() >= threshold and half_way(), 60,
                           lambda: f"{threshold} records at the office\n{agent_log(kit)}",
                           interval=0.01)
        assert count < 200, "the upload finished before the fault could be injected"
        events.append((action, count, round(time.monotonic() - started, 2)))
        if action == "broker":
            world.broker.stop()
            time.sleep(0.5)  # the outage itself: the broker stays down this long
            world.broker.start()
        else:
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            agent = world.start_agent(kit)

    at(15, "broker")
    at(45, "kill")
    at(80, "broker")
    at(115, "kill")
    at(150, "broker")
    with kit.store() as store:
        wait_until(lambda: office_count(db) == 200 and not store.outbox(), 90,
                   lambda: f"all 200 records stored and acknowledged\n{agent_log(kit)}")
        assert store.outbox_summary() == (0, None, 0)
        assert all(store.record_blob(rid) is None for rid in expected)  # payloads dropped

    print("events (action, records at the office, seconds):", events,
          round(time.monotonic() - started, 2))
    assert [e[0] for e in events] == ["broker", "kill", "broker", "kill", "broker"]
    rows = db.conn.execute("SELECT record_id, COUNT(*) FROM records GROUP BY record_id").fetchall()
    assert len(rows) == 200 and all(n == 1 for _, n in rows)
    assert {r[0] for r in rows} == set(expected)
    assert db.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM uploads").fetchone()[0] == 0
    for rid, content in expected.items():
        stored = db.record(KIT_A, rid)
        blob = db.record_blob(KIT_A, rid)
        assert stored is not None and blob is not None
        assert hashlib.sha256(blob).hexdigest() == stored["sha256"]
        opened = open_sealed(blob, recipient=world.office.keys.seal, sender=kit.keys.sign_public)
        assert opened.header["record_id"] == rid and opened.content["bytes"] == content
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0


def test_records_queued_before_the_kit_is_registered_wait_then_go(world: LinkWorld) -> None:
    """The office refuses records of a kit whose keys it lacks; the kit retries until it has."""
    kit = world.provision(KIT_A, register=False)
    expected = queue_records(kit, world, 3)
    world.office.start(world.broker)
    db = world.office.db()
    world.start_agent(kit)
    wait_until(lambda: any(r["reason"] == "kit_unknown" for r in db.refusals()), 15,
               "the office refusing an unknown kit")
    assert office_count(db) == 0
    with kit.store() as store:
        assert {r["record_id"] for r in store.outbox()} == set(expected)
        assert all(r["attempts"] >= 1 and "kit_unknown" in r["last_error"]
                   for r in store.outbox() if r["attempts"])
    kit.keys.public.save(world.office.kits_dir / KIT_A)  # the technician registers the kit
    with kit.store() as store:
        wait_until(lambda: office_count(db) == 3 and not store.outbox(), 20,
                   lambda: f"records stored once the kit is known\n{agent_log(kit)}")


@pytest.mark.parametrize("flaw", ["foreign_signer", "other_office"])
def test_office_never_acknowledges_a_record_it_cannot_trust(world: LinkWorld, flaw: str) -> None:
    kit = world.provision(KIT_A)
    good = queue_records(kit, world, 1, seed=1)
    rid = "0193a2c4-0000-7000-8000-bad000000001"
    with kit.store() as store:
        from sync.envelope import KitKeys, OfficeKeys

        signer = KitKeys.generate().sign if flaw == "foreign_signer" else kit.keys.sign
        recipient = OfficeKeys.generate().seal_public if flaw == "other_office" else \
            world.office.keys.seal_public
        blob = seal({"x": os.urandom(3000)}, kind=RECORD_KIND,
                    ids={"record_id": rid, "kit_id": KIT_A}, recipient=recipient, signer=signer)
        store.save_sealed(rid, RECORD_KIND, "2026-11-23T10:00:00+00:00", blob)
    world.office.start(world.broker)
    db = world.office.db()
    world.start_agent(kit)
    reason = {"foreign_signer": "bad_signature", "other_office": "wrong_office_key"}[flaw]
    wait_until(lambda: sum(r["n"] for r in db.refusal_counts() if r["reason"] == reason) >= 2,
               20,
               lambda: f"the office refusing the record twice ({reason})\n{agent_log(kit)}")
    wait_until(lambda: office_count(db) == 1, 10, "the good record")
    assert db.record(KIT_A, rid) is None
    assert db.record(KIT_A, next(iter(good))) is not None
    with kit.store() as store:
        wait_until(lambda: (store.outbox_entry(rid) or {}).get("attempts", 0) >= 2, 10,
                   "the kit counting both refusals")
        (entry,) = store.outbox()
        assert entry["record_id"] == rid
        assert reason in entry["last_error"]
        assert store.record_blob(rid) is not None, "the kit dropped a record nobody holds"


def test_office_refuses_oversized_malformed_and_corrupt_payloads(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    (rid, _), = queue_records(kit, world, 1).items()
    with kit.store() as store:
        blob = store.record_blob(rid)
    assert blob is not None
    sha = hashlib.sha256(blob).digest()
    world.office.start(world.broker)
    db = world.office.db()
    rogue = world.broker.client(KIT_A)  # the kit's own credentials, misused
    t = p.KitTopics(KIT_A)
    half = len(blob) // 2
    corrupt = bytes([blob[half] ^ 1]) + blob[half + 1:]
    huge = p.encode_chunk(p.Chunk(rid, sha, 10**6, 0, b"\0" * (200 * 1024)))
    cases = [
        (t.up, huge, "oversized"),
        (t.up, b"\x00garbage", "malformed"),
        (t.up, p.encode_chunk(p.Chunk(rid, sha, len(blob), 0, blob[:half])), None),
        (t.up, p.encode_chunk(p.Chunk(rid, sha, len(blob), half, corrupt)), "hash"),
        (t.health, b"\xff\xff", "malformed"),
        (t.health, b"\x00" * 2000, "oversized"),
        (t.location, b'{"_type":"location","lat":91,"lon":0,"tst":1}', "malformed"),
        (t.status, b'{"v":2,"online":true}', "version"),
        (t.track, p.encode_track([]).replace(b"\x00", b"\x05"), "malformed"),
        (t.result, b"[]", "malformed"),
    ]
    for topic, payload, reason in cases:
        before = len(db.refusals())
        rogue.publish(topic, payload)
        if reason is None:
            wait_until(lambda: db.upload(KIT_A, rid), 5, "half the record held")
            continue
        wait_until(lambda n=before: len(db.refusals()) > n, 5, f"the office refusing: {reason}")
        assert db.refusals()[-1]["reason"] == reason
    assert db.upload(KIT_A, rid) is None, "the corrupt upload was not dropped"
    assert office_count(db) == 0
    rogue.close()

    # The office is still serving: the real agent uploads the same record intact.
    world.start_agent(kit)
    with kit.store() as store:
        wait_until(lambda: office_count(db) == 1 and not store.outbox(), 15,
                   lambda: f"the record stored intact\n{agent_log(kit)}")
    assert db.record_blob(KIT_A, rid) == blob


def test_systemd_hears_ready_watchdog_and_stopping(world: LinkWorld, tmp_path: Path) -> None:
    """The agent speaks sd_notify to $NOTIFY_SOCKET as systemd's Type=notify expects."""
    kit = world.provision(KIT_A)
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"] = str(path), "900000"
    try:
        agent = world.start_agent(kit)
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    heard: list[str] = []

    def until(state: str, times: int = 1) -> None:
        def enough() -> bool:
            with contextlib.suppress(TimeoutError):
                heard.extend(sock.recv(4096).decode().splitlines())
            return heard.count(state) >= times
        wait_until(enough, 10, lambda: f"{state} x{times} on $NOTIFY_SOCKET (heard {heard})")

    until("READY=1")
    started = time.monotonic()
    until("WATCHDOG=1", times=4)  # keeps coming, every WatchdogSec/3 = 0.3 s
    assert time.monotonic() - started < 3
    agent.send_signal(signal.SIGTERM)
    until("STOPPING=1")
    assert agent.wait(timeout=10) == 0
    assert any(line.startswith("STATUS=online") for line in heard)
    sock.close()
