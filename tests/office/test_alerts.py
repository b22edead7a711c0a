"""Alerts (office/alerts.py): each kind raises and clears, nothing before a kit's first
contact, an idle healthy kit raises none however often it is judged, the hysteresis and
the 30-minute re-arm, settings that turn kinds off, and two evaluators racing.

The rules are tested as functions over :class:`office.web.fleet.KitData`; ``evaluate`` on a
real SQLite office database fed by the real receiver (``tests/office/web/fleet_helpers``),
its clock set by the test so a visit hour is a visit hour whenever the tests run."""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from office.db import setup_django
from sync import protocol as p
from tests.office.receiver import KIT
from tests.office.web.fleet_helpers import Fleet

setup_django()
from office import alerts as a  # noqa: E402  (needs Django set up)
from office.models import Alert, AlertSettings, Assignment, Command, Kit  # noqa: E402
from office.presence import KitData  # noqa: E402

WIB = zoneinfo.ZoneInfo("Asia/Jakarta")
# 10.00 WIB: inside the default visit hours (07-17).
T = dt.datetime(2026, 11, 30, 10, 0, tzinfo=WIB).timestamp()
OTHER = "blitar-kit-07"


# -- the rules, as functions -------------------------------------------------------------------
def kit(**kw: Any) -> KitData:
    base: dict[str, Any] = dict(
        kit_id=KIT, status_online=True, status={"security": "tpm"}, status_at=T - 10,
        health={"battery_percent": 80, "battery_state": 1, "fix_age_s": 3, "outbox_count": 0,
                "uptime_s": 7200},
        health_at=T - 10, location={}, location_at=T - 10, last_seen=T - 10)
    base.update(kw)
    return KitData(**base)


def health(**kw: Any) -> dict[str, Any]:
    return {"battery_percent": 80, "battery_state": 1, "fix_age_s": 3, "outbox_count": 0,
            "uptime_s": 7200, **kw}


DEFAULTS = AlertSettings()


def kinds(k: KitData, *, now: float = T, s: AlertSettings = DEFAULTS, **kw: Any) -> set[str]:
    return set(a.conditions(k, now, s, **kw))


def test_a_healthy_kit_has_no_condition() -> None:
    assert kinds(kit()) == set()


def test_a_kit_never_heard_from_has_no_condition() -> None:
    silent = kit(status_at=None, last_seen=None, status={"security": "software"},
                 health=health(battery_percent=5))
    assert kinds(silent, selftest=a.SelfTest(False, {}, "expired")) == set()


def test_low_battery_needs_a_live_discharging_reading_and_clears_5_above() -> None:
    assert a.conditions(kit(health=health(battery_percent=19)), T, DEFAULTS) == {
        a.LOW_BATTERY: {"percent": 19, "threshold": 20}}
    assert kinds(kit(health=health(battery_percent=20))) == set()
    assert kinds(kit(health=health(battery_percent=5, battery_state=2))) == set()  # charging
    assert kinds(kit(health=health(battery_percent=5, battery_state=0))) == {a.LOW_BATTERY}
    # A reading older than its period (300 s x 1.5 + 30 on a low battery) raises nothing ...
    stale = kit(health=health(battery_percent=10), health_at=T - 481)
    assert kinds(stale) == set()
    # ... but does not clear an open one: the office does not know the kit got better.
    assert kinds(stale, open_kinds={a.LOW_BATTERY}) == {a.LOW_BATTERY}
    assert kinds(kit(health=health(battery_percent=24)), open_kinds={a.LOW_BATTERY}) == {
        a.LOW_BATTERY}
    assert kinds(kit(health=health(battery_percent=25)), open_kinds={a.LOW_BATTERY}) == set()
    assert kinds(kit(health=health(battery_percent=10, battery_state=3)),
                 open_kinds={a.LOW_BATTERY}) == set()


def test_no_fix_counts_the_reports_age_and_clears_at_half() -> None:
    # 29 min at the report, reported 2 min ago: 31 min > 30.
    old = kit(health=health(fix_age_s=29 * 60), health_at=T - 120)
    assert a.conditions(old, T, DEFAULTS)[a.NO_FIX] == {
        "fix_age_min": 31, "threshold_min": 30, "uptime_min": None}
    assert kinds(kit(health=health(fix_age_s=29 * 60))) == set()
    assert kinds(old, now=T, s=AlertSettings(no_fix_minutes=0)) == set()
    # Only a kit that is online raises it; an offline one keeps an open one.
    gone = kit(health=health(fix_age_s=40 * 60), status_online=False)
    assert kinds(gone) == set()
    assert kinds(gone, open_kinds={a.NO_FIX}) == {a.NO_FIX}
    assert kinds(kit(health=health(fix_age_s=16 * 60)), open_kinds={a.NO_FIX}) == {a.NO_FIX}
    assert kinds(kit(health=health(fix_age_s=14 * 60)), open_kinds={a.NO_FIX}) == set()
    # No fix since it started: the uptime stands in.
    never = kit(health={"battery_percent": 80, "battery_state": 1, "uptime_s": 3000})
    assert a.conditions(never, T, DEFAULTS)[a.NO_FIX]["uptime_min"] == 50


def test_records_waiting_needs_records_and_clears_an_hour_below() -> None:
    day = 24 * 3600
    assert a.conditions(kit(health=health(outbox_count=3, outbox_oldest_s=day - 5)),
                        T, DEFAULTS) == {a.RECORDS_WAITING: {
                            "count": 3, "oldest_h": 24.0, "threshold_h": 24}}
    assert kinds(kit(health=health(outbox_count=3, outbox_oldest_s=day - 11))) == set()
    # The merged health keeps an old outbox_oldest_s once the outbox is empty.
    assert kinds(kit(health=health(outbox_count=0, outbox_oldest_s=2 * day))) == set()
    assert kinds(kit(health=health(outbox_count=1, outbox_oldest_s=day - 3000)),
                 open_kinds={a.RECORDS_WAITING}) == {a.RECORDS_WAITING}
    assert kinds(kit(health=health(outbox_count=1, outbox_oldest_s=day - 3700)),
                 open_kinds={a.RECORDS_WAITING}) == set()


def test_a_failed_self_test_is_a_refusal_a_problem_or_a_bad_store() -> None:
    passed = a.SelfTest(True, {"store": "ok", "keys": "tpm", "problems": "", "gnss": "fix"})
    assert kinds(kit(), selftest=passed) == set()
    assert a.conditions(kit(), T, DEFAULTS, selftest=a.SelfTest(False, {}, "expired")) == {
        a.FAILED_SELFTEST: {"ok": False, "why": "expired"}}
    bad_store = a.SelfTest(True, {"store": "*** in database main ***", "keys": "software",
                                  "problems": ""})
    assert a.conditions(kit(), T, DEFAULTS, selftest=bad_store)[a.FAILED_SELFTEST] == {
        "store": "*** in database main ***"}  # software keys are no_tpm's business
    problems = a.SelfTest(True, {"store": "ok", "keys": "tpm", "problems": "gnss_absent"})
    assert kinds(kit(), selftest=problems) == {a.FAILED_SELFTEST}
    assert kinds(kit(), selftest=problems, s=AlertSettings(failed_selftest=False)) == set()


def test_no_tpm_follows_the_birth_message() -> None:
    weak = kit(status={"security": "software"})
    assert kinds(weak) == {a.NO_TPM}
    assert kinds(weak, s=AlertSettings(no_tpm=False)) == set()


def assignment(kit_id: str = KIT, *, queued_at: float = T - 3600,
               delivered_at: float | None = None, error: str = "") -> Assignment:
    return Assignment(kit_id=kit_id, assignment_id=f"A-{queued_at:.0f}", sealed_at="",
                      envelope=b"", queued_at=queued_at, delivered_at=delivered_at,
                      error=error)


def test_offline_during_a_visit_needs_an_assignment_today_in_visit_hours() -> None:
    gone = kit(status_online=False, status={"security": "tpm", "reason": "lost"},
               last_seen=T - 600)
    today = [assignment()]
    assert a.conditions(gone, T, DEFAULTS, assignments=today) == {a.OFFLINE_DURING_VISIT: {
        "presence": "offline", "assignments": 1, "seen_min": 10}}
    silent = kit(last_seen=T - 1300)  # online by its status, unheard beyond 1,200 s
    assert kinds(silent, assignments=today) == {a.OFFLINE_DURING_VISIT}
    assert kinds(kit(), assignments=today) == set()
    assert kinds(gone, assignments=[]) == set()
    assert kinds(gone, assignments=[assignment(error="bad_signature")]) == set()
    yesterday = T - 86400
    assert kinds(gone, assignments=[assignment(queued_at=yesterday)]) == set()
    assert kinds(gone, assignments=[assignment(queued_at=yesterday,
                                               delivered_at=T - 60)]) == {a.OFFLINE_DURING_VISIT}
    evening = dt.datetime(2026, 11, 30, 17, 0, tzinfo=WIB).timestamp()
    assert kinds(gone, now=evening, assignments=today) == set()
    assert kinds(gone, assignments=today, s=AlertSettings(visit_start_hour=11)) == set()
    assert kinds(gone, assignments=today, s=AlertSettings(offline_during_visit=False)) == set()


# -- evaluate, on a real database --------------------------------------------------------------
class Office:
    """A fleet on the bench with its clock at ``t``, and the evaluator on its database."""

    def __init__(self, tmp_path: Path) -> None:
        self.fleet = Fleet(tmp_path, now=T)
        self.alias = self.fleet.db.alias
        self.t = T
        self.commands = 0

    def at(self, t: float) -> Fleet:
        self.t = t
        return self.fleet.at(t)

    def evaluate(self, t: float | None = None) -> a.Summary:
        return a.evaluate(self.t if t is None else t, using=self.alias)

    def alerts(self, **filters: Any) -> list[Alert]:
        return list(Alert.objects.using(self.alias).filter(**filters).order_by("id"))

    def open(self) -> set[str]:
        return {f"{x.kit_id}:{x.kind}" for x in self.alerts(cleared_at__isnull=True)}

    def settings(self, **values: Any) -> None:
        AlertSettings.objects.using(self.alias).update_or_create(pk=1, defaults=values)

    def selftest(self, kit_id: str, *, ok: bool = True, **result: Any) -> None:
        """A self-test queued for the kit, and its answer through the receiver."""
        self.commands += 1
        command_id = f"c-{self.commands:04d}"
        Command.objects.using(self.alias).create(
            command_id=command_id, kit_id=kit_id, name="selftest", args="{}",
            issued_at=int(self.t), expires_at=int(self.t) + 3600, payload=b"",
            queued_at=self.t)
        self.fleet.send(p.KitTopics(kit_id).result, p.encode_result(p.CommandResult(
            command_id, ok, "" if ok else "refused", {"store": "ok", "keys": "tpm",
                                                      "problems": "", **result})))

    def assign(self, kit_id: str, *, queued_at: float | None = None) -> None:
        at = self.t if queued_at is None else queued_at
        Assignment.objects.using(self.alias).create(
            kit_id=kit_id, assignment_id=f"A-{at:.0f}", sealed_at="", envelope=b"",
            queued_at=at)


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return Office(tmp_path)


def test_low_battery_raises_and_clears(office: Office) -> None:
    office.fleet.birth(KIT)
    office.fleet.health(KIT, battery=15)
    s = office.evaluate(T + 10)
    assert s.raised == [f"{KIT}:low_battery"] and s.open == 1
    (alert,) = office.alerts()
    assert (alert.raised_at, a.detail_figures(alert)) == (T + 10, {"percent": 15,
                                                                   "threshold": 20})
    office.at(T + 60).health(KIT, battery=12)
    assert office.evaluate(T + 70).raised == []
    assert a.detail_figures(office.alerts()[0])["percent"] == 12  # the figures follow
    office.at(T + 120).health(KIT, battery=26, state=2)
    s = office.evaluate(T + 130)
    assert s.cleared == [f"{KIT}:low_battery"] and s.open == 0
    assert office.alerts()[0].cleared_at == T + 130


def test_no_fix_raises_and_clears(office: Office) -> None:
    office.fleet.birth(KIT)
    office.fleet.health(KIT, battery=80, fix_age=31 * 60)
    assert office.evaluate(T + 5).raised == [f"{KIT}:no_fix"]
    office.at(T + 300).health(KIT, battery=80, fix_age=4)
    assert office.evaluate(T + 305).cleared == [f"{KIT}:no_fix"]


def test_records_waiting_raises_and_clears(office: Office) -> None:
    office.fleet.birth(KIT)
    office.fleet.health(KIT, battery=80, outbox=4, oldest=24 * 3600 - 30)
    assert office.evaluate(T + 10).raised == []
    assert office.evaluate(T + 40).raised == [f"{KIT}:records_waiting"]  # grown past 24 h
    office.at(T + 600).health(KIT, battery=80, outbox=0)
    assert office.evaluate(T + 610).cleared == [f"{KIT}:records_waiting"]


def test_a_failed_self_test_raises_and_a_passing_one_clears(office: Office) -> None:
    office.fleet.birth(KIT)
    office.fleet.health(KIT, battery=80)
    office.selftest(KIT)
    assert office.evaluate(T + 5).raised == []
    office.selftest(KIT, problems="gnss_absent,modem_absent")
    assert office.evaluate(T + 10).raised == [f"{KIT}:failed_selftest"]
    assert a.detail_figures(office.alerts()[0]) == {"problems": "gnss_absent,modem_absent"}
    office.selftest(KIT)
    assert office.evaluate(T + 20).cleared == [f"{KIT}:failed_selftest"]


def test_no_tpm_raises_and_a_tpm_birth_clears(office: Office) -> None:
    office.fleet.birth(KIT, security="software")
    assert office.evaluate(T + 5).raised == [f"{KIT}:no_tpm"]
    office.at(T + 60).will(KIT)  # the will keeps the security the birth announced
    assert office.evaluate(T + 65).cleared == []
    office.at(T + 120).birth(KIT, session=2, security="tpm")
    assert office.evaluate(T + 125).cleared == [f"{KIT}:no_tpm"]


def test_offline_during_a_visit_raises_and_clears(office: Office) -> None:
    office.fleet.birth(OTHER)
    office.fleet.health(OTHER, battery=80)
    office.assign(OTHER, queued_at=T - 1800)
    assert office.evaluate(T + 5).raised == []
    office.at(T + 60).will(OTHER)
    s = office.evaluate(T + 65)
    assert s.raised == [f"{OTHER}:offline_during_visit"]
    assert a.detail_figures(office.alerts()[0]) == {
        "presence": "offline", "assignments": 1, "seen_min": 1}
    office.at(T + 600).birth(OTHER, session=2)
    assert office.evaluate(T + 605).cleared == [f"{OTHER}:offline_during_visit"]


def test_no_alert_before_a_kits_first_contact(office: Office) -> None:
    # A row the office made before the kit ever connected (an assignment queued, say),
    # with every trouble in it but no status and no report.
    Kit.objects.using(office.alias).create(
        kit_id=OTHER, status='{"security": "software"}', health=(
            '{"battery_percent": 5, "battery_state": 1, "fix_age_s": 99999, '
            '"outbox_count": 9, "outbox_oldest_s": 999999}'), health_at=T - 30)
    office.assign(OTHER, queued_at=T - 600)
    office.selftest(OTHER, ok=False)
    for step in range(10):
        s = office.evaluate(T + step * 600)
        assert (s.raised, s.kits) == ([], 0)
    assert office.alerts() == []


def test_an_idle_healthy_kit_raises_nothing_all_day(office: Office) -> None:
    """Six hours of a kit doing visits (an assignment delivered, reports every idle period
    of 900 s, a fix and no records waiting), judged every 30 s: 720 evaluations."""
    office.fleet.birth(KIT)
    office.assign(KIT, queued_at=T - 3600)
    Assignment.objects.using(office.alias).filter(kit_id=KIT).update(delivered_at=T - 3500)
    battery = 95
    evaluations = 0
    for step in range(6 * 120):
        t = T + step * 30
        if step % 30 == 0:  # every 900 s
            battery -= 1
            office.at(t).health(KIT, battery=battery, fix_age=5, outbox=step % 2)
            office.fleet.locate(KIT, -8.1, 112.16)
        s = office.evaluate(t)
        evaluations += 1
        assert s.raised == [] and s.kits == 1, (step, s)
    assert evaluations == 720 and office.alerts() == []


def test_a_battery_hovering_at_the_threshold_is_one_alert(office: Office) -> None:
    office.fleet.birth(KIT)
    for i, percent in enumerate((21, 19, 20, 21, 19, 22, 20, 24, 21, 19)):
        office.at(T + i * 300).health(KIT, battery=percent)
        office.evaluate(T + i * 300 + 5)
    assert len(office.alerts()) == 1 and office.open() == {f"{KIT}:low_battery"}
    office.at(T + 4000).health(KIT, battery=25)
    assert office.evaluate(T + 4005).cleared == [f"{KIT}:low_battery"]


def test_a_kind_cleared_is_not_raised_again_for_30_minutes(office: Office) -> None:
    office.fleet.birth(KIT)
    office.fleet.health(KIT, battery=15)
    office.evaluate(T + 5)
    office.at(T + 100).health(KIT, battery=15, state=2)  # a charger, for a minute
    assert office.evaluate(T + 105).cleared == [f"{KIT}:low_battery"]
    office.at(T + 160).health(KIT, battery=15, state=1)
    for t in (T + 165, T + 105 + a.REARM_S - 1):
        office.at(t).health(KIT, battery=15)
        s = office.evaluate(t)
        assert (s.raised, s.rearming) == ([], [f"{KIT}:low_battery"])
    t = T + 105 + a.REARM_S + 1
    office.at(t).health(KIT, battery=15)
    assert office.evaluate(t).raised == [f"{KIT}:low_battery"]
    assert [x.cleared_at is None for x in office.alerts()] == [False, True]
    # The re-arm is per kit and kind: another kind of the same kit raises at once.
    office.selftest(KIT, problems="camera_absent")
    assert office.evaluate(t + 5).raised == [f"{KIT}:failed_selftest"]


def troubled_fleet(office: Office) -> None:
    """KIT in every health trouble at once; OTHER offline during a visit."""
    office.fleet.birth(KIT, security="software")
    office.fleet.health(KIT, battery=9, fix_age=3600, outbox=2, oldest=30 * 3600)
    office.selftest(KIT, ok=False)
    office.fleet.birth(OTHER)
    office.assign(OTHER, queued_at=T - 600)
    office.at(T + 1).will(OTHER)


# The six kinds of a kit's own state (a kit not returned needs a checkout: its own test).
ALL_SIX = {f"{KIT}:{k}" for k in a.KINDS if k not in (a.OFFLINE_DURING_VISIT,
                                                     a.NOT_RETURNED)} | {
    f"{OTHER}:offline_during_visit"}


def test_settings_turn_kinds_off(office: Office) -> None:
    troubled_fleet(office)
    office.settings(battery_percent=0, no_fix_minutes=0, waiting_hours=0,
                    offline_during_visit=False, failed_selftest=False, no_tpm=False)
    assert office.evaluate(T + 10).raised == [] and office.alerts() == []
    office.settings(battery_percent=20, no_fix_minutes=30, waiting_hours=24,
                    offline_during_visit=True, failed_selftest=True, no_tpm=True)
    s = office.evaluate(T + 20)
    assert set(s.raised) == ALL_SIX and s.open == 6
    # Turned off while open: they clear.
    office.settings(battery_percent=0, no_tpm=False)
    assert set(office.evaluate(T + 30).cleared) == {f"{KIT}:low_battery", f"{KIT}:no_tpm"}
    assert office.open() == ALL_SIX - {f"{KIT}:low_battery", f"{KIT}:no_tpm"}


def race(alias: str, monkeypatch: pytest.MonkeyPatch, now: float) -> list[a.Summary]:
    """Two threads (two connections, as two ingest workers) evaluating at ``now``, both
    reading "nothing open" before either writes."""
    barrier = threading.Barrier(2, timeout=20)
    read_open = a._open_alerts

    def open_then_wait(using: str) -> dict[tuple[str, str], Alert]:
        found = read_open(using)
        barrier.wait()  # both have read before either writes
        return found

    monkeypatch.setattr(a, "_open_alerts", open_then_wait)
    summaries: list[a.Summary] = []
    errors: list[BaseException] = []

    def worker() -> None:
        from django.db import connections

        try:
            summaries.append(a.evaluate(now, using=alias))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert errors == [] and len(summaries) == 2
    return summaries


def test_two_evaluators_racing_raise_each_alert_once(office: Office,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The unique constraint lets one insert of each through; the other counts a race."""
    troubled_fleet(office)
    summaries = race(office.alias, monkeypatch, T + 20)
    raised = [name for s in summaries for name in s.raised]
    raced = [name for s in summaries for name in s.raced]
    assert sorted(raised) == sorted(ALL_SIX) and sorted(raced) == sorted(ALL_SIX)
    assert len(office.alerts()) == 6 and office.open() == ALL_SIX


def test_two_evaluators_racing_on_postgresql(postgres: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The same on PostgreSQL, where several ingest workers share one database."""
    import secrets

    import psycopg

    from office.db import OfficeDb

    name = f"alerts_{secrets.token_hex(6)}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    db = OfficeDb.open(f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}")
    try:
        for kit_id, security in ((KIT, "software"), (OTHER, "software")):
            db.set_kit(kit_id, online=1, session=1, status=f'{{"security": "{security}"}}',
                       status_at=T, last_seen=T)
        summaries = race(db.alias, monkeypatch, T + 20)
        assert sorted(n for s in summaries for n in s.raised) == [
            f"{KIT}:no_tpm", f"{OTHER}:no_tpm"]
        assert sorted(n for s in summaries for n in s.raced) == [
            f"{KIT}:no_tpm", f"{OTHER}:no_tpm"]
        assert Alert.objects.using(db.alias).count() == 2
        # And the next evaluation, with nobody racing, clears on PostgreSQL too.
        db.set_kit(KIT, status='{"security": "tpm"}', status_at=T + 30)
        monkeypatch.undo()
        assert a.evaluate(T + 40, using=db.alias).cleared == [f"{KIT}:no_tpm"]
    finally:
        db.close()


def test_the_watch_evaluates_until_stopped_and_survives_a_failure(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    office.fleet.birth(KIT, security="software")
    calls: list[float] = []
    real = a.evaluate
    stop = threading.Event()

    def flaky(now: float | None = None, *, using: str = "default") -> a.Summary:
        calls.append(now or 0)
        if len(calls) == 1:
            raise RuntimeError("database away")
        if len(calls) >= 3:
            stop.set()
        return real(now, using=using)

    monkeypatch.setattr(a, "evaluate", flaky)
    watch = a.AlertWatch(office.alias, clock=lambda: T + 10)
    thread = threading.Thread(target=watch.run, args=(stop,), kwargs={"every_s": 0.01})
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert watch.failures == 1 and len(calls) == 3
    assert watch.last is not None and watch.last.open == 1
    assert office.open() == {f"{KIT}:no_tpm"}


def test_office_alerts_lists_what_is_open(office: Office) -> None:
    import subprocess
    import sys

    weak = "blitar-kit-12"
    office.fleet.birth(weak, security="software")
    run = subprocess.run([sys.executable, "-m", "sync.cli", "office", "alerts", "--db",
                          str(office.fleet.db.path), "--evaluate"],
                         capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in run.stdout.splitlines() if not line.startswith("INFO ")]
    assert lines[0] == "Evaluated 1 kits: 1 raised, 0 cleared."
    assert lines[2].split()[:2] == [weak, "no_tpm"] and "security=software" in lines[2]
    assert office.open() == {f"{weak}:no_tpm"}  # written to the database
