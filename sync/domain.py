"""The kit's domain model: who is visited, by whom, and what was recorded.

An :class:`Assignment` is one day's visit to one village: the officers, the
kit they carry, the village staff who walk them to the houses, and the
:class:`Target` residents (the *data sasaran*) they are to record. At each
bedside the kit builds one :class:`Recording`: a face photo, up to ten
fingerprints (or the reason a finger could not be taken), a signature (or
the reason the person cannot sign), where and when, and the outcome of the
visit.

Every check a person's data must pass lives here, with messages in Bahasa
Indonesia and English, so the kiosk, the office import and the command line
refuse the same things for the same reasons. The NIK check follows the
number's layout (Kemendagri)::

    35 05 11 441139 0007
    |  |  |  |      +-- serial, 0001-9999
    |  |  |  +--------- birth date DDMMYY; women add 40 to the day
    |  |  +------------ district (kecamatan) where the number was issued
    |  +--------------- regency/city
    +------------------ province

>>> info = validate_nik("3505114411390007")
>>> info.sex, info.birth_date.isoformat(), info.region_code
(<Sex.FEMALE: 'female'>, '1939-11-04', '35.05.11')

Objects turn into plain, CBOR-friendly dictionaries with ``to_canonical()``
(for sealing and storage) and back with ``from_canonical()``, which refuses
damaged data with a :class:`~sync.errors.ValidationError` naming the field.

Personal data never goes into messages or ``repr()`` here: an error says
*which part* of a NIK is wrong, never the NIK, because messages end up in
logs and on screens other people can see.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, Self, TypeVar, cast

from sync import regions
from sync.errors import LANGUAGES, ValidationError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the canonical form; bumped when a field changes meaning."""

MAX_AGE = 125
"""Oldest plausible age in years, used to pick a NIK's century."""

SAMPLE_ASSIGNMENT_PATH = Path(__file__).parent / "samples" / "assignment_kanigoro.json"
"""A sample assignment of invented residents of Desa Papungan, Kecamatan Kanigoro."""


def _software_version() -> str:
    from sync import __version__

    return __version__


# --------------------------------------------------------------------------
# Enumerations with labels in both languages
# --------------------------------------------------------------------------


def _pick(labels: dict[str, str], lang: str) -> str:
    return labels[lang] if lang in LANGUAGES else labels["id"]


class LabelledStrEnum(StrEnum):
    """A string enumeration whose members carry an Indonesian and an English label.

    Members are declared as ``NAME = value, label_id, label_en``; the value is
    what is stored and sent, the labels are what people read.
    """

    _labels: dict[str, str]

    def __new__(cls, value: str, label_id: str, label_en: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member._labels = {"id": label_id, "en": label_en}
        return member

    def label(self, lang: str = "id") -> str:
        """What to show an officer, in ``lang`` (``id`` or ``en``; anything else gives ``id``)."""
        return _pick(self._labels, lang)


class LabelledIntEnum(IntEnum):
    """An integer enumeration with an Indonesian and an English label per member."""

    _labels: dict[str, str]

    def __new__(cls, value: int, label_id: str, label_en: str) -> Self:
        member = int.__new__(cls, value)
        member._value_ = value
        member._labels = {"id": label_id, "en": label_en}
        return member

    def label(self, lang: str = "id") -> str:
        """What to show an officer, in ``lang`` (``id`` or ``en``)."""
        return _pick(self._labels, lang)


class Sex(LabelledStrEnum):
    """Sex as printed on the KTP-el ("L" laki-laki, "P" perempuan).

    >>> Sex.parse("P").label("en")
    'Female'
    """

    MALE = "male", "Laki-laki", "Male"
    FEMALE = "female", "Perempuan", "Female"

    @property
    def code(self) -> str:
        """The one-letter code on Indonesian forms: ``L`` or ``P``."""
        return "L" if self is Sex.MALE else "P"

    def short(self, lang: str = "id") -> str:
        """One letter for narrow table columns: L/P in Indonesian, M/F in English."""
        if lang == "en":
            return "M" if self is Sex.MALE else "F"
        return self.code

    @classmethod
    def parse(cls, text: str) -> Sex:
        """Read sex as typed in a village's list: ``L``/``P``, ``Laki-laki``, ``female``...

        Raises :class:`ValidationError` (code ``sex``) for anything else.
        """
        key = text.strip().casefold().replace(" ", "-")
        if key in ("l", "lk", "laki-laki", "laki", "pria", "m", "male"):
            return cls.MALE
        if key in ("p", "pr", "perempuan", "wanita", "f", "female"):
            return cls.FEMALE
        raise ValidationError(
            id="Jenis kelamin tidak dikenali",
            en="Sex not recognised",
            hint_id="Tulis L (laki-laki) atau P (perempuan)",
            hint_en="Write L (male) or P (female)",
            code="sex",
        )


class Category(LabelledStrEnum):
    """Why the resident cannot come to the office (the SOP's target groups)."""

    LANSIA = "lansia", "Lansia", "Elderly"
    DISABILITAS = "disabilitas", "Penyandang disabilitas", "Person with a disability"
    ODGJ = "odgj", "ODGJ (orang dengan gangguan jiwa)", "Person with a mental illness"
    SAKIT = "sakit", "Sakit / terbaring", "Ill or bedridden"
    LAINNYA = "lainnya", "Lainnya", "Other"


class Place(LabelledStrEnum):
    """Where the officers will find the resident."""

    HOME = "home", "Rumah", "Home"
    HOSPITAL = "hospital", "Rumah sakit", "Hospital"
    CARE_HOME = "care_home", "Panti", "Care home"


class Outcome(LabelledStrEnum):
    """How a visit ended. Only ``recorded`` and ``partial`` carry biometrics."""

    RECORDED = "recorded", "Terekam lengkap", "Recorded"
    PARTIAL = "partial", "Terekam sebagian", "Partly recorded"
    REFUSED = "refused", "Menolak direkam", "Refused"
    NOT_HOME = "not_home", "Tidak ada di tempat", "Not at home"
    DECEASED = "deceased", "Meninggal dunia", "Deceased"
    MOVED = "moved", "Pindah", "Moved away"
    UNFIT = "unfit", "Kondisi tidak memungkinkan", "Not fit to be recorded"
    NOT_FOUND = "not_found", "Alamat tidak ditemukan", "Not found"
    OTHER = "other", "Lainnya", "Other"

    @property
    def carries_biometrics(self) -> bool:
        """True for the outcomes whose recording holds a photo, prints or a signature."""
        return self in (Outcome.RECORDED, Outcome.PARTIAL)


class FingerPosition(LabelledIntEnum):
    """Finger positions as numbered in ISO/IEC 19794-4: right hand 1-5, left hand 6-10,
    thumb to little finger.

    >>> FingerPosition(7).label("en"), FingerPosition(7).hand
    ('Left index', 'left')
    """

    RIGHT_THUMB = 1, "Ibu jari kanan", "Right thumb"
    RIGHT_INDEX = 2, "Telunjuk kanan", "Right index"
    RIGHT_MIDDLE = 3, "Jari tengah kanan", "Right middle"
    RIGHT_RING = 4, "Jari manis kanan", "Right ring"
    RIGHT_LITTLE = 5, "Kelingking kanan", "Right little"
    LEFT_THUMB = 6, "Ibu jari kiri", "Left thumb"
    LEFT_INDEX = 7, "Telunjuk kiri", "Left index"
    LEFT_MIDDLE = 8, "Jari tengah kiri", "Left middle"
    LEFT_RING = 9, "Jari manis kiri", "Left ring"
    LEFT_LITTLE = 10, "Kelingking kiri", "Left little"

    @property
    def hand(self) -> str:
        """``"right"`` or ``"left"``."""
        return "right" if self <= 5 else "left"

    @property
    def is_thumb(self) -> bool:
        return self in (FingerPosition.RIGHT_THUMB, FingerPosition.LEFT_THUMB)


class FingerException(LabelledStrEnum):
    """Why a finger's print was not taken."""

    AMPUTATED = "amputated", "Jari tidak ada (amputasi)", "Finger missing (amputated)"
    BANDAGED = "bandaged", "Diperban / terluka", "Bandaged or injured"
    CANNOT_EXTEND = "cannot_extend", "Jari tidak bisa diluruskan", "Finger cannot be extended"
    SKIN_CONDITION = "skin_condition", "Kelainan kulit / sidik aus", "Skin condition or worn ridges"
    TREMOR_UNCOOPERATIVE = (
        "tremor_uncooperative",
        "Tremor / tidak kooperatif",
        "Tremor or uncooperative",
    )
    OTHER = "other", "Lainnya", "Other"


class TargetStatus(LabelledStrEnum):
    """Where a target stands in the assignment, as the kit and the office list it."""

    PENDING = "pending", "Belum dikunjungi", "Not visited yet"
    IN_PROGRESS = "in_progress", "Sedang direkam", "Recording in progress"
    RECORDED = "recorded", "Terekam", "Recorded"
    PARTIAL = "partial", "Terekam sebagian", "Partly recorded"
    NOT_RECORDED = "not_recorded", "Tidak terekam", "Not recorded"


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class FieldError(ValidationError):
    """A :class:`ValidationError` that also names the field at fault, so a form can mark it."""

    def __init__(
        self,
        code: str,
        field: str,
        *,
        id: str,
        en: str,
        hint_id: str = "",
        hint_en: str = "",
    ) -> None:
        self.field = field
        super().__init__(id=id, en=en, hint_id=hint_id, hint_en=hint_en, code=code)


@dataclass(frozen=True)
class Problem:
    """One fault found in an assignment; ``target_index`` counts from 1, ``None`` for
    the assignment itself."""

    target_index: int | None
    target_id: str | None
    error: ValidationError

    def text(self, lang: str = "id") -> str:
        if self.target_index is None:
            return self.error.text(lang)
        where = "Sasaran no." if lang != "en" else "Target no."
        return f"{where} {self.target_index}: {self.error.text(lang)}"


class AssignmentInvalid(ValidationError):
    """An assignment with one or more faults; all of them are in :attr:`problems`."""

    code = "assignment_invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = 3
        rest = len(problems) - shown

        def summary(lang: str) -> str:
            parts = [p.text(lang) for p in problems[:shown]]
            if rest > 0:
                parts.append(f"(+{rest} lagi)" if lang == "id" else f"(+{rest} more)")
            return "; ".join(parts)

        super().__init__(
            id=f"Penugasan berisi {len(problems)} masalah: {summary('id')}",
            en=f"The assignment has {len(problems)} problem(s): {summary('en')}",
            hint_id="Perbaiki data sasaran di kantor lalu kirim ulang penugasan",
            hint_en="Correct the target data at the office and send the assignment again",
        )


# --------------------------------------------------------------------------
# NIK and KK
# --------------------------------------------------------------------------

_NIK_HINT_ID = "Cocokkan NIK dengan KTP-el atau Kartu Keluarga"
_NIK_HINT_EN = "Compare the NIK with the KTP-el or the family card"


def _nik_error(code: str, id: str, en: str, hint_id: str = _NIK_HINT_ID,
               hint_en: str = _NIK_HINT_EN, field: str = "nik") -> FieldError:
    return FieldError(code, field, id=id, en=en, hint_id=hint_id, hint_en=hint_en)


@dataclass(frozen=True)
class NikInfo:
    """What a well-formed NIK says about its holder.

    ``birth_date_ambiguous`` is true when the two-digit year fits two
    centuries (for example ``20`` for someone aged 6 or 106) and no birth
    date was given to decide: the younger reading was taken.
    """

    province: str
    regency: str
    district: str
    birth_date: date
    sex: Sex
    serial: str
    birth_date_ambiguous: bool = False

    def __repr__(self) -> str:
        # The birth date and sex are personal data; keep them out of stray log lines.
        return f"NikInfo(region={self.region_code})"

    @property
    def region_code(self) -> str:
        """The issuing region as Kemendagri writes it, e.g. ``35.05.11``."""
        return f"{self.province}.{self.regency}.{self.district}"

    @property
    def province_name(self) -> str:
        return regions.PROVINCES[self.province]

    @property
    def issued_in_blitar(self) -> bool:
        """True when the number was issued by Kabupaten Blitar (35.05)."""
        return (self.province, self.regency) == (regions.JAWA_TIMUR, regions.BLITAR_REGENCY)


def _is_digits(text: object, length: int) -> bool:
    # isdigit() alone accepts Arabic-Indic, full-width and superscript digits.
    return isinstance(text, str) and len(text) == length and text.isascii() and text.isdigit()


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _nik_day(raw_day: int) -> tuple[int, Sex] | None:
    if 1 <= raw_day <= 31:
        return raw_day, Sex.MALE
    if 41 <= raw_day <= 71:
        return raw_day - 40, Sex.FEMALE
    return None


def _birth_candidates(day: int, month: int, yy: int, today: date) -> list[date]:
    """Real dates with this day, month and two-digit year at an age of 0..MAX_AGE, newest first.

    The century matters for validity too: 29 February exists in 2000 but not in 1900.
    """
    found = []
    for century in range(today.year // 100, (today.year - MAX_AGE) // 100 - 1, -1):
        try:
            born = date(century * 100 + yy, month, day)
        except ValueError:
            continue
        if 0 <= _age(born, today) <= MAX_AGE:
            found.append(born)
    return found


def validate_nik(
    nik: object,
    birth_date: date | None = None,
    sex: Sex | None = None,
    *,
    today: date | None = None,
) -> NikInfo:
    """Check a NIK (Nomor Induk Kependudukan) and decode it.

    ``nik`` must be exactly 16 ASCII digits: spaces, dots, letters and
    look-alike digits (Arabic-Indic, full-width) are refused rather than
    cleaned up, because a number that was typed wrong should be retyped from
    the card, not guessed. The region must be plausible (see
    :mod:`sync.regions`); the birth-date part must be a real date (women add
    40 to the day) and, when ``birth_date`` and ``sex`` are given, agree with
    them; the serial must not be ``0000``.

    Without ``birth_date`` the century is the one that puts the holder's age
    between 0 and :data:`MAX_AGE` on ``today`` (the younger when both fit).
    With it, only the two-digit year is compared.

    Raises :class:`FieldError` (a :class:`ValidationError`) with code
    ``nik_format``, ``nik_province``, ``nik_regency``, ``nik_district``,
    ``nik_birth_date``, ``nik_birth_date_mismatch``, ``nik_sex_mismatch`` or
    ``nik_serial``.
    """
    if not _is_digits(nik, 16):
        if isinstance(nik, str) and len(nik) != 16:
            found_id = f" (terbaca {len(nik)} karakter)"
            found_en = f" ({len(nik)} characters read)"
        elif isinstance(nik, str):
            found_id = " (ada karakter selain angka 0-9)"
            found_en = " (it holds characters other than 0-9)"
        else:
            found_id = found_en = ""
        raise _nik_error(
            "nik_format",
            id=f"NIK harus tepat 16 angka{found_id}",
            en=f"A NIK must be exactly 16 digits{found_en}",
            hint_id="Ketik ulang NIK dari KTP-el atau KK, tanpa spasi, titik atau huruf",
            hint_en="Type the NIK again from the KTP-el or family card, without spaces, "
            "dots or letters",
        )
    nik = cast(str, nik)
    province, regency, district = nik[0:2], nik[2:4], nik[4:6]
    fault = regions.check_region(province, regency, district)
    if fault == "province":
        raise _nik_error(
            "nik_province",
            id="Kode provinsi pada NIK (angka ke-1 dan ke-2) tidak ada",
            en="The province code in the NIK (digits 1-2) does not exist",
        )
    if fault == "regency":
        raise _nik_error(
            "nik_regency",
            id="Kode kabupaten/kota pada NIK (angka ke-3 dan ke-4) tidak ada",
            en="The regency/city code in the NIK (digits 3-4) does not exist",
        )
    if fault == "district":
        raise _nik_error(
            "nik_district",
            id="Kode kecamatan pada NIK (angka ke-5 dan ke-6) tidak ada",
            en="The district code in the NIK (digits 5-6) does not exist",
        )

    today = today or date.today()
    raw_day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    decoded = _nik_day(raw_day)
    candidates = _birth_candidates(decoded[0], month, yy, today) if decoded else []
    if decoded is None or not candidates:
        raise _nik_error(
            "nik_birth_date",
            id="Bagian tanggal lahir pada NIK (angka ke-7 s.d. ke-12) bukan tanggal yang mungkin",
            en="The birth-date part of the NIK (digits 7-12) is not a possible date",
            hint_id="Pada NIK perempuan tanggal lahir ditambah 40 (tanggal 5 ditulis 45); "
            "cocokkan NIK dengan KTP-el atau KK",
            hint_en="In a woman's NIK the birth day has 40 added (the 5th is written 45); "
            "compare the NIK with the KTP-el or family card",
        )
    day, nik_sex = decoded

    ambiguous = False
    if birth_date is not None:
        if (birth_date.day, birth_date.month, birth_date.year % 100) != (day, month, yy):
            raise _nik_error(
                "nik_birth_date_mismatch",
                id="Tanggal lahir pada NIK (angka ke-7 s.d. ke-12) tidak sama dengan "
                "tanggal lahir sasaran",
                en="The birth date in the NIK (digits 7-12) differs from the target's "
                "birth date",
                hint_id="Cocokkan NIK dan tanggal lahir dengan KK; salah satunya salah ketik",
                hint_en="Check both the NIK and the birth date against the family card; "
                "one of them was mistyped",
            )
        born = birth_date
    else:
        born = candidates[0]
        ambiguous = len(candidates) > 1
    if sex is not None and sex is not nik_sex:
        raise _nik_error(
            "nik_sex_mismatch",
            id="Jenis kelamin menurut NIK tidak sama dengan data sasaran",
            en="The sex the NIK encodes differs from the target's sex",
            hint_id="Pada NIK perempuan tanggal lahir ditambah 40; cocokkan NIK dan jenis "
            "kelamin dengan KK",
            hint_en="In a woman's NIK the birth day has 40 added; check the NIK and the sex "
            "against the family card",
        )
    serial = nik[12:16]
    if serial == "0000":
        raise _nik_error(
            "nik_serial",
            id="Nomor urut pada NIK (angka ke-13 s.d. ke-16) tidak boleh 0000",
            en="The serial in the NIK (digits 13-16) cannot be 0000",
        )
    return NikInfo(province, regency, district, born, nik_sex, serial, ambiguous)


def validate_kk(kk: object) -> str:
    """Check a family-card number (Nomor Kartu Keluarga) and return its region code.

    A KK number is 16 ASCII digits whose first six are the issuing region,
    checked like a NIK's. The rest (issue date and serial) is not checked:
    old cards follow older numbering rules.

    Raises :class:`FieldError` with code ``kk_format`` or ``kk_region``.
    """
    if not _is_digits(kk, 16):
        raise _nik_error(
            "kk_format",
            id="Nomor KK harus tepat 16 angka",
            en="A family card (KK) number must be exactly 16 digits",
            hint_id="Ketik ulang nomor KK dari Kartu Keluarga, tanpa spasi atau huruf",
            hint_en="Type the KK number again from the family card, without spaces or letters",
            field="kk",
        )
    kk = cast(str, kk)
    fault = regions.check_region(kk[0:2], kk[2:4], kk[4:6])
    if fault is not None:
        part_id = {"province": "provinsi", "regency": "kabupaten/kota", "district": "kecamatan"}
        raise _nik_error(
            "kk_region",
            id=f"Kode wilayah pada nomor KK (angka ke-1 s.d. ke-6) tidak ada: "
            f"kode {part_id[fault]} salah",
            en=f"The region code in the KK number (digits 1-6) does not exist: "
            f"the {fault} code is wrong",
            hint_id="Cocokkan nomor KK dengan Kartu Keluarga",
            hint_en="Compare the number with the family card",
            field="kk",
        )
    return f"{kk[0:2]}.{kk[2:4]}.{kk[4:6]}"


# --------------------------------------------------------------------------
# UUID version 7
# --------------------------------------------------------------------------

_uuid7_lock = threading.Lock()
_uuid7_last = (0, 0)  # (unix ms, 74 random bits) of the last id made in this process
_RAND_BITS = 74


def uuid7() -> str:
    """A new RFC 9562 UUID version 7, as the usual 36-character lowercase string.

    48 bits of Unix time in milliseconds, then the version (7), 12 random
    bits, the variant (binary 10) and 62 more random bits. Ids sort by
    creation time, so records list in the order they were made and a
    database index on them stays compact.

    Within one process ids are strictly increasing even when many are made in
    the same millisecond or the clock steps back (the kit's clock is set from
    GNSS or NTP and can jump): the last timestamp is kept and the random part
    is incremented by a random step (RFC 9562 section 6.2, method 2).
    """
    return _uuid7_at(time.time_ns() // 1_000_000)


def _uuid7_at(unix_ms: int) -> str:
    global _uuid7_last
    with _uuid7_lock:
        last_ms, last_rand = _uuid7_last
        if unix_ms <= last_ms:
            if last_ms - unix_ms > 1000:
                logger.warning("clock is %d ms behind the last id; keeping ids ordered",
                               last_ms - unix_ms)
            unix_ms = last_ms
            rand = last_rand + 1 + secrets.randbits(16)
            if rand >> _RAND_BITS:
                unix_ms += 1
                rand = secrets.randbits(_RAND_BITS)
        else:
            rand = secrets.randbits(_RAND_BITS)
        _uuid7_last = (unix_ms, rand)
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (
        (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    )
    return str(uuid.UUID(int=value))


def uuid7_time(value: str) -> datetime:
    """When a UUIDv7 was made (UTC, millisecond precision)."""
    parsed = uuid.UUID(value)
    if parsed.version != 7:
        raise ValueError("not a UUID version 7")
    return datetime.fromtimestamp((parsed.int >> 80) / 1000, tz=UTC)


# --------------------------------------------------------------------------
# Canonical form helpers
# --------------------------------------------------------------------------

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MISSING: Any = object()
E = TypeVar("E", bound=StrEnum)

_DATA_HINT_ID = "Data rusak atau dari versi lain; minta kantor mengirim ulang atau perbarui kit"
_DATA_HINT_EN = "The data is damaged or from another version; ask the office to send it " \
    "again or update the kit"

_TYPE_NAMES = {
    str: ("teks", "text"),
    int: ("bilangan bulat", "an integer"),
    float: ("bilangan", "a number"),
    bool: ("benar/salah", "true/false"),
    bytes: ("data biner", "binary data"),
    list: ("daftar", "a list"),
    dict: ("peta kunci-nilai", "a map"),
}


def _data_error(code: str, where: str, id: str, en: str) -> FieldError:
    return FieldError(code, where, id=f"Data {where}: {id}", en=f"Data {where}: {en}",
                      hint_id=_DATA_HINT_ID, hint_en=_DATA_HINT_EN)


def _stamp(value: datetime, where: str) -> str:
    """A moment as ISO 8601 UTC with microseconds and ``Z``: one spelling per instant,
    so the same recording always gives the same bytes."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise _data_error("data_naive_time", where, "waktu tanpa zona waktu",
                          "time without a time zone")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _opt_stamp(value: datetime | None, where: str) -> str | None:
    return None if value is None else _stamp(value, where)


class _Fields:
    """Typed reading of one map of canonical data; every fault becomes a ValidationError
    naming the field path (never the value, which may be personal)."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise _data_error("data_type", where, "harus berupa peta kunci-nilai",
                              "must be a map")
        self.data: dict[Any, Any] = data
        self.where = where
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"

    def get(self, key: str, kind: type, *, nullable: bool = False,
            default: Any = _MISSING) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is not _MISSING:
                return default
            raise _data_error("data_missing", self.path(key), "kolom tidak ada",
                              "field is missing")
        value = self.data[key]
        if value is None and nullable:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and ok and not math.isfinite(value):
            raise _data_error("data_value", self.path(key), "bilangan tidak terhingga",
                              "number is not finite")
        if not ok:
            name_id, name_en = _TYPE_NAMES[kind]
            null_id, null_en = (" atau kosong", " or null") if nullable else ("", "")
            raise _data_error("data_type", self.path(key),
                              f"harus {name_id}{null_id}", f"must be {name_en}{null_en}")
        return value

    def str_list(self, key: str, default: Any = _MISSING) -> list[str]:
        items = self.get(key, list, default=default)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise _data_error("data_type", f"{self.path(key)}[{i}]", "harus teks",
                                  "must be text")
        return list(items)

    def str_map(self, key: str, kind: type) -> dict[str, Any]:
        raw = self.get(key, dict)
        inner = _Fields(raw, self.path(key))
        return {k: inner.get(k, kind) for k in sorted(_keys_as_str(raw, self.path(key)))}

    def date(self, key: str) -> date:
        text = self.get(key, str)
        try:
            if not _DATE_RE.fullmatch(text):
                raise ValueError
            return date.fromisoformat(text)
        except ValueError:
            raise _data_error("data_value", self.path(key), "bukan tanggal YYYY-MM-DD",
                              "not a YYYY-MM-DD date") from None

    def moment(self, key: str, *, nullable: bool = False) -> datetime | None:
        text = self.get(key, str, nullable=nullable)
        if text is None:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise _data_error("data_value", self.path(key), "bukan waktu ISO 8601",
                              "not an ISO 8601 time") from None
        if value.utcoffset() is None:
            raise _data_error("data_value", self.path(key), "waktu tanpa zona waktu",
                              "time without a time zone")
        return value

    def enum(self, key: str, kind: type[E], *, nullable: bool = False) -> E | None:
        text = self.get(key, str, nullable=nullable)
        if text is None:
            return None
        try:
            return kind(text)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise _data_error("data_value", self.path(key),
                              f"nilai harus salah satu dari {allowed}",
                              f"value must be one of {allowed}") from None

    def nested(self, key: str, build: Callable[[object, str], Any], *,
               nullable: bool = False) -> Any:
        value = self.get(key, dict, nullable=nullable)
        return None if value is None else build(value, self.path(key))

    def done(self) -> None:
        """Refuse keys nobody read: a misspelt or newer field must not vanish silently."""
        unknown = sorted(str(k)[:30] for k in self.data if k not in self.seen)
        if unknown:
            listed = ", ".join(unknown[:3]) + (" ..." if len(unknown) > 3 else "")
            raise _data_error("data_unknown", self.where, f"kolom tidak dikenal: {listed}",
                              f"unknown field(s): {listed}")


def _keys_as_str(data: dict[Any, Any], where: str) -> list[str]:
    for key in data:
        if not isinstance(key, str):
            raise _data_error("data_type", where, "kunci harus teks", "keys must be text")
    return list(data)


def _check_schema(fields: _Fields) -> None:
    version = fields.get("schema", int, default=SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise _data_error("data_schema", fields.path("schema"),
                          f"versi skema {version} tidak didukung (kit ini: {SCHEMA_VERSION})",
                          f"schema version {version} not supported (this kit: {SCHEMA_VERSION})")


def _plausible_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


# --------------------------------------------------------------------------
# Targets and assignments
# --------------------------------------------------------------------------


def _small_number(text: str) -> bool:
    return _is_digits(text, len(text)) and 1 <= len(text) <= 3 and int(text) > 0


@dataclass
class Address:
    """A resident's address as on the family card: RT/RW are kept as typed ("003")."""

    street: str
    rt: str
    rw: str
    dusun: str
    desa: str
    kecamatan: str
    kabupaten: str = "Blitar"

    def line(self, lang: str = "id") -> str:
        """One line for a list on screen, e.g. ``RT 003/RW 001, Dsn. Krajan, Ds. Papungan,
        Kec. Kanigoro``."""
        parts = [self.street] if self.street else []
        parts.append(f"RT {self.rt}/RW {self.rw}")
        if self.dusun:
            parts.append(f"Dsn. {self.dusun}")
        parts += [f"Ds. {self.desa}", f"Kec. {self.kecamatan}"]
        if self.kabupaten.strip().casefold() != "blitar":
            parts.append(f"Kab. {self.kabupaten}" if lang != "en" else self.kabupaten)
        return ", ".join(parts)

    def problems(self) -> list[ValidationError]:
        found: list[ValidationError] = []
        for name, value in (("rt", self.rt), ("rw", self.rw)):
            if not _small_number(value):
                found.append(FieldError(
                    f"address_{name}", f"address.{name}",
                    id=f"{name.upper()} harus 1 sampai 3 angka dan bukan nol",
                    en=f"The {name.upper()} must be 1 to 3 digits, not zero",
                    hint_id=f"Tulis nomor {name.upper()} dari KK, mis. 003",
                    hint_en=f"Write the {name.upper()} number from the family card, e.g. 003",
                ))
        if not self.desa.strip():
            found.append(FieldError(
                "address_desa", "address.desa",
                id="Desa/kelurahan belum diisi", en="The village (desa/kelurahan) is missing",
                hint_id="Isi nama desa/kelurahan", hint_en="Fill in the village",
            ))
        if self.kabupaten.strip().casefold() == "blitar" and (
            regions.find_kecamatan(self.kecamatan) is None
        ):
            found.append(FieldError(
                "address_kecamatan", "address.kecamatan",
                id="Kecamatan tidak ada di Kabupaten Blitar",
                en="No such kecamatan in Kabupaten Blitar",
                hint_id="Pilih salah satu dari 22 kecamatan Kabupaten Blitar",
                hint_en="Choose one of the 22 kecamatan of Kabupaten Blitar",
            ))
        return found

    def to_canonical(self) -> dict[str, Any]:
        return {
            "street": self.street, "rt": self.rt, "rw": self.rw, "dusun": self.dusun,
            "desa": self.desa, "kecamatan": self.kecamatan, "kabupaten": self.kabupaten,
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "address") -> Address:
        f = _Fields(data, where)
        address = cls(
            street=f.get("street", str, default=""),
            rt=f.get("rt", str),
            rw=f.get("rw", str),
            dusun=f.get("dusun", str, default=""),
            desa=f.get("desa", str),
            kecamatan=f.get("kecamatan", str),
            kabupaten=f.get("kabupaten", str, default="Blitar"),
        )
        f.done()
        return address


@dataclass(repr=False)
class Target:
    """A resident the officers are to visit (one row of the village's *data sasaran*).

    ``id`` is a UUID the office gives the target, so records and statuses can
    refer to the person without carrying the NIK around.

    >>> sample = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    >>> sample.targets[0].validate()
    >>> sample.targets[0]
    Target(id='0193a2c4-5e10-7c3a-9b41-2f6d8e0a1b01', category=lansia, place=home)
    """

    id: str
    nik: str
    kk: str
    name: str
    birth_date: date
    sex: Sex
    address: Address
    category: Category
    place: Place
    notes: str = ""

    def __repr__(self) -> str:
        # Targets are personal data: a stray log line must not print them.
        return f"Target(id={self.id!r}, category={self.category.value}, place={self.place.value})"

    def problems(self, *, today: date | None = None) -> list[ValidationError]:
        """Every fault in this target's data, in form order (empty when all is well)."""
        today = today or date.today()
        found: list[ValidationError] = []
        if not _plausible_uuid(self.id):
            found.append(FieldError(
                "target_id", "id", id="ID sasaran bukan UUID", en="The target id is not a UUID",
                hint_id="ID dibuat oleh kantor; impor ulang daftar sasaran",
                hint_en="The office makes the id; import the target list again",
            ))
        if not self.name.strip():
            found.append(FieldError(
                "name_missing", "name", id="Nama belum diisi", en="The name is missing",
                hint_id="Isi nama sesuai KK", hint_en="Fill in the name as on the family card",
            ))
        age = _age(self.birth_date, today)
        birth_ok = 0 <= age <= MAX_AGE
        if not birth_ok:
            found.append(FieldError(
                "birth_date_implausible", "birth_date",
                id="Tanggal lahir tidak mungkin (di masa depan atau umur lebih dari "
                f"{MAX_AGE} tahun)",
                en=f"Impossible birth date (in the future or older than {MAX_AGE} years)",
                hint_id="Cocokkan tanggal lahir dengan KK",
                hint_en="Check the birth date against the family card",
            ))
        try:
            validate_nik(self.nik, self.birth_date if birth_ok else None, self.sex, today=today)
        except ValidationError as exc:
            found.append(exc)
        try:
            validate_kk(self.kk)
        except ValidationError as exc:
            found.append(exc)
        found += self.address.problems()
        return found

    def validate(self, *, today: date | None = None) -> None:
        """Raise the first fault :meth:`problems` finds (NIK and KK checked against the
        birth date and sex, RT/RW 1-3 digits, a known kecamatan)."""
        found = self.problems(today=today)
        if found:
            raise found[0]

    def nik_info(self) -> NikInfo:
        """The decoded NIK (raises like :func:`validate_nik`)."""
        return validate_nik(self.nik, self.birth_date, self.sex)

    def to_canonical(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "nik": self.nik,
            "kk": self.kk,
            "name": self.name,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex.value,
            "address": self.address.to_canonical(),
            "category": self.category.value,
            "place": self.place.value,
            "notes": self.notes,
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "target") -> Target:
        """Rebuild a target; the NIK and KK are *not* checked here (call :meth:`validate`),
        so a stored target with a fault can still be opened and corrected."""
        f = _Fields(data, where)
        _check_schema(f)
        target = cls(
            id=f.get("id", str),
            nik=f.get("nik", str),
            kk=f.get("kk", str),
            name=f.get("name", str),
            birth_date=f.date("birth_date"),
            sex=f.enum("sex", Sex),
            address=f.nested("address", Address.from_canonical),
            category=f.enum("category", Category),
            place=f.enum("place", Place),
            notes=f.get("notes", str, default=""),
        )
        f.done()
        return target


@dataclass(repr=False)
class Assignment:
    """One visit day: officers and a kit go to one village with its list of targets.

    ``officers`` holds officer ids (not names); ``village_staff`` the names of
    the village staff (*pendamping*) who accompany them, as the reply letter
    asks the village to send.

    The office changes a visit by sealing the same ``id`` again, newer; it
    cancels one by sealing it with ``cancelled`` set and no targets (the kit
    then drops the targets nobody touched and keeps every recorded one).
    ``cancelled`` appears in the canonical form only when set, so an
    assignment that was never cancelled keeps its bytes, and its signature.

    >>> a = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    >>> a.validate()
    >>> a.village, len(a.targets)
    ('Papungan', 6)
    >>> "cancelled" in a.to_canonical()
    False
    >>> off = Assignment.from_canonical({**a.to_canonical(), "cancelled": True, "targets": []})
    >>> off.cancelled, off.problems()
    (True, [])
    >>> [p.error.code for p in Assignment.from_canonical(
    ...     {**a.to_canonical(), "cancelled": True}).problems()][:1]
    ['assignment_cancelled_with_targets']
    """

    id: str
    visit_date: date
    village: str
    kecamatan: str
    officers: list[str]
    kit_id: str
    village_staff: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    cancelled: bool = False

    def __repr__(self) -> str:
        return (f"Assignment(id={self.id!r}, visit_date={self.visit_date.isoformat()}, "
                f"kit_id={self.kit_id!r}, targets={len(self.targets)}"
                f"{', cancelled' if self.cancelled else ''})")

    def target(self, target_id: str) -> Target:
        """The target with this id; raises ValidationError ``target_missing``."""
        for t in self.targets:
            if t.id == target_id:
                return t
        raise ValidationError(
            id="Sasaran tidak ada dalam penugasan", en="Target is not in the assignment",
            hint_id="Muat ulang penugasan dari kantor",
            hint_en="Load the assignment from the office again",
            code="target_missing",
        )

    def problems(self, *, today: date | None = None) -> list[Problem]:
        """Every fault: of the assignment itself, then per target (numbered from 1)."""
        found: list[Problem] = []

        def own(code: str, field: str, id: str, en: str, hint_id: str, hint_en: str) -> None:
            err = FieldError(code, field, id=id, en=en, hint_id=hint_id, hint_en=hint_en)
            found.append(Problem(None, None, err))

        if not self.id.strip():
            own("assignment_id", "id", "Penugasan tanpa ID", "The assignment has no id",
                "Kirim ulang penugasan dari kantor", "Send the assignment again from the office")
        if not self.village.strip():
            own("assignment_village", "village", "Desa tujuan belum diisi",
                "The village is missing", "Isi desa tujuan", "Fill in the village")
        if regions.find_kecamatan(self.kecamatan) is None:
            own("assignment_kecamatan", "kecamatan", "Kecamatan tidak ada di Kabupaten Blitar",
                "No such kecamatan in Kabupaten Blitar",
                "Pilih salah satu dari 22 kecamatan", "Choose one of the 22 kecamatan")
        if not [o for o in self.officers if o.strip()]:
            own("assignment_officers", "officers", "Belum ada petugas yang ditugaskan",
                "No officer is assigned", "Tugaskan minimal satu petugas",
                "Assign at least one officer")
        if not self.kit_id.strip():
            own("assignment_kit", "kit_id", "Kit belum ditentukan", "No kit is assigned",
                "Pilih kit yang dibawa petugas", "Choose the kit the officers take")
        if self.cancelled and self.targets:
            own("assignment_cancelled_with_targets", "targets",
                f"Penugasan dibatalkan tetapi masih berisi {len(self.targets)} sasaran",
                f"The assignment is cancelled but still lists {len(self.targets)} target(s)",
                "Kosongkan daftar sasaran atau batalkan pembatalannya",
                "Empty the target list, or do not cancel the assignment")
        if not self.targets and not self.cancelled:
            own("assignment_empty", "targets", "Penugasan tanpa sasaran",
                "The assignment has no targets", "Tambahkan sasaran dari surat desa",
                "Add the targets from the village's letter")
        seen_ids: dict[str, int] = {}
        seen_niks: dict[str, int] = {}
        for number, target in enumerate(self.targets, start=1):
            for err in target.problems(today=today):
                found.append(Problem(number, target.id, err))
            if target.id in seen_ids:
                found.append(Problem(number, target.id, FieldError(
                    "target_duplicate_id", "id",
                    id=f"ID sasaran sama dengan sasaran no. {seen_ids[target.id]}",
                    en=f"Same target id as target no. {seen_ids[target.id]}",
                    hint_id="Impor ulang daftar sasaran", hint_en="Import the target list again",
                )))
            if target.nik in seen_niks:
                found.append(Problem(number, target.id, FieldError(
                    "target_duplicate_nik", "nik",
                    id=f"NIK sama dengan sasaran no. {seen_niks[target.nik]}",
                    en=f"Same NIK as target no. {seen_niks[target.nik]}",
                    hint_id="Hapus sasaran ganda atau perbaiki NIK-nya",
                    hint_en="Remove the duplicate or correct its NIK",
                )))
            seen_ids.setdefault(target.id, number)
            seen_niks.setdefault(target.nik, number)
        return found

    def validate(self, *, today: date | None = None) -> None:
        """Raise :class:`AssignmentInvalid` listing every problem, if there is any."""
        found = self.problems(today=today)
        if found:
            raise AssignmentInvalid(found)

    def to_canonical(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "visit_date": self.visit_date.isoformat(),
            "village": self.village,
            "kecamatan": self.kecamatan,
            "officers": list(self.officers),
            "kit_id": self.kit_id,
            "village_staff": list(self.village_staff),
            "targets": [t.to_canonical() for t in self.targets],
            # Only when set: an assignment never cancelled keeps its canonical bytes.
            **({"cancelled": True} if self.cancelled else {}),
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "assignment") -> Assignment:
        f = _Fields(data, where)
        _check_schema(f)
        raw_targets = f.get("targets", list)
        assignment = cls(
            id=f.get("id", str),
            visit_date=f.date("visit_date"),
            village=f.get("village", str),
            kecamatan=f.get("kecamatan", str),
            officers=f.str_list("officers"),
            kit_id=f.get("kit_id", str),
            village_staff=f.str_list("village_staff", default=[]),
            targets=[Target.from_canonical(t, f"{where}.targets[{i}]")
                     for i, t in enumerate(raw_targets)],
            cancelled=f.get("cancelled", bool, default=False),
        )
        f.done()
        return assignment

    def to_json(self) -> str:
        """The assignment as UTF-8 JSON text (dates as ISO strings), for files and imports."""
        return json.dumps(self.to_canonical(), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Assignment:
        """Read :meth:`to_json` output; bad JSON or fields raise ValidationError."""
        try:
            data = json.loads(text)
        except UnicodeDecodeError:
            raise ValidationError(
                id="Berkas penugasan bukan teks UTF-8", en="The assignment file is not UTF-8 text",
                hint_id="Ekspor ulang dari kantor", hint_en="Export it again from the office",
                code="json_invalid",
            ) from None
        except json.JSONDecodeError as exc:
            raise ValidationError(
                id=f"Berkas penugasan bukan JSON yang sah (baris {exc.lineno}, kolom {exc.colno})",
                en=f"The assignment file is not valid JSON (line {exc.lineno}, "
                f"column {exc.colno})",
                hint_id="Ekspor ulang dari kantor", hint_en="Export it again from the office",
                code="json_invalid",
            ) from None
        return cls.from_canonical(data)


# --------------------------------------------------------------------------
# Recordings
# --------------------------------------------------------------------------


@dataclass
class RecordedFix:
    """Where the kit was when the recording was made, from the modem's GNSS receiver.

    ``accuracy_m`` is the estimated horizontal error in metres (from HDOP);
    ``satellites`` the number used in the fix.
    """

    lat: float
    lon: float
    accuracy_m: float
    altitude_m: float | None
    time_utc: datetime
    satellites: int
    hdop: float

    def to_canonical(self) -> dict[str, Any]:
        return {
            "lat": self.lat, "lon": self.lon, "accuracy_m": self.accuracy_m,
            "altitude_m": self.altitude_m, "time_utc": _stamp(self.time_utc, "gnss.time_utc"),
            "satellites": self.satellites, "hdop": self.hdop,
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "gnss") -> RecordedFix:
        f = _Fields(data, where)
        fix = cls(
            lat=f.get("lat", float), lon=f.get("lon", float),
            accuracy_m=f.get("accuracy_m", float),
            altitude_m=f.get("altitude_m", float, nullable=True),
            time_utc=f.moment("time_utc"), satellites=f.get("satellites", int),
            hdop=f.get("hdop", float),
        )
        f.done()
        if not (-90 <= fix.lat <= 90 and -180 <= fix.lon <= 180):
            raise _data_error("data_value", where, "lintang/bujur di luar jangkauan",
                              "latitude/longitude out of range")
        return fix


@dataclass
class PhotoCapture:
    """The face photo for the KTP-el.

    ``quality_score`` is compared with ``quality_threshold`` (both 0-100);
    a photo below it may be kept only with ``below_threshold_reason`` (for a
    bedridden resident the best photo possible is better than none).
    """

    jpeg: bytes
    width: int
    height: int
    quality_score: int
    quality_threshold: int
    below_threshold_reason: str | None
    captured_at: datetime

    @property
    def ok(self) -> bool:
        return self.quality_score >= self.quality_threshold

    def to_canonical(self) -> dict[str, Any]:
        return {
            "jpeg": self.jpeg, "width": self.width, "height": self.height,
            "quality_score": self.quality_score, "quality_threshold": self.quality_threshold,
            "below_threshold_reason": self.below_threshold_reason,
            "captured_at": _stamp(self.captured_at, "photo.captured_at"),
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "photo") -> PhotoCapture:
        f = _Fields(data, where)
        photo = cls(
            jpeg=f.get("jpeg", bytes), width=f.get("width", int), height=f.get("height", int),
            quality_score=f.get("quality_score", int),
            quality_threshold=f.get("quality_threshold", int),
            below_threshold_reason=f.get("below_threshold_reason", str, nullable=True),
            captured_at=f.moment("captured_at"),
        )
        f.done()
        return photo


@dataclass
class FingerCapture:
    """One finger: its print, or the reason it could not be taken (never both).

    ``attempts`` counts placements on the sensor; ``low_quality_accepted``
    marks a print kept below the quality threshold after repeated tries;
    ``exception_photo_jpeg`` is an optional photo of the hand showing why
    (a bandage, a missing finger) for the office to verify.
    """

    position: FingerPosition
    image_png: bytes | None = None
    quality_score: int | None = None
    attempts: int = 0
    exception: FingerException | None = None
    exception_note: str = ""
    exception_photo_jpeg: bytes | None = None
    low_quality_accepted: bool = False
    captured_at: datetime | None = None

    @property
    def captured(self) -> bool:
        return self.image_png is not None

    @property
    def settled(self) -> bool:
        """True when the finger has a print or a recorded reason for none."""
        return self.captured or self.exception is not None

    @property
    def holds_biometrics(self) -> bool:
        return self.image_png is not None or self.exception_photo_jpeg is not None

    def to_canonical(self) -> dict[str, Any]:
        where = f"fingers.{int(self.position)}.captured_at"
        return {
            "position": int(self.position), "image_png": self.image_png,
            "quality_score": self.quality_score, "attempts": self.attempts,
            "exception": None if self.exception is None else self.exception.value,
            "exception_note": self.exception_note,
            "exception_photo_jpeg": self.exception_photo_jpeg,
            "low_quality_accepted": self.low_quality_accepted,
            "captured_at": _opt_stamp(self.captured_at, where),
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "finger") -> FingerCapture:
        f = _Fields(data, where)
        number = f.get("position", int)
        if not 1 <= number <= 10:
            raise _data_error("data_value", f.path("position"), "posisi jari harus 1-10",
                              "finger position must be 1-10")
        capture = cls(
            position=FingerPosition(number),
            image_png=f.get("image_png", bytes, nullable=True),
            quality_score=f.get("quality_score", int, nullable=True),
            attempts=f.get("attempts", int),
            exception=f.enum("exception", FingerException, nullable=True),
            exception_note=f.get("exception_note", str),
            exception_photo_jpeg=f.get("exception_photo_jpeg", bytes, nullable=True),
            low_quality_accepted=f.get("low_quality_accepted", bool),
            captured_at=f.moment("captured_at", nullable=True),
        )
        f.done()
        return capture


Point = tuple[float, float, float]


@dataclass
class SignatureCapture:
    """The resident's signature on the touchscreen, or why they cannot sign.

    ``strokes`` are the pen-down paths, each a list of ``(x, y, t)``: x and y
    in screen pixels from the top left of the signing box, t in seconds
    since the box was shown. ``image_png`` is the rendered signature.
    """

    strokes: list[list[Point]] = field(default_factory=list)
    image_png: bytes | None = None
    cannot_sign_reason: str | None = None

    @property
    def signed(self) -> bool:
        return bool(self.strokes) or self.image_png is not None

    def to_canonical(self) -> dict[str, Any]:
        return {
            "strokes": [[[x, y, t] for x, y, t in stroke] for stroke in self.strokes],
            "image_png": self.image_png,
            "cannot_sign_reason": self.cannot_sign_reason,
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "signature") -> SignatureCapture:
        f = _Fields(data, where)
        strokes: list[list[Point]] = []
        for i, stroke in enumerate(f.get("strokes", list)):
            here = f"{f.path('strokes')}[{i}]"
            if not isinstance(stroke, list):
                raise _data_error("data_type", here, "harus daftar titik",
                                  "must be a list of points")
            points: list[Point] = []
            for j, point in enumerate(stroke):
                points.append(_point(point, f"{here}[{j}]"))
            strokes.append(points)
        signature = cls(
            strokes=strokes,
            image_png=f.get("image_png", bytes, nullable=True),
            cannot_sign_reason=f.get("cannot_sign_reason", str, nullable=True),
        )
        f.done()
        return signature


def _point(value: object, where: str) -> Point:
    if not (isinstance(value, list | tuple) and len(value) == 3):
        raise _data_error("data_type", where, "titik harus [x, y, t]", "a point must be [x, y, t]")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _data_error("data_type", where, "titik harus berisi bilangan",
                              "a point must hold numbers")
        out.append(float(v))
    return (out[0], out[1], out[2])


@dataclass
class Witness:
    """A person present at the recording, e.g. a family member consenting for an ODGJ
    resident, or the accompanying village staff."""

    name: str
    role: str
    consent: bool

    def to_canonical(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "consent": self.consent}

    @classmethod
    def from_canonical(cls, data: object, where: str = "witness") -> Witness:
        f = _Fields(data, where)
        witness = cls(name=f.get("name", str), role=f.get("role", str),
                      consent=f.get("consent", bool))
        f.done()
        return witness


def _outcome_error(code: str, id: str, en: str, hint_id: str, hint_en: str) -> FieldError:
    return FieldError(code, "outcome", id=id, en=en, hint_id=hint_id, hint_en=hint_en)


@dataclass(repr=False)
class Recording:
    """Everything recorded at one visit to one target; sealed to the office when finished.

    ``id`` is a UUIDv7 (:func:`uuid7`), so recordings sort by the time they
    were started. ``step_durations`` holds seconds spent per workflow step
    (``"photo"``, ``"fingers"``...) for the office's planning; ``devices``
    names the devices used (``"fingerprint": "ZFM-60 fw 1.2"``).

    >>> r = Recording.begin(target, officers=["ptg-07"], kit_id="blitar-kit-01")  # doctest: +SKIP
    """

    id: str
    target: Target
    officers: list[str]
    kit_id: str
    started_at: datetime
    finished_at: datetime | None = None
    gnss: RecordedFix | None = None
    outcome: Outcome | None = None
    outcome_note: str = ""
    photo: PhotoCapture | None = None
    fingers: dict[FingerPosition, FingerCapture] = field(default_factory=dict)
    signature: SignatureCapture | None = None
    witness: Witness | None = None
    step_durations: dict[str, float] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    software_version: str = field(default_factory=_software_version)

    @classmethod
    def begin(cls, target: Target, officers: Iterable[str], kit_id: str,
              *, now: datetime | None = None) -> Recording:
        """A new, empty recording for ``target`` started now."""
        return cls(id=uuid7(), target=target, officers=list(officers), kit_id=kit_id,
                   started_at=now or datetime.now(UTC))

    def __repr__(self) -> str:
        outcome = None if self.outcome is None else self.outcome.value
        return (f"Recording(id={self.id!r}, target_id={self.target.id!r}, outcome={outcome}, "
                f"photo={self.photo is not None}, fingers={len(self.fingers)}, "
                f"signature={self.signature is not None})")

    @property
    def holds_biometrics(self) -> bool:
        """True when any photo, print or signature is in this recording."""
        return (
            self.photo is not None
            or any(c.holds_biometrics for c in self.fingers.values())
            or (self.signature is not None and self.signature.signed)
        )

    def check_outcome(self) -> None:
        """Check that what was captured fits the outcome; raise :class:`FieldError` if not.

        * every outcome: an outcome is set (``outcome_missing``); fingers are
          filed under their own position (``finger_position``); a finger has
          a print or an exception, not both (``finger_conflict``); an
          ``other`` finger exception has a note (``finger_exception_note``);
          the end is not before the start (``recording_times``);
        * ``other``: a note says what happened (``outcome_note_missing``);
        * ``recorded``: a photo (``photo_missing``), with a reason when below
          the quality threshold (``photo_reason_missing``); a print or an
          exception for each of the ten fingers (``finger_missing``); a
          signature or the reason there is none (``signature_missing``);
        * ``partial``: at least something captured (``partial_empty``);
        * ``refused``, ``not_home``, ``deceased``, ``moved``, ``unfit``,
          ``not_found``, ``other``: no biometrics at all
          (``biometrics_not_allowed``) — nothing of a person who was not
          recorded may leave the kit.
        """
        if self.outcome is None:
            raise _outcome_error(
                "outcome_missing", "Hasil kunjungan belum dipilih", "No outcome chosen",
                "Pilih hasil kunjungan sebelum menyimpan", "Choose the outcome before saving",
            )
        if self.finished_at is not None and self.finished_at < self.started_at:
            raise FieldError(
                "recording_times", "finished_at",
                id="Waktu selesai sebelum waktu mulai", en="Finished before it started",
                hint_id="Periksa jam kit lalu simpan ulang",
                hint_en="Check the kit's clock and save again",
            )
        for position, capture in self.fingers.items():
            self._check_finger(position, capture)
        if self.outcome is Outcome.OTHER and not self.outcome_note.strip():
            raise _outcome_error(
                "outcome_note_missing", "Hasil 'Lainnya' perlu keterangan",
                "Outcome 'Other' needs a note", "Tulis apa yang terjadi",
                "Write down what happened",
            )
        if self.outcome is Outcome.RECORDED:
            self._check_complete()
        elif self.outcome is Outcome.PARTIAL:
            if not self.holds_biometrics:
                raise _outcome_error(
                    "partial_empty", "Terekam sebagian, tetapi belum ada yang direkam",
                    "Partly recorded, but nothing was captured",
                    "Rekam foto, sidik jari atau tanda tangan, atau pilih hasil lain",
                    "Capture a photo, a print or a signature, or choose another outcome",
                )
            self._check_photo_reason()
        elif self.holds_biometrics:
            raise _outcome_error(
                "biometrics_not_allowed",
                f"Hasil '{self.outcome.label('id')}' tidak boleh menyimpan foto, sidik jari "
                "atau tanda tangan",
                f"Outcome '{self.outcome.label('en')}' must not keep a photo, prints or a "
                "signature",
                "Hapus hasil rekaman atau pilih 'Terekam sebagian'",
                "Discard the captures or choose 'Partly recorded'",
            )

    @staticmethod
    def _check_finger(position: FingerPosition, capture: FingerCapture) -> None:
        if capture.position != position:
            raise FieldError(
                "finger_position", "fingers",
                id="Data sidik jari tersimpan di posisi jari yang salah",
                en="A fingerprint is filed under the wrong finger position",
                hint_id="Rekam ulang jari tersebut", hint_en="Capture that finger again",
            )
        if capture.image_png is not None and capture.exception is not None:
            raise FieldError(
                "finger_conflict", "fingers",
                id=f"{position.label('id')}: ada sidik jari dan juga alasan tidak direkam",
                en=f"{position.label('en')}: has both a print and a reason for none",
                hint_id="Hapus salah satunya", hint_en="Remove one of them",
            )
        if capture.exception is FingerException.OTHER and not capture.exception_note.strip():
            raise FieldError(
                "finger_exception_note", "fingers",
                id=f"{position.label('id')}: alasan 'Lainnya' perlu keterangan",
                en=f"{position.label('en')}: reason 'Other' needs a note",
                hint_id="Tulis mengapa jari tidak bisa direkam",
                hint_en="Write why the finger cannot be captured",
            )

    def _check_photo_reason(self) -> None:
        photo = self.photo
        if photo is not None and not photo.ok and not (photo.below_threshold_reason or "").strip():
            raise FieldError(
                "photo_reason_missing", "photo",
                id="Foto di bawah batas mutu perlu alasan",
                en="A photo below the quality threshold needs a reason",
                hint_id="Ambil ulang foto atau tulis alasannya",
                hint_en="Take the photo again or write the reason",
            )

    def _check_complete(self) -> None:
        if self.photo is None:
            raise FieldError(
                "photo_missing", "photo", id="Foto wajah belum diambil",
                en="The face photo is missing", hint_id="Ambil foto wajah",
                hint_en="Take the face photo",
            )
        self._check_photo_reason()
        missing = [p for p in FingerPosition if p not in self.fingers or
                   not self.fingers[p].settled]
        if missing:
            names_id = ", ".join(p.label("id") for p in missing)
            names_en = ", ".join(p.label("en") for p in missing)
            raise FieldError(
                "finger_missing", "fingers",
                id=f"Sidik jari belum direkam: {names_id}",
                en=f"Fingerprints not captured: {names_en}",
                hint_id="Rekam jari itu atau pilih alasan tidak bisa direkam",
                hint_en="Capture those fingers or choose why they cannot be captured",
            )
        signature = self.signature
        if signature is None or not (
            signature.signed or (signature.cannot_sign_reason or "").strip()
        ):
            raise FieldError(
                "signature_missing", "signature", id="Tanda tangan belum ada",
                en="The signature is missing",
                hint_id="Minta tanda tangan atau pilih alasan tidak bisa tanda tangan",
                hint_en="Ask for the signature or choose why the person cannot sign",
            )

    def to_canonical(self) -> dict[str, Any]:
        """The recording as CBOR-friendly data; ``from_canonical`` gives back an equal one."""
        def opt(value: Any) -> Any:
            return None if value is None else value.to_canonical()

        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "target": self.target.to_canonical(),
            "officers": list(self.officers),
            "kit_id": self.kit_id,
            "started_at": _stamp(self.started_at, "started_at"),
            "finished_at": _opt_stamp(self.finished_at, "finished_at"),
            "gnss": opt(self.gnss),
            "outcome": None if self.outcome is None else self.outcome.value,
            "outcome_note": self.outcome_note,
            "photo": opt(self.photo),
            "fingers": {str(int(p)): self.fingers[p].to_canonical() for p in sorted(self.fingers)},
            "signature": opt(self.signature),
            "witness": opt(self.witness),
            "step_durations": {k: self.step_durations[k] for k in sorted(self.step_durations)},
            "devices": {k: self.devices[k] for k in sorted(self.devices)},
            "software_version": self.software_version,
        }

    @classmethod
    def from_canonical(cls, data: object, where: str = "recording") -> Recording:
        f = _Fields(data, where)
        _check_schema(f)
        record_id = f.get("id", str)
        if not _plausible_uuid(record_id) or uuid.UUID(record_id).version != 7:
            raise _data_error("data_value", f.path("id"), "bukan UUID versi 7",
                              "not a version 7 UUID")
        raw_fingers = f.get("fingers", dict)
        fingers: dict[FingerPosition, FingerCapture] = {}
        for key in sorted(_keys_as_str(raw_fingers, f.path("fingers"))):
            here = f"{f.path('fingers')}.{key}"
            if key not in {str(n) for n in range(1, 11)}:
                raise _data_error("data_value", here, "posisi jari harus 1-10",
                                  "finger position must be 1-10")
            capture = FingerCapture.from_canonical(raw_fingers[key], here)
            if int(capture.position) != int(key):
                raise _data_error("data_value", here, "posisi tidak sama dengan kuncinya",
                                  "position differs from its key")
            fingers[capture.position] = capture
        started_at = f.moment("started_at")
        assert started_at is not None
        recording = cls(
            id=record_id,
            target=f.nested("target", Target.from_canonical),
            officers=f.str_list("officers"),
            kit_id=f.get("kit_id", str),
            started_at=started_at,
            finished_at=f.moment("finished_at", nullable=True),
            gnss=f.nested("gnss", RecordedFix.from_canonical, nullable=True),
            outcome=f.enum("outcome", Outcome, nullable=True),
            outcome_note=f.get("outcome_note", str),
            photo=f.nested("photo", PhotoCapture.from_canonical, nullable=True),
            fingers=dict(sorted(fingers.items())),
            signature=f.nested("signature", SignatureCapture.from_canonical, nullable=True),
            witness=f.nested("witness", Witness.from_canonical, nullable=True),
            step_durations=f.str_map("step_durations", float),
            devices=f.str_map("devices", str),
            software_version=f.get("software_version", str),
        )
        f.done()
        return recording


def read_assignment_file(path: Path) -> Assignment:
    """An assignment from a JSON file, with a clear error for a missing or unreadable one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(id=f"{path} tidak dapat dibaca ({exc.__class__.__name__})",
                              en=f"{path} cannot be read ({exc.__class__.__name__})",
                              hint_id="Periksa jalur dan isi berkas",
                              hint_en="Check the path and the file's content",
                              code="file") from None
    return Assignment.from_json(text)
