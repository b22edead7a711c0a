"""The visit flow's cost in memory and time as the office grows (issue 13).

``python -m tests.bench.bench_visits [--targets N] [--repeat R]``. Figures printed,
nothing asserted.

Every import checks its rows against the NIKs the office already knows
(:func:`office.visits.known_niks`): each open request's targets and each recorded
resident, sealed in the database, opened in memory. This measures that against N open
targets (default 5,000: a year of requests of the whole kabupaten) in a real SQLite office
database, and the request page's counts (:func:`office.visits.progress`). Each the best of
R runs, wall clock, one thread, against a baseline measured in the same run: reading the
same rows' sealed bytes without opening them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from office.db import OfficeDb, setup_django
from sync.domain import Address, Category, Place, Sex, Target, uuid7
from sync.envelope import OfficeKeys
from tests.bench import best

setup_django()
from office import visits  # noqa: E402
from office.models import Target as TargetRow  # noqa: E402
from office.models import VisitRequest  # noqa: E402


def invented(i: int) -> Target:
    born = date(1930 + i % 40, 1 + i % 12, 1 + i % 28)
    sex = Sex.FEMALE if i % 2 else Sex.MALE
    day = born.day + (40 if sex is Sex.FEMALE else 0)
    nik = f"350510{day:02d}{born.month:02d}{born.year % 100:02d}{1 + i % 9999:04d}"
    return Target(id=uuid7(), nik=nik, kk=f"35051021071100{i % 100:02d}",
                  name=f"WARGA KE-{i}", birth_date=born, sex=sex,
                  address=Address(street="", rt="001", rw="002", dusun="Krajan",
                                  desa="Papungan", kecamatan="Kanigoro"),
                  category=Category.LANSIA, place=Place.HOME)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory() as tmp:
        db = OfficeDb.open(Path(tmp) / "office.db")
        alias = db.alias
        vault = visits.TargetVault(OfficeKeys.generate())
        per_request = 50
        t0 = time.perf_counter()
        for r in range(args.targets // per_request):
            request = VisitRequest.objects.using(alias).create(
                letter_number=f"474/{r}/2026", letter_date=date(2026, 11, 2),
                received_on=date(2026, 11, 3), applicant_kind="village",
                kecamatan="Kanigoro", village="Papungan", status="verified",
                created_at=time.time(), created_by="bench")
            TargetRow.objects.using(alias).bulk_create([
                TargetRow(id=(t := invented(r * per_request + i)).id, request=request,
                          sealed=vault.seal(t), category=t.category.value,
                          place=t.place.value, village="Papungan", added_at=time.time(),
                          added_by="bench", verified=i % 3 != 0)
                for i in range(per_request)])
        print(f"{args.targets} open targets on {args.targets // per_request} requests, "
              f"sealed and stored in {time.perf_counter() - t0:.1f} s")

        baseline, rows = best(lambda: [bytes(s) for s in TargetRow.objects.using(alias)
                                       .values_list("sealed", flat=True)], args.repeat)
        known_s, known = best(lambda: visits.known_niks(vault, using=alias), args.repeat)
        request = VisitRequest.objects.using(alias).first()
        assert request is not None
        progress_s, _counts = best(lambda: visits.progress(request), args.repeat)
        print(f"baseline: read {len(rows)} sealed rows    {baseline * 1000:8.1f} ms")
        print(f"known_niks over {len(known)} NIKs          {known_s * 1000:8.1f} ms  "
              f"({known_s / baseline:.1f}x the baseline; "
              f"{known_s / len(rows) * 1e6:.0f} µs a target)")
        print(f"progress of one request (50 targets) {progress_s * 1000:8.1f} ms")
        db.close()


if __name__ == "__main__":
    main()
