"""What OwnTracks Recorder, reading the tree as a reader user, gets from a kit (finding 10)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sensors.emulated.rig import EmulatedRig
from sync import protocol as p
from tests.link.harness import INJECTOR, KIT_A, MONITOR, LinkWorld, agent_log
from tests.waiting import wait_until


@pytest.fixture
def rig(tmp_path: Path):
    with EmulatedRig(tmp_path / "rig", control_fifo=False) as running:
        yield running


def test_status_is_owntracks_lwt_when_the_kit_is_gone(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    watcher = world.broker.client(MONITOR)
    topic = p.KitTopics(KIT_A).status
    watcher.subscribe(topic)
    agent = world.start_agent(kit)
    wait_until(lambda: watcher.on(topic), 10, lambda: f"a birth\n{agent_log(kit)}")
    agent.terminate()
    agent.wait(10)
    last = json.loads(wait_until(lambda: [m for m in watcher.on(topic)
                                          if not json.loads(m)["online"]], 10, "goodbye")[-1])
    assert last["_type"] == "lwt" and last["why"] == "shutdown" and last["ses"] >= 1


def test_location_is_retained_for_a_late_subscriber(world: LinkWorld, rig: EmulatedRig) -> None:
    devices = {"gnss": {"port": str(rig.paths["gps"]), "baud": 9600},
               "modem": {"enabled": False}, "battery": {"kind": "none"}}
    kit = world.provision(KIT_A, devices=devices)
    topic = p.KitTopics(KIT_A).location
    early = world.broker.client(MONITOR, client_id="early")
    early.subscribe(topic)
    world.start_agent(kit)
    wait_until(lambda: early.on(topic), 30, lambda: f"a location\n{agent_log(kit)}")
    late = world.broker.client(MONITOR, client_id="late")
    late.subscribe(topic)
    raw = wait_until(lambda: late.on(topic), 3, "the retained location, at once")[0]
    assert p.decode_location(raw)[1]["_type"] == "location"
    assert any(m.retain for m in late.messages)


def test_offline_track_reaches_owntracks_as_locations(world: LinkWorld) -> None:
    kit = world.provision(KIT_A)
    start = 1_795_460_000
    points = [[start + 120 * i, -8.1 + 0.002 * i, 112.16 + 0.002 * i, 5.0] for i in range(20)]
    with kit.store() as store:
        store.set_status("agent_track", {"min_distance_m": 100.0, "points": points})
    topics = p.KitTopics(KIT_A)
    watcher = world.broker.client(MONITOR)  # a reader, as OwnTracks Recorder logs in
    watcher.subscribe(topics.location)
    office = world.broker.client(INJECTOR)  # the CBOR track is the office's alone
    office.subscribe(topics.track)
    world.start_agent(kit)
    wait_until(lambda: office.on(topics.track), 10, lambda: f"the track\n{agent_log(kit)}")
    got = wait_until(lambda: [d for d in (json.loads(m) for m in watcher.on(topics.location))
                              if d.get("conn") == "o"] if len(watcher.on(topics.location)) >= 20
                     else [], 10, "the track as OwnTracks locations")
    assert [d["tst"] for d in got] == [q[0] for q in points]
    assert all(d["_type"] == "location" and d["tid"] == "01" for d in got)
    assert len(p.decode_track(office.on(topics.track)[0])) == 20  # the office's copy too


def test_session_counts_connections_not_attempts(world: LinkWorld) -> None:
    kit = world.provision(KIT_A, agent={"reconnect_min_s": 0.1, "reconnect_max_s": 0.2})
    world.broker.stop()
    world.start_agent(kit)
    wait_until(lambda: len(re.findall("broker link down", agent_log(kit))) >= 5, 15,
               lambda: f"failed attempts\n{agent_log(kit)}")
    world.broker.start()
    watcher = world.broker.client(MONITOR)
    topic = p.KitTopics(KIT_A).status
    watcher.subscribe(topic)
    births = wait_until(lambda: [s for s in map(p.decode_status, watcher.on(topic)) if s.online],
                        15, lambda: f"a birth\n{agent_log(kit)}")
    assert births[0].session == 1, f"session {births[0].session} after one connection"
