"""A fleet on the test bench: kits reporting through the real receiver into a real office
database, a staff member with ``view_fleet``, and a logged-in browser session for the web
app started on that database (``tests/office/web/server.py``).

The session is made the way Django's login makes one, signed with the key the web server
will use (written to its data folder before it starts), so the tests do not depend on the
login page."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path

from office.db import OfficeDb
from sync import protocol as p
from tests.office.receiver import BenchOffice

PASSWORD = "kuda-hijau-blitar-2026"


def write_secret_key(data_dir: Path) -> str:
    """The web server's signing key, chosen here (it reads ``DATA_DIR/secret-key``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path = data_dir / "secret-key"
    path.write_text(key + "\n", encoding="ascii")
    path.chmod(0o600)
    return key


def make_user(db: OfficeDb, username: str, *, perms: tuple[str, ...] = ("view_fleet",)) -> int:
    from django.contrib.auth.models import Permission, User

    user = User.objects.db_manager(db.alias).create_user(username, password=PASSWORD)
    for codename in perms:
        user.user_permissions.add(Permission.objects.db_manager(db.alias).get(
            codename=codename, content_type__app_label="office"))
    return int(user.pk)


def session_cookie(db: OfficeDb, user_id: int, secret_key: str) -> str:
    """A logged-in session for ``user_id`` in the office database; its cookie value."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.test import override_settings

    with override_settings(SECRET_KEY=secret_key):
        user = User.objects.db_manager(db.alias).get(pk=user_id)
        store = SessionStore()
        data = {SESSION_KEY: str(user_id),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: user.get_session_auth_hash()}
        key = secrets.token_hex(16)
        Session.objects.using(db.alias).create(
            session_key=key, session_data=store.encode(data),
            expire_date=dt.datetime.now(dt.UTC) + dt.timedelta(hours=10))
    return key


class Fleet(BenchOffice):
    """Kits that report through the real receiver (no broker); ``at`` sets the office's clock."""

    def at(self, t: float | None) -> Fleet:
        self.now = t
        return self

    def birth(self, kit: str, *, session: int = 1, security: str = "tpm",
              software: str = "0.3.1") -> None:
        self.send(p.KitTopics(kit).status, p.encode_status(p.Status(
            online=True, session=session, tst=int(time.time()), software=software,
            security=security)), retain=False)

    def will(self, kit: str, *, session: int = 1, reason: str = "lost") -> None:
        self.send(p.KitTopics(kit).status, p.encode_status(p.Status(
            online=False, session=session, tst=int(time.time()), reason=reason)))

    def health(self, kit: str, *, battery: int, state: int = 1, rsrp: int = -92,
               sinr: float = 11.5, outbox: int = 0, oldest: int | None = None,
               fix_age: int = 3) -> None:
        self.send(p.KitTopics(kit).health, p.encode_health(p.Health(
            tst=int(time.time()), session=1, battery_percent=battery, battery_state=state,
            registered=True, access_tech="LTE", operator="Telkomsel", rssi_dbm=-67,
            rsrp_dbm=rsrp, rsrq_db=-10.5, sinr_db=sinr, fix_age_s=fix_age,
            outbox_count=outbox, outbox_oldest_s=oldest, software="0.3.1",
            ui_state="idle")))

    def locate(self, kit: str, lat: float, lon: float, *, battery: int | None = None,
               moving: bool = False, tst: int | None = None) -> None:
        self.send(p.KitTopics(kit).location, p.encode_location(
            p.Position(lat=lat, lon=lon, tst=tst or int(time.time()), acc_m=6),
            kit_id=kit, battery_percent=battery, battery_state=1,
            trigger="t" if moving else "p"))

    def track(self, kit: str, points: list[tuple[float, float, int]]) -> None:
        self.send(p.KitTopics(kit).track, p.encode_track(
            [p.Position(lat=a, lon=b, tst=t, acc_m=12) for a, b, t in points]))
