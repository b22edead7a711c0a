"""The office sees an assignment queued, delivered, and opened on the kit's kiosk.

The kiosk opens it in its own process and writes only the store; the agent tells the
office, once per version, on the ``ack`` topic with ``"op": true``. A real Mosquitto, the
office receiver and the agent in its own process, as in production.
"""

from __future__ import annotations

import dataclasses

from kit.records import load_assignment, open_inbox
from kit.vault import PinVault
from office.outbound import seal_assignment
from sync import protocol as p
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment
from tests.link.harness import CHEAP, INJECTOR, KIT_A, Kit, LinkWorld, agent_log
from tests.waiting import wait_until


def queue(world: LinkWorld, kit: Kit, assignment: Assignment) -> str:
    """What ``office assign`` does: seal to the kit's box key, sign, queue; its sealed_at."""
    envelope, sealed_at = seal_assignment(assignment.to_canonical(), assignment.id, KIT_A,
                                          kit.keys.public, world.office.keys.sign)
    db = world.office.db()
    try:
        db.queue_assignment(KIT_A, assignment.id, sealed_at, envelope)
    finally:
        db.close()
    return sealed_at


def test_each_version_opened_on_the_kiosk_is_reported_once(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    v1 = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    sealed_v1 = queue(world, kit, v1)
    monitor = world.broker.client(INJECTOR)
    monitor.subscribe(p.KitTopics(KIT_A).ack)
    world.office.start(world.broker)
    world.start_agent(kit)
    db = world.office.db()

    def row() -> dict[str, object]:
        (only,) = db.assignments(KIT_A)
        return only

    def opened_acks() -> list[tuple[str, str, bool]]:
        acks = [p.decode_assignment_ack(m) for m in monitor.on(p.KitTopics(KIT_A).ack)]
        return [(a.assignment_id, a.sealed_at, a.ok) for a in acks if a.opened]

    try:
        wait_until(lambda: row()["delivered_at"], 15,
                   lambda: f"the kit confirming the assignment\n{agent_log(kit)}")
        assert row()["opened_at"] is None  # delivered: held sealed, no officer opened it yet

        with kit.store() as store:
            key = kit.unlock(store)
            vault = PinVault(store, CHEAP)
            assert open_inbox(store, key, vault, world.office.keys.public) == [v1.id]
            wait_until(lambda: row()["opened_at"], 15,
                       lambda: f"the office hearing it was opened\n{agent_log(kit)}")
            assert row()["sealed_at"] == sealed_v1
            # The agent noted it told the office once the broker took the report.
            wait_until(lambda: not store.inbox_reports_due(), 10, "the agent noting its report")

            # The office changes the visit: one target fewer, sealed again, newer.
            v2 = dataclasses.replace(v1, targets=v1.targets[1:])
            sealed_v2 = queue(world, kit, v2)
            assert sealed_v2 > sealed_v1 and row()["opened_at"] is None
            wait_until(lambda: row()["delivered_at"], 15,
                       lambda: f"the kit confirming version 2\n{agent_log(kit)}")
            assert row()["opened_at"] is None
            assert open_inbox(store, key, vault, world.office.keys.public) == [v2.id]
            wait_until(lambda: row()["opened_at"], 15,
                       lambda: f"the office hearing version 2 opened\n{agent_log(kit)}")
            assert load_assignment(store, key, v1.id) == v2  # nobody had touched that target

        # Version 1 was marked told before version 2 arrived, so the agent never sent it
        # again; each version's opening went out exactly once.
        wait_until(lambda: len(opened_acks()) >= 2, 10, "the monitor seeing both reports")
        assert opened_acks() == [(v1.id, sealed_v1, True), (v1.id, sealed_v2, True)]
        assert row()["sealed_at"] == sealed_v2 and row()["error"] == ""
    finally:
        db.close()
        monitor.close()


def test_an_opening_while_the_broker_is_down_is_reported_when_it_is_back(
        world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    queue(world, kit, assignment)
    world.office.start(world.broker)
    world.start_agent(kit)
    db = world.office.db()
    try:
        wait_until(lambda: db.assignments(KIT_A)[0]["delivered_at"], 15,
                   lambda: f"the kit confirming the assignment\n{agent_log(kit)}")
        world.broker.stop()
        with kit.store() as store:
            assert open_inbox(store, kit.unlock(store), PinVault(store, CHEAP),
                              world.office.keys.public) == [assignment.id]
            assert store.inbox_reports_due()  # nobody could be told yet
        world.broker.start()
        wait_until(lambda: db.assignments(KIT_A)[0]["opened_at"], 30,
                   lambda: f"the office hearing it was opened\n{agent_log(kit)}")
        with kit.store() as store:
            wait_until(lambda: not store.inbox_reports_due(), 10, "the agent noting its report")
    finally:
        db.close()
