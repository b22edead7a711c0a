"""A store writer for the crash-safety test: reports each record after its commit returns.

Run as ``python -m tests.kit.crash_writer DB``; prints ``saved <id>`` lines,
flushed, each only after ``Store.save_sealed`` has returned. It carries on
after the highest id already in the store (one may have been committed by a
killed run without being reported: that is allowed, losing one is not).
"""

from __future__ import annotations

import os
import sys

from kit.store import Store


def main() -> None:
    store = Store.open(sys.argv[1])
    ids = store.record_ids()
    i = int(ids[-1].split("-")[1]) + 1 if ids else 0
    while True:
        record_id = f"rec-{i:08d}"
        store.save_sealed(record_id, "recording", "t", os.urandom(20_000 + (i % 7) * 3000))
        if i % 3 == 0:
            store.mark_acked(record_id)
        sys.stdout.write(f"saved {record_id}\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    main()
