"""Several ingest workers in one MQTT 5 share group, one PostgreSQL database.

A real Mosquitto (TLS, the generated ACL) and a real PostgreSQL 15: ``office serve
--share-group`` runs as separate processes with their own broker users, the kits' real
agents upload; one worker is killed (SIGKILL) in the middle of the uploads and started
again. Every record must arrive exactly once, intact, and every outbox empty. Also: the
ACL lets office users (only) take ``$share/...`` subscriptions, a queued command goes out
from one worker only, and two receivers fed one record's chunks at once store it once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

from office.db import OfficeDb
from office.ingest import BrokerSettings, KitDirectory, OfficeKeysForLink, OfficeReceiver
from sync import protocol as p
from sync.envelope import RECORD_KIND, KitKeys, OfficeKeys, open_sealed, seal
from tests.link.harness import (
    INJECTOR,
    KIT_A,
    KIT_B,
    MONITOR,
    REPO,
    LinkWorld,
    agent_log,
    queue_records,
)
from tests.postgres import PostgresServer
from tests.waiting import wait_until

GROUP = "ingest"
WORKERS = (p.OFFICE_USER, INJECTOR)  # two office users of the test broker
STORED = re.compile(r"record (\S+) from kit (\S+) stored")


def new_database(server: PostgresServer) -> str:
    """A database of this test's own on the session's server, as a postgresql:// URL."""
    name = f"shared_{secrets.token_hex(6)}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://{server.user}@{server.host}:{server.port}/{name}"


class Worker:
    """``office serve --share-group`` as its own process, logging to a file."""

    def __init__(self, world: LinkWorld, user: str, db_url: str) -> None:
        self.world = world
        self.user = user
        self.db_url = db_url
        self.directory = world.root / f"worker-{user}"
        self.directory.mkdir(exist_ok=True)
        self.log_path = self.directory / "serve.log"
        self.password_file = self.directory / "mqtt-password"
        self.password_file.write_text(world.passwords[user] + "\n")
        os.chmod(self.password_file, 0o600)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        broker = self.world.broker
        log_file = open(self.log_path, "ab")  # noqa: SIM115 -- closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "office", "serve", "--db", self.db_url,
             "--keys", str(self.world.office.keys_dir), "--kits", str(self.world.office.kits_dir),
             "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port),
             "--mqtt-user", self.user, "--mqtt-password-file", str(self.password_file),
             "--ca-file", str(broker.ca_file), "--share-group", GROUP],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log_file.close()
        wait_until(lambda: self.log().count("office receiver connected") > self.connects, 30,
                   lambda: f"worker {self.user} to connect\n{self.log()[-3000:]}")
        self.connects = self.log().count("office receiver connected")

    connects = 0

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stored(self) -> list[tuple[str, str]]:
        """``(kit, record)`` of every record this worker's log says it stored."""
        return [(m[2], m[1]) for m in STORED.finditer(self.log())]


def count(db: OfficeDb) -> int:
    return int(db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])


# ---------------------------------------------------------------------------------------------
# Two workers, two kits, one killed worker
# ---------------------------------------------------------------------------------------------


def test_two_workers_split_the_kits_and_survive_a_kill(world: LinkWorld,
                                                       postgres: PostgresServer) -> None:
    url = new_database(postgres)
    db = OfficeDb.open(url)  # migrated here once, before the workers open it
    per_kit = 80
    kits = [world.provision(kit_id, agent={"chunk_bytes": 4096, "upload_window": 4})
            for kit_id in (KIT_A, KIT_B)]
    expected = {kit.kit_id: queue_records(kit, world, per_kit, seed=i)
                for i, kit in enumerate(kits)}
    workers = [Worker(world, user, url) for user in WORKERS]
    try:
        for worker in workers:
            worker.start()
        agents = [world.start_agent(kit) for kit in kits]
        started = time.monotonic()

        def both_busy() -> bool:
            """Both workers stored some records, and an upload is half received."""
            partial = db.conn.execute("SELECT COUNT(*) FROM uploads WHERE have > 0").fetchone()[0]
            return bool(partial) and all(len(w.stored()) >= 3 for w in workers)

        wait_until(both_busy, 40, lambda: "both workers to store records\n" + "\n".join(
            w.log()[-2000:] for w in workers), interval=0.01)
        at_kill = count(db)
        assert at_kill < 2 * per_kit, "the uploads finished before the kill"
        before = {w.user: len(w.stored()) for w in workers}
        workers[0].kill()
        killed_at = time.monotonic() - started
        # The other worker carries on alone (its share of the traffic still reaches it).
        wait_until(lambda: len(workers[1].stored()) >= before[WORKERS[1]] + 5, 30,
                   lambda: f"the surviving worker to go on\n{workers[1].log()[-3000:]}")
        time.sleep(1.0)
        workers[0].start()  # same user: its session at the broker, with what was queued for it

        stores = [kit.store() for kit in kits]
        try:
            wait_until(lambda: count(db) == 2 * per_kit and not any(s.outbox() for s in stores),
                       60, lambda: f"all {2 * per_kit} records stored and acknowledged "
                                   f"({count(db)})\n" + "\n".join(agent_log(k) for k in kits))
            for store in stores:
                assert store.outbox_summary() == (0, None, 0)
        finally:
            for store in stores:
                store.close()
        elapsed = time.monotonic() - started
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=10) == 0
    finally:
        for worker in workers:
            worker.stop()

    shares = {w.user: len(w.stored()) for w in workers}
    print(f"records at the kill {at_kill}, killed at {killed_at:.1f} s, all stored at "
          f"{elapsed:.1f} s; stored per worker before the kill {before}, in all {shares}")
    assert all(n > 0 for n in before.values()), "one worker had no traffic: nothing shared"
    # Exactly once: one row per record, all of them, the bytes the kit sealed.
    rows = db.conn.execute("SELECT kit_id, record_id, COUNT(*) AS n FROM records "
                           "GROUP BY kit_id, record_id").fetchall()
    assert len(rows) == 2 * per_kit and all(r["n"] == 1 for r in rows)
    assert {(r["kit_id"], r["record_id"]) for r in rows} == {
        (kit_id, rid) for kit_id, records in expected.items() for rid in records}
    assert db.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM uploads").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 0
    # No worker stored a record twice, nor both the same one (the logs say each once).
    logged = [entry for w in workers for entry in w.stored()]
    assert len(logged) == len(set(logged)) == 2 * per_kit
    for kit in kits:
        for rid, content in expected[kit.kit_id].items():
            stored = db.record(kit.kit_id, rid)
            blob = db.record_blob(kit.kit_id, rid)
            assert stored is not None and blob is not None
            assert hashlib.sha256(blob).hexdigest() == stored["sha256"]
            opened = open_sealed(blob, recipient=world.office.keys.seal,
                                 sender=kit.keys.sign_public)
            assert opened.content["bytes"] == content
    db.close()


# ---------------------------------------------------------------------------------------------
# The ACL and $share
# ---------------------------------------------------------------------------------------------


def test_acl_lets_office_users_share_and_kits_not(world: LinkWorld) -> None:
    """Mosquitto 2 checks a ``$share/g/...`` subscription against the filter without the
    prefix: the office users' ``jaranijo/#`` covers it, a kit's pattern does not."""
    world.provision(KIT_A)
    health = p.KitTopics(KIT_A).health
    office = [world.broker.client(user) for user in WORKERS]
    snoop = world.broker.client(KIT_B)
    kit = world.broker.client(KIT_A)
    try:
        for client in office:
            client.subscribe(f"$share/{GROUP}/{p.ROOT}/kits/+/health")
        # Granted (Mosquitto 2.0 grants what the ACL forbids) but delivers nothing. In the
        # office's own group it would take turns and Mosquitto 2.0.11 drops each message
        # whose turn falls to it: hence a group name kits cannot guess (see office serve).
        snoop.subscribe(f"$share/office/{p.ROOT}/kits/+/health")
        payload = p.encode_health(p.Health(tst=int(time.time()), battery_percent=80))
        for _ in range(10):
            kit.publish(health, payload)
        wait_until(lambda: sum(len(c.on(health)) for c in office) == 10, 10,
                   "the ten health reports at the office users")
        time.sleep(0.3)
        assert all(c.on(health) for c in office), "one group member got nothing"
        assert snoop.on(health) == []
    finally:
        for client in (*office, snoop, kit):
            client.close()


# ---------------------------------------------------------------------------------------------
# The database's part: claims and the kit lock, on PostgreSQL
# ---------------------------------------------------------------------------------------------


def test_a_queued_item_is_claimed_by_one_worker(postgres: PostgresServer) -> None:
    url = new_database(postgres)
    db = OfficeDb.open(url)
    command = p.Command("c-1", KIT_A, "ping", {}, int(time.time()), int(time.time()) + 600)
    db.queue_command(command, b"signed")
    db.queue_assignment(KIT_A, "a-1", "2026-11-23T10:00:00+00:00", b"sealed")
    results: list[object] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        worker_db = OfficeDb(url, db.alias)  # each thread its own connection
        barrier.wait()
        results.append(("cmd", worker_db.claim_command("c-1")))
        results.append(("asg", worker_db.claim_assignment(KIT_A, "a-1", sent_before=None)))
        worker_db.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for kind, r in results if kind == "cmd" and r is not None) == 1
    assert sum(1 for kind, r in results if kind == "asg" and r is not None) == 1
    # A resend claim only once the last send is older than the cutoff; a failed publish
    # gives the claim back.
    assert db.claim_assignment(KIT_A, "a-1", sent_before=time.time() - 60) is None
    claim_ = db.claim_assignment(KIT_A, "a-1", sent_before=time.time() + 1)
    assert claim_ is not None
    db.unclaim_assignment(KIT_A, "a-1", *claim_)
    assert db.assignments(KIT_A)[0]["sent_at"] == claim_[1]
    db.close()


class _Bench:
    """A receiver on a shared database with its replies caught (as tests/office/receiver.py)."""

    def __init__(self, url: str, keys_dir: Path, kits_dir: Path) -> None:
        self.db = OfficeDb.open(url)
        self.receiver = OfficeReceiver(self.db, OfficeKeysForLink.load(keys_dir),
                                       KitDirectory(kits_dir), BrokerSettings(share_group=GROUP))
        self.receiver.client = self.client = object()  # type: ignore[assignment]
        self.replies: list[p.Progress] = []
        self.receiver.publish = self._publish  # type: ignore[method-assign]

    def _publish(self, topic: str, payload: bytes) -> bool:
        self.replies.append(p.decode_progress(payload))
        return True

    def send(self, topic: str, payload: bytes) -> None:
        message = mqtt.MQTTMessage(topic=topic.encode())
        message.payload = payload
        self.receiver._on_message(self.client, None, message)  # type: ignore[arg-type]


def test_two_receivers_fed_one_records_chunks_at_once_store_it_once(
        postgres: PostgresServer, tmp_path: Path) -> None:
    url = new_database(postgres)
    office_keys, kit_keys = OfficeKeys.generate(), KitKeys.generate()
    office_keys.save(tmp_path / "keys")
    kit_keys.public.save(tmp_path / "kits" / KIT_A)
    OfficeDb.open(url)
    topic = p.KitTopics(KIT_A).up
    records = []
    for i in range(12):
        rid = f"0193a2c4-0000-7000-8000-{i:012d}"
        blob = seal({"n": i, "bytes": os.urandom(9000)}, kind=RECORD_KIND,
                    ids={"record_id": rid, "kit_id": KIT_A},
                    recipient=office_keys.seal_public, signer=kit_keys.sign)
        records.append((rid, blob))
    benches: list[_Bench] = []
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def feed(index: int) -> None:
        try:
            bench = _Bench(url, tmp_path / "keys", tmp_path / "kits")
            benches.append(bench)
            barrier.wait()
            for rid, blob in records:  # both receivers get every chunk: the worst case
                sha = hashlib.sha256(blob).digest()
                for off in range(0, len(blob), 2048):
                    bench.send(topic, p.encode_chunk(p.Chunk(rid, sha, len(blob), off,
                                                             blob[off:off + 2048])))
            bench.db.close()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    db = OfficeDb.open(url)
    rows = db.conn.execute("SELECT record_id, sha256 FROM records").fetchall()
    assert sorted(r["record_id"] for r in rows) == [rid for rid, _ in records]
    for rid, blob in records:
        assert db.record_blob(KIT_A, rid) == blob
    assert db.conn.execute("SELECT COUNT(*) FROM uploads").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 0
    # Every record got its receipt (from one receiver or both), no refusal of any kind.
    done = {r.record_id for b in benches for r in b.replies if r.kind == "done"}
    assert done == {rid for rid, _ in records}
    assert not [r for b in benches for r in b.replies if r.kind == "reject"]
    db.close()


def test_one_workers_offline_will_is_answered_by_the_others_online(world: LinkWorld) -> None:
    """A worker's clean stop or will says the office is offline while the group still
    serves: the workers left say "online" again (kits would otherwise think it down)."""
    world.office.start(world.broker, share_group=GROUP)
    other = world.broker.client(INJECTOR)  # the stopped worker, as far as the broker knows
    monitor = world.broker.client(MONITOR)
    try:
        monitor.subscribe(p.OFFICE_STATUS_TOPIC)
        other.publish(p.OFFICE_STATUS_TOPIC, p.encode_office_status(
            p.OfficeStatus(online=False, tst=int(time.time()))), retain=True)

        def last() -> p.OfficeStatus | None:
            seen = monitor.on(p.OFFICE_STATUS_TOPIC)
            return p.decode_office_status(seen[-1]) if seen else None

        wait_until(lambda: (s := last()) is not None and s.online and len(
            monitor.on(p.OFFICE_STATUS_TOPIC)) >= 3, 10,
            lambda: f"the office online again: {monitor.on(p.OFFICE_STATUS_TOPIC)}")
    finally:
        other.close()
        monitor.close()
