"""A real Mosquitto, provisioned kits and the office receiver: the link tests' harness.

Each world gets its own broker on 127.0.0.1 and a free port, TLS with a CA
made for the test in the broker's folder (kits and clients trust
``broker.ca_file``; nothing committed, nothing downloaded), with
``allow_anonymous false``, a password file made by ``mosquitto_passwd -b``,
the ACL from :func:`sync.protocol.mosquitto_acl` and persistence on, so a
stopped and restarted broker keeps sessions and retained messages as a
production broker would. Helpers provision kits (keys, store, config) and
run the office receiver in a thread. Used by ``tests/link`` and
``tests/bench/bench_link.py``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from kit.config import config_from_dict, dump_config
from kit.store import Store
from kit.vault import Argon2Cost, DataKey, PinVault
from office.broker import LocalBroker
from office.db import OfficeDb
from office.ingest import (
    RETRY_S,
    BrokerSettings,
    KitDirectory,
    OfficeKeysForLink,
    OfficeReceiver,
)
from sync import protocol as p
from sync.envelope import RECORD_KIND, KitKeys, OfficeKeys, seal
from tests.waiting import wait_until

# Refusals after which the test office asks for a one-second wait, not minutes or an hour.
FAST_RETRY_REASONS = ("kit_unknown", "busy", "bad_signature", "wrong_office_key", "wrong_kind",
                      "wrong_kit", "header_mismatch")
CHEAP = Argon2Cost(opslimit=1, memlimit=8 * 1024 * 1024)
REPO = Path(__file__).resolve().parents[2]
OFFICE_PASSWORD = "office-secret-1"
MONITOR = "jaranijo_monitor"  # a read-only user, as OwnTracks Recorder or a dashboard would have
INJECTOR = "jaranijo_office_2"  # a second office user: sends what the receiver never would


class Broker(LocalBroker):
    """The link tests' broker: the office, a second office user and a read-only monitor."""

    def __init__(self, directory: Path, users: dict[str, str], *,
                 message_size_limit: int = 0, require_certificate: bool = False) -> None:
        super().__init__(directory, users, office_users=[p.OFFICE_USER, INJECTOR],
                         readers=[MONITOR], message_size_limit=message_size_limit,
                         require_certificate=require_certificate)

    def client(self, user: str, *, client_id: str | None = None, **tls: Any) -> TestClient:
        return TestClient(self, user, client_id=client_id, **tls)


class TestClient:
    """A plain paho client for poking the broker as a kit, the office or an intruder."""

    __test__ = False

    def __init__(self, broker: Broker, user: str, *, client_id: str | None = None,
                 ca_file: Path | None = None, cert_file: Path | None = None,
                 key_file: Path | None = None) -> None:
        """Logs in over TLS trusting ``ca_file`` (default: the broker's CA)."""
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subacks: list[list[Any]] = []
        self.pubacks: dict[int, Any] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"{user}-test", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, broker.users[user])
        self.client.tls_set(ca_certs=str(ca_file or broker.ca_file),
                            certfile=str(cert_file) if cert_file else None,
                            keyfile=str(key_file) if key_file else None)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, u, mid, codes, props: self.subacks.append(codes)
        self.client.on_publish = self._on_publish
        connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, props: connected.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        if not connected.wait(5):
            raise RuntimeError(f"test client {user} could not connect")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        self.pubacks[mid] = reason

    def subscribe(self, topic: str) -> list[Any]:
        before = len(self.subacks)
        self.client.subscribe(topic, qos=1)
        wait_until(lambda: len(self.subacks) > before, 5, f"SUBACK for {topic}")
        return self.subacks[-1]

    def publish(self, topic: str, payload: bytes, *, qos: int = 1,
                retain: bool = False) -> Any:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            wait_until(lambda: info.mid in self.pubacks, 5, f"PUBACK on {topic}")
            return self.pubacks[info.mid]
        return None

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [bytes(m.payload) for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


KIT_A = "blitar-kit-01"
KIT_B = "blitar-kit-02"


@dataclass
class Kit:
    """A provisioned kit: keys, store with one officer slot, config file."""

    kit_id: str
    directory: Path
    config_path: Path
    keys: KitKeys
    officer: str = "P-0001"
    pin: str = "4829135071"

    @property
    def store_path(self) -> Path:
        return self.directory / "data" / "kit.db"

    def store(self) -> Store:
        return Store.open(self.store_path, create=False)

    def unlock(self, store: Store) -> DataKey:
        return PinVault(store, CHEAP).unlock(self.officer, self.pin)


@dataclass
class Office:
    keys: OfficeKeys
    keys_dir: Path
    kits_dir: Path
    db_path: Path
    receiver: OfficeReceiver | None = None
    thread: threading.Thread | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def start(self, broker: Broker, **settings: Any) -> OfficeReceiver:
        # The office's waits after a refusal, cut to a second as the agent's timers are
        # (AGENT_FAST); the final refusals keep theirs, which the kit never waits out.
        settings.setdefault("retry_s", {**dict.fromkeys(FAST_RETRY_REASONS, 1), "hash": 0,
                                        **{r: RETRY_S[r] for r in p.TERMINAL_REFUSALS}})
        db = OfficeDb.open(self.db_path)
        self.receiver = OfficeReceiver(
            db, OfficeKeysForLink.load(self.keys_dir), KitDirectory(self.kits_dir),
            BrokerSettings(host="127.0.0.1", port=broker.port, password=OFFICE_PASSWORD,
                           tls=True, ca_file=str(broker.ca_file),
                           reconnect_min_s=0.2, reconnect_max_s=1.0, **settings))
        self.thread = threading.Thread(target=self.receiver.serve, name="office", daemon=True)
        self.thread.start()
        wait_until(lambda: self.receiver is not None and self.receiver.connected, 10,
                   "the office receiver to connect")
        return self.receiver

    def stop(self) -> None:
        if self.receiver is not None and self.thread is not None:
            self.receiver.stop()
            self.thread.join(timeout=10)
            self.receiver.db.close()
            self.receiver = None

    def db(self) -> OfficeDb:
        """A separate connection, as another office process would open it."""
        return OfficeDb.open(self.db_path)


AGENT_FAST = {
    "poll_s": 0.5, "interval_moving_s": 2.0, "interval_idle_s": 5.0,
    "interval_low_battery_s": 3.0, "min_interval_s": 0.5, "reconnect_min_s": 0.2,
    "reconnect_max_s": 1.0, "connect_timeout_s": 5.0, "keepalive_s": 5, "will_delay_s": 2,
    "session_expiry_s": 3600, "upload_stall_s": 3.0, "retry_base_s": 0.5, "retry_max_s": 2.0,
}


class LinkWorld:
    """Office keys, a broker with the office and two kit users, and helpers."""

    def __init__(self, root: Path, *, require_certificate: bool = False) -> None:
        self.root = root
        self.passwords = {p.OFFICE_USER: OFFICE_PASSWORD, KIT_A: "kit-a-secret",
                          KIT_B: "kit-b-secret", MONITOR: "monitor-secret",
                          INJECTOR: "office-2-secret"}
        self.broker = Broker(root / "broker", self.passwords,
                             require_certificate=require_certificate)
        office_keys = OfficeKeys.generate()
        keys_dir = root / "office" / "keys"
        office_keys.save(keys_dir)
        self.office = Office(office_keys, keys_dir, root / "office" / "kits",
                             root / "office" / "office.db")
        self.processes: list[subprocess.Popen[bytes]] = []

    def provision(self, kit_id: str, *, agent: dict[str, Any] | None = None,
                  devices: dict[str, Any] | None = None, register: bool = True,
                  mqtt: dict[str, Any] | None = None) -> Kit:
        """A kit with keys, a store and a config; ``mqtt`` adds or overrides [mqtt] keys."""
        directory = self.root / kit_id
        data_dir = directory / "data"
        keys_dir = data_dir / "keys"
        keys_dir.mkdir(parents=True)
        os.chmod(keys_dir, 0o700)
        self.office.keys.public.save(keys_dir)
        kit_keys = KitKeys.generate()
        kit_keys.save(keys_dir)
        with Store.open(data_dir / "kit.db") as store:
            vault = PinVault(store, CHEAP)
            key = vault.initialise("P-0001", "4829135071")
            vault.put_secret(key, "kit-box", bytes(kit_keys.box))
            vault.put_secret(key, "kit-sign", bytes(kit_keys.sign))
            store.set_status("kit_id", kit_id)
        if register:
            kit_keys.public.save(self.office.kits_dir / kit_id)
        password_file = directory / "mqtt-password"
        password_file.write_text(self.passwords[kit_id] + "\n")
        os.chmod(password_file, 0o600)
        raw: dict[str, Any] = {
            "kit": {"id": kit_id, "data_dir": str(data_dir)},
            "security": {"argon2_opslimit": 1, "argon2_memlimit_mib": 8},
            "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "username": kit_id,
                     "password_file": str(password_file), "tls": True,
                     "ca_file": str(self.broker.ca_file), **(mqtt or {})},
            "devices": devices or {"gnss": {"enabled": False}, "modem": {"enabled": False},
                                   "battery": {"kind": "none"}},
        }
        text = dump_config(config_from_dict(raw))
        settings = {**AGENT_FAST, **(agent or {})}
        text += "\n[agent]\n" + "".join(f"{k} = {v!r}\n" for k, v in settings.items())
        config_path = directory / "kit.toml"
        config_path.write_text(text)
        return Kit(kit_id, directory, config_path, kit_keys)

    def start_agent(self, kit: Kit, *, log_name: str = "agent.log") -> subprocess.Popen[bytes]:
        """The agent as the service runs it: its own process, from the config file."""
        log_file = open(kit.directory / log_name, "ab")  # noqa: SIM115 -- closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "--config", str(kit.config_path), "-v", "agent"],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log_file.close()
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.office.stop()
        self.broker.stop()


def agent_log(kit: Kit, name: str = "agent.log") -> str:
    path = kit.directory / name
    return path.read_text(errors="replace")[-6000:] if path.exists() else ""


def queue_records(kit: Kit, world: LinkWorld, count: int, *, seed: int = 7) -> dict[str, bytes]:
    """Seal ``count`` records of 2-20 kB (random, so nothing compresses) into the kit's outbox."""
    rng = random.Random(seed)
    expected: dict[str, bytes] = {}
    with kit.store() as store:
        for i in range(count):
            rid = f"0193a2c4-0000-7000-8000-{i:012d}"
            content = {"n": i, "bytes": rng.randbytes(rng.randrange(2000, 20000))}
            blob = seal(content, kind=RECORD_KIND, ids={"record_id": rid, "kit_id": kit.kit_id},
                        recipient=world.office.keys.seal_public, signer=kit.keys.sign)
            store.save_sealed(rid, RECORD_KIND, "2026-11-23T10:00:00+00:00", blob)
            expected[rid] = content["bytes"]
    return expected


def office_count(db: OfficeDb) -> int:
    return int(db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
