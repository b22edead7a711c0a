"""An office receiver on the test bench: no broker, messages handed straight in.

Messages go to :meth:`OfficeReceiver._on_message` (what paho would call); what the office
answers is caught in place of publishing it. One kit, ``KIT``, is registered.
"""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt

from office.db import OfficeDb
from office.ingest import BrokerSettings, KitDirectory, OfficeKeysForLink, OfficeReceiver
from sync import protocol as p
from sync.envelope import KitKeys, OfficeKeys

KIT = "blitar-kit-01"
TOPICS = p.KitTopics(KIT)


class BenchOffice:
    """The office's keys, one kit's keys, a database in ``tmp_path`` and a receiver with
    ``settings`` (BrokerSettings fields). ``now`` is the office's clock when given."""

    def __init__(self, tmp_path: Path, *, now: float | None = None, **settings: object) -> None:
        self.office_keys = OfficeKeys.generate()
        self.office_keys.save(tmp_path / "keys")
        self.kit_keys = KitKeys.generate()
        self.kit_keys.public.save(tmp_path / "kits" / KIT)
        self.now = now
        self.db = OfficeDb.open(tmp_path / "office.db")
        self.receiver = OfficeReceiver(self.db, OfficeKeysForLink.load(tmp_path / "keys"),
                                       KitDirectory(tmp_path / "kits"),
                                       BrokerSettings(**settings),  # type: ignore[arg-type]
                                       clock=self._clock)
        self.receiver.client = self.client = object()  # type: ignore[assignment]
        self.sent: list[tuple[str, p.Progress]] = []
        self.receiver.publish = self._publish  # type: ignore[method-assign]

    def _clock(self) -> float:
        return time.time() if self.now is None else self.now

    def _publish(self, topic: str, payload: bytes) -> bool:
        self.sent.append((topic, p.decode_progress(payload)))
        return True

    @property
    def receipts(self) -> list[p.Progress]:
        """What the office answered the kit on its receipt topic, oldest first."""
        return [progress for topic, progress in self.sent if topic == TOPICS.rcpt]

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        message = mqtt.MQTTMessage(topic=topic.encode())
        message.payload = payload
        message.retain = retain
        self.receiver._on_message(self.client, None, message)  # type: ignore[arg-type]
