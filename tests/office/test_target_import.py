"""Importing a village's target list (:mod:`office.target_import`): reading CSV and XLSX,
the column mapping, and the row-by-row check with the kit's own rules.

Every resident is invented; the NIKs are made to the rules (3505 + district + birth date,
women +40 on the day, + serial) by :func:`nik` below. XLSX files are made in the test with
openpyxl, and read back with python-calamine as the office does.
"""

from __future__ import annotations

import io
import sys
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from office.target_import import (
    ColumnMapping,
    MappingError,
    Report,
    Table,
    TableError,
    check_rows,
    parse_birth_date,
    read_table,
    suggest_mapping,
)
from sync.domain import Category, Place, Sex, Target
from sync.errors import ValidationError

TODAY = date(2026, 12, 1)

HEADERS = ["NO", "NIK", "No. KK", "NAMA LENGKAP", "TGL LAHIR", "JK", "ALAMAT", "RT", "RW",
           "DUSUN", "DESA", "KEC", "KATEGORI", "KETERANGAN"]


def nik(district: int, born: date, sex: str, serial: int = 7, regency: str = "3505") -> str:
    """A made-up NIK that follows the rules: region, birth date (+40 for women), serial."""
    day = born.day + (40 if sex == "P" else 0)
    return f"{regency}{district:02d}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"


def kk(district: int = 10, serial: int = 31) -> str:
    return f"3505{district:02d}2107110{serial:03d}"


SUMIRAH = ["1", nik(10, date(1939, 11, 4), "P"), kk(), "SUMIRAH DARMOWIYONO", "04-11-1939",
           "P", "", "2", "1", "Krajan", "Papungan", "Kanigoro", "lansia",
           "Tidak bisa berjalan"]
KASMIRAN = ["2", nik(10, date(1944, 2, 29), "L", 12), kk(serial=18), "KASMIRAN HADIWIJOYO",
            "1944-02-29", "Laki-laki", "Jl. Melati 5", "004", "002", "Krajan", "Papungan",
            "KEC. KANIGORO", "sakit", ""]
RENE = ["3", nik(10, date(1950, 7, 15), "P", 21), kk(serial=44), "RENÉ D'SOUZA",
        "15/07/1950", "Perempuan", "", "3", "1", "Ngrejo", "Papungan", "Kanigoro",
        "disabilitas", ""]


def csv_bytes(rows: list[list[str]], *, sep: str = ",", encoding: str = "utf-8",
              headers: list[str] = HEADERS) -> bytes:
    def line(cells: list[str]) -> str:
        return sep.join('"' + c.replace('"', '""') + '"' if sep in c or '"' in c else c
                        for c in cells)

    return "\r\n".join(line(r) for r in [headers, *rows]).encode(encoding) + b"\r\n"


def check(table: Table, known: dict[str, str] | None = None) -> Report:
    suggestion = suggest_mapping(table.headers)
    return check_rows(table, suggestion.mapping(), known_niks=known or {}, today=TODAY)


def codes(report: Report, number: int) -> list[str]:
    return [r.code for r in report.row(number).reasons]


# --------------------------------------------------------------------------
# Reading CSV
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [",", ";"])
def test_csv_comma_and_semicolon_read_the_same(sep: str) -> None:
    table = read_table(csv_bytes([SUMIRAH, KASMIRAN], sep=sep), "sasaran.csv")
    assert table.kind == "csv" and table.delimiter == sep
    assert table.headers == tuple(HEADERS)
    assert [r.number for r in table.rows] == [2, 3]
    assert table.rows[1].cells[6] == "Jl. Melati 5"
    report = check(table)
    assert report.summary() == "2 baris: 2 diterima, 0 ditolak"
    assert report.summary("en") == "2 rows: 2 accepted, 0 refused"


def test_semicolon_file_with_commas_in_addresses_is_sniffed_as_semicolon() -> None:
    row = list(KASMIRAN)
    row[6] = "Jl. Melati, gang 2, no. 5"
    table = read_table(csv_bytes([SUMIRAH, row], sep=";"), "sasaran.csv")
    assert table.delimiter == ";"
    assert table.rows[1].cells[6] == "Jl. Melati, gang 2, no. 5"


@pytest.mark.parametrize(("encoding", "expected", "shown"), [
    ("utf-8", "utf-8", "UTF-8"),
    ("utf-8-sig", "utf-8-sig", "UTF-8 dengan BOM"),
    ("cp1252", "windows-1252", "Windows-1252 (bukan UTF-8)"),
])
def test_encodings_keep_accents_and_apostrophes(encoding: str, expected: str,
                                                shown: str) -> None:
    table = read_table(csv_bytes([SUMIRAH, RENE], sep=";", encoding=encoding), "a.csv")
    assert table.encoding == expected
    assert table.headers[0] == "NO"  # the BOM is not part of the first header
    assert shown in table.description()
    report = check(table)
    values = report.row(3).target
    assert values is not None and values.name == "RENÉ D'SOUZA"


def test_excel_sep_line_and_blank_lines_are_handled() -> None:
    data = b"sep=;\r\n\r\n" + csv_bytes([SUMIRAH], sep=";") + b";;;\r\n" + b"\r\n"
    table = read_table(data, "a.csv")
    assert table.delimiter == ";"
    assert table.header_row == 3 and [r.number for r in table.rows] == [4]
    assert table.blank_rows == 2


def test_names_are_trimmed_but_kept_in_capitals() -> None:
    row = list(SUMIRAH)
    row[3] = "  SUMIRAH DARMOWIYONO "
    values = check(read_table(csv_bytes([row]), "a.csv")).row(2).target
    assert values is not None and values.name == "SUMIRAH DARMOWIYONO"


def test_garbage_bytes_are_refused_with_a_reason() -> None:
    garbage = bytes(range(256)) * 40
    with pytest.raises(TableError) as caught:
        read_table(garbage, "sasaran.csv")
    assert caught.value.code == "table_binary"
    assert "bukan CSV" in caught.value.text("id")
    assert "neither a CSV" in caught.value.text("en")


@pytest.mark.parametrize("magic", [b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0"])
def test_the_letters_scan_instead_of_the_list_is_refused(magic: bytes) -> None:
    with pytest.raises(TableError) as caught:
        read_table(magic + b"\x00" * 100, "surat.csv")
    assert caught.value.code == "table_not_a_list"
    assert "bukan daftar sasaran" in caught.value.text()


def test_undecodable_text_is_refused() -> None:
    # 0x81 and 0x8D are undefined in Windows-1252 and invalid alone in UTF-8.
    with pytest.raises(TableError) as caught:
        read_table(b"NIK,NAMA\r\n1,A\x81\x8dB\r\n", "a.csv")
    assert caught.value.code == "table_encoding"
    assert "UTF-8 maupun Windows-1252" in caught.value.text()


def test_utf16_is_refused_with_how_to_save_it() -> None:
    with pytest.raises(TableError) as caught:
        read_table("NIK\tNAMA\r\n".encode("utf-16"), "a.txt")
    assert caught.value.code == "table_utf16"
    assert "CSV UTF-8" in caught.value.text()


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n", b"\xef\xbb\xbf"])
def test_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(TableError) as caught:
        read_table(data, "kosong.csv")
    assert caught.value.code == "table_empty"
    assert caught.value.text().startswith("Berkas kosong")


def test_malformed_csv_names_the_line() -> None:
    data = csv_bytes([SUMIRAH]) + b'3,"3505,unclosed\r\n4,x\r\n'
    with pytest.raises(TableError) as caught:
        read_table(data, "a.csv")
    assert caught.value.code == "table_malformed"
    assert "baris" in caught.value.text() and "tanda kutip" in caught.value.text()


def test_unquoted_comma_shifts_a_row_and_is_refused() -> None:
    row = list(SUMIRAH)
    row[6] = "Jl. Mawar, no 3"
    data = csv_bytes([KASMIRAN]) + (",".join(row) + "\r\n").encode()
    report = check(read_table(data, "a.csv"))
    assert report.row(2).accepted
    assert "row_extra_cells" in codes(report, 3)


# --------------------------------------------------------------------------
# Reading XLSX
# --------------------------------------------------------------------------


def xlsx_bytes(rows: list[list[object]], headers: list[str] = HEADERS,
               extra_sheet: bool = False, text_ids: bool = True) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Data Sasaran"
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    if text_ids:
        for cells in sheet.iter_rows(min_row=2, min_col=2, max_col=3):
            for cell in cells:
                cell.number_format = "@"
    if extra_sheet:
        book.create_sheet("Rekap").append(["jumlah", len(rows)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_with_real_dates_and_text_dates() -> None:
    real_date = list(SUMIRAH)
    real_date[4] = datetime(1939, 11, 4)  # type: ignore[call-overload]
    text_date = list(KASMIRAN)  # "1944-02-29" typed as text
    rt_numbers: list[object] = list(RENE)
    rt_numbers[7], rt_numbers[8] = 3, 1  # numeric RT/RW cells
    table = read_table(xlsx_bytes([real_date, text_date, rt_numbers], extra_sheet=True),
                       "sasaran.xlsx")
    assert table.kind == "xlsx" and table.sheet == "Data Sasaran"
    assert table.other_sheets == ("Rekap",)
    assert "lembar lain tidak dibaca" in table.description()
    report = check(table)
    assert [r.accepted for r in report.rows] == [True, True, True], [
        r.text() for r in report.rows]
    first = report.row(2).target
    assert first is not None and first.birth_date == date(1939, 11, 4)
    third = report.row(4).target
    assert third is not None and (third.address.rt, third.address.rw) == ("003", "001")


def test_xlsx_title_rows_and_column_numbers_above_the_data() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["DATA SASARAN PEREKAMAN KTP-EL DESA PAPUNGAN"])
    sheet.append(["Kecamatan Kanigoro, Kabupaten Blitar"])
    sheet.append([])
    sheet.append(HEADERS)
    sheet.append([f"({n})" for n in range(1, len(HEADERS) + 1)])
    sheet.append(SUMIRAH)
    out = io.BytesIO()
    book.save(out)
    table = read_table(out.getvalue(), "sasaran.xlsx")
    assert table.header_row == 4 and table.rows_above_header == 2
    assert "judul kolom di baris 4" in table.description()
    assert [r.number for r in table.rows] == [6]
    assert check(table).row(6).accepted


def test_openpyxl_fallback_reads_the_same_table(monkeypatch: pytest.MonkeyPatch) -> None:
    real_date: list[object] = list(SUMIRAH)
    real_date[4] = datetime(1939, 11, 4)
    real_date[7] = 2
    data = xlsx_bytes([real_date, KASMIRAN])
    with_calamine = read_table(data, "a.xlsx")
    monkeypatch.setitem(sys.modules, "python_calamine", None)  # import fails
    with_openpyxl = read_table(data, "a.xlsx")
    assert with_openpyxl == with_calamine
    with pytest.raises(TableError) as caught:
        read_table(data[:1000], "a.xlsx")
    assert caught.value.code == "table_corrupt"


def test_xlsx_serial_number_date_is_read() -> None:
    row: list[object] = list(SUMIRAH)
    row[4] = (date(1939, 11, 4) - date(1899, 12, 30)).days  # a date cell shown as General
    report = check(read_table(xlsx_bytes([row]), "a.xlsx"))
    values = report.row(2).target
    assert values is not None and values.birth_date == date(1939, 11, 4)


def test_xlsx_nik_as_a_number_lost_its_last_digit() -> None:
    row: list[object] = list(SUMIRAH)
    row[1] = int(SUMIRAH[1])  # Excel keeps 15 significant digits
    report = check(read_table(xlsx_bytes([row], text_ids=False), "a.xlsx"))
    assert "nik_excel_number" in codes(report, 2)
    assert "15 angka" in report.row(2).text()


def test_corrupt_xlsx_is_refused() -> None:
    good = xlsx_bytes([SUMIRAH])
    with pytest.raises(TableError) as caught:
        read_table(good[: len(good) // 2], "a.xlsx")
    assert caught.value.code == "table_corrupt"
    not_a_book = io.BytesIO()
    with zipfile.ZipFile(not_a_book, "w") as z:
        z.writestr("hello.txt", "bukan buku kerja")
    with pytest.raises(TableError) as caught:
        read_table(not_a_book.getvalue(), "a.xlsx")
    assert caught.value.code == "table_corrupt"
    with pytest.raises(TableError) as caught:
        read_table(b"NIK,NAMA\r\n", "ternyata-teks.xlsx")
    assert "rusak" in caught.value.text()


def test_password_protected_xlsx_is_refused() -> None:
    # An encrypted OOXML file is an OLE2 container holding an EncryptionInfo stream.
    fake = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
            + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 512)
    with pytest.raises(TableError) as caught:
        read_table(fake, "rahasia.xlsx")
    assert caught.value.code == "table_password"
    assert "kata sandi" in caught.value.text()


# --------------------------------------------------------------------------
# Column mapping
# --------------------------------------------------------------------------


def test_header_variants_are_recognised() -> None:
    headers = ["No.", "nik ", "NO KK", "Nama", "Tgl. Lahir (dd-mm-yyyy)", "L/P", "Jalan",
               "R.T.", "R.W.", "Dsn", "Kelurahan", "Kecamatan", "Kategori Sasaran",
               "Ket."]
    s = suggest_mapping(headers)
    assert s.complete and not s.unknown and s.numbering == [0]
    assert s.columns == {"nik": 1, "kk": 2, "name": 3, "birth_date": 4, "sex": 5,
                         "street": 6, "rt": 7, "rw": 8, "dusun": 9, "desa": 10,
                         "kecamatan": 11, "category": 12, "notes": 13}
    other = suggest_mapping(["Nomor Induk Kependudukan", "Nomor Kartu Keluarga",
                             "NAMA LENGKAP", "Tanggal Lahir", "Jenis Kelamin", "RT/RW",
                             "DESA", "KEC", "Kategori"])
    assert other.complete and other.columns["rt_rw"] == 5


def test_unknown_and_missing_columns_are_reported() -> None:
    s = suggest_mapping(["NIK", "NAMA", "TGL LAHIR", "JK", "HOBI", "RT", "RW"])
    assert s.unknown == [(4, "HOBI")]
    assert s.missing == ["kk", "desa", "kecamatan", "category"]
    assert "Kolom 'HOBI' tidak dikenal: tidak akan diimpor" in s.messages()
    assert "Kolom untuk Nomor KK tidak ditemukan: pilih kolomnya" in s.messages()
    assert "Unknown column 'HOBI': it will not be imported" in s.messages("en")
    with pytest.raises(MappingError) as caught:
        s.mapping()
    assert [p.code for p in caught.value.problems] == ["mapping_missing"] * 4
    # The fields the whole file shares can be fixed; the KK still needs its column.
    with pytest.raises(MappingError) as caught:
        s.mapping(fixed={"desa": "Papungan", "kecamatan": "Kanigoro", "category": "lansia"})
    assert [p.field for p in caught.value.problems] == ["kk"]
    assert "Nomor KK belum dipetakan" in caught.value.text()


def test_missing_required_column_then_fixed_values_import() -> None:
    headers = ["NIK", "KK", "NAMA", "TGL LAHIR", "JK", "RT", "RW"]
    rows = [[SUMIRAH[1], SUMIRAH[2], SUMIRAH[3], SUMIRAH[4], "P", "2", "1"]]
    table = read_table(csv_bytes(rows, headers=headers), "a.csv")
    s = suggest_mapping(table.headers)
    assert s.missing == ["desa", "kecamatan", "category"]
    mapping = s.mapping(fixed={"desa": "Papungan", "kecamatan": "kanigoro",
                               "category": "Lansia"})
    report = check_rows(table, mapping, known_niks={}, today=TODAY)
    values = report.row(2).target
    assert values is not None
    assert (values.address.desa, values.address.kecamatan) == ("Papungan", "Kanigoro")
    assert values.category is Category.LANSIA and values.place is Place.HOME


def test_mapping_refuses_a_column_twice_and_unknown_headers() -> None:
    headers = ("NIK", "KK", "NAMA", "TGL", "JK", "RT", "RW", "DESA", "KEC", "KAT")
    columns = {"nik": 0, "kk": 1, "name": 2, "birth_date": 3, "sex": 4, "rt": 5, "rw": 6,
               "desa": 7, "kecamatan": 8, "category": 9}
    ColumnMapping(headers, columns)  # complete: no error
    with pytest.raises(MappingError) as caught:
        ColumnMapping(headers, {**columns, "notes": 2})
    assert caught.value.problems[0].code == "mapping_twice"
    assert "Kolom 'NAMA' dipakai dua kali" in caught.value.text()
    with pytest.raises(MappingError) as caught:
        ColumnMapping.by_header(headers, {"nik": "NIK", "kk": "NO KK"})
    assert "kolom 'NO KK' tidak ada di berkas" in caught.value.text()
    with pytest.raises(MappingError):
        ColumnMapping(headers, {**columns, "desa": 7}, fixed={"desa": "Papungan"})
    without_category = {k: v for k, v in columns.items() if k != "category"}
    with pytest.raises(MappingError) as caught:
        ColumnMapping(headers, without_category, fixed={"category": "hantu"})
    assert caught.value.problems[0].code == "mapping_fixed_value"


def test_a_second_column_for_a_field_is_reported() -> None:
    s = suggest_mapping(["NIK", "ALAMAT", "JALAN"])
    assert s.columns["street"] == 1 and s.repeated == [(2, "JALAN")]
    assert ("Kolom 'JALAN' juga tampak berisi Alamat/jalan, yang sudah diambil dari kolom "
            "'ALAMAT': tidak akan diimpor kecuali Anda memilihnya") in s.messages()


def test_rt_rw_in_one_column() -> None:
    headers = ["NIK", "KK", "NAMA", "TGL LAHIR", "JK", "RT/RW", "DESA", "KEC", "KATEGORI"]
    good = [SUMIRAH[1], SUMIRAH[2], SUMIRAH[3], SUMIRAH[4], "P", "2/1", "Papungan",
            "Kanigoro", "lansia"]
    half = [KASMIRAN[1], KASMIRAN[2], KASMIRAN[3], KASMIRAN[4], "L", "004", "Papungan",
            "Kanigoro", "sakit"]
    report = check(read_table(csv_bytes([good, half], sep=";", headers=headers), "a.csv"))
    values = report.row(2).target
    assert values is not None and (values.address.rt, values.address.rw) == ("002", "001")
    assert codes(report, 3) == ["rw_empty"]
    assert report.row(3).text() == "Baris 3: RW kosong. Isi RW sesuai KK"


# --------------------------------------------------------------------------
# Row checks
# --------------------------------------------------------------------------


def test_accepted_rows_become_targets() -> None:
    report = check(read_table(csv_bytes([SUMIRAH, KASMIRAN, RENE]), "a.csv"))
    values = report.row(3).target
    assert values is not None
    assert values.sex is Sex.MALE and values.birth_date == date(1944, 2, 29)
    assert values.address.kecamatan == "Kanigoro" and values.address.street == "Jl. Melati 5"
    assert (values.address.rt, values.address.rw) == ("004", "002")
    assert values.category is Category.SAKIT
    target = values.to_target()
    assert isinstance(target, Target) and target.problems(today=TODAY) == []
    assert [t.nik for t in report.targets([2, 4])] == [SUMIRAH[1], RENE[1]]
    assert "SUMIRAH" not in repr(report) + repr(values) + repr(report.row(2))


def test_nik_birth_date_and_sex_mismatch_are_refused_in_both_languages() -> None:
    wrong_date = list(SUMIRAH)
    wrong_date[4] = "05-11-1939"
    wrong_sex = list(KASMIRAN)
    wrong_sex[5] = "P"
    swapped = list(RENE)
    swapped[0] = "4"
    swapped[1] = nik(10, date(1950, 7, 5), "P", 22)
    swapped[4] = "07-05-1950"  # typed month first
    report = check(read_table(csv_bytes([wrong_date, wrong_sex, swapped]), "a.csv"))
    assert codes(report, 2) == ["nik_birth_date_mismatch"]
    assert "Tanggal lahir pada NIK" in report.row(2).text()
    assert "The birth date in the NIK" in report.row(2).text("en")
    assert codes(report, 3) == ["nik_sex_mismatch"]
    assert codes(report, 4) == ["nik_birth_date_mismatch", "birth_date_swapped"]
    with pytest.raises(ValidationError) as caught:
        report.targets([2, 3])
    assert caught.value.code == "import_refused_row"


def test_every_reason_of_a_bad_row_is_listed() -> None:
    bad = ["9", "35051044113900", "3505-10-2107", "", "31-02-1939", "X", "", "0", "1",
           "", "Papungan", "Kota Baru", "hantu", ""]
    report = check(read_table(csv_bytes([bad]), "a.csv"))
    assert codes(report, 2) == ["name_empty", "birth_date_invalid", "sex",
                                "category_unknown", "nik_format", "kk_format",
                                "address_rt", "address_kecamatan"]
    text = report.row(2).text()
    assert text.startswith("Baris 2: Nama kosong")
    assert "3505104411" not in text  # no NIK in messages


def test_a_refused_sex_does_not_hide_the_other_reasons() -> None:
    row = list(SUMIRAH)
    row[4], row[5], row[12] = "04-11-1940", "?", "hantu"
    future = list(KASMIRAN)
    future[4], future[5] = "29-02-2044", ""
    report = check(read_table(csv_bytes([row, future]), "a.csv"))
    assert codes(report, 2) == ["sex", "category_unknown", "nik_birth_date_mismatch"]
    assert codes(report, 3) == ["sex_empty", "birth_date_implausible"]


def test_bad_kk_and_region_codes() -> None:
    bad_kk = list(SUMIRAH)
    bad_kk[2] = "3530102107110031"  # no regency 30 in Jawa Timur
    bad_district = list(KASMIRAN)
    bad_district[1] = nik(40, date(1944, 2, 29), "L", 12)  # Blitar has 22 districts
    moved = list(RENE)
    moved[1] = nik(10, date(1950, 7, 15), "P", 21, regency="3578")  # issued in Surabaya
    report = check(read_table(csv_bytes([bad_kk, bad_district, moved]), "a.csv"))
    assert codes(report, 2) == ["kk_region"]
    assert codes(report, 3) == ["nik_district"]
    assert report.row(4).accepted
    assert [w.code for w in report.row(4).warnings] == ["nik_outside_blitar"]
    assert "Kota Surabaya" in report.row(4).warnings[0].text()


def test_duplicates_within_the_file_name_both_rows() -> None:
    copy = list(SUMIRAH)
    copy[0] = "4"
    other = list(KASMIRAN)
    other[1] = SUMIRAH[1]
    report = check(read_table(csv_bytes([SUMIRAH, KASMIRAN, copy]), "a.csv"))
    assert report.row(2).accepted
    assert "Baris 4 sama persis" in report.row(2).warnings[0].text()
    assert codes(report, 4) == ["duplicate_copy"]
    assert "baris 2" in report.row(4).text()
    # Two different rows with one NIK: neither can be trusted, each names the other.
    report = check(read_table(csv_bytes([SUMIRAH, other]), "a.csv"))
    assert "duplicate_nik" in codes(report, 2) and "duplicate_nik" in codes(report, 3)
    assert "baris 3" in report.row(2).text() and "baris 2" in report.row(3).text()


def test_known_nik_is_refused_with_the_callers_words() -> None:
    known = {SUMIRAH[1]: "permohonan 12/2026 Desa Papungan",
             RENE[1]: "sudah terekam 03-12-2026"}
    report = check(read_table(csv_bytes([SUMIRAH, KASMIRAN, RENE]), "a.csv"), known)
    assert codes(report, 2) == ["nik_known"]
    assert "NIK sudah terdaftar: permohonan 12/2026 Desa Papungan" in report.row(2).text()
    assert report.row(3).accepted
    assert "already known: sudah terekam 03-12-2026" in report.row(4).text("en")
    assert len(report.accepted) == 1 and len(report.refused) == 2


@pytest.mark.parametrize(("text", "expected"), [
    ("04-11-1939", date(1939, 11, 4)), ("4/11/1939", date(1939, 11, 4)),
    ("04.11.1939", date(1939, 11, 4)), ("1939-11-04", date(1939, 11, 4)),
    ("1939-11-04 00:00:00", date(1939, 11, 4)), ("4 November 1939", date(1939, 11, 4)),
    ("04 Agustus 1945", date(1945, 8, 4)), ("Blitar, 04-11-1939", date(1939, 11, 4)),
])
def test_date_spellings(text: str, expected: date) -> None:
    assert parse_birth_date(text) == expected


def test_two_digit_year_is_refused() -> None:
    row = list(SUMIRAH)
    row[4] = "04-11-39"
    report = check(read_table(csv_bytes([row]), "a.csv"))
    assert codes(report, 2) == ["birth_date_two_digit_year"]


@pytest.mark.parametrize("word", ["L", "l", "Laki-laki", "LAKI LAKI", "M", "Pria"])
def test_sex_words(word: str) -> None:
    row = list(KASMIRAN)
    row[5] = word
    values = check(read_table(csv_bytes([row]), "a.csv")).row(2).target
    assert values is not None and values.sex is Sex.MALE


def test_nik_kept_as_text_by_spreadsheet_tricks() -> None:
    quoted = list(SUMIRAH)
    quoted[1] = "'" + SUMIRAH[1]
    formula = list(KASMIRAN)
    formula[1] = f'="{KASMIRAN[1]}"'
    scientific = list(RENE)
    scientific[1] = "3,50511E+15"
    report = check(read_table(csv_bytes([quoted, formula, scientific], sep=";"), "a.csv"))
    assert report.row(2).accepted and report.row(3).accepted
    assert codes(report, 4)[0] == "nik_scientific"


def test_five_thousand_rows() -> None:
    rows = []
    for i in range(5000):
        born = date(1930 + i % 40, 1 + i % 12, 1 + i % 28)
        sex = "P" if i % 2 else "L"
        rows.append([str(i + 1), nik(1 + i % 22, born, sex, 1 + i), kk(1 + i % 22, i % 1000),
                     f"WARGA {i}", born.strftime("%d-%m-%Y"), sex, "", str(1 + i % 9),
                     str(1 + i % 4), "Krajan", "Papungan", "Kanigoro", "lansia", ""])
    report = check(read_table(csv_bytes(rows, sep=";"), "besar.csv"))
    assert len(report.rows) == 5000 and len(report.accepted) == 5000
