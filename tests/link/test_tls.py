"""TLS on the kit-office link, and what a reader user may read (issue finding 6).

The broker of every link test listens with TLS only, its certificate from a CA
the test makes (``LocalBroker`` in its folder: nothing committed, nothing
downloaded). These tests show that provisioning chooses TLS, that a kit's
password never crosses the wire in clear, that only the office CA's broker is
trusted, that client certificates work as a second factor when the broker
asks for them, and that reader users (OwnTracks Recorder, a dashboard) see
where kits are and whether they are online, nothing more.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from kit.config import config_from_dict, load_config
from kit.provision import provision_kit
from office.broker import MOSQUITTO
from office.certs import issue_client, make_ca
from sync import protocol as p
from sync.envelope import OfficeKeys
from sync.errors import ConfigError
from tests.conftest import FAST_ARGON2, OFFICER, PIN, TECHNICIAN_PIN
from tests.link.harness import INJECTOR, KIT_A, KIT_B, MONITOR, LinkWorld, agent_log
from tests.link.wiretap import WireTap
from tests.waiting import wait_until


def try_login(port: int, user: str, password: str, *, ca_file: Path | None,
              cert: tuple[Path, Path] | None = None, wait_s: float = 3.0) -> str:
    """Log in once; "connected", or what went wrong (a TLS error, a refusal, silence)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-try",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file), certfile=str(cert[0]) if cert else None,
                       keyfile=str(cert[1]) if cert else None)
    result: list[str] = []
    done = threading.Event()

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        result.append("refused: " + str(reason) if reason.is_failure else "connected")
        done.set()

    def on_disconnect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        result.append(f"disconnected: {reason}")
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect("127.0.0.1", port)
    except (OSError, ssl.SSLError) as exc:
        return f"error: {exc}"
    client.loop_start()
    try:
        done.wait(wait_s)
        return result[0] if result else "no answer"
    finally:
        client.disconnect()
        client.loop_stop()


# ---------------------------------------------------------------------------------------------
# (a) Provisioning: TLS on 8883 unless the technician says otherwise
# ---------------------------------------------------------------------------------------------


def test_a_freshly_provisioned_kit_uses_tls_on_8883(tmp_path: Path) -> None:
    OfficeKeys.generate().save(tmp_path / "office")
    provisioned = provision_kit(kit_id=KIT_A, data_dir=tmp_path / "kit",
                                office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
                                technician_pin=TECHNICIAN_PIN,
                                settings={"security": FAST_ARGON2})
    text = provisioned.config_path.read_text()
    assert "port = 8883" in text and "tls = true" in text
    mqtt_cfg = load_config(provisioned.config_path).mqtt
    assert (mqtt_cfg.port, mqtt_cfg.tls, mqtt_cfg.ca_file) == (8883, True, "")


def test_tls_keys_are_checked_when_the_config_is_read(tmp_path: Path) -> None:
    base = {"kit": {"id": KIT_A}}
    # An empty ca_file: the system's CA store, for a broker with a public certificate.
    assert config_from_dict({**base, "mqtt": {"host": "broker.example"}}).mqtt.tls
    # A missing CA file does not stop the kiosk (it records offline); the agent names it
    # when it tries to connect.
    missing = config_from_dict({**base, "mqtt": {"ca_file": str(tmp_path / "nope.crt")}})
    assert missing.mqtt.ca_file.endswith("nope.crt")
    (tmp_path / "kit.crt").write_text("x")
    with pytest.raises(ConfigError, match="together"):
        config_from_dict({**base, "mqtt": {"cert_file": str(tmp_path / "kit.crt")}})
    with pytest.raises(ConfigError, match="tls = true"):
        config_from_dict({**base, "mqtt": {"tls": False, "port": 1883,
                                           "cert_file": str(tmp_path / "kit.crt"),
                                           "key_file": str(tmp_path / "kit.crt")}})


# ---------------------------------------------------------------------------------------------
# (b) Plain MQTT gets nowhere, and the password never crosses in clear
# ---------------------------------------------------------------------------------------------


def test_plain_mqtt_cannot_log_in_and_no_password_crosses_in_clear(world: LinkWorld) -> None:
    password = world.passwords[KIT_A].encode()
    relay = WireTap(world.broker.port, keep=True)
    try:
        # Plain MQTT to the TLS port: the broker wants a TLS handshake and hangs up. The
        # tap sees the password -- which is what this test would see of a plain link.
        result = try_login(relay.port, KIT_A, world.passwords[KIT_A], ca_file=None)
        assert result != "connected", result
        assert password in relay.wire(), "the tap should see what a plain client sends"
    finally:
        relay.close()

    relay = WireTap(world.broker.port, keep=True)
    try:
        kit = world.provision(KIT_A, mqtt={"port": relay.port})
        watcher = world.broker.client(MONITOR)
        watcher.subscribe(p.KitTopics(KIT_A).status)
        world.start_agent(kit)
        wait_until(lambda: [s for s in map(p.decode_status, watcher.on(
            p.KitTopics(KIT_A).status)) if s.online], 15,
            lambda: f"the kit's birth through the tap\n{agent_log(kit)}")
        wire = relay.wire()
        assert len(wire) > 500  # a TLS handshake and the MQTT session went through it
        assert wire[0] == 0x16, "the kit's first byte is not a TLS handshake record"
        assert password not in wire
        assert KIT_A.encode() not in wire  # not even the user name
    finally:
        relay.close()


# ---------------------------------------------------------------------------------------------
# (c) Only the office CA's broker is trusted
# ---------------------------------------------------------------------------------------------


def test_a_client_trusting_another_ca_is_refused(world: LinkWorld, tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other-ca")
    result = try_login(world.broker.port, KIT_A, world.passwords[KIT_A], ca_file=other.cert)
    assert result.startswith("error") and "certificate verify failed" in result, result
    # The same client trusting the office CA logs in: the refusal was the certificate's.
    assert try_login(world.broker.port, KIT_A, world.passwords[KIT_A],
                     ca_file=world.broker.ca_file) == "connected"


def test_a_kit_trusting_another_ca_never_sends_its_password(world: LinkWorld,
                                                            tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other-ca")
    relay = WireTap(world.broker.port, keep=True)
    try:
        kit = world.provision(KIT_A, mqtt={"port": relay.port, "ca_file": str(other.cert)})
        world.start_agent(kit)
        wait_until(lambda: "certificate verify failed" in agent_log(kit), 15,
                   lambda: f"the agent to refuse the broker\n{agent_log(kit)}")
        assert world.passwords[KIT_A].encode() not in relay.wire()
        assert world.passwords[KIT_A] not in agent_log(kit)
    finally:
        relay.close()


# ---------------------------------------------------------------------------------------------
# (d) Client certificates, when the broker requires them
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def strict_world(tmp_path: Path) -> Iterator[LinkWorld]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    link = LinkWorld(tmp_path, require_certificate=True)
    link.broker.start()
    try:
        yield link
    finally:
        link.close()


def test_require_certificate_admits_only_kits_with_an_office_certificate(
        strict_world: LinkWorld, tmp_path: Path) -> None:
    world = strict_world
    ca = world.broker.ca
    assert ca is not None
    port, ca_file = world.broker.port, world.broker.ca_file
    cert_a = issue_client(ca, tmp_path / "certs", KIT_A)
    assert try_login(port, KIT_A, world.passwords[KIT_A], ca_file=ca_file,
                     cert=cert_a) == "connected"
    without = try_login(port, KIT_B, world.passwords[KIT_B], ca_file=ca_file)
    assert without != "connected", without
    stranger = issue_client(make_ca(tmp_path / "other-ca"), tmp_path / "other", KIT_B)
    assert try_login(port, KIT_B, world.passwords[KIT_B], ca_file=ca_file,
                     cert=stranger) != "connected"
    # The certificate is a second factor, not the login: the password is still checked.
    assert try_login(port, KIT_A, "wrong-password", ca_file=ca_file,
                     cert=cert_a) != "connected"

    # The agent presents [mqtt] cert_file and key_file; a kit without them stays out.
    kit_a = world.provision(KIT_A, mqtt={"cert_file": str(cert_a[0]),
                                         "key_file": str(cert_a[1])})
    kit_b = world.provision(KIT_B)
    watch_cert = issue_client(ca, tmp_path / "certs", "watcher")
    watcher = world.broker.client(INJECTOR, cert_file=watch_cert[0], key_file=watch_cert[1])
    watcher.subscribe(f"{p.ROOT}/kits/+/status")
    world.start_agent(kit_a)
    world.start_agent(kit_b)
    wait_until(lambda: watcher.on(p.KitTopics(KIT_A).status), 15,
               lambda: f"kit A's birth\n{agent_log(kit_a)}")
    wait_until(lambda: agent_log(kit_b).count("broker link down") >= 2, 15,
               lambda: f"kit B refused\n{agent_log(kit_b)}")
    assert not watcher.on(p.KitTopics(KIT_B).status)


# ---------------------------------------------------------------------------------------------
# (e) Reader users: location and presence only
# ---------------------------------------------------------------------------------------------


def test_a_reader_sees_location_and_status_but_no_commands_or_records(world: LinkWorld) -> None:
    topics = p.KitTopics(KIT_A)
    reader = world.broker.client(MONITOR)
    for topic in (topics.location, topics.status, p.OFFICE_STATUS_TOPIC, topics.cmd,
                  topics.assign, topics.rcpt, topics.up, topics.health, topics.track,
                  f"{p.ROOT}/#"):
        reader.subscribe(topic)  # Mosquitto 2.0 may grant what it will then not deliver
    control = world.broker.client(INJECTOR)
    control.subscribe(f"{p.ROOT}/#")
    kit = world.broker.client(KIT_A, client_id=KIT_A)
    office = world.broker.client(p.OFFICE_USER, client_id=p.OFFICE_USER)

    from_kit = {topics.location: b'{"_type":"location","lat":-8.1,"lon":112.2,"tst":1}',
                topics.status: b'{"_type":"lwt","online":true}',
                topics.up: b"chunk", topics.health: b"health", topics.track: b"track"}
    from_office = {topics.cmd: b"command", topics.assign: b"assignment",
                   topics.rcpt: b"receipt", p.OFFICE_STATUS_TOPIC: b"office online"}
    for topic, payload in from_kit.items():
        kit.publish(topic, payload)
    for topic, payload in from_office.items():
        office.publish(topic, payload)
    everything = {**from_kit, **from_office}
    wait_until(lambda: all(control.on(t) for t in everything), 5,
               "the office user to receive every message")
    time.sleep(1.0)  # what the reader may not read must still not come later
    got = {m.topic for m in reader.messages}
    assert got == {topics.location, topics.status, p.OFFICE_STATUS_TOPIC}, got
    assert all(everything[m.topic] == bytes(m.payload) for m in reader.messages)
    for client in (reader, control, kit, office):
        client.close()
