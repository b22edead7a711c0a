"""Alerts: the troubles the office must act on, raised and cleared by themselves.

Seven kinds (:data:`KINDS`), each judged by a pure function of what the office knows of a
kit (:class:`office.web.fleet.KitData`, its latest answered self-test, its assignments
today, the day its open checkout is due back) and the office's thresholds
(:class:`office.models.AlertSettings`, one row, edited on ``/alerts/settings``);
:func:`conditions` gives the ones that hold now, each with a short detail of figures (a
battery %, an age; never personal data). :func:`evaluate` turns them into
:class:`office.models.Alert` rows; :class:`AlertWatch` runs it every 30 s inside
``office serve``.

What keeps the list short and honest:

- **No alert before a kit's first contact**: a kit the office has never heard from (a
  row made by queueing an assignment, say) is not "offline during a visit".
- **One open alert per kit and kind**: a kit in the same trouble for hours is one line
  (the unique constraint ``alerts_one_open_per_kit_and_kind`` also settles two ingest
  workers evaluating at once: the second insert fails and is counted, not duplicated).
- **Hysteresis**: an open alert clears only on evidence that the trouble is over, past a
  margin, so a value hovering at its threshold does not raise and clear by turns:

  ============================ ===================================== =====================
  kind                         raised when                           cleared when
  ============================ ===================================== =====================
  ``low_battery``              a live reading < threshold, on        a reading ≥ threshold
                               battery (``bs`` 0/1)                  + 5, or charging/full
  ``no_fix``                   online, fix older than N min          fix younger than N/2
  ``records_waiting``          oldest waiting > H hours              none waiting, or the
                                                                     oldest < H - 1 h
                                                                     (≥ H/2)
  ``offline_during_visit``     offline/silent, in visit hours, with  online again, out of
                               an assignment today                   hours, or none today
  ``failed_selftest``          latest answered self-test failed      a newer one passes
  ``no_tpm``                   status says ``security: software``    a birth says ``tpm``
  ``not_returned``             its open checkout's ``due_on`` is     returned (or due
                               before today (WIB)                    moved to today+)
  ============================ ===================================== =====================

  ``not_returned`` is about the kit as a thing the storekeeper lent out, not about its
  link: it holds whether or not the office ever heard from the kit, and it has no setting
  (always on).

  A kit that goes quiet keeps its open health alerts (the office does not know it got
  better: its last battery reading stays low, its fix and its records keep ageing) but
  raises no battery alert on a stale reading.
- **No re-raise within 30 min of clearing** (:data:`REARM_S`): a kit whose link comes and
  goes, or a charger plugged in for a minute, gives one alert, not one per blink.
- Each kind can be turned off in the settings (a threshold of 0, a box unticked); its open
  alerts then clear.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from office.models import Alert, AlertSettings, Assignment, Command, Kit
from office.presence import STALE_FACTOR, STALE_MARGIN_S, KitData, day_start, staleness
from office.records import local_day

log = logging.getLogger("office.alerts")

LOW_BATTERY = "low_battery"
OFFLINE_DURING_VISIT = "offline_during_visit"
NO_FIX = "no_fix"
RECORDS_WAITING = "records_waiting"
FAILED_SELFTEST = "failed_selftest"
NO_TPM = "no_tpm"
NOT_RETURNED = "not_returned"
KINDS = (LOW_BATTERY, OFFLINE_DURING_VISIT, NO_FIX, RECORDS_WAITING, FAILED_SELFTEST, NO_TPM,
         NOT_RETURNED)

BATTERY_CLEAR_MARGIN = 5  # percent above the threshold before a low-battery alert clears
WAITING_CLEAR_MARGIN_S = 3600.0  # an hour below the threshold (at most half of it)
REARM_S = 1800.0  # a kind cleared for a kit is not raised again for it this soon
EVERY_S = 30.0  # how often ``office serve`` evaluates
TEXT_MAX = 80  # the longest text figure kept in a detail (a self-test's problem codes)


@dataclass(frozen=True)
class SelfTest:
    """A kit's latest answered ``selftest`` command, as the office stored the answer."""

    ok: bool
    result: dict[str, Any]
    reason: str = ""
    at: float | None = None

    @classmethod
    def of(cls, command: Command) -> SelfTest:
        try:
            stored = json.loads(command.result or "{}")
        except ValueError:
            stored = {}
        if not isinstance(stored, dict):
            stored = {}
        res = stored.get("res")
        return cls(bool(command.result_ok), res if isinstance(res, dict) else {},
                   str(stored.get("why") or ""), command.result_at)

    def faults(self) -> dict[str, Any]:
        """What failed, as figures (empty: it passed). The kit's agent answers with
        ``store`` (SQLite's integrity check: ``ok``), ``keys`` (``tpm`` or ``software``;
        the weaker mode is :data:`NO_TPM`'s business) and ``problems`` (device codes,
        comma-separated); see ``kit/agent/service.py`` ``self_test``."""
        out: dict[str, Any] = {}
        if not self.ok:
            out["ok"] = False
            if self.reason:
                out["why"] = self.reason[:TEXT_MAX]
        store = self.result.get("store")
        if store is not None and str(store) != "ok":
            out["store"] = str(store)[:TEXT_MAX]
        keys = self.result.get("keys")
        if keys is not None and str(keys) not in ("tpm", "software"):
            out["keys"] = str(keys)[:TEXT_MAX]
        problems = self.result.get("problems")
        if problems:
            out["problems"] = (",".join(map(str, problems)) if isinstance(problems, list)
                               else str(problems))[:TEXT_MAX]
        return out


# -- the rules (pure) --------------------------------------------------------------------------
def local_hour(now: float) -> int:
    """The hour of ``now`` in the office's time zone (WIB)."""
    return timezone.localtime(dt.datetime.fromtimestamp(now, tz=dt.UTC)).hour


def _report_age(kit: KitData, now: float) -> float | None:
    return None if kit.health_at is None else max(0.0, now - kit.health_at)


def low_battery(kit: KitData, now: float, s: AlertSettings, is_open: bool
                ) -> dict[str, Any] | None:
    threshold = s.battery_percent
    percent, state, at = kit.battery
    if not threshold or percent is None:
        return None
    on_battery = state in (0, 1)
    if is_open:  # held until a reading clearly above it, or the kit on a charger
        holds = on_battery and percent < threshold + BATTERY_CLEAR_MARGIN
    else:
        st = staleness(kit, now)
        live = st.online and at is not None and \
            now - at <= st.health_period_s * STALE_FACTOR + STALE_MARGIN_S
        holds = on_battery and live and percent < threshold
    return {"percent": percent, "threshold": threshold} if holds else None


def no_fix(kit: KitData, now: float, s: AlertSettings, is_open: bool) -> dict[str, Any] | None:
    """The fix's age at the report, grown by the report's age. A kit that has had no fix
    since it started reports none: its uptime stands in for the age."""
    limit = s.no_fix_minutes * 60.0
    age = _report_age(kit, now)
    if not limit or age is None:
        return None
    fix = kit.health.get("fix_age_s")
    base = fix if fix is not None else kit.health.get("uptime_s")
    if base is None:
        return None
    grown = float(base) + age
    holds = grown > limit / 2 if is_open else staleness(kit, now).online and grown > limit
    if not holds:
        return None
    return {"fix_age_min": int(grown // 60) if fix is not None else None,
            "uptime_min": None if fix is not None else int(grown // 60),
            "threshold_min": s.no_fix_minutes}


def records_waiting(kit: KitData, now: float, s: AlertSettings, is_open: bool
                    ) -> dict[str, Any] | None:
    """Records still on the kit: the oldest one's wait, grown by the report's age (a kit
    out of reach keeps them waiting). ``outbox_oldest_s`` is kept from older reports when
    the outbox empties, so the count decides whether any wait at all."""
    limit = s.waiting_hours * 3600.0
    age = _report_age(kit, now)
    count = kit.health.get("outbox_count") or 0
    oldest = kit.health.get("outbox_oldest_s")
    if not limit or age is None or not count or oldest is None:
        return None
    grown = float(oldest) + age
    clear_below = max(limit - WAITING_CLEAR_MARGIN_S, limit / 2)
    if not (grown > clear_below if is_open else grown > limit):
        return None
    return {"count": int(count), "oldest_h": round(grown / 3600, 1),
            "threshold_h": s.waiting_hours}


def failed_selftest(selftest: SelfTest | None, s: AlertSettings) -> dict[str, Any] | None:
    if not s.failed_selftest or selftest is None:
        return None
    return selftest.faults() or None


def no_tpm(kit: KitData, s: AlertSettings) -> dict[str, Any] | None:
    # A will keeps the security its birth announced (office.ingest), so this does not
    # flap with the kit's presence.
    if not s.no_tpm or kit.status.get("security") != "software":
        return None
    return {"security": "software"}


def not_returned(due_on: dt.date | None, now: float) -> dict[str, Any] | None:
    """A kit handed out (SOP step 6) and not back by the day it was due (step 11):
    ``due_on`` is its open checkout's, None when it is not out. Holds from the day after."""
    if due_on is None:
        return None
    late = (local_day(now) - due_on).days
    if late < 1:
        return None
    return {"due_on": due_on.isoformat(), "days": late}


def visits_today(assignments: Iterable[Assignment], now: float) -> int:
    """Assignments queued or delivered today (WIB) that the kit did not refuse."""
    start = day_start(now)
    return sum(1 for a in assignments if not a.error and (
        a.queued_at >= start or (a.delivered_at is not None and a.delivered_at >= start)))


def offline_during_visit(kit: KitData, now: float, s: AlertSettings,
                         assignments: Iterable[Assignment]) -> dict[str, Any] | None:
    if not s.offline_during_visit:
        return None
    if not s.visit_start_hour <= local_hour(now) < s.visit_end_hour:
        return None
    presence = staleness(kit, now).presence
    if presence not in ("offline", "silent"):
        return None
    n = visits_today(assignments, now)
    if not n:
        return None
    seen = None if kit.last_seen is None else int(max(0.0, now - kit.last_seen) // 60)
    return {"presence": presence, "assignments": n, "seen_min": seen}


def first_contact(kit: KitData) -> bool:
    """Whether the office has ever heard from the kit (a status or any report)."""
    return kit.status_at is not None or kit.last_seen is not None


def conditions(kit: KitData, now: float, settings: AlertSettings, *,
               selftest: SelfTest | None = None, assignments: Iterable[Assignment] = (),
               open_kinds: Iterable[str] = (), due_on: dt.date | None = None
               ) -> dict[str, dict[str, Any]]:
    """The kinds that hold for ``kit`` at ``now`` (Unix seconds), each with its figures.

    ``open_kinds`` are the kinds already open for the kit: those are judged by their
    clearing threshold (the hysteresis of the module's table), the others by their
    raising one. ``due_on`` is the due day of the kit's open checkout (None: not out).
    A kit never heard from has none but :data:`NOT_RETURNED`."""
    late = not_returned(due_on, now)
    if not first_contact(kit):
        return {NOT_RETURNED: late} if late is not None else {}
    opened = set(open_kinds)
    found = {
        LOW_BATTERY: low_battery(kit, now, settings, LOW_BATTERY in opened),
        OFFLINE_DURING_VISIT: offline_during_visit(kit, now, settings, assignments),
        NO_FIX: no_fix(kit, now, settings, NO_FIX in opened),
        RECORDS_WAITING: records_waiting(kit, now, settings, RECORDS_WAITING in opened),
        FAILED_SELFTEST: failed_selftest(selftest, settings),
        NO_TPM: no_tpm(kit, settings),
        NOT_RETURNED: late,
    }
    return {kind: detail for kind, detail in found.items() if detail is not None}


def detail_figures(alert: Alert) -> dict[str, Any]:
    """An alert's figures (its ``detail``, JSON), empty if unreadable."""
    try:
        value = json.loads(alert.detail or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- the database --------------------------------------------------------------------------------
def current_settings(using: str = "default") -> AlertSettings:
    """The office's thresholds: row 1, or the defaults until someone saves them."""
    return AlertSettings.objects.using(using).filter(pk=1).first() or AlertSettings(pk=1)


@dataclass
class Summary:
    """What one evaluation did: alerts raised and cleared (``kit:kind``), how many are
    open now, conditions not raised because the kind cleared for the kit under 30 min ago
    (``rearming``), and inserts another evaluator won (``raced``)."""

    at: float
    kits: int = 0
    raised: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    rearming: list[str] = field(default_factory=list)
    raced: list[str] = field(default_factory=list)
    open: int = 0


def _open_alerts(using: str) -> dict[tuple[str, str], Alert]:
    return {(a.kit_id, a.kind): a for a in
            Alert.objects.using(using).filter(cleared_at__isnull=True)}


def _latest_selftests(using: str) -> dict[str, SelfTest]:
    latest: dict[str, Command] = {}
    for c in (Command.objects.using(using).filter(name="selftest", result_at__isnull=False)
              .only("kit_id", "result_ok", "result", "result_at").order_by("result_at")):
        latest[c.kit_id] = c
    return {kit_id: SelfTest.of(c) for kit_id, c in latest.items()}


def _assignments_today(using: str, now: float) -> dict[str, list[Assignment]]:
    start = day_start(now)
    out: dict[str, list[Assignment]] = {}
    for a in Assignment.objects.using(using).filter(
            Q(queued_at__gte=start) | Q(delivered_at__gte=start)).defer("envelope"):
        out.setdefault(a.kit_id, []).append(a)
    return out


def _due_days(using: str) -> dict[str, dt.date]:
    """Each kit out now (an open checkout) and the day it is due back."""
    from office.models import KitCheckout

    return dict(KitCheckout.objects.using(using).filter(returned_at__isnull=True)
                .values_list("kit_id", "due_on"))


def _text(figures: Mapping[str, Any]) -> str:
    return json.dumps(dict(figures), separators=(",", ":"), sort_keys=True)


def evaluate(now: float | None = None, *, using: str = "default") -> Summary:
    """Judge every kit at ``now`` and bring the ``alerts`` table in line: raise an alert
    for each new condition (unless the kind cleared for that kit under :data:`REARM_S`
    ago), refresh the figures of those still open, and clear those that no longer hold.

    Safe to run in several processes at once (the ingest workers of a share group): a
    raise another one won is counted in ``raced``; a clear is ``WHERE cleared_at IS NULL``.
    """
    now = time.time() if now is None else now
    summary = Summary(at=now)
    settings = current_settings(using)
    kits = [KitData.of(k) for k in Kit.objects.using(using).order_by("kit_id")]
    due = _due_days(using)
    open_alerts = _open_alerts(using)
    # A kit handed out that the office never heard from has no ``kits`` row: judged too
    # (and after its return, while its alert is still open, so that it clears).
    known = {k.kit_id for k in kits}
    unseen = (set(due) | {kit_id for kit_id, _kind in open_alerts}) - known
    kits += [KitData(kit_id, False, {}, None, {}, None, {}, None, None)
             for kit_id in sorted(unseen)]
    selftests = _latest_selftests(using)
    assignments = _assignments_today(using, now)
    rearming = set(Alert.objects.using(using).filter(cleared_at__gte=now - REARM_S)
                   .values_list("kit_id", "kind"))
    for kit in kits:
        mine = {kind: a for (kit_id, kind), a in open_alerts.items() if kit_id == kit.kit_id}
        if not first_contact(kit) and kit.kit_id not in due and not mine:
            continue
        summary.kits += 1
        holding = conditions(kit, now, settings, selftest=selftests.get(kit.kit_id),
                             assignments=assignments.get(kit.kit_id, ()), open_kinds=mine,
                             due_on=due.get(kit.kit_id))
        for kind, figures in holding.items():
            name = f"{kit.kit_id}:{kind}"
            detail = _text(figures)
            alert = mine.get(kind)
            if alert is not None:
                if alert.detail != detail:
                    Alert.objects.using(using).filter(pk=alert.pk, cleared_at__isnull=True
                                                      ).update(detail=detail)
                continue
            if (kit.kit_id, kind) in rearming:
                summary.rearming.append(name)
                continue
            try:
                with transaction.atomic(using=using):
                    Alert.objects.using(using).create(kit_id=kit.kit_id, kind=kind,
                                                      raised_at=now, detail=detail)
            except IntegrityError:  # another evaluator raised it first
                summary.raced.append(name)
                continue
            summary.raised.append(name)
            log.info("alert raised: kit %s, %s %s", kit.kit_id, kind, detail)
        for kind, alert in mine.items():
            if kind not in holding and Alert.objects.using(using).filter(
                    pk=alert.pk, cleared_at__isnull=True).update(cleared_at=now):
                summary.cleared.append(f"{kit.kit_id}:{kind}")
                log.info("alert cleared: kit %s, %s", kit.kit_id, kind)
    summary.open = Alert.objects.using(using).filter(cleared_at__isnull=True).count()
    return summary


class AlertWatch:
    """:func:`evaluate` every ``every_s`` until stopped: a thread of ``office serve``.
    An evaluation that fails (the database away for a moment) is logged and the next one
    tried on time; the watch itself never stops the ingest."""

    def __init__(self, using: str = "default", clock: Callable[[], float] = time.time) -> None:
        self.using = using
        self.clock = clock
        self.last: Summary | None = None
        self.failures = 0

    def run(self, stop: threading.Event, every_s: float = EVERY_S) -> None:
        log.info("alert watch started: every %.0f s", every_s)
        try:
            while not stop.is_set():
                try:
                    self.last = evaluate(self.clock(), using=self.using)
                except Exception:
                    self.failures += 1
                    log.exception("alert evaluation failed; trying again in %.0f s", every_s)
                    connections[self.using].close()  # a broken connection is not reused
                stop.wait(every_s)
        finally:
            connections[self.using].close()
            log.info("alert watch stopped")
