"""Assignments from the office: sealed to the kit, signed by the office, opened only by an
officer's session; forgeries, replays of older versions and garbage are refused."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.records import load_assignment, open_inbox
from kit.vault import PinVault
from office import cli
from office.outbound import seal_assignment
from sync import protocol as p
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment
from sync.envelope import KitKeys, OfficeKeys, seal
from tests.link.harness import CHEAP, INJECTOR, KIT_A, KIT_B, LinkWorld, agent_log
from tests.waiting import wait_until

SAMPLE = SAMPLE_ASSIGNMENT_PATH


def office_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["office", *argv])
    return int(args.func(args))


def test_assignment_travels_sealed_and_opens_only_in_an_officer_session(
        world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    assignment = Assignment.from_json(SAMPLE.read_text(encoding="utf-8"))
    assert assignment.kit_id == KIT_A
    office = world.office
    assert office_cli("assign", str(SAMPLE), "--kit", KIT_A, "--kits", str(office.kits_dir),
                      "--db", str(office.db_path), "--keys", str(office.keys_dir)) == 0
    office.start(world.broker)
    world.start_agent(kit)
    db = office.db()
    wait_until(lambda: db.assignments(KIT_A)[0]["delivered_at"], 15,
               lambda: f"the kit confirming the assignment\n{agent_log(kit)}")

    with kit.store() as store:
        (row,) = store.inbox()
        assert row["assignment_id"] == assignment.id and row["envelope"]
        assert store.assignments() == []  # the agent cannot open it: no officer, no box key
        raw = kit.store_path.read_bytes() + Path(f"{kit.store_path}-wal").read_bytes()
        for target in assignment.targets:
            assert target.name.encode() not in raw and target.nik.encode() not in raw

        key = kit.unlock(store)
        opened = open_inbox(store, key, PinVault(store, CHEAP), office.keys.public)
        assert opened == [assignment.id]
        assert load_assignment(store, key, assignment.id) == assignment
        assert store.inbox() == []  # envelope dropped; its date kept against replays
        assert store.inbox(pending_only=False)[0]["opened_at"]


def test_forged_replayed_foreign_and_broken_assignments_are_refused(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    other_kit = KitKeys.generate()
    world.office.start(world.broker)
    agent = world.start_agent(kit)
    db = world.office.db()
    wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1, 10, "kit online")
    content = Assignment.from_json(SAMPLE.read_text(encoding="utf-8")).to_canonical()
    aid = str(content["id"])
    office_sign = world.office.keys.sign

    def acks() -> list[p.AssignmentAck]:
        return [p.decode_assignment_ack(m) for m in monitor.on(p.KitTopics(KIT_A).ack)]

    monitor = world.broker.client(INJECTOR)
    monitor.subscribe(p.KitTopics(KIT_A).ack)

    def deliver(envelope: bytes, *, assignment_id: str = aid) -> p.AssignmentAck:
        before = len(acks())
        monitor.publish(p.KitTopics(KIT_A).assign,
                        p.encode_assignment(p.AssignmentMessage(assignment_id, envelope)))
        return wait_until(lambda: acks()[before:], 10,
                          lambda: f"the kit's answer\n{agent_log(kit)}")[0]

    # Version 1, then version 2 of the same assignment: both taken.
    v1, sealed_v1 = seal_assignment(content, aid, KIT_A, kit.keys.public, office_sign)
    assert deliver(v1).ok
    staff_v2 = ["Sri Wahyuni (kader posyandu lansia)"]
    assert content["village_staff"] != staff_v2
    v2, sealed_v2 = seal_assignment({**content, "village_staff": staff_v2}, aid, KIT_A,
                                    kit.keys.public, office_sign)
    assert sealed_v2 > sealed_v1 and deliver(v2).ok

    # An old version replayed is acknowledged (so the office stops resending) but not kept.
    replay = deliver(v1)
    assert replay.ok and replay.reason == "duplicate"
    forged = seal(content, kind="assignment", ids={"assignment_id": aid, "kit_id": KIT_A},
                  recipient=kit.keys.public.box, signer=OfficeKeys.generate().sign)
    for_b = seal(content, kind="assignment", ids={"assignment_id": aid, "kit_id": KIT_B},
                 recipient=other_kit.public.box, signer=office_sign)
    wrong_box = seal(content, kind="assignment", ids={"assignment_id": aid, "kit_id": KIT_A},
                     recipient=other_kit.public.box, signer=office_sign)
    a_record = seal(content, kind="recording", ids={"assignment_id": aid, "kit_id": KIT_A},
                    recipient=kit.keys.public.box, signer=office_sign)
    for envelope, reason in [(forged, "bad_signature"), (for_b, "wrong_kit"),
                             (wrong_box, "wrong_key"), (a_record, "wrong_kind"),
                             (b"\xa1not an envelope", "malformed")]:
        answer = deliver(envelope)
        assert (answer.ok, answer.reason) == (False, reason)
    answer = deliver(v2, assignment_id="0193a2c4-5e10-7c3a-9b41-000000000000")
    assert (answer.ok, answer.reason) == (False, "malformed")  # id differs from the envelope
    before = len(acks())
    monitor.publish(p.KitTopics(KIT_A).assign, b"\x00" * (p.LIMITS["assign"] + 1))
    answer = wait_until(lambda: acks()[before:], 10, "the kit refusing an oversized message")[0]
    assert (answer.ok, answer.reason) == (False, "oversized")

    with kit.store() as store:
        (row,) = store.inbox()
        assert row["sealed_at"] == sealed_v2 and bytes(row["envelope"]) == v2
        opened = open_inbox(store, kit.unlock(store), PinVault(store, CHEAP),
                            world.office.keys.public)
        assert opened == [aid]
        stored = load_assignment(store, kit.unlock(store), aid)
        assert stored.village_staff == staff_v2
        # Once opened, replaying version 2 itself stores nothing either.
        assert deliver(v2).reason == "duplicate"
        assert store.inbox() == []
    assert agent.poll() is None, "a refused assignment stopped the agent"
    monitor.close()
