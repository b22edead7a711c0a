"""The fleet page's header shows how many KTP-el are overdue (issue 12, Build 4), to a role
that may see the records, and not to a viewer (fleet only, no personal data).

Rendered by Django's test client in this process, inside one transaction on the settings'
database rolled back at the end. The count is the real one (:func:`overdue_count` over
review rows whose complete recording arrived long ago), not a patched value.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import pytest

from office.db import setup_django, use_database

setup_django()
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from office.models import RecordReview  # noqa: E402
from office.web import clock as clock_web  # noqa: E402

KIT = "blitar-kit-01"


def _client(name: str, role: str, lang: str = "id") -> Client:
    user = User.objects.create_user(name, password="kuda-hijau-blitar-2026")
    user.groups.add(Group.objects.get(name=role))
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(user)
    return client


@pytest.fixture
def office() -> Iterator[None]:
    use_database(settings.DATABASES["default"]["NAME"])
    with override_settings(ALLOWED_HOSTS=["testserver"]), transaction.atomic():
        now = time.time()
        long_ago = dt.date.today() - dt.timedelta(days=60)  # 14 working days long past
        for i, day in enumerate((long_ago, long_ago, dt.date.today())):
            RecordReview.objects.create(kit_id=KIT, record_id=f"r{i}", indexed_at=now,
                                        outcome="recorded", complete=True, complete_on=day)
        clock_web.forget_count()
        yield
        transaction.set_rollback(True)
    clock_web.forget_count()


def header(html: str) -> str:
    match = re.search(r'<header class="top">(.*?)</header>', html, re.S)
    assert match, html[:2000]
    return match.group(1)


def test_the_header_shows_the_overdue_count_to_an_operator_and_the_head(office: None) -> None:
    for name, role in (("operator.rekam", "operator"), ("kadis", "head")):
        reply = _client(name, role).get("/")
        assert reply.status_code == 200
        top = header(reply.content.decode())
        count = re.search(r'<span class="overdue" id="nav-overdue">\((\d+) terlambat\)</span>',
                          top)
        assert count and count.group(1) == "2", (role, top)
    # A KTP-el handed over leaves the count (the mark clears the cached figure).
    RecordReview.objects.filter(record_id="r0").update(printed_on=dt.date.today(),
                                                       handed_over_on=dt.date.today())
    clock_web.forget_count()
    top = header(_client("operator.dua", "operator").get("/").content.decode())
    assert "(1 terlambat)" in top


def test_a_viewer_sees_no_overdue_count_in_the_header(office: None) -> None:
    reply = _client("pemantau", "viewer").get("/")
    assert reply.status_code == 200
    top = header(reply.content.decode())
    assert "nav-overdue" not in top and "terlambat" not in top and "nav-clock" not in top
    assert "Armada" in top  # the header itself is there
