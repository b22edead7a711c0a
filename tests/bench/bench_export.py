"""Export for SIAK re-entry: time per 100 residents (issue 12's benchmark).

``python -m tests.bench.bench_export [--residents N] [--repeat R]``. Figures printed,
nothing asserted.

N (100) complete recordings (a face photo 640 x 480 JPEG, ten 256 x 288 prints at 500 ppi,
a signature) of the sample assignment's invented residents, sealed and signed as a kit
seals them and stored in a real SQLite office database (``tests/office/records_helpers``).
Timed, wall clock, one thread, each the best of R runs, each including the opening of
every record (signature check, decryption, parsing) as the web page does it:

* baseline: just opening the N records with :class:`office.records.RecordBook`;
* the worksheet PDF (:func:`office.export.worksheet_pdf`, one A4 page each);
* the CSV (:func:`office.export.records_csv`);
* the archive ZIP (:func:`office.export.resident_archive`) with PNG and WSQ, every WSQ
  read back and compared; and without the WSQ codec (PNG only), so the difference is the
  WSQ encoding and its check.

Indexing the N records once (:meth:`RecordBook.index_new`, done before the first export)
is printed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from office.db import setup_django
from sync.envelope import OfficeKeys
from tests.bench import best
from tests.office.records_helpers import KIT, RecordOffice, recording

setup_django()
from office import export  # noqa: E402
from office.records import RecordBook  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--residents", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    n = args.residents
    with tempfile.TemporaryDirectory(prefix="jaranijo-bench-export-") as tmp:
        office = RecordOffice(Path(tmp))
        t0 = time.perf_counter()
        ids = [office.store(recording(i % 6)) for i in range(n)]
        made = time.perf_counter() - t0
        book = RecordBook(OfficeKeys.load(office.keys_dir), office.kits_dir,
                          using=office.db.alias)
        t0 = time.perf_counter()
        book.index_new()
        indexed = time.perf_counter() - t0

        def opened() -> list[export.OpenedRecord]:
            return [book.open(KIT, i) for i in ids]

        def lazily() -> object:
            return (book.open(KIT, i) for i in ids)

        base, _ = best(opened, args.repeat)
        pdf_t, pdf = best(lambda: export.worksheet_pdf(lazily()), args.repeat)  # type: ignore[arg-type]
        csv_t, csv_ = best(lambda: export.records_csv(lazily()), args.repeat)  # type: ignore[arg-type]
        codec = export.wsq_codec()
        zip_t, zip_ = best(lambda: export.resident_archive(lazily()), args.repeat)  # type: ignore[arg-type]
        real = export.wsq_codec
        export.wsq_codec = lambda: None  # type: ignore[assignment]
        try:
            png_t, png_zip = best(lambda: export.resident_archive(lazily()), args.repeat)  # type: ignore[arg-type]
        finally:
            export.wsq_codec = real  # type: ignore[assignment]

    scale = 100 / n

    def row(name: str, seconds: float, size: object = None) -> None:
        extra = f"{len(size) / 1e6:8.2f} MB" if isinstance(size, bytes) else " " * 11
        over = "" if name.startswith("baseline") else f"  (+{(seconds - base) * scale:6.2f} s " \
            "over the baseline)"
        print(f"  {name:<38} {seconds * scale:7.2f} s per 100  {extra}{over}")

    print(f"{n} complete recordings stored in {made:.1f} s; indexed once in "
          f"{indexed * scale:.2f} s per 100; best of {args.repeat}; WSQ codec: {codec}")
    row("baseline: open the records", base)
    row("worksheet PDF (open + 1 page each)", pdf_t, pdf)
    row("CSV (open + 1 line each)", csv_t, csv_)
    row("archive ZIP, PNG + WSQ (read back)", zip_t, zip_)
    row("archive ZIP, PNG only (no codec)", png_t, png_zip)
    if codec is not None:
        print(f"  WSQ encode + read-back: {(zip_t - png_t) / (n * 10) * 1000:.1f} ms a print "
              "(the two archives' best runs compared)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
