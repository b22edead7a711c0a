"""Kit checkout and return (SOP steps 6 and 11) over HTTP, against ``jaranijo office web``
in its own process (``--keys``: it can sign a self-test) on a real SQLite office database
fed by the real receiver (:class:`tests.office.web.fleet_helpers.Fleet`).

A kit goes out with its latest self-test, or with one requested from the form: the
command the page queues is checked as the kit checks it, and the kit's answer goes back
through the receiver (the ingest writes the command's result row) while the section is
polled. A failed or missing self-test needs a tick; a kit already out cannot go out again
(the page says so, and the database's partial unique index refuses it anyway); at return
the records still waiting on the kit and the visit's pending targets are shown, flagged
and stored.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from office.db import setup_django
from sync import protocol as p
from tests.office.web.test_replies import KIT, Desk, add_visit, start_desk, today

setup_django()
from django.db import IntegrityError, transaction  # noqa: E402  (needs Django set up)

from office.models import AuditEntry, Command, KitCheckout, Target  # noqa: E402


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    yield from start_desk(tmp_path, monkeypatch)


def selftest(desk: Desk, *, ok: bool = True, **result: object) -> str:
    """A self-test the kit page queued earlier and its answer through the receiver."""
    command_id = f"c-{time.time_ns()}"
    now = time.time()
    Command.objects.using(desk.alias).create(
        command_id=command_id, kit_id=KIT, name="selftest", args="{}", issued_at=int(now),
        expires_at=int(now) + 3600, payload=b"", queued_at=now - 5)
    answer(desk, command_id, ok=ok, **result)
    return command_id


def answer(desk: Desk, command_id: str, *, ok: bool = True, **result: object) -> None:
    """The kit's answer, as the ingest takes it (it writes the command's result row)."""
    desk.fleet.send(p.KitTopics(KIT).result, p.encode_result(p.CommandResult(
        command_id, ok, "" if ok else "refused",
        {"store": "ok", "keys": "tpm", "problems": "", "battery": 81, **result})))


def form_page(desk: Desk, visit_id: int) -> str:
    return desk.staff.get(f"/checkout/new/?visit={visit_id}").text


def shown_selftest(page: str) -> str:
    match = re.search(r'name="selftest_id" value="([^"]*)"', page)
    assert match, page[-3000:]
    return match.group(1)


def hand_out(desk: Desk, visit_id: int, **fields: str) -> tuple[int, str]:
    page = form_page(desk, visit_id)
    data = {"visit": str(visit_id), "taken_by": "ptg-0101", "condition": "baik",
            "condition_note": "", "due_on": fields.pop("due_on", ""),
            "selftest_id": shown_selftest(page), **fields}
    if not data["due_on"]:
        data["due_on"] = re.search(r'name="due_on" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    reply = desk.staff.post("/checkout/new/", data, page=f"/checkout/new/?visit={visit_id}")
    return reply.status, reply.text


def errors(page: str) -> dict[str, str]:
    return {k: v.strip() for k, v in re.findall(r'id="error-(\w+)">([^<]*)<', page)}


def test_a_kit_goes_out_with_its_latest_selftest(desk: Desk) -> None:
    desk.fleet.birth(KIT)
    old = selftest(desk, ok=False)
    latest = selftest(desk, gnss="fix")
    visit = add_visit(desk.alias, day=today() + dt.timedelta(days=1))
    listing = desk.staff.get("/checkout/").text
    assert f'id="hand-out-{visit.pk}"' in listing and "Tidak ada kit yang sedang dibawa" in listing

    page = form_page(desk, visit.pk)
    assert shown_selftest(page) == latest != old
    assert "LULUS" in page and "GNSS: fix" in page
    assert 'id="warnings"' not in page and 'id="selftest-warning"' not in page
    assert f'value="{visit.visit_date.isoformat()}"' in page  # due back on the visit day

    status, _page = hand_out(desk, visit.pk)
    assert status == 302
    row = KitCheckout.objects.using(desk.alias).get(kit_id=KIT)
    assert (row.visit_id, row.taken_by, row.out_by) == (visit.pk, "ptg-0101", "staf.dafduk")
    assert row.out_selftest_ok is True and row.out_selftest["command_id"] == latest
    assert row.out_selftest["result"]["gnss"] == "fix"
    assert row.due_on == visit.visit_date and row.out_condition == "baik"
    listing = desk.staff.get("/checkout/").text
    assert f'id="checkout-{row.pk}"' in listing and "Petugas 101" in listing
    assert f'id="hand-out-{visit.pk}"' not in listing  # no longer waiting for its kit
    entry = AuditEntry.objects.using(desk.alias).get(action="checkout_kit")
    assert entry.subject == KIT and f"visit {visit.pk}" in entry.detail
    assert "selftest ok" in entry.detail


def test_a_selftest_requested_from_the_form_is_signed_polled_and_stored(desk: Desk) -> None:
    desk.fleet.birth(KIT)
    visit = add_visit(desk.alias, day=today())
    page = form_page(desk, visit.pk)
    assert "Belum ada hasil uji mandiri" in page and shown_selftest(page) == ""
    assert 'id="request-selftest"' in page and 'id="selftest-warning"' in page

    # "Minta uji mandiri sekarang" (without JavaScript: back to the form).
    back = f"/checkout/new/?visit={visit.pk}"
    reply = desk.staff.post(f"/checkout/selftest/{KIT}/request", {"next": back}, page=back)
    assert reply.status == 302 and reply.headers["Location"] == back
    (row,) = Command.objects.using(desk.alias).filter(kit_id=KIT, name="selftest")
    command = p.verify_command(bytes(row.payload), desk.fleet.office_keys.sign.verify_key,
                               kit_id=KIT, now=time.time())  # as the kit checks it
    assert command.name == "selftest" and command.expires_at - command.issued_at == 3600
    assert AuditEntry.objects.using(desk.alias).filter(
        action="command_kit", subject=KIT, detail=f"selftest {row.command_id}").exists()
    # Asked again while one is awaited: no second command.
    desk.staff.post(f"/checkout/selftest/{KIT}/request", {"next": back}, page=back)
    assert Command.objects.using(desk.alias).filter(name="selftest").count() == 1

    section = desk.staff.get(f"/checkout/selftest/{KIT}/").text
    assert 'hx-trigger="every 3s"' in section and 'data-state="pending"' in section
    assert "menunggu kit daring" in section
    answer(desk, row.command_id, disk_free_mib=5120)
    section = desk.staff.get(f"/checkout/selftest/{KIT}/").text
    assert 'hx-trigger' not in section and 'data-state="ok"' in section
    assert shown_selftest(section) == row.command_id
    assert 'id="selftest-warning"' not in section  # the warning went with the answer

    status, _page = hand_out(desk, visit.pk)  # passed: no tick needed
    assert status == 302
    out = KitCheckout.objects.using(desk.alias).get(kit_id=KIT)
    assert out.out_selftest["command_id"] == row.command_id and out.out_selftest_ok is True


def test_a_failed_selftest_needs_a_tick_and_the_form_says_what_to_fix(desk: Desk) -> None:
    desk.fleet.birth(KIT)
    failed = selftest(desk, problems="fp_sensor_timeout")
    visit = add_visit(desk.alias)
    page = form_page(desk, visit.pk)
    assert "GAGAL" in page and "Uji mandiri terakhir GAGAL" in page

    status, page = hand_out(desk, visit.pk, taken_by="ptg-0999", condition="rusak",
                            due_on=(visit.visit_date - dt.timedelta(days=1)).isoformat())
    assert status == 400
    found = errors(page)
    assert found["taken_by"] == "Pilih salah satu petugas kunjungan ini."
    assert found["condition_note"] == "Tuliskan kerusakannya."
    assert found["due_on"].startswith("Tanggal kembali tidak boleh sebelum hari kunjungan")
    assert found["confirm"].startswith("Centang untuk menyatakan")
    assert not KitCheckout.objects.using(desk.alias).exists()

    status, _page = hand_out(desk, visit.pk, condition="ringan",
                             condition_note="tali tas sobek", confirm="on")
    assert status == 302
    row = KitCheckout.objects.using(desk.alias).get(kit_id=KIT)
    assert row.out_selftest_ok is False and row.out_selftest["command_id"] == failed
    assert row.out_condition == "ringan: tali tas sobek"


def test_a_day_old_selftest_needs_a_tick(desk: Desk) -> None:
    desk.fleet.birth(KIT)
    old = selftest(desk)
    day_ago = time.time() - 25 * 3600
    Command.objects.using(desk.alias).filter(command_id=old).update(result_at=day_ago)
    visit = add_visit(desk.alias)
    page = form_page(desk, visit.pk)
    assert "LULUS" in page and "lebih dari 24 jam yang lalu" in page
    status, page = hand_out(desk, visit.pk)
    assert status == 400 and errors(page)["confirm"].startswith("Centang")
    assert hand_out(desk, visit.pk, confirm="on")[0] == 302
    row = KitCheckout.objects.using(desk.alias).get(kit_id=KIT)
    assert row.out_selftest_ok is True and row.out_selftest["stale"] is True


def test_a_kit_already_out_cannot_go_out_again(desk: Desk) -> None:
    desk.fleet.birth(KIT)
    selftest(desk)
    first = add_visit(desk.alias, day=today())
    second = add_visit(desk.alias, village="Satreyan", day=today() + dt.timedelta(days=2))
    assert hand_out(desk, first.pk)[0] == 302
    listing = desk.staff.get("/checkout/").text
    assert "kit masih dibawa untuk kunjungan lain" in listing
    page = form_page(desk, second.pk)
    assert "masih tercatat dibawa" in page and 'id="submit-checkout"' not in page
    status, page = hand_out(desk, second.pk)
    assert status == 400 and "masih tercatat dibawa" in page
    assert KitCheckout.objects.using(desk.alias).filter(kit_id=KIT).count() == 1
    # Two desks at once: the database itself refuses the second open checkout.
    with pytest.raises(IntegrityError), transaction.atomic(using=desk.alias):
        KitCheckout.objects.using(desk.alias).create(
            kit_id=KIT, visit=None, taken_by="ptg-0102", out_at=time.time(), out_by="x",
            due_on=today())


def test_the_return_shows_and_stores_waiting_records_and_pending_targets(desk: Desk) -> None:
    desk.fleet.birth(KIT)
    selftest(desk)
    visit = add_visit(desk.alias, day=today(), verified=3, refused=1)
    assert hand_out(desk, visit.pk)[0] == 302
    row = KitCheckout.objects.using(desk.alias).get(kit_id=KIT)
    done = Target.objects.using(desk.alias).filter(visit=visit, verified=True).first()
    assert done is not None
    Target.objects.using(desk.alias).filter(pk=done.pk).update(status="recorded")
    desk.fleet.health(KIT, battery=64, outbox=2, oldest=3600)

    path = f"/checkout/{row.pk}/return/"
    page = desk.staff.get(path).text
    waiting = re.search(r'id="waiting-records">(.*?)</dd>', page, re.S)
    pending = re.search(r'id="pending-targets">(.*?)</dd>', page, re.S)
    assert waiting and 'co-flag bad' in waiting.group(1) and "2 rekaman belum terkirim" in \
        waiting.group(1)
    assert pending and 'co-flag bad">2<' in pending.group(1)  # the refused one was never sent
    assert "Masih ada 2 rekaman di kit" in page and "2 sasaran kunjungan ini belum direkam" in page

    data = {"condition": "baik", "condition_note": "", "selftest_id": shown_selftest(page)}
    reply = desk.staff.post(path, data)
    assert reply.status == 400 and errors(reply.text)["confirm"].startswith("Centang")
    assert desk.staff.post(path, {**data, "confirm": "on"}).status == 302
    row.refresh_from_db(using=desk.alias)
    assert row.returned_at is not None and row.returned_by == "staf.dafduk"
    assert (row.waiting_records, row.pending_targets) == (2, 2)
    assert row.return_selftest_ok is True and row.return_condition == "baik"
    assert row.return_selftest["stale"] is True  # made before the checkout, confirmed so
    assert "Tidak ada kit yang sedang dibawa" in desk.staff.get("/checkout/").text
    again = desk.staff.post(path, {**data, "confirm": "on"})
    assert again.status == 400 and "sudah diterima kembali" in again.text
    entry = AuditEntry.objects.using(desk.alias).get(action="return_kit")
    assert "waiting 2 pending 2" in entry.detail


def test_a_clean_return_needs_no_tick(desk: Desk) -> None:
    desk.fleet.birth(KIT)
    selftest(desk)
    visit = add_visit(desk.alias, day=today(), verified=2, refused=0)
    assert hand_out(desk, visit.pk)[0] == 302
    Target.objects.using(desk.alias).filter(visit=visit).update(status="recorded")
    desk.fleet.health(KIT, battery=90, outbox=0)
    row = KitCheckout.objects.using(desk.alias).get(kit_id=KIT)
    path = f"/checkout/{row.pk}/return/"
    page = desk.staff.get(path).text
    # The only self-test is the one from before the checkout: not the return's own.
    assert "dibuat sebelum kit diserahkan" in page
    assert f"?since={int(row.out_at)}" in page  # the section keeps judging by the checkout
    fresh = selftest(desk)
    page = desk.staff.get(path).text
    assert shown_selftest(page) == fresh
    assert "0 — semua terkirim" in page and 'id="warnings"' not in page
    assert 'id="selftest-warning"' not in page
    assert desk.staff.post(path, {"condition": "baik",
                                  "selftest_id": shown_selftest(page)}).status == 302
    row.refresh_from_db(using=desk.alias)
    assert (row.waiting_records, row.pending_targets) == (0, 0)
    assert row.return_selftest["command_id"] == fresh and not row.return_selftest["stale"]


def test_a_viewer_may_not_hand_out_kits(desk: Desk) -> None:
    visit = add_visit(desk.alias)
    assert desk.viewer.get("/checkout/").status == 403
    assert desk.viewer.get(f"/checkout/new/?visit={visit.pk}").status == 403


def test_an_overdue_kit_is_on_the_alerts_page(desk: Desk) -> None:
    from office import alerts

    late = add_visit(desk.alias, day=today() - dt.timedelta(days=3))
    KitCheckout.objects.using(desk.alias).create(
        kit_id=KIT, visit=late, taken_by="ptg-0101", out_at=time.time() - 3 * 86400,
        out_by="staf.dafduk", due_on=late.visit_date)
    assert alerts.evaluate(using=desk.alias).raised == [f"{KIT}:not_returned"]
    page = desk.staff.get("/alerts/").text
    row = re.search(r'<tr class="alert open[^"]*" id="alert-\d+" data-kit="blitar-kit-01" '
                    r'data-kind="not_returned">(.*?)</tr>', page, re.S)
    assert row, page[-3000:]
    assert "Kit belum dikembalikan" in row.group(1)
    assert f"seharusnya kembali {late.visit_date:%d-%m-%Y}, terlambat 3 hari" in row.group(1)
