"""Reading a village's target list (*data sasaran*) from CSV or XLSX, and checking it
row by row before anything is imported (issue 13, item 2).

Three steps, each the caller's to show and confirm:

1. :func:`read_table` turns the uploaded bytes into a :class:`Table` of strings with the
   source row numbers. CSV is sniffed for ``,``, ``;`` or tab and decoded as UTF-8 (with
   or without a byte-order mark) or else Windows-1252, and the table says which, because
   a village office's Excel on Windows saves "CSV" in Windows-1252 with ``;`` and the
   user must be able to see why an ``é`` came out right or wrong. XLSX is read with
   python-calamine (fast, Rust) or openpyxl when calamine is missing; only the first
   sheet. A file that is neither, is empty, encrypted or corrupt raises
   :class:`TableError` with the reason in Bahasa Indonesia and English.
2. :func:`suggest_mapping` guesses which column holds which field from the header
   spellings villages use ("No. KK", "TGL LAHIR", "L/P"...), reports the columns it does
   not know and the fields it did not find; the user corrects it and the result is a
   :class:`ColumnMapping`, which refuses a required field left unmapped or a column used
   twice (:class:`MappingError`). A field the whole file shares (the desa of the
   request, "lansia" for a list of elderly residents) can be given a fixed value instead
   of a column.
3. :func:`check_rows` normalises each row (dates, sex, RT/RW, kecamatan spelling) and
   checks it with the kit's own rules in :mod:`sync.domain` (:class:`~sync.domain.Target`
   and :func:`~sync.domain.validate_nik` / :func:`~sync.domain.validate_kk`: the NIK
   against the birth date and sex, the region codes, the KK digits, RT/RW, the
   kecamatan), then for duplicates within the file and against ``known_niks`` (open
   requests and residents already recorded, supplied by the caller). The
   :class:`Report` lists every row, with every reason a refused row has; accepted rows
   carry :class:`TargetValues` ready to become :class:`~sync.domain.Target` objects.

Nothing here writes anywhere: the caller shows the report, the user chooses the rows
to import, and :meth:`Report.targets` gives exactly those (refusing a refused row).

No rule about a NIK, KK, RT/RW or address is written here: they are all in
:mod:`sync.domain`, so the office refuses what the kit would refuse, for the same
reason. What this module adds is only what a spreadsheet brings: encodings, column
names, date spellings, Excel's serial dates and its 15-digit number cells, rows shifted
by an unquoted comma.

Messages never contain a NIK, a KK number or a name (they end up in logs and on shared
screens): a row is named by its number in the file.
"""

from __future__ import annotations

import collections.abc as cabc
import csv
import io
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sync import regions
from sync.domain import (
    Address,
    Category,
    FieldError,
    Place,
    Sex,
    Target,
    uuid7,
    validate_kk,
    validate_nik,
)
from sync.errors import ValidationError

logger = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
"""Largest file read (20 MiB): a village's list of a few thousand rows is well under 1 MiB."""

MAX_ROWS = 50_000
"""Most data rows read; a list longer than this is not a village's list."""

_CHECK_ID = "00000000-0000-0000-0000-000000000000"
"""A well-formed id for checking a row with :meth:`Target.problems` before it has one."""

_BLITAR = regions.JAWA_TIMUR + regions.BLITAR_REGENCY  # "3505", the first digits of a NIK
_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel's 1900 leap-year bug)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """Why a row was refused (or a warning about it), in both languages.

    ``field`` is the target field at fault (``"nik"``, ``"birth_date"``...), or ``None``
    for the row as a whole, so a page can mark the cell.
    """

    code: str
    field: str | None
    id: str
    en: str
    hint_id: str = ""
    hint_en: str = ""

    def text(self, lang: str = "id") -> str:
        """The message and what to do, in ``lang`` (``id`` or ``en``; anything else: ``id``)."""
        if lang == "en":
            return f"{self.en}. {self.hint_en}" if self.hint_en else self.en
        return f"{self.id}. {self.hint_id}" if self.hint_id else self.id

    @classmethod
    def from_error(cls, err: ValidationError, field: str | None = None) -> Reason:
        """A domain fault as a reason, keeping its code, messages and hints."""
        if field is None and isinstance(err, FieldError):
            field = _DOMAIN_FIELDS.get(err.field, err.field)
        return cls(err.code, field, err.message["id"], err.message["en"],
                   err.hint["id"], err.hint["en"])


# Target.problems() names fields as the canonical form does; the import names them so.
_DOMAIN_FIELDS = {
    "address.rt": "rt", "address.rw": "rw", "address.desa": "desa",
    "address.kecamatan": "kecamatan", "address.street": "street",
    "address.dusun": "dusun", "id": "id",
}


class TableError(ValidationError):
    """The file cannot be read as a table at all (empty, binary, encrypted, corrupt)."""

    code = "table"


class MappingError(ValidationError):
    """A column mapping that cannot be used; every fault is in :attr:`problems`."""

    code = "mapping"

    def __init__(self, problems: list[Reason]) -> None:
        self.problems = problems
        super().__init__(
            id="Pemetaan kolom belum benar: " + "; ".join(p.id for p in problems),
            en="The column mapping is not right: " + "; ".join(p.en for p in problems),
            hint_id="Pilih kolom untuk setiap data wajib, satu kolom untuk satu data",
            hint_en="Choose a column for every required field, one column per field",
        )


def _table_error(code: str, id: str, en: str, hint_id: str, hint_en: str) -> TableError:
    return TableError(id=id, en=en, hint_id=hint_id, hint_en=hint_en, code=code)


# --------------------------------------------------------------------------
# Step 1: the table
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One data row: its number in the file (the header is row 1 in a simple file, as
    Excel and a text editor show it), its cells as text, and which cells were numbers
    in an XLSX sheet (a NIK there may have lost its last digit; a date may be a serial)."""

    number: int
    cells: tuple[str, ...]
    numeric: frozenset[int] = frozenset()

    def __repr__(self) -> str:  # cells are personal data
        return f"Row(number={self.number}, cells={len(self.cells)})"


@dataclass(frozen=True)
class Table:
    """What :func:`read_table` read: headers, data rows and how the file was read.

    ``kind`` is ``"csv"`` or ``"xlsx"``; ``encoding`` (CSV only) is ``"utf-8"``,
    ``"utf-8-sig"`` (UTF-8 with a byte-order mark) or ``"windows-1252"``; ``delimiter``
    (CSV only) the separator found; ``sheet`` (XLSX only) the sheet read;
    ``header_row`` the header's row number; ``rows_above_header`` how many filled rows
    (a title) were skipped above it; ``blank_rows`` how many empty rows were skipped.
    :meth:`description` says it all in a sentence.
    """

    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    kind: str
    filename: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    other_sheets: tuple[str, ...] = ()
    header_row: int = 1
    blank_rows: int = 0
    rows_above_header: int = 0

    def __repr__(self) -> str:
        return f"Table(kind={self.kind!r}, columns={len(self.headers)}, rows={len(self.rows)})"

    def description(self, lang: str = "id") -> str:
        """How the file was read, e.g. ``CSV, pemisah titik koma (;), Windows-1252``."""
        en = lang == "en"
        if self.kind == "csv":
            names = {
                ",": ("koma (,)", "comma (,)"), ";": ("titik koma (;)", "semicolon (;)"),
                "\t": ("tab", "tab"),
            }
            sep = names.get(self.delimiter or ",", (repr(self.delimiter),) * 2)[int(en)]
            enc = {
                "utf-8": ("UTF-8", "UTF-8"),
                "utf-8-sig": ("UTF-8 dengan BOM", "UTF-8 with BOM"),
                "windows-1252": ("Windows-1252 (bukan UTF-8)", "Windows-1252 (not UTF-8)"),
            }[self.encoding or "utf-8"][int(en)]
            text = f"CSV, separator {sep}, {enc}" if en else f"CSV, pemisah {sep}, {enc}"
        else:
            text = f"XLSX, sheet '{self.sheet}'" if en else f"XLSX, lembar '{self.sheet}'"
            if self.other_sheets:
                more = len(self.other_sheets)
                text += (f" (first of {more + 1} sheets; the others were not read)" if en
                         else f" (lembar pertama dari {more + 1}; lembar lain tidak dibaca)")
        rows = (f"{len(self.rows)} data rows" if en else f"{len(self.rows)} baris data")
        if self.header_row > 1:
            rows += (f", headers on row {self.header_row}" if en
                     else f", judul kolom di baris {self.header_row}")
        return f"{text}; {rows}"


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_NOT_A_LIST = (
    (b"%PDF", "PDF", "a PDF"),
    (b"\x89PNG", "gambar PNG", "a PNG image"),
    (b"\xff\xd8\xff", "gambar JPEG", "a JPEG image"),
)
_SEP_LINE = re.compile(r"sep=(.)\s*")


def read_table(data: bytes, filename: str = "") -> Table:
    """Read an uploaded target list; raise :class:`TableError` with the reason if it is
    not a readable CSV or XLSX file.

    The content decides the kind, not the name: an XLSX renamed ``.csv`` is read as
    XLSX, and a text file named ``.xlsx`` is refused as a damaged workbook (saying so,
    since the user thinks it is one).
    """
    if len(data) > MAX_BYTES:
        raise _table_error(
            "table_too_big", f"Berkas terlalu besar (lebih dari {MAX_BYTES // 2**20} MB)",
            f"The file is too big (over {MAX_BYTES // 2**20} MB)",
            "Unggah daftar sasaran satu desa saja", "Upload one village's target list only")
    name = filename.casefold()
    for magic, kind_id, kind_en in _NOT_A_LIST:
        if data.startswith(magic):
            raise _table_error(
                "table_not_a_list", f"Berkas ini {kind_id} (mungkin pindaian surat "
                "permohonan), bukan daftar sasaran", f"This file is {kind_en} (perhaps the "
                "scan of the request letter), not a target list",
                "Unggah daftar sasaran dalam CSV atau XLSX; pindaian surat dilampirkan di "
                "halaman permohonan", "Upload the target list as CSV or XLSX; the letter's "
                "scan is attached on the request page")
    if data.startswith(_ZIP_MAGIC):
        return _read_xlsx(data, filename)
    if data.startswith(_OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            raise _table_error(
                "table_password",
                "Berkas Excel ini dilindungi kata sandi, sehingga tidak bisa dibaca",
                "This Excel file is password-protected, so it cannot be read",
                "Buka di Excel, hapus kata sandinya (File > Info > Lindungi Buku Kerja) "
                "lalu simpan ulang sebagai .xlsx", "Open it in Excel, remove the password "
                "(File > Info > Protect Workbook) and save it again as .xlsx")
        return _read_xlsx(data, filename)  # an old .xls: calamine reads those too
    if name.endswith((".xlsx", ".xlsm", ".xls")):
        raise _corrupt_workbook()
    return _read_csv(data, filename)


def _corrupt_workbook() -> TableError:
    return _table_error(
        "table_corrupt", "Berkas Excel rusak atau bukan berkas Excel",
        "The Excel file is damaged or not an Excel file",
        "Buka berkas di Excel; bila terbuka, simpan ulang sebagai .xlsx atau CSV lalu "
        "unggah lagi", "Open it in Excel; if it opens, save it again as .xlsx or CSV and "
        "upload it again")


def _empty_file() -> TableError:
    return _table_error(
        "table_empty", "Berkas kosong: tidak ada judul kolom maupun baris data",
        "The file is empty: no column headers and no rows",
        "Periksa bahwa berkas yang diunggah adalah daftar sasaran dari desa",
        "Check that the file uploaded is the village's target list")


def _not_text() -> TableError:
    return _table_error(
        "table_binary", "Berkas ini bukan CSV (teks) maupun XLSX yang dapat dibaca",
        "This file is neither a CSV (text) nor a readable XLSX file",
        "Simpan daftar dari Excel sebagai 'CSV (dipisahkan koma)' atau 'Buku Kerja Excel "
        "(.xlsx)' lalu unggah lagi", "Save the list from Excel as 'CSV (comma delimited)' "
        "or 'Excel Workbook (.xlsx)' and upload it again")


def _decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read in: UTF-8 (BOM or not), else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _table_error(
            "table_utf16", "Berkas berformat UTF-16 ('Teks Unicode'), bukan CSV",
            "The file is UTF-16 ('Unicode Text'), not CSV",
            "Simpan dari Excel sebagai 'CSV UTF-8 (dipisahkan koma)' lalu unggah lagi",
            "Save it from Excel as 'CSV UTF-8 (comma delimited)' and upload it again")
    if b"\x00" in data[:65536]:
        raise _not_text()
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise _table_error(
                "table_encoding", "Berkas ditandai UTF-8 (BOM) tetapi isinya bukan UTF-8 "
                "yang sah", "The file is marked UTF-8 (BOM) but its content is not valid "
                "UTF-8", "Simpan ulang dari Excel sebagai 'CSV UTF-8' lalu unggah lagi",
                "Save it again from Excel as 'CSV UTF-8' and upload it again") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise _table_error(
            "table_encoding", "Huruf dalam berkas tidak dapat dibaca sebagai UTF-8 maupun "
            "Windows-1252", "The file's characters read as neither UTF-8 nor Windows-1252",
            "Simpan ulang dari Excel sebagai 'CSV UTF-8' lalu unggah lagi",
            "Save it again from Excel as 'CSV UTF-8' and upload it again") from None
    return text, "windows-1252"


def _looks_binary(text: str) -> bool:
    """Control characters other than tab and line ends in more than 1% of the text."""
    sample = text[:65536]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\r\n")
    return controls > max(2, len(sample) // 100)


def _sniff_delimiter(lines: list[str]) -> str:
    """The separator that splits the first lines into the most, and most even, columns.

    csv.Sniffer is easily fooled by commas inside a semicolon file's addresses; counting
    the header's fields with each candidate, then checking the next lines agree, is not.
    """
    best, best_score = ",", (-1, -1)
    for candidate in (";", ",", "\t"):
        try:
            widths = [len(r) for r in csv.reader(lines, delimiter=candidate)]
        except csv.Error:
            continue
        if not widths:
            continue
        header = widths[0]
        agreeing = sum(1 for w in widths[1:] if w == header)
        score = (header if header > 1 else 0, agreeing)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _read_csv(data: bytes, filename: str) -> Table:
    text, encoding = _decode(data)
    if _looks_binary(text):
        raise _not_text()
    if not text.strip():
        raise _empty_file()
    lines = text.splitlines(keepends=True)
    skip = 0
    match = _SEP_LINE.fullmatch(lines[0].strip()) if lines else None
    if match:  # Excel's "sep=;" first line
        delimiter, skip = match.group(1), 1
    else:
        head = [line for line in lines[:50] if line.strip()][:20]
        delimiter = _sniff_delimiter(head)
    reader = csv.reader(io.StringIO("".join(lines[skip:])), delimiter=delimiter, strict=True)
    rows: list[Row] = []
    blank: list[int] = []
    previous_end = skip
    try:
        for record in reader:
            start = previous_end + 1
            previous_end = reader.line_num + skip
            cells = tuple(c.strip() for c in record)
            if not any(cells):
                blank.append(start)
                continue
            rows.append(Row(start, cells))
            if len(rows) > MAX_ROWS:
                raise _too_many_rows()
    except csv.Error as exc:
        line = reader.line_num + skip
        raise _table_error(
            "table_malformed", f"CSV rusak di sekitar baris {line}: tanda kutip (\") tidak "
            "berpasangan atau salah tempat", f"The CSV is malformed near line {line}: a "
            "quotation mark (\") is unmatched or misplaced",
            "Buka berkas di Excel, periksa baris itu, simpan ulang lalu unggah lagi",
            "Open the file in Excel, check that line, save it again and upload it again",
        ) from exc
    if not rows:
        raise _empty_file()
    headers, header_row, data, blanks, above = _split_header(rows, blank)
    return Table(headers=headers, rows=data, kind="csv", filename=filename,
                 encoding=encoding, delimiter=delimiter, header_row=header_row,
                 blank_rows=blanks, rows_above_header=above)


def _split_header(rows: list[Row], blank: list[int]
                  ) -> tuple[tuple[str, ...], int, tuple[Row, ...], int, int]:
    """Find the header row and return (headers, its number, data rows, blank rows after
    it, rows above it).

    Village spreadsheets often start with a title ("DATA SASARAN PEREKAMAN KTP-EL DESA
    ...") and sometimes number their columns on the row under the header ("1", "2", ...,
    as government forms do): the header is the row among the first ten that names the
    most known fields (the first row when none names two), and a numbering row right under
    it is skipped.
    """
    best, best_count = 0, 1
    for index, row in enumerate(rows[:10]):
        count = len({_FIELD_BY_SPELLING.get(normalise_header(c)) for c in row.cells} - {None})
        if count > best_count:
            best, best_count = index, count
    header = rows[best]
    data = rows[best + 1:]
    if data and _is_column_numbering(data[0].cells):
        data = data[1:]
    width = len(header.cells)
    while width and not header.cells[width - 1] and not any(
        len(r.cells) >= width and r.cells[width - 1] for r in data
    ):  # trailing empty headers (a trailing separator, a sheet formatted wider) are no column
        width -= 1
    blanks = sum(1 for n in blank if n > header.number)
    return header.cells[:width], header.number, tuple(data), blanks, best


def _is_column_numbering(cells: tuple[str, ...]) -> bool:
    filled = [c.strip("()") for c in cells if c]
    return len(filled) >= 3 and filled == [str(n) for n in range(1, len(filled) + 1)]


def _too_many_rows() -> TableError:
    return _table_error(
        "table_too_many_rows", f"Berkas berisi lebih dari {MAX_ROWS} baris",
        f"The file holds more than {MAX_ROWS} rows",
        "Unggah daftar sasaran satu desa saja", "Upload one village's target list only")


def _cell_text(value: Any) -> tuple[str, bool]:
    """A spreadsheet cell as text, and whether it was a number."""
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE"), False
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat(), False
        return value.isoformat(sep=" "), False
    if isinstance(value, date):
        return value.isoformat(), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value)), True
        return repr(value), True
    if isinstance(value, time | timedelta):
        return str(value), False
    return str(value).strip(), False


def _sheet_rows(data: bytes) -> tuple[str, tuple[str, ...], list[list[Any]]]:
    """The first sheet's name, the other sheets' names and its cells (calamine, else
    openpyxl), with every reader fault turned into a :class:`TableError`."""
    try:
        import python_calamine as calamine
    except ImportError:  # calamine is the dependency; openpyxl the fallback
        return _sheet_rows_openpyxl(data)
    try:
        with calamine.CalamineWorkbook.from_filelike(io.BytesIO(data)) as book:
            names = list(book.sheet_names)
            if not names:
                raise _empty_file()
            sheet = book.get_sheet_by_index(0)
            return names[0], tuple(names[1:]), list(sheet.to_python(skip_empty_area=False))
    except calamine.PasswordError:
        raise _table_error(
            "table_password", "Berkas Excel ini dilindungi kata sandi",
            "This Excel file is password-protected",
            "Hapus kata sandinya di Excel lalu simpan ulang sebagai .xlsx",
            "Remove the password in Excel and save it again as .xlsx") from None
    except calamine.CalamineError as exc:
        logger.info("workbook refused by calamine: %s", exc.__class__.__name__)
        raise _corrupt_workbook() from None
    except (ValueError, OSError) as exc:
        logger.info("workbook refused by calamine: %s", exc.__class__.__name__)
        raise _corrupt_workbook() from None


def _sheet_rows_openpyxl(data: bytes) -> tuple[str, tuple[str, ...], list[list[Any]]]:
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as exc:
        logger.info("workbook refused by openpyxl: %s", exc.__class__.__name__)
        raise _corrupt_workbook() from None
    try:
        names = list(book.sheetnames)
        sheet = book.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    return names[0], tuple(names[1:]), rows


def _read_xlsx(data: bytes, filename: str) -> Table:
    sheet_name, others, raw = _sheet_rows(data)
    rows: list[Row] = []
    blank: list[int] = []
    for index, raw_row in enumerate(raw, start=1):
        texts = [_cell_text(v) for v in raw_row]
        cells = tuple(t for t, _ in texts)
        if not any(cells):
            blank.append(index)
            continue
        numeric = frozenset(i for i, (_, is_number) in enumerate(texts) if is_number)
        rows.append(Row(index, cells, numeric))
        if len(rows) > MAX_ROWS:
            raise _too_many_rows()
    if not rows:
        if others:
            raise _table_error(
                "table_empty", f"Lembar pertama ('{sheet_name}') kosong",
                f"The first sheet ('{sheet_name}') is empty",
                "Letakkan daftar sasaran di lembar pertama lalu simpan ulang",
                "Put the target list on the first sheet and save again")
        raise _empty_file()
    headers, header_row, data_rows, blanks, above = _split_header(rows, blank)
    return Table(headers=headers, rows=data_rows, kind="xlsx", filename=filename,
                 sheet=sheet_name, other_sheets=others, header_row=header_row,
                 blank_rows=blanks, rows_above_header=above)


# --------------------------------------------------------------------------
# Step 2: the column mapping
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """A field a target needs: its key, labels, whether it is required, and the header
    spellings (normalised: lower case, letters and digits only) that mean it."""

    key: str
    label_id: str
    label_en: str
    required: bool
    spellings: tuple[str, ...]

    def label(self, lang: str = "id") -> str:
        return self.label_en if lang == "en" else self.label_id


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("nik", "NIK", "NIK", True,
              ("nik", "nonik", "nomornik", "niknomor", "nomorindukkependudukan", "noktp",
               "nomorktp", "nikktp", "niknoktp")),
    FieldSpec("kk", "Nomor KK", "Family card (KK) number", True,
              ("kk", "nokk", "nomorkk", "nkk", "kartukeluarga", "nokartukeluarga",
               "nomorkartukeluarga", "nomorkeluarga")),
    FieldSpec("name", "Nama", "Name", True,
              ("nama", "namalengkap", "namapenduduk", "namasasaran", "namawarga",
               "namasesuaiktp", "namasesuaikk")),
    FieldSpec("birth_date", "Tanggal lahir", "Birth date", True,
              ("tgllahir", "tanggallahir", "tgllhr", "tanggallhr", "tgllahirddmmyyyy",
               "lahir", "ttl", "tempattanggallahir", "tempattgllahir", "tmptgllahir",
               "tanggalkelahiran")),
    FieldSpec("sex", "Jenis kelamin", "Sex", True,
              ("jk", "lp", "jeniskelamin", "kelamin", "jnskelamin", "jnskel", "sex",
               "gender", "jeniskel")),
    FieldSpec("street", "Alamat/jalan", "Street address", False,
              ("alamat", "jalan", "alamatjalan", "jl", "jln", "alamatrumah",
               "alamatlengkap")),
    FieldSpec("rt_rw", "RT/RW (satu kolom)", "RT/RW (one column)", False, ("rtrw",)),
    FieldSpec("rt", "RT", "RT", True, ("rt", "nort", "nomorrt")),
    FieldSpec("rw", "RW", "RW", True, ("rw", "norw", "nomorrw")),
    FieldSpec("dusun", "Dusun", "Dusun (hamlet)", False,
              ("dusun", "dsn", "dukuh", "lingkungan", "namadusun")),
    FieldSpec("desa", "Desa/kelurahan", "Village (desa/kelurahan)", True,
              ("desa", "kelurahan", "desakelurahan", "desakel", "kel", "ds", "namadesa",
               "kelurahandesa")),
    FieldSpec("kecamatan", "Kecamatan", "District (kecamatan)", True,
              ("kecamatan", "kec", "kcm", "namakecamatan")),
    FieldSpec("category", "Kategori", "Category", True,
              ("kategori", "jenissasaran", "kelompok", "kategorisasaran", "kondisi",
               "golongan", "jenis", "sasaran")),
    FieldSpec("place", "Tempat perekaman", "Recording place", False,
              ("tempat", "lokasi", "tempatperekaman", "lokasiperekaman", "tempattinggal",
               "domisili")),
    FieldSpec("notes", "Catatan", "Notes", False,
              ("keterangan", "ket", "catatan", "notes", "keteranganlain", "informasi")),
)
FIELD_BY_KEY: dict[str, FieldSpec] = {f.key: f for f in FIELDS}
_FIELD_BY_SPELLING = {s: f.key for f in FIELDS for s in f.spellings}
_NUMBERING = {"no", "nourut", "nomor", "urut", "nomorurut", "num"}


def normalise_header(header: str) -> str:
    """A header as compared: accents dropped, lower case, letters and digits only, a
    trailing note in brackets removed (``"Tgl. Lahir (dd-mm-yyyy)"`` -> ``tgllahir``)."""
    header = re.sub(r"\([^)]*\)\s*$", "", header)
    folded = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.casefold())


@dataclass(frozen=True)
class ColumnMapping:
    """Which column (0-based index into :attr:`Table.headers`) holds which field, and
    the fixed values of fields the whole file shares.

    Building one checks it and raises :class:`MappingError` listing every fault: an
    unknown field, a column out of range, one column for two fields, a field both mapped
    and fixed, a required field neither (RT and RW are satisfied by one ``rt_rw``
    column).
    """

    headers: tuple[str, ...]
    columns: cabc.Mapping[str, int]
    fixed: cabc.Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: list[Reason] = []
        used: dict[int, str] = {}
        for key, column in self.columns.items():
            if key not in FIELD_BY_KEY:
                problems.append(Reason("mapping_field", key, f"Data '{key}' tidak dikenal",
                                       f"Unknown field '{key}'"))
                continue
            label = FIELD_BY_KEY[key]
            if not 0 <= column < len(self.headers):
                problems.append(Reason(
                    "mapping_column", key, f"{label.label_id}: kolom ke-{column + 1} tidak ada",
                    f"{label.label_en}: column {column + 1} does not exist"))
                continue
            if column in used:
                other = FIELD_BY_KEY[used[column]]
                head = self.headers[column] or f"ke-{column + 1}"
                problems.append(Reason(
                    "mapping_twice", key,
                    f"Kolom '{head}' dipakai dua kali: untuk {other.label_id} dan "
                    f"{label.label_id}",
                    f"Column '{head}' is used twice: for {other.label_en} and "
                    f"{label.label_en}"))
                continue
            used[column] = key
        for key, value in self.fixed.items():
            if key not in FIELD_BY_KEY:
                problems.append(Reason("mapping_field", key, f"Data '{key}' tidak dikenal",
                                       f"Unknown field '{key}'"))
            elif key in self.columns:
                label = FIELD_BY_KEY[key]
                problems.append(Reason(
                    "mapping_both", key,
                    f"{label.label_id} diambil dari kolom dan juga diisi tetap; pilih salah "
                    "satu", f"{label.label_en} is both read from a column and fixed; "
                    "choose one"))
            elif not value.strip():
                label = FIELD_BY_KEY[key]
                problems.append(Reason(
                    "mapping_fixed_empty", key, f"Nilai tetap untuk {label.label_id} kosong",
                    f"The fixed value for {label.label_en} is empty"))
            elif not _fixed_value_ok(key, value):
                label = FIELD_BY_KEY[key]
                problems.append(Reason(
                    "mapping_fixed_value", key,
                    f"Nilai tetap untuk {label.label_id} tidak dikenali",
                    f"The fixed value for {label.label_en} is not recognised"))
        for key in missing_fields(set(self.columns) | set(self.fixed)):
            label = FIELD_BY_KEY[key]
            problems.append(Reason(
                "mapping_missing", key,
                f"{label.label_id} belum dipetakan ke kolom mana pun",
                f"{label.label_en} is not mapped to any column",
                "Pilih kolomnya, atau isi nilai tetap bila sama untuk seluruh berkas",
                "Choose its column, or give a fixed value if it is the same for the whole "
                "file"))
        if problems:
            raise MappingError(problems)

    @classmethod
    def by_header(cls, headers: cabc.Sequence[str], chosen: cabc.Mapping[str, str],
                  fixed: cabc.Mapping[str, str] | None = None) -> ColumnMapping:
        """A mapping from a form's choices: field -> header text (as in the file).

        A header the file does not have, or that appears twice in it, is a fault."""
        problems: list[Reason] = []
        columns: dict[str, int] = {}
        for key, header in chosen.items():
            spec = FIELD_BY_KEY.get(key)
            name_id = spec.label_id if spec else key
            name_en = spec.label_en if spec else key
            where = [i for i, h in enumerate(headers) if h == header]
            if not where:
                problems.append(Reason("mapping_column", key,
                                       f"{name_id}: kolom '{header}' tidak ada di berkas",
                                       f"{name_en}: the file has no column '{header}'"))
            elif len(where) > 1:
                problems.append(Reason(
                    "mapping_ambiguous", key,
                    f"{name_id}: berkas punya {len(where)} kolom bernama '{header}'",
                    f"{name_en}: the file has {len(where)} columns named '{header}'",
                    "Ganti nama salah satu kolom di berkas lalu unggah lagi",
                    "Rename one of them in the file and upload it again"))
            else:
                columns[key] = where[0]
        if problems:
            raise MappingError(problems)
        return cls(tuple(headers), columns, dict(fixed or {}))

    def column_of(self, key: str) -> int | None:
        return self.columns.get(key)


Mapping = ColumnMapping
"""The name the issue uses for the column mapping."""


def _fixed_value_ok(key: str, value: str) -> bool:
    """A fixed category, place, sex or kecamatan must be one every row could have typed."""
    if key == "category":
        return normalise_header(value) in _CATEGORY_WORDS
    if key == "place":
        return normalise_header(value) in _PLACE_WORDS
    if key == "kecamatan":
        return regions.find_kecamatan(value) is not None
    if key == "sex":
        try:
            Sex.parse(value)
        except ValidationError:
            return False
    return True


def missing_fields(present: cabc.Iterable[str]) -> list[str]:
    """Required fields not in ``present``, in form order (``rt_rw`` stands for RT and RW)."""
    have = set(present)
    if "rt_rw" in have:
        have |= {"rt", "rw"}
    return [f.key for f in FIELDS if f.required and f.key not in have]


@dataclass(frozen=True)
class Suggestion:
    """What :func:`suggest_mapping` recognised.

    ``columns`` field -> column index; ``unknown`` the (index, header) of columns it
    did not recognise, which will not be imported; ``numbering`` the columns that are
    just a row number ("No", "No. Urut"); ``repeated`` columns that looked like a field
    already found in an earlier column; ``missing`` the required fields not found.
    """

    headers: tuple[str, ...]
    columns: dict[str, int]
    unknown: list[tuple[int, str]]
    numbering: list[int]
    repeated: list[tuple[int, str]]
    missing: list[str]

    @property
    def complete(self) -> bool:
        """True when the suggestion can be used as it is."""
        return not self.missing

    def mapping(self, fixed: cabc.Mapping[str, str] | None = None) -> ColumnMapping:
        """The suggestion as a mapping (raises :class:`MappingError` if incomplete)."""
        return ColumnMapping(self.headers, dict(self.columns), dict(fixed or {}))

    def messages(self, lang: str = "id") -> list[str]:
        """One line per unknown column and missing field, for the mapping page."""
        en = lang == "en"
        out = []
        for index, header in self.unknown:
            shown = header or (f"column {index + 1}" if en else f"kolom ke-{index + 1}")
            out.append(f"Unknown column '{shown}': it will not be imported" if en else
                       f"Kolom '{shown}' tidak dikenal: tidak akan diimpor")
        for _index, header in self.repeated:
            key = _FIELD_BY_SPELLING[normalise_header(header)]
            label = FIELD_BY_KEY[key].label(lang)
            first = self.headers[self.columns[key]] if key in self.columns else "?"
            out.append(
                f"Column '{header}' also looks like {label}, already taken from column "
                f"'{first}': it will not be imported unless you choose it" if en else
                f"Kolom '{header}' juga tampak berisi {label}, yang sudah diambil dari kolom "
                f"'{first}': tidak akan diimpor kecuali Anda memilihnya")
        for key in self.missing:
            label = FIELD_BY_KEY[key].label(lang)
            out.append(f"No column found for {label}: choose it" if en else
                       f"Kolom untuk {label} tidak ditemukan: pilih kolomnya")
        return out


def suggest_mapping(headers: cabc.Sequence[str]) -> Suggestion:
    """Guess each field's column from the header spellings villages use.

    Case, spaces, dots, slashes and a bracketed note are ignored. The first column that
    matches a field takes it; a later one is reported in ``repeated``.
    """
    columns: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    numbering: list[int] = []
    repeated: list[tuple[int, str]] = []
    for index, header in enumerate(headers):
        key = normalise_header(header)
        found = _FIELD_BY_SPELLING.get(key)
        if found is None:
            if key in _NUMBERING:
                numbering.append(index)
            else:
                unknown.append((index, header))
            continue
        if found in columns:
            repeated.append((index, header))
        else:
            columns[found] = index
    if "rt_rw" in columns and ("rt" in columns or "rw" in columns):
        columns.pop("rt_rw")
    return Suggestion(tuple(headers), columns, unknown, numbering, repeated,
                      missing_fields(columns))


# --------------------------------------------------------------------------
# Step 3: checking rows
# --------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class TargetValues:
    """An accepted row's values, normalised: everything a :class:`~sync.domain.Target`
    needs except its id, which the office gives when it imports the row."""

    nik: str
    kk: str
    name: str
    birth_date: date
    sex: Sex
    address: Address
    category: Category
    place: Place
    notes: str = ""

    def __repr__(self) -> str:  # personal data
        return f"TargetValues(category={self.category.value}, place={self.place.value})"

    def to_target(self, target_id: str | None = None) -> Target:
        """The :class:`Target`, with ``target_id`` or a new UUIDv7."""
        return Target(id=target_id or uuid7(), nik=self.nik, kk=self.kk, name=self.name,
                      birth_date=self.birth_date, sex=self.sex, address=self.address,
                      category=self.category, place=self.place, notes=self.notes)


@dataclass(repr=False)
class RowResult:
    """One row's verdict: ``reasons`` (empty when accepted), ``warnings`` (shown, not
    refusing), ``values`` the mapped cells as read (for the report's table) and
    ``target`` the normalised values of an accepted row."""

    number: int
    values: dict[str, str]
    reasons: list[Reason] = field(default_factory=list)
    warnings: list[Reason] = field(default_factory=list)
    target: TargetValues | None = None

    def __repr__(self) -> str:
        return f"RowResult(number={self.number}, reasons={[r.code for r in self.reasons]})"

    @property
    def accepted(self) -> bool:
        return not self.reasons and self.target is not None

    def text(self, lang: str = "id") -> str:
        """``Baris 7: ...; ...`` (every reason) or ``Baris 7: diterima``."""
        where = "Row" if lang == "en" else "Baris"
        if self.accepted:
            return f"{where} {self.number}: " + ("accepted" if lang == "en" else "diterima")
        return f"{where} {self.number}: " + "; ".join(r.text(lang) for r in self.reasons)


@dataclass(repr=False)
class Report:
    """Every row's verdict, in file order; nothing has been imported."""

    table: Table
    mapping: ColumnMapping
    rows: list[RowResult]

    def __repr__(self) -> str:
        return f"Report(rows={len(self.rows)}, accepted={len(self.accepted)})"

    @property
    def accepted(self) -> list[RowResult]:
        return [r for r in self.rows if r.accepted]

    @property
    def refused(self) -> list[RowResult]:
        return [r for r in self.rows if not r.accepted]

    def row(self, number: int) -> RowResult:
        for r in self.rows:
            if r.number == number:
                return r
        raise KeyError(number)

    def summary(self, lang: str = "id") -> str:
        """One line: how many rows, accepted, refused (and with warnings)."""
        n, ok, bad = len(self.rows), len(self.accepted), len(self.refused)
        warned = sum(1 for r in self.accepted if r.warnings)
        if lang == "en":
            text = f"{n} rows: {ok} accepted, {bad} refused"
            return text + (f" ({warned} accepted with a warning)" if warned else "")
        text = f"{n} baris: {ok} diterima, {bad} ditolak"
        return text + (f" ({warned} diterima dengan peringatan)" if warned else "")

    def targets(self, numbers: cabc.Iterable[int]) -> list[TargetValues]:
        """The values of the rows the user chose to import, in file order.

        Raises :class:`ValidationError` (code ``import_refused_row``) when a chosen row
        was refused or is not in the file: only accepted rows can be imported.
        """
        chosen = set(numbers)
        by_number = {r.number: r for r in self.rows}
        wrong = sorted(n for n in chosen if n not in by_number or not by_number[n].accepted)
        if wrong:
            listed = ", ".join(str(n) for n in wrong[:10]) + (" ..." if len(wrong) > 10 else "")
            raise ValidationError(
                id=f"Baris {listed} ditolak atau tidak ada, sehingga tidak bisa diimpor",
                en=f"Row(s) {listed} were refused or do not exist, so they cannot be imported",
                hint_id="Pilih hanya baris yang diterima; perbaiki berkas untuk yang lain",
                hint_en="Choose accepted rows only; correct the file for the others",
                code="import_refused_row")
        return [r.target for r in self.rows if r.number in chosen and r.target is not None]


# Category and place as villages write them. Matched after normalise_header().
_CATEGORY_WORDS: dict[str, Category] = {
    "lansia": Category.LANSIA, "lanjutusia": Category.LANSIA, "manula": Category.LANSIA,
    "jompo": Category.LANSIA, "elderly": Category.LANSIA,
    "disabilitas": Category.DISABILITAS, "penyandangdisabilitas": Category.DISABILITAS,
    "difabel": Category.DISABILITAS, "disabel": Category.DISABILITAS,
    "cacat": Category.DISABILITAS, "penyandangcacat": Category.DISABILITAS,
    "odgj": Category.ODGJ, "gangguanjiwa": Category.ODGJ, "orangdengangangguanjiwa":
    Category.ODGJ, "odmk": Category.ODGJ,
    "sakit": Category.SAKIT, "terbaring": Category.SAKIT, "sakitterbaring": Category.SAKIT,
    "sakitkeras": Category.SAKIT, "bedridden": Category.SAKIT, "stroke": Category.SAKIT,
    "lainnya": Category.LAINNYA, "lain": Category.LAINNYA, "lainlain": Category.LAINNYA,
}
_PLACE_WORDS: dict[str, Place] = {
    "rumah": Place.HOME, "home": Place.HOME, "dirumah": Place.HOME,
    "rumahsakit": Place.HOSPITAL, "rs": Place.HOSPITAL, "rsud": Place.HOSPITAL,
    "hospital": Place.HOSPITAL, "puskesmas": Place.HOSPITAL,
    "panti": Place.CARE_HOME, "pantijompo": Place.CARE_HOME, "pantiwerdha": Place.CARE_HOME,
    "pantisosial": Place.CARE_HOME, "carehome": Place.CARE_HOME,
}
for _member in Category:
    _CATEGORY_WORDS.setdefault(normalise_header(_member.value), _member)
    _CATEGORY_WORDS.setdefault(normalise_header(_member.label("id")), _member)
for _place in Place:
    _PLACE_WORDS.setdefault(normalise_header(_place.value), _place)
    _PLACE_WORDS.setdefault(normalise_header(_place.label("id")), _place)

_MONTHS = {
    "januari": 1, "jan": 1, "februari": 2, "pebruari": 2, "feb": 2, "peb": 2, "maret": 3,
    "mar": 3, "april": 4, "apr": 4, "mei": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7,
    "agustus": 8, "agu": 8, "ags": 8, "agt": 8, "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "november": 11, "nov": 11, "nop": 11, "desember": 12,
    "des": 12,
}
_DMY = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
_YMD = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_D_MONTH_Y = re.compile(r"(\d{1,2})[ -]+([a-z]+)\.?[ -]+(\d{4})")
_TWO_DIGIT_YEAR = re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.]\d{2}")
_SCIENTIFIC = re.compile(r"\d[.,]\d+e\+?\d+", re.IGNORECASE)


class DateError(ValueError):
    """A birth date that cannot be read; :attr:`reason` says why, in both languages."""

    def __init__(self, reason: Reason) -> None:
        self.reason = reason
        super().__init__(reason.en)


def _date_reason(code: str, id: str, en: str) -> Reason:
    return Reason(code, "birth_date", id, en,
                  "Tulis tanggal lahir sebagai hh-bb-tttt (mis. 04-11-1939) atau tttt-bb-hh",
                  "Write the birth date as dd-mm-yyyy (e.g. 04-11-1939) or yyyy-mm-dd")


def parse_birth_date(text: str, *, numeric: bool = False) -> date:
    """A birth date as villages write it: ``dd-mm-yyyy``, ``dd/mm/yyyy``, ``dd.mm.yyyy``,
    ``yyyy-mm-dd`` (also with a time), ``4 November 1939``, an Excel serial number
    (only when the cell was a number in an XLSX sheet), or "Blitar, 04-11-1939" (a TTL
    column: place, date). Raises :class:`DateError` with the reason.

    Two-digit years are refused: ``01-02-35`` could be 1935 or 2035 and the NIK alone
    cannot tell a 1-year-old from a 101-year-old."""
    value = text.strip()
    if "," in value and not numeric:  # "Tempat, tanggal lahir"
        value = value.rsplit(",", 1)[1].strip()
    try:
        if numeric and re.fullmatch(r"\d{1,6}", value):
            serial = int(value)
            if serial < 61:  # before 1900-03-01 Excel's serials are off by its leap-year bug
                raise DateError(_date_reason(
                    "birth_date_format", "Tanggal lahir dari Excel tidak masuk akal",
                    "The birth date from Excel makes no sense"))
            return _EXCEL_EPOCH + timedelta(days=serial)
        if m := _DMY.fullmatch(value):
            return date(int(m[3]), int(m[2]), int(m[1]))
        if m := _YMD.fullmatch(value):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if (m := _D_MONTH_Y.fullmatch(value.casefold())) and m[2] in _MONTHS:
            return date(int(m[3]), _MONTHS[m[2]], int(m[1]))
    except ValueError:
        raise DateError(_date_reason(
            "birth_date_invalid", "Tanggal lahir bukan tanggal yang ada (mis. 31-02)",
            "The birth date is not a real date (e.g. 31-02)")) from None
    except OverflowError:
        raise DateError(_date_reason(
            "birth_date_format", "Tanggal lahir dari Excel tidak masuk akal",
            "The birth date from Excel makes no sense")) from None
    if _TWO_DIGIT_YEAR.fullmatch(value):
        raise DateError(_date_reason(
            "birth_date_two_digit_year",
            "Tahun lahir hanya dua angka, sehingga abadnya tidak pasti",
            "The birth year has only two digits, so its century is unknown"))
    raise DateError(_date_reason(
        "birth_date_format", "Format tanggal lahir tidak dikenali",
        "The birth date's format is not recognised"))


def _number_cell(text: str) -> str:
    """A NIK or KK cell without the spreadsheet's wrapping: a leading apostrophe
    (``'3505...``) or a formula (``="3505..."``, as office exports write it). Nothing
    else is cleaned: a mistyped number must be retyped from the card."""
    text = text.strip()
    if m := re.fullmatch(r'="(.*)"', text):
        return m[1]
    return text[1:] if text.startswith("'") else text


def _pad(text: str) -> str:
    """RT/RW as the family card writes them: ``2`` -> ``002``; anything not 1-3 digits
    is left as typed for :meth:`Address.problems` to refuse."""
    text = re.sub(r"^(?:rt|rw)\.?\s*", "", text.strip(), flags=re.IGNORECASE)
    return text.zfill(3) if text.isascii() and text.isdigit() and len(text) <= 3 else text


def _empty_reason(key: str) -> Reason:
    label = FIELD_BY_KEY[key]
    return Reason(f"{key}_empty", key, f"{label.label_id} kosong", f"{label.label_en} is empty",
                  f"Isi {label.label_id} sesuai KK", f"Fill in the {label.label_en} as on "
                  "the family card")


def _region_warning(code: str, key: str, what_id: str, what_en: str, digits: str) -> Reason:
    regency = regions.regency_name(digits[0:2], digits[2:4])
    province = regions.province_name(digits[0:2]) or ""
    where = regency or f"{province} {digits[0:2]}.{digits[2:4]}".strip()
    return Reason(
        code, key, f"{what_id} diterbitkan di luar Kabupaten Blitar ({where})",
        f"The {what_en} was issued outside Kabupaten Blitar ({where})",
        "Boleh, bila penduduk pindah ke Blitar; pastikan datanya sudah pindah di SIAK",
        "Allowed when the resident moved to Blitar; check the move is recorded in SIAK")


def _excel_number_reason(key: str) -> Reason:
    label = "NIK" if key == "nik" else "Nomor KK"
    label_en = "NIK" if key == "nik" else "KK number"
    return Reason(
        f"{key}_excel_number", key,
        f"Sel {label} di Excel berformat angka: Excel hanya menyimpan 15 angka, angka "
        "ke-16 hilang", f"The {label_en} cell is a number in Excel: Excel keeps only 15 "
        "digits, the 16th is lost",
        f"Format kolom {label} sebagai Teks, ketik ulang nomornya dari KK lalu unggah lagi",
        f"Format the {label_en} column as Text, type the numbers again from the family "
        "card and upload again")


def _scientific_reason(key: str) -> Reason:
    label = "NIK" if key == "nik" else "Nomor KK"
    label_en = "NIK" if key == "nik" else "KK number"
    return Reason(
        f"{key}_scientific", key,
        f"{label} tertulis sebagai angka ilmiah (mis. 3,5E+15): angkanya sudah hilang",
        f"The {label_en} is written in scientific notation (e.g. 3.5E+15): its digits are lost",
        f"Di Excel format kolom {label} sebagai Teks dan ketik ulang nomornya dari KK",
        f"In Excel format the {label_en} column as Text and type the numbers again")


def check_rows(table: Table, mapping: ColumnMapping, *,
               known_niks: cabc.Mapping[str, str],
               today: date | None = None) -> Report:
    """Check every data row of ``table`` read through ``mapping``; import nothing.

    ``known_niks`` maps a NIK already known to the office to what it is, in words the
    user understands ("permohonan 12/2026 Desa Papungan", "sudah terekam 03-12-2026"):
    such a row is refused with that text. ``today`` fixes the date ages are computed
    on (tests).
    """
    today = today or date.today()
    if mapping.headers != table.headers:
        raise MappingError([Reason(
            "mapping_headers", None, "Pemetaan kolom dibuat untuk berkas lain",
            "The column mapping was made for another file",
            "Petakan ulang kolom berkas ini", "Map this file's columns again")])
    width = len(table.headers)
    results = [_check_row(row, mapping, width, today, table.delimiter) for row in table.rows]
    _check_duplicates(results)
    for result in results:
        nik = result.values.get("nik", "")
        if nik in known_niks:
            known = known_niks[nik]
            result.reasons.append(Reason(
                "nik_known", "nik", f"NIK sudah terdaftar: {known}",
                f"The NIK is already known: {known}",
                "Hapus baris ini, atau selesaikan data yang lama dulu",
                "Remove this row, or settle the earlier entry first"))
    for result in results:
        if result.reasons:
            result.target = None
    logger.info("target list checked: %d rows, %d accepted", len(results),
                sum(1 for r in results if r.accepted))
    return Report(table=table, mapping=mapping, rows=results)


def _extra_cells_reason(column: int, delimiter: str | None) -> Reason:
    """A row with content right of the last headed column: in a CSV, almost always a
    separator typed inside a value without quotes, which shifts every cell after it."""
    if delimiter is None:
        return Reason(
            "row_extra_cells", None,
            f"Baris ini punya isi di kolom ke-{column}, yang tidak berjudul",
            f"This row has content in column {column}, which has no header",
            "Beri judul kolom itu atau pindahkan isinya ke kolom yang benar",
            "Give that column a header or move the content to the right column")
    sep_id, sep_en = {";": ("titik koma (;)", "semicolon (;)"), "\t": ("tab", "tab")}.get(
        delimiter, ("koma (,)", "comma (,)"))
    return Reason(
        "row_extra_cells", None,
        f"Baris ini punya isi di luar kolom berjudul (kolom ke-{column}): isinya bergeser",
        f"This row has content beyond the headed columns (column {column}): its cells "
        "are shifted",
        f"Biasanya ada {sep_id} di dalam isian (mis. alamat) tanpa tanda kutip; perbaiki "
        "baris ini", f"Usually a {sep_en} inside a value (e.g. an address) without "
        "quotes; correct this row")


def _check_row(row: Row, mapping: ColumnMapping, width: int, today: date,
               delimiter: str | None = None) -> RowResult:
    values: dict[str, str] = {}
    numeric: set[str] = set()
    for key, column in mapping.columns.items():
        values[key] = row.cells[column] if column < len(row.cells) else ""
        if column in row.numeric:
            numeric.add(key)
    for key, value in mapping.fixed.items():
        values[key] = value.strip()
    if "rt_rw" in values:
        rt, _, rw = values.pop("rt_rw").partition("/")
        values["rt"], values["rw"] = rt.strip(), rw.strip()
    for key in ("nik", "kk"):
        if key in values:
            values[key] = _number_cell(values[key])
    result = RowResult(row.number, values)
    reasons = result.reasons
    extra = [i + 1 for i in range(width, len(row.cells)) if row.cells[i]]
    if extra:
        reasons.append(_extra_cells_reason(extra[0], delimiter))
    for spec in FIELDS:
        if spec.required and spec.key != "rt_rw" and not values.get(spec.key, ""):
            reasons.append(_empty_reason(spec.key))
    faulted = {r.field for r in reasons}

    for key in ("nik", "kk"):
        text = values.get(key, "")
        if key in faulted:
            continue
        if key in numeric and len(text) > 15:
            reasons.append(_excel_number_reason(key))
        elif _SCIENTIFIC.fullmatch(text):
            reasons.append(_scientific_reason(key))

    birth: date | None = None
    if "birth_date" not in faulted:
        try:
            birth = parse_birth_date(values["birth_date"], numeric="birth_date" in numeric)
        except DateError as problem:
            reasons.append(problem.reason)
    sex: Sex | None = None
    if "sex" not in faulted:
        try:
            sex = Sex.parse(values["sex"])
        except ValidationError as err:
            reasons.append(Reason.from_error(err, "sex"))
    category: Category | None = None
    if "category" not in faulted:
        category = _CATEGORY_WORDS.get(normalise_header(values["category"]))
        if category is None:
            reasons.append(Reason(
                "category_unknown", "category", "Kategori sasaran tidak dikenali",
                "The target's category is not recognised",
                "Tulis salah satu: lansia, disabilitas, ODGJ, sakit, lainnya",
                "Write one of: lansia, disabilitas, ODGJ, sakit, lainnya"))
    place = Place.HOME
    if values.get("place"):
        found_place = _PLACE_WORDS.get(normalise_header(values["place"]))
        if found_place is None:
            reasons.append(Reason(
                "place_unknown", "place", "Tempat perekaman tidak dikenali",
                "The recording place is not recognised",
                "Tulis rumah, rumah sakit atau panti (kosong berarti rumah)",
                "Write rumah, rumah sakit or panti (empty means home)"))
        else:
            place = found_place

    kecamatan_text = values.get("kecamatan", "")
    address = Address(
        street=values.get("street", ""), rt=_pad(values.get("rt", "")),
        rw=_pad(values.get("rw", "")), dusun=values.get("dusun", ""),
        desa=values.get("desa", ""),
        kecamatan=regions.find_kecamatan(kecamatan_text) or kecamatan_text)

    # The kit's own rules: the whole target whenever the birth date was read, else each
    # part. A sex or category already refused is stood in for (the NIK's own sex, "other")
    # so the other checks still run and every reason is listed at once.
    domain: list[ValidationError] = []
    candidate: TargetValues | None = None
    if birth is not None:
        candidate = TargetValues(
            nik=values["nik"], kk=values["kk"], name=values["name"], birth_date=birth,
            sex=sex or _sex_in_nik(values["nik"]), address=address,
            category=category or Category.LAINNYA, place=place,
            notes=values.get("notes", ""))
        domain = candidate.to_target(_CHECK_ID).problems(today=today)
    else:
        if values.get("nik"):
            try:
                validate_nik(values["nik"], birth, sex, today=today)
            except ValidationError as err:
                domain.append(err)
        if values.get("kk"):
            try:
                validate_kk(values["kk"])
            except ValidationError as err:
                domain.append(err)
        domain += address.problems()
    faulted = {r.field for r in reasons}
    for err in domain:
        reason = Reason.from_error(err)
        if reason.field not in faulted:
            reasons.append(reason)
            swapped = (_swapped_hint(values["nik"], birth)
                       if reason.code == "nik_birth_date_mismatch" and birth else None)
            if swapped is not None:
                reasons.append(swapped)

    if not result.reasons and candidate is not None:
        result.target = candidate
        nik_digits, kk_digits = values["nik"], values["kk"]
        if nik_digits[:4] != _BLITAR:
            result.warnings.append(_region_warning("nik_outside_blitar", "nik", "NIK", "NIK",
                                                   nik_digits))
        if kk_digits[:4] != _BLITAR:
            result.warnings.append(_region_warning("kk_outside_blitar", "kk", "Nomor KK",
                                                   "KK number", kk_digits))
    return result


def _sex_in_nik(nik: str) -> Sex:
    """The sex a NIK encodes, or ``Sex.MALE`` when it cannot be read (then the NIK's own
    fault is reported and no sex mismatch can be)."""
    try:
        return validate_nik(nik).sex
    except ValidationError:
        return Sex.MALE


def _swapped_hint(nik: str, birth: date) -> Reason | None:
    """When the NIK fits the birth date with day and month swapped, say so: a list typed
    as mm-dd-yyyy by an English-set Excel is a common slip."""
    if birth.day > 12 or birth.day == birth.month:
        return None
    try:
        swapped = birth.replace(month=birth.day, day=birth.month)
        validate_nik(nik, swapped)
    except (ValueError, ValidationError):
        return None
    return Reason("birth_date_swapped", "birth_date",
                  "Tanggal dan bulan lahir tampaknya tertukar (bulan-tanggal-tahun)",
                  "The birth day and month look swapped (month-day-year)",
                  "Tulis tanggal lahir sebagai hh-bb-tttt",
                  "Write the birth date as dd-mm-yyyy")


def _check_duplicates(results: list[RowResult]) -> None:
    """Rows with the same NIK: identical rows keep the first (the copies are refused);
    differing rows are all refused, since the file does not say which one is right.
    Every row of a group names the others."""
    groups: dict[str, list[RowResult]] = {}
    for result in results:
        nik = result.values.get("nik", "")
        if nik:
            groups.setdefault(nik, []).append(result)
    for group in groups.values():
        if len(group) < 2:
            continue
        identical = all(r.values == group[0].values for r in group[1:])
        for result in group:
            others = ", ".join(str(o.number) for o in group if o is not result)
            if identical and result is group[0]:
                result.warnings.append(Reason(
                    "duplicate_copy_kept", "nik",
                    f"Baris {others} sama persis dengan baris ini dan tidak diimpor",
                    f"Row(s) {others} are exact copies of this row and are not imported"))
            elif identical:
                result.reasons.append(Reason(
                    "duplicate_copy", "nik",
                    f"Baris ganda: sama persis dengan baris {group[0].number}",
                    f"Duplicate row: an exact copy of row {group[0].number}",
                    "Hanya baris pertama yang diimpor", "Only the first row is imported"))
            else:
                result.reasons.append(Reason(
                    "duplicate_nik", "nik", f"NIK yang sama ada juga di baris {others}",
                    f"The same NIK is also in row(s) {others}",
                    "Satu NIK untuk satu orang: perbaiki NIK atau hapus baris ganda",
                    "One NIK per person: correct the NIK or remove the duplicate"))
