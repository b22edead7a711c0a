"""Office commands through the real broker: run once when signed and fresh, refused otherwise.

Commands go out the way the office sends them (queued in the office
database, published by the receiver); what the office would never send --
forgeries, replays, expired or oversized payloads, garbage -- comes from a
second office user straight onto the kit's command topic.
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import cbor2
import pytest
from nacl.signing import SigningKey

from office.outbound import make_command
from sync import protocol as p
from sync.envelope import canonical
from sync.errors import ValidationError, VaultError
from tests.link.harness import INJECTOR, KIT_A, KIT_B, LinkWorld, agent_log
from tests.waiting import wait_until


def result_of(world: LinkWorld, command_id: str, timeout: float = 10) -> dict[str, Any]:
    db = world.office.db()
    row = wait_until(lambda: (db.command(command_id) or {}).get("result_at") and
                     db.command(command_id), timeout, f"the kit's answer to {command_id}")
    return {"ok": bool(row["result_ok"]), **json.loads(row["result"])}


def refusals(kit_store: Any) -> list[str]:
    return [e["detail"] for e in reversed(kit_store.audit_log(500))
            if e["event"] == "command_refused"]


def test_signed_commands_run_once_and_everything_else_is_refused(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    world.office.start(world.broker)
    agent = world.start_agent(kit)
    db = world.office.db()
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1, 10, "kit online")
    office_sign = world.office.keys.sign

    def send(name: str, args: dict[str, Any] | None = None, **kw: Any) -> str:
        command, payload = make_command(KIT_A, name, args or {}, office_sign, **kw)
        db.queue_command(command, payload)
        return command.command_id

    # ping: answered with the kit's session and outbox.
    answer = result_of(world, send("ping"))
    assert answer["ok"] and answer["res"]["session"] >= 1 and answer["res"]["outbox"] == 0

    # What the office would never send, straight onto the kit's command topic.
    injector = world.broker.client(INJECTOR)
    topic = p.KitTopics(KIT_A).cmd
    forged_cmd, forged = make_command(KIT_A, "wipe", {}, SigningKey.generate())
    _, for_b = make_command(KIT_B, "ping", {}, office_sign)
    _, expired = make_command(KIT_A, "lock", {}, office_sign, lifetime_s=600,
                              now=time.time() - 3600)
    _, future = make_command(KIT_A, "lock", {}, office_sign, now=time.time() + 3600)
    unsigned = cbor2.dumps({"v": 1, "body": forged_cmd.body(), "sig": b"\0" * 64})
    body = {**forged_cmd.body(), "name": "shell"}
    unknown = cbor2.dumps({"v": 1, "body": body, "sig": office_sign.sign(
        canonical([p.COMMAND_DOMAIN, body])).signature})
    replay_cmd, replayed = make_command(KIT_A, "ping", {}, office_sign)
    _, valid = make_command(KIT_A, "lock", {}, office_sign)
    oversized = cbor2.dumps({**cbor2.loads(valid), "pad": b"\0" * p.LIMITS["cmd"]})
    cases = [(forged, "bad_signature"), (unsigned, "bad_signature"), (for_b, "wrong_kit"),
             (expired, "stale"), (future, "not_yet_valid"), (unknown, "unknown_command"),
             (oversized, "oversized"), (b"\xff\x00 not cbor", "malformed"),
             (cbor2.dumps({"v": 2, "body": {}}), "version"),
             (replayed, None), (replayed, "replayed")]
    with kit.store() as store:

        def accepted(command_id: str) -> int:
            return sum(e["event"] == "command_accepted" and e["subject"] == command_id
                       for e in store.audit_log(500))

        for payload, reason in cases:
            before = len(refusals(store))
            injector.publish(topic, payload)
            if reason is None:
                wait_until(lambda: accepted(replay_cmd.command_id), 10, "the first copy to run")
            else:
                wait_until(lambda n=before: len(refusals(store)) > n, 10,
                           f"the kit refusing: {reason}")
                assert refusals(store)[-1] == reason
        assert refusals(store) == [r for _, r in cases if r]
        assert store.key_slot_ids() == ["P-0001"], "the forged wipe ran"
        assert store.status("ui_lock") is None, "an expired or future lock ran"
        assert accepted(replay_cmd.command_id) == 1, "the replayed command ran twice"

    # The agent survived all of that and still obeys the office.
    assert agent.poll() is None, agent_log(kit)
    answer = result_of(world, send("config", {"interval_idle_s": 600, "chunk_bytes": 8192}))
    assert answer["ok"] and answer["res"] == {"interval_idle_s": 600.0, "chunk_bytes": 8192}
    answer = result_of(world, send("config", {"chunk_bytes": 10**9}))
    assert not answer["ok"] and answer["why"].startswith("bad_args")
    answer = result_of(world, send("config", {"will_delay_s": 1}))
    assert not answer["ok"], "the office may not change the will delay remotely"
    answer = result_of(world, send("selftest"))
    assert answer["ok"] and answer["res"]["store"] == "ok"
    assert answer["res"]["gnss"] == "absent" and answer["res"]["modem"] == "absent"
    answer = result_of(world, send("lock"))
    assert answer["ok"]
    with kit.store() as store:
        assert store.status("ui_lock")["locked"] is True
        assert store.status("agent_overrides") == {"interval_idle_s": 600, "chunk_bytes": 8192}

    # A restarted agent keeps the office's settings and still refuses the old id.
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0
    agent = world.start_agent(kit)
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1, 10, "kit back online")
    with kit.store() as store:
        before = len(refusals(store))
        injector.publish(topic, replayed)
        wait_until(lambda: len(refusals(store)) > before, 10, "the replay refused after restart")
        assert refusals(store)[-1] == "replayed"
    injector.close()


def test_wipe_crypto_erases_officer_keys_and_drafts(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    with kit.store() as store:
        key = kit.unlock(store)
        store.put_draft("0193a2c4-0000-7000-8000-00000000d001", "target-1", "photo",
                        key.encrypt(b"draft biometrics", "draft:x"), time.time() + 3600)
        store.put_inbox("0193a2c4-5e10-7c3a-9b41-2f6d8e0a1a00", "2026-11-23T10:00:00.000+00:00",
                        b"sealed assignment")
        assert store.drafts() and store.key_slot_ids()
    world.office.start(world.broker)
    world.start_agent(kit)
    # A command is sent once (QoS 1, not retained): queue it when the kit is subscribed,
    # which its birth message, published after the subscription, tells the office.
    db = world.office.db()
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1, 10, "kit online")
    command, payload = make_command(KIT_A, "wipe", {}, world.office.keys.sign)
    world.office.db().queue_command(command, payload)
    answer = result_of(world, command.command_id)
    assert answer["ok"] and answer["res"] == {"slots": 1, "drafts": 1, "inbox": 1}
    with kit.store() as store:
        assert store.key_slot_ids() == [] and store.drafts() == []
        assert store.inbox() == [] and store.status_keys("secret:") == []
        assert store.status("ui_lock")["wiped"] is True
        with pytest.raises(VaultError):
            kit.unlock(store)  # nobody can open the kit's personal data any more


def test_office_command_line_queues_signed_commands_and_lists_kits(
        world: LinkWorld, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.link.test_assignments import office_cli

    kit = world.provision(KIT_A)
    office = world.office
    office.start(world.broker)
    world.start_agent(kit)
    db = office.db()
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1, 10, "kit online")
    common = ("--kit", KIT_A, "--db", str(office.db_path), "--keys", str(office.keys_dir))
    assert office_cli("command", "config", "interval_idle_s=1200", *common) == 0
    assert office_cli("command", "ping", "--valid-for", "60", *common) == 0
    rows = db.conn.execute("SELECT command_id, name, args FROM commands ORDER BY queued_at")
    (config_id, _, args), (ping_id, _, _) = rows.fetchall()
    assert json.loads(args) == {"interval_idle_s": 1200}
    assert result_of(world, config_id)["ok"] and result_of(world, ping_id)["ok"]
    with pytest.raises(ValidationError):
        office_cli("command", "ping", "extra=1", *common)
    assert office_cli("kits", "--db", str(office.db_path)) == 0
    listing = capsys.readouterr().out
    assert KIT_A in listing and "online" in listing
