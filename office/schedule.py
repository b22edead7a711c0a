"""Planning rules for visits (SOP step 3): how long a visit takes, who goes, when, with
which kit, and what clashes with what.

The SOP ("SOP SI JARAN IJO", step 3) asks Bidang Dafduk to assign officers by *medan
lokasi* (terrain), *jumlah sasaran* (number of targets) and *kondisi sasaran* (lansia,
disabilitas, ODGJ), and to record "1 minggu sekali / ditentukan lain" (once a week unless
decided otherwise). Step 10 gives 30 minutes for one recording of a cooperative target
with a good connection, and says a less cooperative one may take longer. The figures
below turn that into an estimate staff can read and override; they are the office's
working assumptions, not the SOP's, and are said in the estimate's explanation:

- **Recording, per resident** (:data:`RECORDING_MINUTES`): lansia 30 and lainnya 30 (the
  SOP's figure), disabilitas 40 and sakit 40 (positioning, fingers that do not extend,
  rests), ODGJ 45 (calming, a family member, often a second try).
- **Coordination** with the village staff before starting (SOP step 8): 30 minutes.
- **Between houses**, house to house only (:data:`HOUSE_MINUTES`): per house, flat 10,
  hilly 20, remote 35 minutes. At a hospital, care home or the village office the
  residents are in one place: no travel between them.
- **The trip out** from the office to the recording point (:data:`TRIP_MINUTES`): flat 45,
  hilly 75, remote 120 minutes, once per visit day. The way back ends the day and is not
  counted in it.
- **Team size**: 2 officers by default; 3 when a target is ODGJ (one stays with the
  resident and family), the terrain is remote (equipment and officer safety, SOP step
  10), or more than 8 residents are to be recorded.
- **A visit day** holds at most 6 hours (:data:`DAY_MINUTES`) of work, the trip out
  included: an estimate beyond that says how many days it needs.

:func:`estimate`, :func:`next_visit_day` and :func:`recording_point_for` are pure;
:func:`suggest_date`, :func:`available_kits` and :func:`conflicts` read the office's
database (visits, kits, revocations, checkouts, self-tests) through the models.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from office import deadline as clock

if TYPE_CHECKING:
    from office import models

RECORDING_MINUTES: dict[str, int] = {
    "lansia": 30, "lainnya": 30, "disabilitas": 40, "sakit": 40, "odgj": 45}
"""Minutes to record one resident, by :class:`sync.domain.Category` value."""
DEFAULT_RECORDING_MINUTES = 30  # the SOP's figure, for a category not listed
COORDINATION_MINUTES = 30  # SOP step 8: coordinating with the village staff
HOUSE_MINUTES: dict[str, int] = {"flat": 10, "hilly": 20, "remote": 35}
"""Minutes of travel per house, house to house, by :attr:`Village.terrain`."""
TRIP_MINUTES: dict[str, int] = {"flat": 45, "hilly": 75, "remote": 120}
"""Minutes from the office to the recording point, by terrain, once per visit day."""
DAY_MINUTES = 6 * 60  # the most work one visit day holds, the trip out included
TEAM_DEFAULT, TEAM_LARGE = 2, 3
LARGE_VISIT = 8  # more residents than this: a third officer
CADENCE_DAYS = 7  # the SOP's "1 minggu sekali"
POINTS = ("village_office", "house_to_house", "hospital", "care_home")
TERRAINS = ("flat", "hilly", "remote")

def terrain_label(terrain: str) -> str:
    return {"flat": _("datar"), "hilly": _("berbukit"), "remote": _("terpencil")}.get(
        terrain, terrain)


def category_word(category: str) -> str:
    """A category as the estimate's sentence names it (short, lower case but ODGJ)."""
    return {"lansia": _("lansia"), "disabilitas": _("disabilitas"), "odgj": "ODGJ",
            "sakit": _("sakit"), "lainnya": _("lainnya")}.get(category, category)


def point_label(point: str) -> str:
    return {"village_office": _("kantor desa"), "house_to_house": _("rumah ke rumah"),
            "hospital": _("rumah sakit"), "care_home": _("panti")}.get(point, point)


@dataclass(frozen=True)
class Estimate:
    """How long a visit takes and how many officers it needs, with the reckoning."""

    residents: int
    places: int  # houses visited (house to house only)
    team_size: int
    recording_minutes: int
    coordination_minutes: int
    between_minutes: int  # house to house
    trip_minutes: int  # the trip out, all days together
    days: int
    team_reasons: tuple[str, ...] = ()
    by_category: tuple[tuple[str, int, int], ...] = ()  # (category, count, minutes each)
    terrain: str = "flat"
    recording_point: str = "house_to_house"

    @property
    def travel_minutes(self) -> int:
        return self.between_minutes + self.trip_minutes

    @property
    def total_minutes(self) -> int:
        return self.recording_minutes + self.coordination_minutes + self.travel_minutes

    @property
    def total_text(self) -> str:
        return hours_text(self.total_minutes)

    @property
    def explanation(self) -> str:
        """A few Indonesian sentences: the figures used and how they add up."""
        parts = [", ".join(_("%(n)d %(cat)s × %(m)d menit") % {"n": n, "cat": category_word(cat),
                                                               "m": m}
                           for cat, n, m in self.by_category) or _("tanpa sasaran")]
        text = _("Perekaman: %(parts)s = %(rec)d menit (SOP: 30 menit per sasaran "
                 "kooperatif; lebih lama untuk ODGJ, sakit dan disabilitas).") % {
            "parts": parts[0], "rec": self.recording_minutes}
        text += " " + _("Koordinasi dengan aparat desa: %(m)d menit.") % {
            "m": self.coordination_minutes}
        if self.recording_point == "house_to_house":
            text += " " + _("Rumah ke rumah, medan %(t)s: %(n)d rumah × %(m)d menit = "
                            "%(b)d menit.") % {
                "t": terrain_label(self.terrain), "n": self.places,
                "m": HOUSE_MINUTES.get(self.terrain, HOUSE_MINUTES["flat"]),
                "b": self.between_minutes}
        text += " " + _("Perjalanan dari kantor (medan %(t)s): %(m)d menit per hari.") % {
            "t": terrain_label(self.terrain),
            "m": TRIP_MINUTES.get(self.terrain, TRIP_MINUTES["flat"])}
        text += " " + _("Jumlah %(total)s.") % {"total": self.total_text}
        if self.days > 1:
            text += " " + _("Lebih dari 6 jam kerja sehari: perlu %(d)d hari kunjungan "
                            "(atau bagi menjadi beberapa kunjungan).") % {"d": self.days}
        team = _("Tim %(n)d petugas") % {"n": self.team_size}
        if self.team_reasons:
            team += " (" + "; ".join(self.team_reasons) + ")"
        else:
            team += " " + _("(bawaan)")
        return text + " " + team + "."


def hours_text(minutes: int) -> str:
    h, m = divmod(max(0, int(minutes)), 60)
    if h and m:
        return _("%(h)d jam %(m)d menit") % {"h": h, "m": m}
    if h:
        return _("%(h)d jam") % {"h": h}
    return _("%(m)d menit") % {"m": m}


def estimate(categories: Mapping[str, int], places: int, terrain: str,
             recording_point: str) -> Estimate:
    """The estimate for recording ``categories`` (counts per ``Target.category``) at
    ``recording_point``, ``places`` houses when house to house, on ``terrain``.

    An unknown terrain counts as flat, an unknown category as the SOP's 30 minutes."""
    terrain = terrain if terrain in TERRAINS else "flat"
    counts = {c: int(n) for c, n in categories.items() if int(n) > 0}
    residents = sum(counts.values())
    by_category = tuple(sorted(
        ((c, n, RECORDING_MINUTES.get(c, DEFAULT_RECORDING_MINUTES)) for c, n in counts.items()),
        key=lambda item: (-item[2], item[0])))
    recording = sum(n * m for _c, n, m in by_category)
    coordination = COORDINATION_MINUTES if residents else 0
    between = HOUSE_MINUTES[terrain] * max(0, int(places)) \
        if recording_point == "house_to_house" else 0
    trip_once = TRIP_MINUTES[terrain]
    work = recording + coordination + between
    days = max(1, math.ceil(work / (DAY_MINUTES - trip_once))) if work else 1
    reasons: list[str] = []
    if counts.get("odgj"):
        reasons.append(_("ada sasaran ODGJ"))
    if terrain == "remote":
        reasons.append(_("medan terpencil"))
    if residents > LARGE_VISIT:
        reasons.append(_("lebih dari %(n)d sasaran") % {"n": LARGE_VISIT})
    return Estimate(residents=residents,
                    places=max(0, int(places)) if recording_point == "house_to_house" else 0,
                    team_size=TEAM_LARGE if reasons else TEAM_DEFAULT,
                    recording_minutes=recording, coordination_minutes=coordination,
                    between_minutes=between, trip_minutes=trip_once * days, days=days,
                    team_reasons=tuple(reasons), by_category=by_category, terrain=terrain,
                    recording_point=recording_point)


def recording_point_for(places: Iterable[str]) -> str:
    """Where to record, from the targets' places (``Target.place``): a hospital or care
    home when most are there, else house to house. The village office is the staff's
    choice after coordinating with the village (SOP step 8), never a guess."""
    counts: dict[str, int] = {}
    for place in places:
        counts[place] = counts.get(place, 0) + 1
    if not counts:
        return "house_to_house"
    top = max(sorted(counts), key=lambda p: counts[p])
    return {"hospital": "hospital", "care_home": "care_home"}.get(top, "house_to_house")


def next_working_day(day: dt.date, calendar: clock.WorkingCalendar) -> dt.date:
    """``day`` if the office works then, else the first working day after it."""
    if clock.is_working_day(day, calendar):
        return day
    return clock.add_working_days(day, 1, calendar)


def next_visit_day(last: dt.date | None, today: dt.date,
                   calendar: clock.WorkingCalendar) -> dt.date:
    """The weekly cadence: the first working day at least :data:`CADENCE_DAYS` after
    ``last`` (the village's last visit), and never before tomorrow (the reply letter must
    reach the village first); with no earlier visit, the next working day after today."""
    earliest = today + dt.timedelta(days=1)
    if last is not None:
        earliest = max(earliest, last + dt.timedelta(days=CADENCE_DAYS))
    return next_working_day(earliest, calendar)


def same_place_visits(request: models.VisitRequest) -> Any:
    """The non-cancelled visits of every request from the same village (or agency)."""
    from office.models import Visit

    visits = Visit.objects.exclude(state="cancelled")
    if request.village:
        return visits.filter(request__village__iexact=request.village,
                             request__kecamatan__iexact=request.kecamatan)
    return visits.filter(request__agency__iexact=request.agency)


def suggest_date(request: models.VisitRequest, today: dt.date,
                 calendar: clock.WorkingCalendar) -> dt.date:
    """A date for the next visit of ``request``'s village: :func:`next_visit_day` after
    its last non-cancelled visit (of any request from that village)."""
    last = same_place_visits(request).order_by("-visit_date").values_list(
        "visit_date", flat=True).first()
    return next_visit_day(last, today, calendar)


# -- kits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KitChoice:
    """A kit for the visit's form: usable that day, or why not."""

    kit_id: str
    available: bool
    reason: str = ""
    selftest_at: float | None = None


@dataclass(frozen=True)
class LastSelfTest:
    ok: bool
    at: float
    faults: dict[str, Any] = field(default_factory=dict)


def last_selftests(kit_ids: Sequence[str]) -> dict[str, LastSelfTest]:
    """Each kit's newest self-test: an answered ``selftest`` command (judged as the alert
    ``failed_selftest`` judges it, :meth:`office.alerts.SelfTest.faults`) or the self-test
    of a checkout or a return at the storekeeper's desk, whichever is newer."""
    from office.alerts import SelfTest
    from office.models import Command, KitCheckout

    out: dict[str, LastSelfTest] = {}

    def keep(kit_id: str, test: LastSelfTest) -> None:
        if kit_id not in out or test.at > out[kit_id].at:
            out[kit_id] = test

    for c in Command.objects.filter(name="selftest", kit_id__in=list(kit_ids),
                                    result_at__isnull=False).defer("payload"):
        st = SelfTest.of(c)
        faults = st.faults()
        keep(c.kit_id, LastSelfTest(not faults, float(c.result_at or 0), faults))
    for co in KitCheckout.objects.filter(kit_id__in=list(kit_ids)).only(
            "kit_id", "out_at", "out_selftest_ok", "returned_at", "return_selftest_ok"):
        if co.out_selftest_ok is not None:
            keep(co.kit_id, LastSelfTest(bool(co.out_selftest_ok), co.out_at,
                                         {} if co.out_selftest_ok else {"checkout": "failed"}))
        if co.return_selftest_ok is not None and co.returned_at is not None:
            keep(co.kit_id, LastSelfTest(bool(co.return_selftest_ok), co.returned_at,
                                         {} if co.return_selftest_ok else {"return": "failed"}))
    return out


def available_kits(day: dt.date, exclude_visit: models.Visit | int | None = None
                   ) -> list[KitChoice]:
    """Every kit the office knows, each usable on ``day`` or with the reason it is not:
    revoked (reported lost), checked out for another visit, booked that day by another
    non-cancelled visit, no self-test yet, or its last self-test failed. Usable ones
    first, then by kit id."""
    from office.models import Kit, KitCheckout, Revocation, Visit

    exclude_id = getattr(exclude_visit, "pk", exclude_visit)
    kit_ids = sorted(Kit.objects.values_list("kit_id", flat=True))
    revoked = set(Revocation.objects.filter(kit_id__in=kit_ids).values_list("kit_id", flat=True))
    out_for: dict[str, int | None] = {}
    for co in KitCheckout.objects.filter(returned_at__isnull=True, kit_id__in=kit_ids).only(
            "kit_id", "visit_id"):
        if exclude_id is None or co.visit_id != exclude_id:
            out_for[co.kit_id] = co.visit_id
    booked: dict[str, models.Visit] = {}
    others = Visit.objects.filter(visit_date=day).exclude(state="cancelled").select_related(
        "request")
    if exclude_id is not None:
        others = others.exclude(pk=exclude_id)
    for v in others:
        booked.setdefault(v.kit_id, v)
    tests = last_selftests(kit_ids)
    choices: list[KitChoice] = []
    for kit_id in kit_ids:
        test = tests.get(kit_id)
        at = test.at if test else None
        if kit_id in revoked:
            reason = _("dicabut (dilaporkan hilang)")
        elif kit_id in out_for:
            reason = _("sedang dibawa untuk kunjungan lain") if out_for[kit_id] else \
                _("sedang dibawa (belum dikembalikan)")
        elif kit_id in booked:
            other = booked[kit_id]
            reason = _("sudah dipakai kunjungan %(place)s hari itu") % {
                "place": other.request.village or other.request.agency}
        elif test is None:
            reason = _("belum pernah uji mandiri")
        elif not test.ok:
            reason = _("uji mandiri terakhir gagal")
        else:
            reason = ""
        choices.append(KitChoice(kit_id, not reason, reason, at))
    return sorted(choices, key=lambda c: (not c.available, c.kit_id))


# -- clashes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """Another visit the same day sharing the kit or officers: a warning, not a refusal
    (two short visits in one day with one team happen)."""

    visit: models.Visit
    same_kit: bool
    officers: tuple[str, ...]


def officer_ids(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [o.strip() for o in items if o and o.strip()]


def conflicts(visit_date: dt.date, officers: Iterable[str], kit_id: str,
              exclude_visit: models.Visit | int | None = None) -> list[Conflict]:
    """The other non-cancelled visits on ``visit_date`` with ``kit_id`` or any of
    ``officers``."""
    from office.models import Visit

    exclude_id = getattr(exclude_visit, "pk", exclude_visit)
    wanted = set(officer_ids(officers))
    rows = Visit.objects.filter(visit_date=visit_date).exclude(state="cancelled") \
        .select_related("request").order_by("start_time", "pk")
    if exclude_id is not None:
        rows = rows.exclude(pk=exclude_id)
    found: list[Conflict] = []
    for v in rows:
        shared = tuple(o for o in officer_ids(v.officers) if o in wanted)
        same_kit = bool(kit_id) and v.kit_id == kit_id
        if shared or same_kit:
            found.append(Conflict(v, same_kit, shared))
    return found
