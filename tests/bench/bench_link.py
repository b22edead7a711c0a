"""Bytes on the wire and upload speed of the kit-office link, through a real Mosquitto.

``python -m tests.bench.bench_link``. A byte-counting TCP proxy sits
between the kit agent and the broker, so "bytes on the wire" are the MQTT
bytes of the TCP stream, both directions (the estimate with TCP/IP headers
adds 52 bytes for each packet and 52 for its ACK; TLS would add ~22-29
bytes per packet on top).

1. **Telemetry.** The real agent reads the emulated GNSS, modem and battery
   and reports every 2 s; the proxy counts what each location and health
   report costs. Baseline, measured the same way: the same information as
   one plain OwnTracks location JSON per report (health fields as extra
   keys, MQTT 3.1.1, QoS 1, full topic each time, as the OwnTracks apps
   publish). Per day: :class:`kit.agent.reporting.TelemetryPolicy` with the default
   settings drives a simulated field day (below) and the measured sizes
   price its reports; the baseline sends its JSON at the same instants.
2. **Records.** 200 sealed records (random content, ~120 kB each, like a
   photo plus ten fingerprints) queued while the broker is down; then the
   broker comes up. Measured: time from the kit's reconnect to an empty
   outbox, throughput of sealed bytes, and wire bytes against the raw
   sealed bytes, for three chunk sizes. Baseline: the same bytes published
   as 200 single QoS 1 messages by a plain client to a plain subscriber
   (no chunks, no durable store, no verification, no receipts).
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from kit.agent.reporting import TelemetryPolicy
from kit.agent.sampling import NetworkReading, PowerReading, Snapshot
from kit.agent.settings import AgentSettings
from sensors.emulated.rig import EmulatedRig
from sync import protocol as p
from sync.envelope import seal
from tests.link.harness import INJECTOR, KIT_A, LinkWorld
from tests.link.wiretap import WireTap
from tests.waiting import wait_until

TCPIP = 52  # IPv4 20 + TCP 20 + timestamp option 12, per segment
RECORDS = 200
RECORD_BYTES = 120_000


# ---------------------------------------------------------------------------------------------
# A byte-counting TCP proxy
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# 1. Telemetry
# ---------------------------------------------------------------------------------------------

VERBOSE_NAMES = {  # what a plain JSON report would call the health fields
    "session": "session", "battery_percent": "battery_percent", "battery_state": "bs",
    "voltage_mv": "battery_voltage_mv", "minutes_left": "battery_minutes_left",
    "registered": "network_registered", "access_tech": "access_technology",
    "operator": "operator", "rssi_dbm": "rssi_dbm", "rsrp_dbm": "rsrp_dbm",
    "rsrq_db": "rsrq_db", "sinr_db": "sinr_db", "fix_age_s": "gnss_fix_age_s",
    "disk_free_mib": "disk_free_mib", "uptime_s": "uptime_s",
    "outbox_count": "records_waiting", "outbox_oldest_s": "oldest_record_age_s",
    "software": "software_version", "ui_state": "ui_state",
}


def owntracks_equivalent(location: dict[str, Any], health: p.Health) -> bytes:
    import json

    data = dict(location)
    for name, key in VERBOSE_NAMES.items():
        value = getattr(health, name)
        if value is not None:
            data[key] = value
    return json.dumps(data, separators=(",", ":")).encode()


def measure_telemetry(world: LinkWorld, root: Path) -> dict[str, float]:
    rig = EmulatedRig(root / "rig", control_fifo=False).start()
    proxy = WireTap(world.broker.port)
    try:
        devices = {"gnss": {"port": str(rig.paths["gps"]), "baud": 9600},
                   "modem": {"port": str(rig.paths["modem"]), "baud": 115200},
                   "battery": {"kind": "sysfs", "sysfs_dir": str(rig.paths["power_supply"])}}
        kit = world.provision(KIT_A, devices=devices, agent={
            "poll_s": 0.5, "interval_moving_s": 2.0, "interval_idle_s": 2.0,
            "interval_low_battery_s": 2.0, "min_interval_s": 2.0, "keepalive_s": 120})
        config = kit.config_path.read_text().replace(f"port = {world.broker.port}",
                                                     f"port = {proxy.port}")
        kit.config_path.write_text(config)
        topics = p.KitTopics(KIT_A)
        monitor = world.broker.client(INJECTOR)  # readers may not read health
        monitor.subscribe(topics.location)
        monitor.subscribe(topics.health)
        agent = world.start_agent(kit)
        # Connection set-up: CONNECT .. SUBACK, birth status, first location and health.
        wait_until(lambda: monitor.on(topics.health) and monitor.on(topics.location), 20,
                   "first reports")
        time.sleep(0.3)
        setup_bytes = proxy.total()
        # Steady state: reports every 2 s for 12 s.
        wait_until(lambda: [p.decode_health(h) for h in monitor.on(topics.health)
                            if p.decode_health(h).fix_age_s is not None], 10, "a GNSS fix")
        time.sleep(1.0)
        proxy.reset()
        n_loc0, n_health0 = len(monitor.on(topics.location)), len(monitor.on(topics.health))
        time.sleep(12.0)
        up, down = proxy.up, proxy.down
        locs = monitor.on(topics.location)[n_loc0:]
        healths = monitor.on(topics.health)[n_health0:]
        n = len(locs) + len(healths)
        framing = (up + down - sum(map(len, locs)) - sum(map(len, healths))) / n
        loc_bytes = statistics.mean(map(len, locs)) + framing
        health_bytes = statistics.mean(map(len, healths)) + framing
        agent.terminate()
        agent.wait(timeout=10)

        # Baseline: the same information, one plain OwnTracks JSON per report.
        import json

        last_health = p.decode_health(healths[-1])
        full_health = p.Health(**{**asdict(last_health), "operator": "Telkomsel",
                                  "software": "0.1.0"})
        base_payload = owntracks_equivalent(json.loads(locs[-1]), full_health)
        # As an OwnTracks app would: MQTT 3.1.1, QoS 1, the full topic every time (the kit's
        # own base topic, as long as an owntracks/user/device one).
        base = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=KIT_A,
                           protocol=mqtt.MQTTv311)
        base.username_pw_set(KIT_A, world.passwords[KIT_A])
        base.tls_set(ca_certs=str(world.broker.ca_file))  # the link is TLS, as the kit's
        base.connect("127.0.0.1", proxy.port, keepalive=120)
        base.loop_start()
        wait_until(base.is_connected, 5, "baseline client")
        time.sleep(0.2)
        proxy.reset()
        topic = topics.location
        for _ in range(20):
            base.publish(topic, base_payload, qos=1).wait_for_publish(5)
        time.sleep(0.2)
        base_bytes = proxy.total() / 20
        base.disconnect()
        base.loop_stop()
        return {"location": loc_bytes, "health": health_bytes, "framing": framing,
                "location_payload": statistics.mean(map(len, locs)),
                "health_payload": statistics.mean(map(len, healths)),
                "baseline": base_bytes, "baseline_payload": len(base_payload),
                "setup": setup_bytes, "reports": n / 12.0}
    finally:
        proxy.close()
        rig.stop()


def simulate_day(settings: AgentSettings) -> dict[str, int]:
    """Run the reporting policy over a field day, a sample every poll_s seconds.

    07:00 at the office (charging), 08:00 ride 25 km to the village, eight
    40-minute visits with 10-minute walks between, 15:00 ride back, then on
    charge in the office store room until 07:00. Signal drifts; a record is
    sealed after each visit and uploaded a few minutes later.
    """
    rng = random.Random(5)
    policy = TelemetryPolicy(settings)
    lat, lon, heading = -8.0985, 112.1650, 0.6
    battery, rsrp, outbox, ui = 100.0, -92.0, 0, "idle"
    counts = {"location": 0, "health": 0, "instants": 0, "moving_s": 0}
    step = settings.poll_s
    upload_due: list[float] = []
    visits = [(9 * 3600 + i * 3000, 9 * 3600 + i * 3000 + 2400) for i in range(8)]
    for i in range(int(86400 / step)):
        now = 7 * 3600 + i * step  # seconds since midnight, from 07:00 to 07:00
        hour = (now / 3600) % 24
        visiting = any(a <= now < b for a, b in visits)
        riding = 8 <= hour < 9 or 15 <= hour < 16
        walking = 9 <= hour < 15.4 and not visiting
        speed = 8.3 if riding else 1.2 if walking else 0.0
        if speed:
            heading += rng.uniform(-0.05, 0.05)
            lat += speed * step * math.cos(heading) / 111_000
            lon += speed * step * math.sin(heading) / 110_000
            counts["moving_s"] += int(step)
        in_field = 8 <= hour < 16
        battery = max(0.0, battery - 8 * step / 3600) if in_field else \
            min(100.0, battery + 25 * step / 3600)
        rsrp = max(-125.0, min(-70.0, rsrp + rng.gauss(0, 0.3 if not speed else 1.5)))
        ui = "recording" if visiting else ("idle" if in_field else "locked")
        for _start, end in visits:
            if end <= now < end + step:
                outbox += 1
                upload_due.append(now + 300)
        if upload_due and now >= upload_due[0]:
            upload_due.pop(0)
            outbox -= 1
        jitter = 0.00002 * rng.uniform(-1, 1)
        pos = p.Position(lat=lat + jitter, lon=lon + jitter, tst=int(now),
                         speed_mps=speed, acc_m=5.0)
        snap = Snapshot(position=pos, fix_age_s=0.5,
                        power=PowerReading(battery, 7.4, not in_field, 1 if in_field else 2),
                        network=NetworkReading(True, "Telkomsel", "LTE", -70, round(rsrp)))
        mode = policy.mode(snap, now)
        health = p.Health(tst=int(now), battery_percent=round(battery),
                          battery_state=snap.power.state,  # type: ignore[union-attr]
                          registered=True, access_tech="LTE", rssi_dbm=-70,
                          rsrp_dbm=round(rsrp), outbox_count=outbox, ui_state=ui, fix_age_s=0)
        sent = False
        if policy.location_due(snap, now, mode):
            policy.location_sent(pos, now)
            counts["location"] += 1
            sent = True
        if policy.health_due(health, now, mode):
            policy.health_sent(health, now)
            counts["health"] += 1
            sent = True
        counts["instants"] += sent
    return counts


def report_telemetry(world: LinkWorld, root: Path) -> None:
    m = measure_telemetry(world, root)
    settings = AgentSettings()
    day = simulate_day(settings)
    reconnects = 12  # assumed: a dozen cellular drops and re-attaches a day
    pings = 86400 / settings.keepalive_s * 0.75  # idle 3/4 of the day: pings fill the gaps
    ours = day["location"] * m["location"] + day["health"] * m["health"]
    ours_day = ours + reconnects * m["setup"] + pings * 4
    base_day = day["instants"] * m["baseline"] + reconnects * m["setup"] + pings * 4
    packets_ours = day["location"] + day["health"] + pings * 2
    packets_base = day["instants"] * 2 + pings * 2  # PUBLISH + PUBACK
    print("Telemetry, bytes of MQTT on the TCP stream (measured through a counting proxy)")
    print(f"  location report   {m['location']:7.0f} B  (OwnTracks JSON {m['location_payload']:.0f}"
          f" B + {m['framing']:.0f} B MQTT 5, topic alias, QoS 0)")
    print(f"  health report     {m['health']:7.0f} B  (CBOR {m['health_payload']:.0f} B + "
          f"{m['framing']:.0f} B)")
    print(f"  both              {m['location'] + m['health']:7.0f} B   vs plain OwnTracks JSON "
          f"with the same fields {m['baseline']:.0f} B (payload {m['baseline_payload']} B, "
          f"QoS 1 + PUBACK): ratio {(m['location'] + m['health']) / m['baseline']:.2f}")
    print(f"  connect + birth + first reports {m['setup']:.0f} B")
    print(f"Simulated field day, default settings ({settings.interval_moving_s:.0f} s moving, "
          f"{settings.interval_idle_s:.0f} s idle, {settings.interval_low_battery_s:.0f} s "
          f"low battery; by exception in between; keepalive {settings.keepalive_s} s):")
    print(f"  reports           {day['location']} locations + {day['health']} health "
          f"({day['moving_s'] / 3600:.1f} h moving), {reconnects} reconnects")
    print(f"  per day, ours     {ours_day / 1024:7.1f} KiB MQTT, "
          f"{(ours_day + packets_ours * 2 * TCPIP) / 1024:7.1f} KiB with TCP/IP")
    print(f"  per day, baseline {base_day / 1024:7.1f} KiB MQTT, "
          f"{(base_day + packets_base * 2 * TCPIP) / 1024:7.1f} KiB with TCP/IP  "
          f"(ratio ours/baseline {ours_day / base_day:.2f} MQTT, "
          f"{(ours_day + packets_ours * 2 * TCPIP) / (base_day + packets_base * 2 * TCPIP):.2f}"
          f" with TCP/IP)")
    print(f"  keepalive alone   {pings * (4 + 4 * TCPIP) / 1024:7.1f} KiB with TCP/IP")
    # The offline track goes again after a reconnect as OwnTracks locations (QoS 0, topic
    # alias) for Recorder: assume an hour's ride out of coverage, 30 km, 300 points at 100 m.
    point = p.Position(lat=-8.10123, lon=112.16789, tst=1_795_468_813, acc_m=5.0)
    backlog_point = len(p.encode_track_locations([point], kit_id=KIT_A)[0]) + m["framing"]
    backlog = 300 * backlog_point
    with_tcpip = ours_day + packets_ours * 2 * TCPIP + backlog + 300 * 2 * TCPIP
    budget = 0.5 * (m["baseline"] + 4 * TCPIP) * 1440
    print(f"  offline track for OwnTracks {backlog_point:.0f} B a point; 300 points "
          f"{backlog / 1024:.1f} KiB MQTT, {(backlog + 600 * TCPIP) / 1024:.1f} KiB with TCP/IP")
    print(f"  per day with it   {with_tcpip / 1024:7.1f} KiB with TCP/IP; budget (half a plain "
          f"OwnTracks report a minute, TCP/IP included) {budget / 1024:.1f} KiB: "
          f"{with_tcpip / budget:.2f} of it")


# ---------------------------------------------------------------------------------------------
# 2. Records
# ---------------------------------------------------------------------------------------------


def measure_upload(root: Path, chunk_bytes: int,
                   contents: list[tuple[str, bytes]]) -> dict[str, Any]:
    world = LinkWorld(root)
    world.broker.start()
    proxy = WireTap(world.broker.port)
    try:
        kit = world.provision(KIT_A, agent={"chunk_bytes": chunk_bytes, "upload_window": 4,
                                            "reconnect_min_s": 0.2, "reconnect_max_s": 0.5})
        kit.config_path.write_text(kit.config_path.read_text().replace(
            f"port = {world.broker.port}", f"port = {proxy.port}"))
        blobs = seal_all(contents, world.office.keys.seal_public, kit.keys.sign)
        sealed = 0
        with kit.store() as store:
            for rid, blob in blobs:
                store.save_sealed(rid, "recording", "2026-11-23T10:00:00+00:00", blob)
                sealed += len(blob)
        world.broker.stop()
        agent = world.start_agent(kit)
        time.sleep(1.0)
        world.broker.start()
        broker_up = time.monotonic()
        world.office.start(world.broker)
        db = world.office.db()
        online = wait_until(lambda: (db.kit(KIT_A) or {}).get("online") == 1 and time.monotonic(),
                            30, "kit online", interval=0.005)
        with kit.store() as store:
            done = wait_until(lambda: not store.outbox() and time.monotonic(), 300,
                              "empty outbox", interval=0.01)
        assert db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == len(blobs)
        wire = proxy.total()
        agent.terminate()
        agent.wait(timeout=10)
        return {"sealed": sealed, "online_s": online - broker_up, "empty_s": done - online,
                "wire": wire}
    finally:
        proxy.close()
        world.close()


def measure_plain(root: Path, blobs: list[tuple[str, bytes]]) -> dict[str, float]:
    world = LinkWorld(root)
    world.broker.start()
    proxy = WireTap(world.broker.port)
    try:
        got = threading.Event()
        count = [0]
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plain-sub",
                          protocol=mqtt.MQTTv5)
        sub.username_pw_set(p.OFFICE_USER, world.passwords[p.OFFICE_USER])
        sub.tls_set(ca_certs=str(world.broker.ca_file))

        def on_message(c: Any, u: Any, m: Any) -> None:
            count[0] += 1
            if count[0] == len(blobs):
                got.set()

        sub.on_message = on_message
        sub.connect("127.0.0.1", world.broker.port)
        sub.loop_start()
        wait_until(sub.is_connected, 5, "subscriber")
        sub.subscribe(f"{p.ROOT}/kits/+/up", qos=1)
        time.sleep(0.3)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=KIT_A,
                          protocol=mqtt.MQTTv5)
        pub.username_pw_set(KIT_A, world.passwords[KIT_A])
        pub.tls_set(ca_certs=str(world.broker.ca_file))
        pub.connect("127.0.0.1", proxy.port)
        pub.loop_start()
        wait_until(pub.is_connected, 5, "publisher")
        proxy.reset()
        start = time.monotonic()
        for _, blob in blobs:
            pub.publish(p.KitTopics(KIT_A).up, blob, qos=1)
        got.wait(120)
        elapsed = time.monotonic() - start
        wire = proxy.total()
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
        return {"elapsed": elapsed, "wire": wire}
    finally:
        proxy.close()
        world.close()


def seal_all(contents: list[tuple[str, bytes]], office_seal: Any,
             kit_sign: Any) -> list[tuple[str, bytes]]:
    return [(rid, seal({"bytes": data}, kind="recording", ids={"record_id": rid, "kit_id": KIT_A},
                       recipient=office_seal, signer=kit_sign)) for rid, data in contents]


def report_upload(root: Path) -> None:
    from sync.envelope import KitKeys, OfficeKeys

    rng = random.Random(9)
    contents = [(f"0193a2c4-0000-7000-8000-{i:012d}",
                 rng.randbytes(int(RECORD_BYTES * rng.uniform(0.7, 1.3))))
                for i in range(RECORDS)]
    blobs = seal_all(contents, OfficeKeys.generate().seal_public, KitKeys.generate().sign)
    sealed = sum(len(b) for _, b in blobs)
    plain = measure_plain(root / "plain", blobs)
    print(f"\nRecords: {RECORDS} sealed records, {sealed / 1e6:.1f} MB, queued while the broker "
          f"was down (loopback; office commits every chunk with synchronous=FULL)")
    print(f"  baseline: 200 plain QoS 1 messages, no store/verify/receipt: "
          f"{plain['elapsed']:.2f} s, {sealed / plain['elapsed'] / 1e6:.1f} MB/s, "
          f"wire/sealed {plain['wire'] / sealed:.4f}")
    for chunk in (16 * 1024, 64 * 1024, 128 * 1024):
        m = measure_upload(root / f"chunk{chunk}", chunk, contents)
        print(f"  chunk {chunk // 1024:3d} KiB: reconnect after broker up {m['online_s']:.2f} s; "
              f"reconnect -> empty outbox {m['empty_s']:.2f} s; "
              f"{m['sealed'] / m['empty_s'] / 1e6:.1f} MB/s "
              f"({plain['elapsed'] / m['empty_s']:.2f} x baseline speed); "
              f"wire/sealed {m['wire'] / m['sealed']:.4f}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = LinkWorld(root / "telemetry")
        world.broker.start()
        try:
            report_telemetry(world, root)
        finally:
            world.close()
        report_upload(root)


if __name__ == "__main__":
    main()
