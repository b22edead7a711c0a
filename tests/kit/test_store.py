"""The kit store: durability settings, damaged files, records and the outbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kit.store import Store, migrations
from sync.errors import StoreError


def test_store_runs_wal_and_full_sync(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kit.db") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.integrity_check() == "ok"


def test_migrations_apply_once(tmp_path: Path) -> None:
    Store.open(tmp_path / "kit.db").close()
    with Store.open(tmp_path / "kit.db") as store:
        rows = [r[0] for r in store.conn.execute("SELECT name FROM _sqlite_migrations")]
    assert rows[0] == "m001_initial"
    assert rows == [m.name for m in migrations._migrations]  # each once, in order


def test_sealed_record_outbox_and_receipt(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kit.db") as store:
        saved = store.save_sealed("0192-a", "recording", "2026-11-23T10:00:00+00:00",
                                  b"sealed-bytes")
        assert saved.size == 12
        assert [r["record_id"] for r in store.outbox()] == ["0192-a"]
        store.mark_acked("0192-a")
        assert store.outbox() == []
        assert store.record_blob("0192-a") is None  # payload dropped after the receipt
        assert store.record("0192-a") is not None    # the fact of it stays
        events = [e["event"] for e in store.audit_log()]
        assert events[:2] == ["record_acknowledged", "record_sealed"]


def test_a_record_id_is_stored_once(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kit.db") as store:
        store.save_sealed("0192-a", "recording", "t", b"x")
        with pytest.raises(sqlite3.IntegrityError):
            store.save_sealed("0192-a", "recording", "t", b"y")
        assert store.record_blob("0192-a") == b"x"
        assert len(store.outbox()) == 1


def test_garbage_file_is_reported_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "kit.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in info.value.text("en")
    assert "Do not delete" in info.value.text("en")
    assert path.read_bytes() == before


def test_truncated_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "kit.db"
    with Store.open(path) as store:
        for i in range(200):
            store.save_sealed(f"rec-{i:04d}", "recording", "t", bytes(4000))
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert "damaged" in info.value.text("en")


def test_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="provision"):
        Store.open(tmp_path / "none.db", create=False)
