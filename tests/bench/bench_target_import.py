"""Importing a village's target list: rows per second (issue 13, item 2).

``python -m tests.bench.bench_target_import [--rows N] [--repeat R]``. Figures printed,
nothing asserted.

N (5,000) invented residents, every row valid (NIKs made to the rules), as a
semicolon-separated Windows-1252 CSV (what a village office's Excel saves) and as an
XLSX made with openpyxl. Timed, wall clock, one thread, each the best of R runs:

* baseline: decoding the CSV and splitting it with the ``csv`` module, nothing else;
* :func:`office.target_import.read_table` on the CSV (decoding, sniffing, rows);
* :func:`~office.target_import.check_rows` on that table (every row through
  :meth:`sync.domain.Target.problems`, duplicates, known NIKs: 1,000 known, none in the
  file, so the look-up is paid on every row);
* the XLSX read with python-calamine (what ``read_table`` uses) and, for comparison,
  with openpyxl in read-only mode (the fallback).
"""

from __future__ import annotations

import argparse
import csv
import io
from datetime import date

import openpyxl

from office import target_import as ti
from tests.bench import best

HEADERS = ["NO", "NIK", "No. KK", "NAMA LENGKAP", "TGL LAHIR", "L/P", "ALAMAT", "RT", "RW",
           "DUSUN", "DESA", "KEC", "KATEGORI", "KETERANGAN"]


def rows(n: int) -> list[list[str]]:
    out = []
    for i in range(n):
        born = date(1930 + i % 40, 1 + i % 12, 1 + i % 28)
        sex = "P" if i % 2 else "L"
        district = 1 + i % 22
        day = born.day + (40 if sex == "P" else 0)
        nik = f"3505{district:02d}{day:02d}{born.month:02d}{born.year % 100:02d}{1 + i:04d}"
        kk = f"3505{district:02d}2107110{i % 1000:03d}"
        out.append([str(i + 1), nik, kk, f"WARGA DESA KE-{i}", born.strftime("%d-%m-%Y"),
                    sex, "Jl. Anggrek", str(1 + i % 9), str(1 + i % 4), "Krajan", "Papungan",
                    "Kanigoro", "lansia", "Kunjungi pagi hari; bersama pendamping"])
    return out



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    n = args.rows
    data = rows(n)
    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows([HEADERS, *data])
    csv_data = out.getvalue().encode("cp1252")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    for r in data:
        sheet.append(r)
    buffer = io.BytesIO()
    book.save(buffer)
    xlsx_data = buffer.getvalue()
    known = {f"3578{i:012d}": f"permohonan {i}/2026" for i in range(1000)}

    base_t, _ = best(lambda: list(csv.reader(io.StringIO(csv_data.decode("cp1252")),
                                             delimiter=";")), args.repeat)
    read_t, table = best(lambda: ti.read_table(csv_data, "sasaran.csv"), args.repeat)
    assert isinstance(table, ti.Table)
    mapping = ti.suggest_mapping(table.headers).mapping()
    check_t, report = best(lambda: ti.check_rows(table, mapping, known_niks=known),
                           args.repeat)
    assert isinstance(report, ti.Report)
    cal_t, xtable = best(lambda: ti.read_table(xlsx_data, "sasaran.xlsx"), args.repeat)
    assert isinstance(xtable, ti.Table)
    opx_t, _ = best(lambda: ti._sheet_rows_openpyxl(xlsx_data), args.repeat)

    def line(label: str, seconds: float) -> None:
        print(f"  {label:<44} {seconds * 1000:8.1f} ms  {n / seconds:>10,.0f} rows/s")

    print(f"{n} rows; CSV {len(csv_data) / 1024:.0f} KiB, XLSX {len(xlsx_data) / 1024:.0f} KiB; "
          f"{len(report.accepted)} accepted; best of {args.repeat}")
    line("baseline: decode + csv.reader", base_t)
    line("read_table (CSV)", read_t)
    line("check_rows", check_t)
    line("CSV total: read_table + check_rows", read_t + check_t)
    line("read_table (XLSX, python-calamine)", cal_t)
    line("XLSX read with openpyxl read-only (fallback)", opx_t)
    print(f"  CSV total / baseline: {(read_t + check_t) / base_t:.1f}x")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
