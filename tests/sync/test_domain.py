"""The domain model: NIK/KK checks, UUIDv7, canonical round trips, outcome rules.

All people here are invented; NIKs are built from real region codes and
invented serials.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import doctest
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import domain, protocol, regions
from sync.domain import (
    SAMPLE_ASSIGNMENT_PATH,
    Address,
    Assignment,
    AssignmentInvalid,
    Category,
    FingerCapture,
    FingerException,
    FingerPosition,
    Outcome,
    PhotoCapture,
    Place,
    RecordedFix,
    Recording,
    Sex,
    SignatureCapture,
    Target,
    TargetStatus,
    Witness,
    uuid7,
    uuid7_time,
    validate_kk,
    validate_nik,
)
from sync.errors import ValidationError

TODAY = date(2026, 11, 23)


def nik_for(born: date, sex: Sex, region: str = "350511", serial: str = "0042") -> str:
    day = born.day + (40 if sex is Sex.FEMALE else 0)
    return f"{region}{day:02d}{born.month:02d}{born.year % 100:02d}{serial}"


def assert_no_personal_data(err: ValidationError, *secrets: str) -> None:
    for lang in ("id", "en"):
        text = err.text(lang)
        for secret in filter(None, secrets):
            assert secret not in text
            # not even the date part of a NIK
            if len(secret) == 16:
                assert secret[6:12] not in text


# ---------------------------------------------------------------- NIK and KK


GOOD_NIKS = [
    # (nik, birth date, sex, region code) — several Blitar districts, men and women, 19xx/20xx
    ("3505104411390007", date(1939, 11, 4), Sex.FEMALE, "35.05.10"),
    ("3505102902440012", date(1944, 2, 29), Sex.MALE, "35.05.10"),
    ("3505014506780021", date(1978, 6, 5), Sex.FEMALE, "35.05.01"),
    ("3505222301080104", date(2008, 1, 23), Sex.MALE, "35.05.22"),
    ("3505187112500033", date(1950, 12, 31), Sex.FEMALE, "35.05.18"),
    ("3505075407030015", date(2003, 7, 14), Sex.FEMALE, "35.05.07"),
    ("3505150101009999", date(2000, 1, 1), Sex.MALE, "35.05.15"),
    ("3505126902000001", date(2000, 2, 29), Sex.FEMALE, "35.05.12"),
]


@pytest.mark.parametrize(("nik", "born", "sex", "region"), GOOD_NIKS)
def test_good_nik_decodes(nik: str, born: date, sex: Sex, region: str) -> None:
    info = validate_nik(nik, born, sex, today=TODAY)
    assert (info.birth_date, info.sex, info.region_code) == (born, sex, region)
    assert info.serial == nik[12:]
    assert info.issued_in_blitar
    assert info.province_name == "Jawa Timur"
    # Without the birth date the century is inferred and still right for these people.
    bare = validate_nik(nik, today=TODAY)
    assert (bare.birth_date, bare.sex) == (born, sex)


@pytest.mark.parametrize(
    ("nik", "province"),
    [
        ("3578014506780021", "Jawa Timur"),  # Kota Surabaya
        ("3572014506780021", "Jawa Timur"),  # Kota Blitar, not the kabupaten
        ("3578994506780021", "Jawa Timur"),  # districts outside Blitar: only non-zero checked
        ("3171034506780021", "DKI Jakarta"),
        ("9601014506780021", "Papua Barat Daya"),
        ("9501014506780021", "Papua Pegunungan"),
        ("1101014506780021", "Aceh"),
    ],
)
def test_nik_issued_elsewhere_is_valid(nik: str, province: str) -> None:
    info = validate_nik(nik, date(1978, 6, 5), Sex.FEMALE, today=TODAY)
    assert info.province_name == province
    assert not info.issued_in_blitar


@pytest.mark.parametrize(
    ("nik", "expected", "ambiguous", "today"),
    [
        ("3505104506780021", date(1978, 6, 5), False, TODAY),
        # 2008 (18) or 1908 (118): both possible, the younger reading is taken
        ("3505102301080104", date(2008, 1, 23), True, TODAY),
        # 2030 is in the future, so 1930
        ("3505102301300104", date(1930, 1, 23), False, TODAY),
        # ... until 2030 has passed
        ("3505102301300104", date(2030, 1, 23), True, date(2040, 1, 1)),
        # 29 Feb exists in 2000 but not 1900
        ("3505102902000104", date(2000, 2, 29), False, TODAY),
        # 1 Jan 1901 is 125 years ago, the oldest accepted
        ("3505100101010104", date(2001, 1, 1), True, TODAY),
        # after 24 Dec 2026, 24 Dec 1901 would be 125: before it, 124
        ("3505102412010104", date(2001, 12, 24), True, TODAY),
    ],
)
def test_nik_century(nik: str, expected: date, ambiguous: bool, today: date) -> None:
    info = validate_nik(nik, today=today)
    assert info.birth_date == expected
    assert info.birth_date_ambiguous is ambiguous


def test_nik_century_rejects_ages_over_max() -> None:
    # 01-01-00 read in 2126: 2100 (26); 2000 would be 126, too old, so not ambiguous.
    info = validate_nik("3505100101000104", today=date(2126, 6, 1))
    assert (info.birth_date, info.birth_date_ambiguous) == (date(2100, 1, 1), False)
    # 29-02-00 in 2126: 2000 is 126 years ago and 2100 is not a leap year.
    with pytest.raises(ValidationError) as info:
        validate_nik("3505102902000104", today=date(2126, 6, 1))
    assert info.value.code == "nik_birth_date"


BAD_NIKS = [
    # nik_format
    ("350510450678002", "nik_format"),
    ("35051045067800211", "nik_format"),
    ("", "nik_format"),
    ("3505 10450678002", "nik_format"),
    ("3505.10.450678.0", "nik_format"),
    ("35051O4506780021", "nik_format"),  # letter O
    ("٣٥٠٥١٠٤٥٠٦٧٨٠٠٢١", "nik_format"),  # Arabic-Indic digits
    ("３５０５１０４５０６７８００２１", "nik_format"),  # full-width digits
    ("35051045067800²1", "nik_format"),  # superscript two: isdigit() is true
    (3505104506780021, "nik_format"),
    (None, "nik_format"),
    # nik_province
    ("0005104506780021", "nik_province"),
    ("2005104506780021", "nik_province"),
    ("5405104506780021", "nik_province"),  # Timor Timur, gone before NIKs existed
    ("9705104506780021", "nik_province"),
    ("9905104506780021", "nik_province"),
    # nik_regency
    ("3500104506780021", "nik_regency"),
    ("3530104506780021", "nik_regency"),  # Jawa Timur has 29 kabupaten
    ("3570104506780021", "nik_regency"),
    ("3580104506780021", "nik_regency"),
    ("3280104506780021", "nik_regency"),  # above 79 anywhere
    ("3100104506780021", "nik_regency"),
    # nik_district
    ("3505004506780021", "nik_district"),
    ("3505234506780021", "nik_district"),  # Kabupaten Blitar has 22 kecamatan
    ("3505994506780021", "nik_district"),
    ("3578004506780021", "nik_district"),
    # nik_birth_date
    ("3505100006780021", "nik_birth_date"),  # day 00
    ("3505103206780021", "nik_birth_date"),  # day 32
    ("3505104006780021", "nik_birth_date"),  # day 40: neither man nor woman
    ("3505107206780021", "nik_birth_date"),  # day 72 = 32 for a woman
    ("3505101500780021", "nik_birth_date"),  # month 00
    ("3505101513780021", "nik_birth_date"),  # month 13
    ("3505103102990021", "nik_birth_date"),  # 31 February
    ("3505102902010021", "nik_birth_date"),  # 29 Feb 1901/2001
    ("3505107102990021", "nik_birth_date"),  # 31 February, woman
    # nik_serial
    ("3505104506780000", "nik_serial"),
]


@pytest.mark.parametrize(("nik", "code"), BAD_NIKS)
def test_bad_nik(nik: object, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_nik(nik, today=TODAY)
    err = info.value
    assert err.code == code
    assert err.message["id"] and err.message["en"] and err.hint["id"] and err.hint["en"]
    if isinstance(nik, str):
        assert_no_personal_data(err, nik)


@pytest.mark.parametrize(
    ("nik", "born", "sex", "code"),
    [
        ("3505104506780021", date(1978, 6, 6), Sex.FEMALE, "nik_birth_date_mismatch"),
        ("3505104506780021", date(1978, 7, 5), Sex.FEMALE, "nik_birth_date_mismatch"),
        ("3505104506780021", date(1979, 6, 5), Sex.FEMALE, "nik_birth_date_mismatch"),
        # a century apart: NIK keeps only two digits of the year, so this matches
        # (and is caught by Target.validate's age check instead)
        ("3505104506780021", date(1978, 6, 5), Sex.MALE, "nik_sex_mismatch"),
        # a woman's NIK typed without the +40
        ("3505100506780021", date(1978, 6, 5), Sex.FEMALE, "nik_sex_mismatch"),
        # an impossible NIK date is reported as such even when a birth date is given
        ("3505107206780021", date(1978, 6, 5), Sex.FEMALE, "nik_birth_date"),
    ],
)
def test_nik_against_target(nik: str, born: date, sex: Sex, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_nik(nik, born, sex, today=TODAY)
    assert info.value.code == code
    assert_no_personal_data(info.value, nik)


def test_nik_century_part_is_not_compared() -> None:
    assert validate_nik("3505104506780021", date(1878, 6, 5), today=TODAY).birth_date == date(
        1878, 6, 5
    )


NIK_CODES = {code for _, code in BAD_NIKS} | {"nik_birth_date_mismatch", "nik_sex_mismatch"}


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=16, max_size=16),
    st.one_of(st.none(), st.dates(min_value=date(1890, 1, 1), max_value=date(2030, 12, 31))),
    st.one_of(st.none(), st.sampled_from(Sex)),
)
def test_any_16_digits_validates_or_raises_validation_error(
    nik: str, born: date | None, sex: Sex | None
) -> None:
    try:
        info = validate_nik(nik, born, sex, today=TODAY)
    except ValidationError as exc:
        assert exc.code in NIK_CODES
        assert_no_personal_data(exc, nik)
    else:
        assert nik.startswith(info.province + info.regency + info.district)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_any_text_validates_or_raises_validation_error(text: str) -> None:
    # Any other exception (TypeError, IndexError...) fails the test.
    with contextlib.suppress(ValidationError):
        validate_nik(text, today=TODAY)
    with contextlib.suppress(ValidationError):
        validate_kk(text)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(regions.BLITAR_DISTRICT_CODES)),
    st.dates(min_value=date(1902, 1, 1), max_value=TODAY),
    st.sampled_from(Sex),
    st.integers(1, 9999),
)
def test_built_nik_decodes_back(district: str, born: date, sex: Sex, serial: int) -> None:
    nik = nik_for(born, sex, f"3505{district}", f"{serial:04d}")
    info = validate_nik(nik, born, sex, today=TODAY)
    assert (info.district, info.birth_date, info.sex, int(info.serial)) == (
        district, born, sex, serial)
    bare = validate_nik(nik, today=TODAY)
    assert bare.sex is sex
    assert (bare.birth_date.day, bare.birth_date.month) == (born.day, born.month)
    assert bare.birth_date.year % 100 == born.year % 100


@pytest.mark.parametrize("kk", ["3505102107110031", "3578010101010001", "9601010101010001"])
def test_good_kk(kk: str) -> None:
    assert validate_kk(kk) == f"{kk[:2]}.{kk[2:4]}.{kk[4:6]}"


@pytest.mark.parametrize(
    ("kk", "code"),
    [
        ("350510210711003", "kk_format"),
        ("35051021071100311", "kk_format"),
        ("3505-10-210711-00", "kk_format"),
        ("٣٥٠٥١٠٢١٠٧١١٠٠٣١", "kk_format"),
        (3505102107110031, "kk_format"),
        ("9905102107110031", "kk_region"),
        ("3530102107110031", "kk_region"),
        ("3505232107110031", "kk_region"),
        ("3505002107110031", "kk_region"),
    ],
)
def test_bad_kk(kk: object, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_kk(kk)
    assert info.value.code == code
    if isinstance(kk, str):
        assert_no_personal_data(info.value, kk)


# ---------------------------------------------------------------- regions


def test_region_tables() -> None:
    assert len(regions.PROVINCES) == 38
    assert {"93", "94", "95", "96"} <= set(regions.PROVINCES)
    kabupaten = [c for c in regions.JAWA_TIMUR_REGENCIES if c < "71"]
    kota = [c for c in regions.JAWA_TIMUR_REGENCIES if c >= "71"]
    assert kabupaten == [f"{n:02d}" for n in range(1, 30)]
    assert kota == [f"{n:02d}" for n in range(71, 80)]
    assert regions.JAWA_TIMUR_REGENCIES["05"] == "Kabupaten Blitar"
    assert len(regions.BLITAR_DISTRICT_CODES) == 22
    assert len(set(regions.BLITAR_KECAMATAN)) == 22


@pytest.mark.parametrize(
    ("typed", "found"),
    [("Kanigoro", "Kanigoro"), ("  KANIGORO ", "Kanigoro"), ("Kec. Sanan Kulon", "Sanankulon"),
     ("kecamatan wlingi", "Wlingi"), ("Kanigor", None), ("Blitar", None), ("", None)],
)
def test_find_kecamatan(typed: str, found: str | None) -> None:
    assert regions.find_kecamatan(typed) == found


# ---------------------------------------------------------------- enums


@pytest.mark.parametrize(
    "kind", [Sex, Category, Place, Outcome, FingerPosition, FingerException, TargetStatus]
)
def test_every_member_has_two_labels(kind: type) -> None:
    for member in kind:
        id_label, en_label = member.label("id"), member.label("en")
        assert id_label and en_label
        assert member.label("jv") == id_label  # unknown language falls back to Indonesian
    assert len({m.label("en") for m in kind}) == len(kind)
    assert len({m.label("id") for m in kind}) == len(kind)


def test_finger_positions_follow_iso_19794_4() -> None:
    assert [int(p) for p in FingerPosition] == list(range(1, 11))
    assert FingerPosition(1).label("en") == "Right thumb"
    assert FingerPosition(5).label("en") == "Right little"
    assert FingerPosition(6).label("en") == "Left thumb"
    assert FingerPosition(10).label("id") == "Kelingking kiri"
    assert [p.hand for p in FingerPosition] == ["right"] * 5 + ["left"] * 5
    assert [p for p in FingerPosition if p.is_thumb] == [1, 6]


def test_enum_values_are_stable_strings() -> None:
    assert [o.value for o in Outcome] == [
        "recorded", "partial", "refused", "not_home", "deceased", "moved", "unfit",
        "not_found", "other",
    ]
    assert [c.value for c in Category] == ["lansia", "disabilitas", "odgj", "sakit", "lainnya"]
    assert [p.value for p in Place] == ["home", "hospital", "care_home"]
    assert Outcome("refused") is Outcome.REFUSED
    assert str(TargetStatus.NOT_RECORDED) == "not_recorded"
    assert [o for o in Outcome if o.carries_biometrics] == [Outcome.RECORDED, Outcome.PARTIAL]


@pytest.mark.parametrize(
    ("text", "sex"),
    [("L", Sex.MALE), ("p", Sex.FEMALE), ("Laki-laki", Sex.MALE), ("laki laki", Sex.MALE),
     ("PEREMPUAN", Sex.FEMALE), ("female", Sex.FEMALE)],
)
def test_sex_parse(text: str, sex: Sex) -> None:
    assert Sex.parse(text) is sex
    assert sex.short("id") in "LP" and sex.short("en") in "MF"


def test_sex_parse_rejects_unknown() -> None:
    with pytest.raises(ValidationError) as info:
        Sex.parse("X")
    assert info.value.code == "sex"


# ---------------------------------------------------------------- UUIDv7


def test_uuid7_layout_and_time() -> None:
    before = time.time()
    value = uuid7()
    after = time.time()
    parsed = uuid.UUID(value)
    assert str(parsed) == value and len(value) == 36
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert (parsed.int >> 62) & 0b11 == 0b10
    assert (parsed.int >> 76) & 0xF == 7
    assert before - 0.002 <= uuid7_time(value).timestamp() <= after + 0.002


def test_uuid7_strictly_increasing_in_one_process() -> None:
    values = [uuid7() for _ in range(5000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert len({v[24:] for v in values}) > 4900  # the random part is really random


def test_uuid7_order_follows_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain, "_uuid7_last", (0, 0))
    early = domain._uuid7_at(1_700_000_000_000)
    late = domain._uuid7_at(1_700_000_000_001)
    assert early < late
    assert uuid7_time(early) == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    # The clock stepping back (a GNSS time fix) must not reorder ids.
    after_step = domain._uuid7_at(1_600_000_000_000)
    assert after_step > late
    assert uuid7_time(after_step) == uuid7_time(late)


def test_uuid7_random_overflow_moves_to_next_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain, "_uuid7_last", (5000, (1 << 74) - 1))
    value = domain._uuid7_at(5000)
    assert uuid7_time(value) == datetime.fromtimestamp(5.001, tz=UTC)


def test_uuid7_time_rejects_other_versions() -> None:
    with pytest.raises(ValueError):
        uuid7_time(str(uuid.uuid4()))


# ---------------------------------------------------------------- sample data


def load_sample() -> Assignment:
    return Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))


def test_sample_assignment_loads_and_validates() -> None:
    sample = load_sample()
    sample.validate(today=TODAY)
    sample.validate()
    assert len(sample.targets) >= 5
    assert regions.find_kecamatan(sample.kecamatan) == sample.kecamatan
    assert len({t.category for t in sample.targets}) >= 4
    assert {t.place for t in sample.targets} == set(Place)
    assert {t.sex for t in sample.targets} == set(Sex)
    for target in sample.targets:
        info = target.nik_info()
        assert info.issued_in_blitar
        assert info.birth_date == target.birth_date
    assert any(t.birth_date.year >= 2000 for t in sample.targets)
    assert any(t.birth_date.year < 1950 for t in sample.targets)
    assert SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8") == sample.to_json()


def test_reprs_hide_personal_data() -> None:
    sample = load_sample()
    target = sample.targets[0]
    shown = repr(sample) + repr(target) + repr(target.nik_info())
    recording = complete_recording(target)
    shown += repr(recording)
    for secret in (target.nik, target.kk, target.name, target.birth_date.isoformat(),
                   target.address.rt, "Krajan"):
        assert secret not in shown


# ---------------------------------------------------------------- target and assignment checks


def sample_target(**changes: object) -> Target:
    target = copy.deepcopy(load_sample().targets[2])
    for name, value in changes.items():
        setattr(target, name, value)
    return target


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"rt": "0001"}, "address_rt"),
        ({"rt": ""}, "address_rt"),
        ({"rt": "000"}, "address_rt"),
        ({"rw": "1a"}, "address_rw"),
        ({"rw": "٣"}, "address_rw"),
        ({"desa": " "}, "address_desa"),
        ({"kecamatan": "Kanigor"}, "address_kecamatan"),
    ],
)
def test_target_address_checks(change: dict[str, str], code: str) -> None:
    target = sample_target()
    for name, value in change.items():
        setattr(target.address, name, value)
    with pytest.raises(ValidationError) as info:
        target.validate(today=TODAY)
    assert info.value.code == code


def test_target_outside_blitar_skips_kecamatan_list() -> None:
    target = sample_target()
    target.address = Address("Jl. Contoh 1", "1", "2", "", "Sukorejo", "Sukorejo", "Kota Blitar")
    target.validate(today=TODAY)
    assert target.problems(today=TODAY) == []
    # Sukorejo is a kecamatan of Kota Blitar, not of the Kabupaten: only the kabupaten
    # named in the address spares it the Kabupaten's list.
    target.address.kabupaten = "Blitar"
    assert [p.code for p in target.problems(today=TODAY)] == ["address_kecamatan"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"id": "not-a-uuid"}, "target_id"),
        ({"name": "  "}, "name_missing"),
        ({"birth_date": date(2027, 6, 5)}, "birth_date_implausible"),
        ({"birth_date": date(1878, 6, 5)}, "birth_date_implausible"),
        ({"birth_date": date(1978, 6, 6)}, "nik_birth_date_mismatch"),
        ({"sex": Sex.MALE}, "nik_sex_mismatch"),
        ({"nik": "3505104506780000"}, "nik_serial"),
        ({"kk": "350510140209000"}, "kk_format"),
    ],
)
def test_target_checks(changes: dict[str, object], code: str) -> None:
    target = sample_target(**changes)
    problems = target.problems(today=TODAY)
    assert code in [p.code for p in problems]
    with pytest.raises(ValidationError):
        target.validate(today=TODAY)


def test_assignment_collects_problems_per_target() -> None:
    sample = load_sample()
    sample.targets[1].nik = "3505102902440000"
    sample.targets[3].address.rt = "1234"
    sample.targets[3].sex = Sex.FEMALE
    sample.targets[4].nik = sample.targets[0].nik  # also mismatches target 5's birth date
    sample.targets.append(copy.deepcopy(sample.targets[5]))
    sample.officers = []
    with pytest.raises(AssignmentInvalid) as info:
        sample.validate(today=TODAY)
    found = [(p.target_index, p.error.code) for p in info.value.problems]
    assert found == [
        (None, "assignment_officers"),
        (2, "nik_serial"),
        (4, "nik_sex_mismatch"),
        (4, "address_rt"),
        (5, "nik_birth_date_mismatch"),
        (5, "target_duplicate_nik"),
        (7, "target_duplicate_id"),
        (7, "target_duplicate_nik"),
    ]
    assert info.value.code == "assignment_invalid"
    assert "Sasaran no. 2" in info.value.text("id")
    assert "(+5 more)" in info.value.text("en")
    for target in sample.targets:
        assert_no_personal_data(info.value, target.nik, target.name)


def test_empty_assignment_is_refused() -> None:
    empty = Assignment("a-1", date(2026, 12, 1), "", "Nowhere", [], "", [], [])
    with pytest.raises(AssignmentInvalid) as info:
        empty.validate(today=TODAY)
    assert [p.error.code for p in info.value.problems] == [
        "assignment_village", "assignment_kecamatan", "assignment_officers", "assignment_kit",
        "assignment_empty",
    ]


def test_cancelled_assignment_round_trips_and_needs_no_targets() -> None:
    sample = load_sample()
    plain = sample.to_canonical()
    # A never-cancelled assignment keeps its bytes, so signatures made before stay good.
    assert list(plain) == ["schema", "id", "visit_date", "village", "kecamatan", "officers",
                           "kit_id", "village_staff", "targets"]
    again = Assignment.from_canonical(json.loads(sample.to_json()))
    assert cbor2.dumps(again.to_canonical(), canonical=True) == \
        cbor2.dumps(plain, canonical=True)
    off = dataclasses.replace(sample, targets=[], cancelled=True)
    data = off.to_canonical()
    assert data["cancelled"] is True and data["targets"] == []
    assert Assignment.from_canonical(cbor2.loads(cbor2.dumps(data, canonical=True))) == off
    assert Assignment.from_json(off.to_json()) == off
    off.validate(today=TODAY)  # no assignment_empty: a cancelled visit has no targets
    assert "cancelled" in repr(off)


def test_cancelled_assignment_with_targets_is_refused() -> None:
    still = dataclasses.replace(load_sample(), cancelled=True)
    with pytest.raises(AssignmentInvalid) as info:
        still.validate(today=TODAY)
    (problem,) = info.value.problems
    assert problem.error.code == "assignment_cancelled_with_targets"
    assert problem.error.field == "targets"
    assert "dibatalkan" in problem.error.text("id") and "cancelled" in problem.error.text("en")


@pytest.mark.parametrize("value", [1, "true", None])
def test_cancelled_must_be_true_or_false(value: object) -> None:
    data = {**load_sample().to_canonical(), "targets": [], "cancelled": value}
    with pytest.raises(ValidationError) as info:
        Assignment.from_canonical(data)
    assert info.value.code == "data_type"


# ---------------------------------------------------------------- recordings and outcomes

T0 = datetime(2026, 12, 3, 2, 15, 0, tzinfo=UTC)


def complete_recording(target: Target | None = None) -> Recording:
    target = target or load_sample().targets[0]
    fingers = {
        p: FingerCapture(p, image_png=b"\x89PNG" + bytes([p]), quality_score=60 + p, attempts=1,
                         captured_at=T0 + timedelta(seconds=60 + p))
        for p in FingerPosition
    }
    fingers[FingerPosition.LEFT_LITTLE] = FingerCapture(
        FingerPosition.LEFT_LITTLE, attempts=3, exception=FingerException.BANDAGED,
        exception_photo_jpeg=b"\xff\xd8hand")
    return Recording(
        id=uuid7(), target=target, officers=["ptg-0107", "ptg-0112"], kit_id="blitar-kit-01",
        started_at=T0, finished_at=T0 + timedelta(minutes=25),
        gnss=RecordedFix(-8.1113, 112.1923, 4.5, 168.0, T0, 9, 0.9),
        outcome=Outcome.RECORDED,
        photo=PhotoCapture(b"\xff\xd8face", 640, 480, 72, 60, None, T0 + timedelta(seconds=30)),
        fingers=fingers,
        signature=SignatureCapture([[(10.0, 20.0, 0.0), (11.5, 22.0, 0.04)]], b"\x89PNGsig", None),
        witness=Witness("Lilik Maryati", "kader posyandu", True),
        step_durations={"photo": 42.5, "fingers": 410.0, "signature": 20.25},
        devices={"fingerprint": "ZFM emulated", "camera": "emulated"},
        software_version="0.1.0",
    )


def test_complete_recording_passes() -> None:
    recording = complete_recording()
    assert recording.outcome == Outcome.RECORDED and recording.holds_biometrics
    assert recording.signature is not None and recording.signature.signed
    recording.check_outcome()  # raises FieldError on any gap
    # A resident who cannot sign: the reason stands in for the signature.
    recording.signature = SignatureCapture(cannot_sign_reason="Tangan lumpuh")
    assert not recording.signature.signed
    recording.check_outcome()


def expect_outcome_error(recording: Recording, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        recording.check_outcome()
    assert info.value.code == code
    assert_no_personal_data(info.value, recording.target.nik, recording.target.name)


def test_recorded_needs_every_part() -> None:
    r = complete_recording()
    r.photo = None
    expect_outcome_error(r, "photo_missing")

    r = complete_recording()
    assert r.photo is not None
    r.photo.quality_score = 40
    expect_outcome_error(r, "photo_reason_missing")
    r.photo.below_threshold_reason = "Terbaring, tidak bisa duduk tegak"
    r.check_outcome()

    r = complete_recording()
    del r.fingers[FingerPosition.RIGHT_RING]
    expect_outcome_error(r, "finger_missing")

    r = complete_recording()
    r.fingers[FingerPosition.LEFT_THUMB] = FingerCapture(FingerPosition.LEFT_THUMB, attempts=4)
    with pytest.raises(ValidationError) as info:
        r.check_outcome()
    assert "Left thumb" in info.value.text("en")

    r = complete_recording()
    r.signature = None
    expect_outcome_error(r, "signature_missing")
    r.signature = SignatureCapture(cannot_sign_reason="  ")
    expect_outcome_error(r, "signature_missing")


def test_finger_rules_for_every_outcome() -> None:
    r = complete_recording()
    r.fingers[FingerPosition.RIGHT_THUMB].exception = FingerException.AMPUTATED
    expect_outcome_error(r, "finger_conflict")

    r = complete_recording()
    r.fingers[FingerPosition.LEFT_LITTLE].exception = FingerException.OTHER
    expect_outcome_error(r, "finger_exception_note")
    r.fingers[FingerPosition.LEFT_LITTLE].exception_note = "Kuku panjang, menolak dipotong"
    r.check_outcome()

    r = complete_recording()
    r.fingers[FingerPosition.RIGHT_INDEX] = FingerCapture(FingerPosition.RIGHT_MIDDLE,
                                                          image_png=b"x")
    expect_outcome_error(r, "finger_position")


def test_outcome_other_needs_note_and_times_must_run_forward() -> None:
    r = Recording.begin(load_sample().targets[0], ["ptg-0107"], "blitar-kit-01", now=T0)
    expect_outcome_error(r, "outcome_missing")
    r.outcome = Outcome.OTHER
    expect_outcome_error(r, "outcome_note_missing")
    r.outcome_note = "Keluarga minta dijadwal ulang"
    r.check_outcome()
    r.finished_at = T0 - timedelta(seconds=1)
    expect_outcome_error(r, "recording_times")


def test_partial_needs_something() -> None:
    r = Recording.begin(load_sample().targets[1], ["ptg-0107"], "blitar-kit-01", now=T0)
    r.outcome = Outcome.PARTIAL
    expect_outcome_error(r, "partial_empty")
    r.fingers[FingerPosition.RIGHT_THUMB] = FingerCapture(
        FingerPosition.RIGHT_THUMB, exception=FingerException.CANNOT_EXTEND)
    expect_outcome_error(r, "partial_empty")  # an exception alone records nothing
    r.fingers[FingerPosition.LEFT_THUMB] = FingerCapture(FingerPosition.LEFT_THUMB,
                                                         image_png=b"\x89PNG")
    r.check_outcome()


NOT_RECORDED = [o for o in Outcome if not o.carries_biometrics]


@pytest.mark.parametrize("outcome", NOT_RECORDED)
def test_not_recorded_outcomes_carry_no_biometrics(outcome: Outcome) -> None:
    r = Recording.begin(load_sample().targets[3], ["ptg-0107"], "blitar-kit-01", now=T0)
    r.outcome, r.outcome_note = outcome, "Catatan petugas"
    r.check_outcome()  # nothing captured: fine

    full = complete_recording()
    for strip in ("photo", "fingers", "signature"):
        r = copy.deepcopy(full)
        r.outcome, r.outcome_note = outcome, "Catatan petugas"
        # leave only one kind of biometrics behind
        if strip != "photo":
            r.photo = None
        if strip != "fingers":
            r.fingers = {}
        if strip != "signature":
            r.signature = None
        expect_outcome_error(r, "biometrics_not_allowed")
    r = copy.deepcopy(full)
    r.outcome, r.photo, r.signature = outcome, None, SignatureCapture(cannot_sign_reason="x")
    r.outcome_note = "Catatan petugas"
    r.fingers = {FingerPosition.LEFT_THUMB: FingerCapture(
        FingerPosition.LEFT_THUMB, exception=FingerException.AMPUTATED)}
    r.check_outcome()  # reasons without photos are not biometrics


# ---------------------------------------------------------------- canonical form

CBOR_TYPES = (str, int, float, bool, type(None), bytes)


def assert_cbor_friendly(value: object) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_cbor_friendly(item)
    elif isinstance(value, list):
        for item in value:
            assert_cbor_friendly(item)
    else:
        assert isinstance(value, CBOR_TYPES), type(value)


def test_recording_canonical_round_trip() -> None:
    r = complete_recording()
    data = r.to_canonical()
    assert_cbor_friendly(data)
    assert list(data["fingers"]) == [str(n) for n in range(1, 11)]
    assert data["started_at"] == "2026-12-03T02:15:00.000000Z"
    assert Recording.from_canonical(data) == r
    assert Recording.from_canonical(cbor2.loads(cbor2.dumps(data, canonical=True))) == r


def test_same_instant_in_another_zone_gives_the_same_bytes() -> None:
    r = complete_recording()
    wib = copy.deepcopy(r)
    wib.started_at = r.started_at.astimezone(timezone(timedelta(hours=7)))
    assert cbor2.dumps(wib.to_canonical(), canonical=True) == cbor2.dumps(
        r.to_canonical(), canonical=True)


def test_naive_time_is_refused() -> None:
    r = complete_recording()
    r.started_at = datetime(2026, 12, 3, 9, 15)
    with pytest.raises(ValidationError) as info:
        r.to_canonical()
    assert info.value.code == "data_naive_time"


def test_target_and_assignment_round_trip() -> None:
    sample = load_sample()
    for target in sample.targets:
        assert Target.from_canonical(target.to_canonical()) == target
    data = sample.to_canonical()
    assert_cbor_friendly(data)
    assert Assignment.from_canonical(data) == sample
    assert Assignment.from_canonical(cbor2.loads(cbor2.dumps(data, canonical=True))) == sample
    assert Assignment.from_json(sample.to_json()) == sample


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3))]),
)
small_bytes = st.binary(max_size=16)
words = st.text(max_size=12)
points = st.tuples(finite, finite, finite)

finger_captures = st.builds(
    FingerCapture,
    position=st.sampled_from(FingerPosition),
    image_png=st.none() | small_bytes,
    quality_score=st.none() | st.integers(0, 100),
    attempts=st.integers(0, 20),
    exception=st.none() | st.sampled_from(FingerException),
    exception_note=words,
    exception_photo_jpeg=st.none() | small_bytes,
    low_quality_accepted=st.booleans(),
    captured_at=st.none() | moments,
)


@st.composite
def finger_maps(draw: st.DrawFn) -> dict[FingerPosition, FingerCapture]:
    captures = draw(st.lists(finger_captures, max_size=10, unique_by=lambda c: c.position))
    return {c.position: c for c in captures}


targets = st.builds(
    Target,
    id=st.uuids().map(str),
    nik=st.text(alphabet="0123456789", min_size=16, max_size=16),
    kk=words,
    name=st.text(max_size=30),
    birth_date=st.dates(),
    sex=st.sampled_from(Sex),
    address=st.builds(Address, words, words, words, words, words, words, words),
    category=st.sampled_from(Category),
    place=st.sampled_from(Place),
    notes=words,
)

recordings = st.builds(
    Recording,
    id=st.builds(lambda: uuid7()),
    target=targets,
    officers=st.lists(words, max_size=3),
    kit_id=words,
    started_at=moments,
    finished_at=st.none() | moments,
    gnss=st.none() | st.builds(
        RecordedFix, st.floats(-90, 90), st.floats(-180, 180), finite, st.none() | finite, moments,
        st.integers(0, 40), finite),
    outcome=st.none() | st.sampled_from(Outcome),
    outcome_note=words,
    photo=st.none() | st.builds(
        PhotoCapture, small_bytes, st.integers(0, 4000), st.integers(0, 4000),
        st.integers(0, 100), st.integers(0, 100), st.none() | words, moments),
    fingers=finger_maps(),
    signature=st.none() | st.builds(
        SignatureCapture, st.lists(st.lists(points, max_size=4), max_size=3),
        st.none() | small_bytes, st.none() | words),
    witness=st.none() | st.builds(Witness, words, words, st.booleans()),
    step_durations=st.dictionaries(words, finite, max_size=4),
    devices=st.dictionaries(words, words, max_size=3),
    software_version=words,
)


@settings(max_examples=150, deadline=None)
@given(recordings)
def test_any_recording_round_trips(recording: Recording) -> None:
    data = recording.to_canonical()
    assert_cbor_friendly(data)
    assert Recording.from_canonical(data) == recording
    wire = cbor2.dumps(data, canonical=True)
    again = Recording.from_canonical(cbor2.loads(wire))
    assert again == recording
    assert cbor2.dumps(again.to_canonical(), canonical=True) == wire


@settings(max_examples=50, deadline=None)
@given(st.lists(targets, max_size=4))
def test_any_assignment_round_trips_through_json(people: list[Target]) -> None:
    assignment = Assignment("a-1", date(2026, 12, 3), "Papungan", "Kanigoro", ["ptg-1"],
                            "blitar-kit-01", ["Pendamping"], people)
    assert Assignment.from_json(assignment.to_json()) == assignment


def corrupt(path: list[str | int], value: object) -> dict:
    data = complete_recording().to_canonical()
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (["kit_id"], DELETE, "data_missing"),
        (["target", "address", "rt"], DELETE, "data_missing"),
        (["kit_id"], 7, "data_type"),
        (["officers"], "ptg-0107", "data_type"),
        (["officers", 0], 107, "data_type"),
        (["photo", "width"], "640", "data_type"),
        (["photo", "width"], True, "data_type"),
        (["photo", "jpeg"], "not bytes", "data_type"),
        (["gnss", "lat"], float("nan"), "data_value"),
        (["gnss", "lat"], 91.0, "data_value"),
        (["gnss"], [], "data_type"),
        (["outcome"], "done", "data_value"),
        (["target", "sex"], "L", "data_value"),
        (["target", "birth_date"], "1939/11/04", "data_value"),
        (["target", "birth_date"], "19391104", "data_value"),
        (["target", "birth_date"], "1939-02-30", "data_value"),
        (["started_at"], "2026-12-03T02:15:00", "data_value"),
        (["started_at"], "yesterday", "data_value"),
        (["fingers", "11"], {}, "data_value"),
        (["fingers", "1", "position"], 2, "data_value"),
        (["fingers", "1", "position"], 0, "data_value"),
        (["fingers", "1", "exception"], "lost", "data_value"),
        (["signature", "strokes", 0, 0], [1.0, 2.0], "data_type"),
        (["signature", "strokes", 0, 0], [1.0, "2", 3.0], "data_type"),
        (["step_durations", "photo"], "42", "data_type"),
        (["id"], "0f8fad5b-d9cb-469f-a165-70867728950e", "data_value"),  # a UUIDv4, not v7
        (["id"], "x", "data_value"),
        (["schema"], 2, "data_schema"),
        (["extra"], 1, "data_unknown"),
        (["target", "address", "postcode"], "66171", "data_unknown"),
    ],
)
def test_bad_canonical_data(path: list[str | int], value: object, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        Recording.from_canonical(corrupt(path, value))
    assert info.value.code == code
    assert isinstance(info.value, domain.FieldError)
    assert info.value.field.startswith("recording")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_canonical_data_only_raises_validation_error(data: st.DataObject) -> None:
    canonical = complete_recording().to_canonical()
    # replace one field anywhere in the tree with an arbitrary value
    node: object = canonical
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))  # type: ignore[arg-type]
        key = data.draw(st.sampled_from(keys))
        child = node[key]  # type: ignore[index]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        node[key] = data.draw(json_values)  # type: ignore[index]
        break
    # Either it still reads (the value happened to fit) or a ValidationError says why;
    # any other exception fails the test.
    with contextlib.suppress(ValidationError):
        Recording.from_canonical(canonical)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '{"schema": 1}', b"\xff\xfe"])
def test_bad_assignment_json(text: str | bytes) -> None:
    with pytest.raises(ValidationError):
        Assignment.from_json(text)


def test_module_examples() -> None:
    for module in (domain, regions, protocol):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def test_sample_file_is_plain_json() -> None:
    raw = json.loads(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    assert raw["schema"] == 1
    assert all(len(t["nik"]) == 16 for t in raw["targets"])


def test_integers_are_read_as_floats_where_numbers_are_expected() -> None:
    # JSON writers and some CBOR encoders write 5.0 as 5
    fix = Recording.from_canonical(corrupt(["gnss", "accuracy_m"], 5)).gnss
    assert fix is not None and isinstance(fix.accuracy_m, float) and fix.accuracy_m == 5.0
    signature = Recording.from_canonical(corrupt(["signature", "strokes", 0, 0], [1, 2, 0]))
    assert signature.signature is not None
    assert all(isinstance(v, float) for v in signature.signature.strokes[0][0])
