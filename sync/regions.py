"""Region codes that the first six digits of a NIK or KK number carry.

A NIK starts with three two-digit codes of the Ministry of Home Affairs
(Kemendagri): province, regency/city, district (kecamatan) — the place where
the number was issued, which need not be where the person lives today. A
resident of Kabupaten Blitar who moved from Surabaya keeps a ``35.78...``
NIK all their life, so a NIK from anywhere in Indonesia is valid here; only
codes that cannot exist are refused.

How far we check, and why:

* **Province**: every code in :data:`PROVINCES` (Kemendagri codes, which the
  NIK uses — not the BPS statistics codes, which differ for Papua). Includes
  the four provinces split from Papua in 2022 (93–96).
* **Regency/city**: ``01``–``79`` anywhere (kabupaten count up from ``01``,
  kota from ``71``); for Jawa Timur (``35``) exactly the 29 kabupaten and
  9 kota in :data:`JAWA_TIMUR_REGENCIES`.
* **District**: non-zero anywhere; for Kabupaten Blitar (``35.05``) one of
  the 22 codes in :data:`BLITAR_DISTRICT_CODES`.

Public sources disagree on which kecamatan of Kabupaten Blitar has which
number, so this module deliberately does not map names to codes: it keeps
the set of valid codes and, separately, the 22 names
(:data:`BLITAR_KECAMATAN`) for checking typed addresses.

>>> check_region("35", "05", "11") is None
True
>>> check_region("35", "30", "01")
'regency'
>>> find_kecamatan("  kanigoro ")
'Kanigoro'
"""

from __future__ import annotations

from typing import Literal

# Kemendagri province codes (Permendagri on region codes; the four Papua
# provinces created by UU 14–16/2022 and UU 29/2022 take 93–96).
PROVINCES: dict[str, str] = {
    "11": "Aceh",
    "12": "Sumatera Utara",
    "13": "Sumatera Barat",
    "14": "Riau",
    "15": "Jambi",
    "16": "Sumatera Selatan",
    "17": "Bengkulu",
    "18": "Lampung",
    "19": "Kepulauan Bangka Belitung",
    "21": "Kepulauan Riau",
    "31": "DKI Jakarta",
    "32": "Jawa Barat",
    "33": "Jawa Tengah",
    "34": "DI Yogyakarta",
    "35": "Jawa Timur",
    "36": "Banten",
    "51": "Bali",
    "52": "Nusa Tenggara Barat",
    "53": "Nusa Tenggara Timur",
    "61": "Kalimantan Barat",
    "62": "Kalimantan Tengah",
    "63": "Kalimantan Selatan",
    "64": "Kalimantan Timur",
    "65": "Kalimantan Utara",
    "71": "Sulawesi Utara",
    "72": "Sulawesi Tengah",
    "73": "Sulawesi Selatan",
    "74": "Sulawesi Tenggara",
    "75": "Gorontalo",
    "76": "Sulawesi Barat",
    "81": "Maluku",
    "82": "Maluku Utara",
    "91": "Papua",
    "92": "Papua Barat",
    "93": "Papua Selatan",
    "94": "Papua Tengah",
    "95": "Papua Pegunungan",
    "96": "Papua Barat Daya",
}

JAWA_TIMUR = "35"

JAWA_TIMUR_REGENCIES: dict[str, str] = {
    "01": "Kabupaten Pacitan",
    "02": "Kabupaten Ponorogo",
    "03": "Kabupaten Trenggalek",
    "04": "Kabupaten Tulungagung",
    "05": "Kabupaten Blitar",
    "06": "Kabupaten Kediri",
    "07": "Kabupaten Malang",
    "08": "Kabupaten Lumajang",
    "09": "Kabupaten Jember",
    "10": "Kabupaten Banyuwangi",
    "11": "Kabupaten Bondowoso",
    "12": "Kabupaten Situbondo",
    "13": "Kabupaten Probolinggo",
    "14": "Kabupaten Pasuruan",
    "15": "Kabupaten Sidoarjo",
    "16": "Kabupaten Mojokerto",
    "17": "Kabupaten Jombang",
    "18": "Kabupaten Nganjuk",
    "19": "Kabupaten Madiun",
    "20": "Kabupaten Magetan",
    "21": "Kabupaten Ngawi",
    "22": "Kabupaten Bojonegoro",
    "23": "Kabupaten Tuban",
    "24": "Kabupaten Lamongan",
    "25": "Kabupaten Gresik",
    "26": "Kabupaten Bangkalan",
    "27": "Kabupaten Sampang",
    "28": "Kabupaten Pamekasan",
    "29": "Kabupaten Sumenep",
    "71": "Kota Kediri",
    "72": "Kota Blitar",
    "73": "Kota Malang",
    "74": "Kota Probolinggo",
    "75": "Kota Pasuruan",
    "76": "Kota Mojokerto",
    "77": "Kota Madiun",
    "78": "Kota Surabaya",
    "79": "Kota Batu",
}

BLITAR_REGENCY = "05"  # within Jawa Timur: Kabupaten Blitar is 35.05

BLITAR_DISTRICT_CODES: frozenset[str] = frozenset(f"{n:02d}" for n in range(1, 23))

# The 22 kecamatan of Kabupaten Blitar, alphabetical. Not in code order: see
# the module docstring.
BLITAR_KECAMATAN: tuple[str, ...] = (
    "Bakung",
    "Binangun",
    "Doko",
    "Gandusari",
    "Garum",
    "Kademangan",
    "Kanigoro",
    "Kesamben",
    "Nglegok",
    "Panggungrejo",
    "Ponggok",
    "Sanankulon",
    "Selopuro",
    "Selorejo",
    "Srengat",
    "Sutojayan",
    "Talun",
    "Udanawu",
    "Wates",
    "Wlingi",
    "Wonodadi",
    "Wonotirto",
)

RegionFault = Literal["province", "regency", "district"]


def _is_code(code: str) -> bool:
    return len(code) == 2 and code.isascii() and code.isdigit()


def province_name(code: str) -> str | None:
    """The province a two-digit Kemendagri code stands for, or ``None``."""
    return PROVINCES.get(code)


def regency_name(province: str, regency: str) -> str | None:
    """The name of a regency/city, known here only for Jawa Timur."""
    if province == JAWA_TIMUR:
        return JAWA_TIMUR_REGENCIES.get(regency)
    return None


def check_region(province: str, regency: str, district: str) -> RegionFault | None:
    """Which of the three codes cannot exist, or ``None`` when all are plausible.

    The first fault found wins, from the widest level down, so the message
    can point at the digits to look at.
    """
    if not _is_code(province) or province not in PROVINCES:
        return "province"
    if not _is_code(regency) or not 1 <= int(regency) <= 79:
        return "regency"
    if province == JAWA_TIMUR and regency not in JAWA_TIMUR_REGENCIES:
        return "regency"
    if not _is_code(district) or district == "00":
        return "district"
    if (province, regency) == (JAWA_TIMUR, BLITAR_REGENCY) and (
        district not in BLITAR_DISTRICT_CODES
    ):
        return "district"
    return None


def _normalise(name: str) -> str:
    words = name.casefold().split()
    if words and words[0] in ("kecamatan", "kec.", "kec"):
        words = words[1:]
    return "".join(words)


_KECAMATAN_BY_KEY = {_normalise(name): name for name in BLITAR_KECAMATAN}


def find_kecamatan(name: str) -> str | None:
    """The official spelling of a kecamatan of Kabupaten Blitar typed by hand, or ``None``.

    Case, spaces and a leading "Kecamatan"/"Kec." are ignored, so
    ``"KEC. SANAN KULON"`` finds ``"Sanankulon"``.
    """
    return _KECAMATAN_BY_KEY.get(_normalise(name))
