"""Opening sealed records at the office, and what the office keeps of each once opened.

Only the office's seal key opens a record, and only after the kit's signature checks out
(:func:`sync.envelope.open_sealed`). :func:`open_record` does that for bytes in hand (the
receiver, ``office open``); :class:`RecordBook` does it for records stored in the office
database, for the web app: keys loaded from ``settings.OFFICE_KEYS_DIR`` (the office's
keys) and ``settings.KITS_DIR`` (a folder per kit with its public keys), everything
decrypted **in memory only** (nothing opened is ever written to disk or cached beyond
the call).

Indexing (:meth:`RecordBook.index`): the first time a stored record is opened, a
:class:`office.models.RecordReview` row is written with what staff filter by, in clear
(visit time and duration, village, officer ids, outcome, complete or what is missing),
and the resident's name, NIK, birth date and target id sealed (XSalsa20-Poly1305,
libsodium ``secretbox``) under the office's *index key*, derived from the seal key
(:func:`index_key`): the table alone names nobody, and search decrypts those few bytes
per row in memory (:meth:`RecordBook.person`).

A recording is **complete** (the KTP-el clock starts, issue 12) when its outcome is
``recorded``, it has a photo, every one of the ten fingers has a print or a recorded
exception, and a signature or the reason there is none. Anything else is partial: its
``missing`` codes say what (``photo``, ``finger:7``, ``signature``, ``outcome:refused``)
and its target can go on a later visit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.signing import VerifyKey

from sync.domain import FingerPosition, Outcome, Recording
from sync.envelope import RECORD_KIND, KitPublicKeys, OfficeKeys, open_sealed
from sync.errors import JaranIjoError, KeyFileError, VaultError


def open_record(
    blob: bytes, office: OfficeKeys, kit_key: Callable[[str], VerifyKey]
) -> tuple[dict[str, Any], Recording]:
    """Verify and decrypt one sealed record; ``kit_key`` maps a kit id to its signing key."""

    def sender(header: dict[str, Any]) -> VerifyKey:
        kit_id = header.get("kit_id")
        if header.get("kind") != RECORD_KIND or not isinstance(kit_id, str):
            raise VaultError(
                id="Amplop ini bukan rekaman",
                en="This envelope is not a recording",
                code="wrong_kind",
            )
        return kit_key(kit_id)

    opened = open_sealed(blob, recipient=office.seal, sender=sender)
    return opened.header, Recording.from_canonical(opened.content)


def missing_parts(recording: Recording) -> list[str]:
    """What keeps ``recording`` from being complete (empty: complete); see the module doc."""
    outcome = recording.outcome
    if outcome is None:
        return ["outcome:none"]
    if not outcome.carries_biometrics:
        return [f"outcome:{outcome.value}"]
    out: list[str] = []
    if recording.photo is None:
        out.append("photo")
    for position in FingerPosition:
        finger = recording.fingers.get(position)
        if finger is None or not finger.settled:
            out.append(f"finger:{int(position)}")
    signature = recording.signature
    if signature is None or not (signature.signed or signature.cannot_sign_reason):
        out.append("signature")
    if outcome is Outcome.PARTIAL and not out:
        out.append("outcome:partial")
    return out


def index_key(office: OfficeKeys) -> bytes:
    """The key the index's sealed fields are under: derived from the seal key (one key
    to keep safe), for this use only (BLAKE2b keyed with it, personalised)."""
    return hashlib.blake2b(b"record-index-v1", key=bytes(office.seal), digest_size=32,
                           person=b"jaranijo-index").digest()


@dataclass(frozen=True)
class Person:
    """The resident a record is about, as the index keeps it (sealed)."""

    name: str
    nik: str
    birth_date: str  # ISO date
    target_id: str
    kk: str = ""


class RecordUnavailable(JaranIjoError):
    """A stored record the office cannot open here: no keys, unknown kit, bad seal."""


@dataclass
class OpenedRecord:
    kit_id: str
    record_id: str
    header: dict[str, Any]
    recording: Recording
    received_at: float


class RecordBook:
    """The stored records, opened in memory with the office's keys.

    >>> book = RecordBook.from_settings()  # doctest: +SKIP
    >>> opened = book.open("blitar-kit-01", record_id)  # doctest: +SKIP
    """

    def __init__(self, office: OfficeKeys, kits_dir: Path, *, using: str = "default") -> None:
        self.using = using  # the Django database alias (the web app's is "default")
        self.office = office
        self.kits_dir = Path(kits_dir)
        self._box = SecretBox(index_key(office))
        self._kits: dict[str, KitPublicKeys] = {}

    @classmethod
    def from_settings(cls) -> RecordBook:
        """From the web app's settings; :class:`RecordUnavailable` saying what is missing."""
        from django.conf import settings

        keys, kits = getattr(settings, "OFFICE_KEYS_DIR", ""), getattr(settings, "KITS_DIR", "")
        if not keys or not kits:
            raise RecordUnavailable(
                id="Kunci kantor atau folder kunci kit tidak diatur (office web --keys --kits)",
                en="The office keys or the kits' key folder is not set (office web --keys "
                   "--kits)", code="no_keys")
        try:
            return cls(OfficeKeys.load(Path(keys)), Path(kits))
        except KeyFileError as exc:
            raise RecordUnavailable(id=exc.text("id"), en=exc.text("en"),
                                    code="no_keys") from exc

    def kit_key(self, kit_id: str) -> VerifyKey:
        keys = self._kits.get(kit_id)
        if keys is None:
            try:
                keys = KitPublicKeys.load(self.kits_dir / kit_id)
            except KeyFileError as exc:
                raise RecordUnavailable(
                    id=f"Kunci publik kit {kit_id} tidak ada", en=f"No public keys for kit "
                    f"{kit_id}", code="kit_unknown") from exc
            self._kits[kit_id] = keys
        return keys.sign

    def open(self, kit_id: str, record_id: str) -> OpenedRecord:
        """The stored record, verified and decrypted in memory."""
        from office.models import Record

        row = Record.objects.using(self.using).filter(kit_id=kit_id, record_id=record_id).only(
            "blob", "received_at").first()
        if row is None:
            raise RecordUnavailable(id="Rekaman tidak ada", en="No such record",
                                    code="not_found")
        try:
            header, recording = open_record(bytes(row.blob), self.office, self.kit_key)
        except RecordUnavailable:
            raise
        except JaranIjoError as exc:
            raise RecordUnavailable(id=exc.text("id"), en=exc.text("en"),
                                    code=f"unopenable:{exc.code}") from exc
        if header.get("kit_id") != kit_id or header.get("record_id") != record_id:
            raise RecordUnavailable(id="Kepala amplop tidak cocok dengan rekaman",
                                    en="The envelope's header does not match the record",
                                    code="header_mismatch")
        return OpenedRecord(kit_id, record_id, header, recording, float(row.received_at))

    # -- the index -----------------------------------------------------------------------
    def seal_person(self, recording: Recording) -> bytes:
        t = recording.target
        return bytes(self._box.encrypt(cbor2.dumps(
            {"name": t.name, "nik": t.nik, "kk": t.kk, "born": t.birth_date.isoformat(),
             "target": t.id}, canonical=True)))

    def person(self, sealed: bytes | memoryview | None) -> Person | None:
        """The resident from a review row's ``sealed`` (None when absent or not ours)."""
        if not sealed:
            return None
        try:
            d = cbor2.loads(self._box.decrypt(bytes(sealed)))
        except (CryptoError, ValueError, cbor2.CBORDecodeError):
            return None
        return Person(name=str(d.get("name", "")), nik=str(d.get("nik", "")),
                      birth_date=str(d.get("born", "")), target_id=str(d.get("target", "")),
                      kk=str(d.get("kk", "")))

    def index(self, kit_id: str, record_id: str) -> Any:
        """Open a stored record and write (or refresh) its review row's index fields; the
        review state and the clock's marks are kept. A record that cannot be opened gets
        a row with ``open_error`` and nothing else."""
        from office.models import RecordReview

        review = RecordReview.objects.using(self.using).filter(
            kit_id=kit_id, record_id=record_id).first()
        if review is None:
            review = RecordReview(kit_id=kit_id, record_id=record_id)
        review.indexed_at = time.time()
        try:
            opened = self.open(kit_id, record_id)
        except RecordUnavailable as exc:
            review.open_error = f"{exc.code}: {exc.text('en')}"[:300]
            review.save(using=self.using)
            return review
        r = opened.recording
        missing = missing_parts(r)
        review.open_error = ""
        review.started_at = r.started_at.timestamp()
        review.duration_s = None if r.finished_at is None else \
            (r.finished_at - r.started_at).total_seconds()
        review.village = r.target.address.desa
        review.kecamatan = r.target.address.kecamatan
        review.officers = ",".join(r.officers)
        review.outcome = "" if r.outcome is None else r.outcome.value
        review.complete = not missing
        review.missing = ",".join(missing)
        review.sealed = self.seal_person(r)
        if review.complete and review.complete_on is None:
            review.complete_on = local_day(opened.received_at)
        review.save(using=self.using)
        from office.visits import close_target  # the visit flow builds on the records

        t = r.target  # the person just sealed, without opening it again
        close_target(review, Person(name=t.name, nik=t.nik, birth_date=t.birth_date.isoformat(),
                                    target_id=t.id, kk=t.kk), using=self.using)
        return review

    def index_new(self, limit: int = 500) -> int:
        """Index stored records that have no review row yet (oldest first); how many."""
        from django.db.models import Exists, OuterRef

        from office.models import Record, RecordReview

        reviewed = RecordReview.objects.using(self.using).filter(
            kit_id=OuterRef("kit_id"), record_id=OuterRef("record_id"))
        # One query, the database doing the difference (every page that lists records
        # calls this first; reading both tables whole would grow with the office).
        todo = list(Record.objects.using(self.using).filter(~Exists(reviewed))
                    .order_by("received_at").values_list("kit_id", "record_id")[:limit])
        for kit_id, record_id in todo:
            self.index(kit_id, record_id)
        return len(todo)


def local_day(t: float) -> dt.date:
    """The office's (WIB) calendar day of Unix time ``t``."""
    from django.utils import timezone

    return timezone.localtime(dt.datetime.fromtimestamp(t, tz=dt.UTC)).date()
