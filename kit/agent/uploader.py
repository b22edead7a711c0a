"""Store-and-forward of sealed records: the outbox goes up in chunks until the office's receipt.

Records wait in the store's outbox (durable, unlike paho's in-memory queue). They
go up oldest first in chunks of ``chunk_bytes``, at most ``upload_window`` chunks
beyond what the office has confirmed; only the office's signed receipt drops a
payload (:meth:`kit.store.Store.mark_acked`). After an outage, a restart or a power
cut the upload resumes where the office says it stands; a refused record is tried
again after the office's wait (or a longer backoff), except one refused for a final
reason (:data:`sync.protocol.TERMINAL_REFUSALS`): that one stays in the outbox marked
``refused`` and is never sent again until the office says otherwise. The layouts and
rules: sync/PROTOCOL.md ("Records").
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sync import protocol as p
from sync.protocol import backoff_s

if TYPE_CHECKING:
    from nacl.signing import VerifyKey

    from kit.agent.settings import AgentSettings
    from kit.store import Store

log = logging.getLogger(__name__)

# The outbox state of a record the office refused for a final reason (p.TERMINAL_REFUSALS).
REFUSED = "refused"


class UploadLink(Protocol):
    """What the uploader needs of the agent: its store, keys, settings and MQTT connection."""

    kit_id: str
    topics: p.KitTopics
    store: Store
    office_sign: VerifyKey
    settings: AgentSettings  # read each time: a config command may replace it
    connected: bool
    office_online: bool | None
    clock: Callable[[], float]  # wall time, for the outbox's retry times

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False,
                alias: bool = False) -> bool: ...


@dataclass
class Upload:
    """One record being sent: the office holds ``have`` bytes; we have sent up to ``sent``."""

    record_id: str
    blob: bytes
    sha256: bytes
    have: int = 0
    sent: int = 0
    progress_at: float = 0.0
    rewound_to: int = -1
    persisted: int = -1

    @property
    def size(self) -> int:
        return len(self.blob)


class Uploader:
    """Sends the outbox, oldest first, and turns the office's receipts into ``mark_acked``."""

    def __init__(self, link: UploadLink) -> None:
        self.link = link
        self.active: dict[str, Upload] = {}
        self.acked = 0
        self.rng = random.Random()
        self._next_scan = 0.0
        self.stalls = 0  # stalls in a row without a word from the office
        # Monotonic time before which a refused record waits, while this process runs:
        # the wall-clock time in the outbox is only for after a restart.
        self.not_before: dict[str, float] = {}

    def stall_timeout(self) -> float:
        """Silence that counts as a stall: doubles with each stall in a row, so a kit whose
        office is silent (down, its queue at the broker full) does not resend forever."""
        s = self.settings
        return min(max(s.retry_max_s, s.upload_stall_s), s.upload_stall_s * 2.0 ** self.stalls)

    @property
    def settings(self) -> AgentSettings:
        return self.link.settings

    def reset_for_new_connection(self, now: float) -> None:
        """After a reconnect, anything sent but unconfirmed is sent again from ``have``."""
        self.stalls = 0
        for up in self.active.values():
            up.sent = up.have
            up.progress_at = now
            up.rewound_to = -1
        self._next_scan = 0.0

    def office_back(self, now: float) -> None:
        self.stalls = 0
        for up in self.active.values():
            up.progress_at = now

    def in_flight(self) -> int:
        return sum(up.sent - up.have for up in self.active.values())

    def pump(self, now: float) -> None:
        """Send what the window allows. ``now`` is monotonic seconds."""
        if not self.link.connected or self.link.office_online is False:
            # The office said (retained status, or its last will) that it is down: the
            # broker would only queue what we send. Wait until it is back.
            return
        s = self.settings
        stalled = False
        for up in list(self.active.values()):
            waiting = up.sent > up.have or up.have >= up.size
            if waiting and now - up.progress_at > self.stall_timeout():
                log.info("no word from the office on record %s for %.0f s: resending from %d",
                         up.record_id, now - up.progress_at, up.have)
                up.sent = up.have if up.have < up.size else max(0, up.size - s.chunk_bytes)
                up.progress_at = now
                stalled = True
        if stalled:
            self.stalls += 1
        window = s.upload_window * s.chunk_bytes
        if len(self.active) < s.upload_window and now >= self._next_scan:
            self._refill(now)
        for up in list(self.active.values()):
            while up.sent < up.size and self.in_flight() < window:
                data = up.blob[up.sent:up.sent + s.chunk_bytes]
                chunk = p.Chunk(up.record_id, up.sha256, up.size, up.sent, data)
                if not self.link.publish(self.link.topics.up, p.encode_chunk(chunk), qos=1):
                    return
                up.sent += len(data)

    def _refill(self, now: float) -> None:
        store = self.link.store
        for row in store.outbox():
            if len(self.active) >= self.settings.upload_window:
                return
            rid = row["record_id"]
            if rid in self.active or row["state"] == REFUSED or not self._due(row, now):
                continue
            blob = store.record_blob(rid)
            if blob is None:
                continue
            have = min(int(row["sent_bytes"]), len(blob))
            # All sent but no receipt heard: resend the last chunk, the office answers it
            # with the receipt again.
            sent = have if have < len(blob) else max(0, len(blob) - self.settings.chunk_bytes)
            up = Upload(rid, blob, bytes.fromhex(row["sha256"]), have=have, sent=sent,
                        progress_at=now, persisted=have)
            self.active[rid] = up
            self.not_before.pop(rid, None)
        # Nothing more is due: look again in a second, not on every turn of the loop.
        self._next_scan = now + 1.0

    def _due(self, row: dict[str, object], now: float) -> bool:
        """Whether a record's wait after a refusal is over (``now`` monotonic)."""
        rid = str(row["record_id"])
        if rid in self.not_before:
            return now >= self.not_before[rid]
        # Refused before this process started: only the wall-clock time is known. A wait
        # longer than any the office may ask for plus the longest backoff means the wall
        # clock jumped back (a Pi without RTC at boot).
        wait = float(row["next_attempt_at"]) - self.link.clock()  # type: ignore[arg-type]
        return wait <= 0 or wait > p.MAX_RETRY_S + self.settings.retry_max_s

    def on_progress(self, progress: p.Progress, now: float) -> None:
        store = self.link.store
        self.stalls = 0
        up = self.active.get(progress.record_id)
        record = store.record(progress.record_id)
        if record is None:
            log.info("office wrote about record %s, which this kit does not hold",
                     progress.record_id)
            return
        if progress.kind == "have":
            if up is None:
                return  # a late confirmation for a record not in flight now; harmless
            up.progress_at = now
            if progress.have > up.size:
                log.warning("office claims %d bytes of a %d-byte record %s", progress.have,
                            up.size, up.record_id)
                return
            up.have = progress.have
            if up.sent < up.have:
                up.sent = up.have
            elif progress.gap and up.rewound_to != up.have:
                # The office missed bytes (e.g. its queue at the broker overflowed).
                up.sent, up.rewound_to = up.have, up.have
        elif progress.kind == "done":
            try:
                p.verify_receipt(progress, self.link.office_sign, self.link.kit_id,
                                 bytes.fromhex(record.sha256))
            except p.ProtocolError as exc:
                log.warning("receipt for record %s refused: %s", progress.record_id, exc.reason)
                store.audit("receipt_refused", subject=progress.record_id, detail=exc.reason)
                return
            entry = store.outbox_entry(progress.record_id)
            if entry is not None and entry["state"] != "acked":
                store.mark_acked(progress.record_id)
                self.acked += 1
                log.info("record %s stored by the office; payload dropped", progress.record_id)
            self.active.pop(progress.record_id, None)
            self.not_before.pop(progress.record_id, None)
            self._next_scan = 0.0
        elif progress.kind == "reject":
            self.active.pop(progress.record_id, None)
            entry = store.outbox_entry(progress.record_id)
            if entry is None or entry["state"] == "acked":
                return
            terminal = progress.reason in p.TERMINAL_REFUSALS
            if terminal and entry["state"] == REFUSED:
                return  # the same final answer to another chunk of the window
            rid = progress.record_id
            if terminal:
                # Final: sending the same bytes again cannot change the answer. Kept, never
                # sent again by itself; the office's receipt, or a reject for another
                # reason, releases it (sync/PROTOCOL.md, "Records").
                store.outbox_refused(rid, progress.reason, self.link.clock())
                self.not_before.pop(rid, None)
                log.warning("office refused record %s for good (%s); kept, not sent again",
                            rid, progress.reason)
                store.audit("record_refused", subject=rid,
                            detail=f"{progress.reason}; final")
                return
            wait = max(float(progress.retry_s),
                       backoff_s(int(entry["attempts"]) + 1, self.settings.retry_base_s,
                                 self.settings.retry_max_s, self.rng))
            # The office's wait is honoured however long: timed on the monotonic clock here,
            # and on the wall clock in the outbox for after a restart.
            self.not_before[rid] = now + wait
            store.outbox_failed(rid, progress.reason, self.link.clock() + wait)
            log.warning("office refused record %s (%s); trying again in %.0f s",
                        rid, progress.reason, wait)
            store.audit("record_refused", subject=rid, detail=progress.reason)

    def persist(self) -> None:
        """Write how far each record got (best effort: a lost value only means resending)."""
        store = self.link.store
        for up in self.active.values():
            if up.have != up.persisted:
                store.set_outbox_progress(up.record_id, up.have)
                up.persisted = up.have
