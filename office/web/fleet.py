"""The fleet monitor (the home page) and each kit's page: presence, place and health, live.

``/`` (``fleet``) shows every kit in a table and on a Leaflet map; ``/fleet/events`` streams
Server-Sent Events (an async view) that swap changed rows (htmx out-of-band swaps by id)
and move the markers (``fleet.js``); ``/kits/<kit_id>/`` shows one kit's day: its track
(offline stretches included), its latest health and an event log.

What is live and what is stale is decided in one place, :func:`office.presence.staleness`, from the
reporting periods of ``sync/PROTOCOL.md`` (Telemetry; Sessions and presence). A value
older than its period is never shown as live: it is greyed, with its age ("3 mnt lalu").
The pages need ``office.view_fleet`` and show no personal data (the officers' names and
the residents travel only inside assignments sealed to the kit).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import URLPattern, path
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from office.models import (
    Assignment,
    Command,
    HealthSample,
    Kit,
    Position,
    Record,
    Refusal,
    Revocation,
)
from office.presence import (
    INTERVAL_IDLE_S,
    STALE_FACTOR,
    STALE_MARGIN_S,
    KitData,
    day_start,
    staleness,
)
from office.web.commands import commands_context, result_text
from office.web.roles import require

log = logging.getLogger("office.web.fleet")

# -- the live stream -------------------------------------------------------------------------
POLL_S = 0.5  # one cheap query for kits changed since the last poll
TICK_S = 5.0  # every kit re-judged: ages move on and silent kits turn grey
KEEPALIVE_COMMENT_S = 15.0
STREAM_MAX_S = 3600.0  # then the browser reconnects (and the login is checked again)
CHANGE_OVERLAP_S = 2.0  # a write committed just after a poll read the clock is not missed


def age_text(seconds: float | None) -> str:
    """An age as staff read it: "baru saja", "40 dtk lalu", "3 mnt lalu", "2 jam lalu"."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 10:
        return _("baru saja")
    if s < 60:
        return _("%(n)d dtk lalu") % {"n": s // 10 * 10}
    if s < 3600:
        return _("%(n)d mnt lalu") % {"n": s // 60}
    if s < 86400:
        return _("%(n)d jam lalu") % {"n": s // 3600}
    return _("%(n)d hari lalu") % {"n": s // 86400}


def duration_text(seconds: float | None) -> str:
    """A duration (not an age): "45 dtk", "12 mnt", "3 jam", "2 hari"."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 60:  # in tens: a row's text changes every 10 s, not every second (row cache)
        return _("%(n)d dtk") % {"n": s // 10 * 10}
    if s < 3600:
        return _("%(n)d mnt") % {"n": s // 60}
    if s < 86400:
        return _("%(n)d jam") % {"n": s // 3600}
    return _("%(n)d hari") % {"n": s // 86400}


def signal_bars(rsrp: int | None, rssi: int | None) -> int | None:
    """0-4 bars: from LTE RSRP (≥ -85, -95, -105, -115 dBm), else from RSSI."""
    if rsrp is not None:
        return sum(rsrp >= t for t in (-115, -105, -95, -85))
    if rssi is not None:
        return sum(rssi >= t for t in (-105, -95, -85, -75))
    return None


@dataclass(frozen=True)
class AssignmentView:
    assignment_id: str
    state: str  # delivered, sent, queued, error
    label: str


@dataclass(frozen=True)
class KitView:
    """What one row shows; equal views render the same row (the stream sends only changes)."""

    kit_id: str
    tid: str
    presence: str
    presence_label: str
    reason: str
    seen_age: str
    software: str
    no_tpm: bool
    lat: float | None
    lon: float | None
    acc: float | None
    location_age: str
    location_stale: bool
    battery: int | None
    charging: str
    minutes_left: int | None
    battery_age: str
    battery_stale: bool
    bars: int | None
    rsrp: int | None
    sinr: float | None
    tech: str
    operator: str
    registered: bool | None
    health_age: str
    health_stale: bool
    fix_age: str
    outbox: int | None
    outbox_oldest: str
    assignments: tuple[AssignmentView, ...]

    def marker(self) -> dict[str, Any]:
        """What ``fleet.js`` needs to place and colour the kit's marker."""
        return {"id": self.kit_id, "tid": self.tid, "lat": self.lat, "lon": self.lon,
                "presence": self.presence, "stale": self.location_stale,
                "label": f"{self.kit_id} · {self.presence_label} · {self.location_age}"}


PRESENCE_LABELS = {"online": "daring", "offline": "luring", "silent": "diam",
                   "unknown": "belum pernah"}
CHARGING = {0: "", 1: "baterai", 2: "mengisi", 3: "penuh"}


def kit_view(kit: KitData, now: float, assignments: Iterable[Assignment] = ()) -> KitView:
    """Everything a row shows of ``kit`` at ``now``."""
    st = staleness(kit, now)
    h, loc, status = kit.health, kit.location, kit.status
    percent, state, battery_at = kit.battery
    health_age = None if kit.health_at is None else now - kit.health_at
    fix = h.get("fix_age_s")
    oldest = h.get("outbox_oldest_s")
    battery_stale = st.presence != "online" or battery_at is None or (
        now - battery_at > st.health_period_s * STALE_FACTOR + STALE_MARGIN_S)
    reason = {"lost": _("hilang kontak"), "shutdown": _("dimatikan"),
              "revoked": _("dicabut")}.get(
        status.get("reason", ""), "") if st.presence == "offline" else ""
    lat, lon = loc.get("lat"), loc.get("lon")
    return KitView(
        kit_id=kit.kit_id, tid=str(loc.get("tid") or kit.kit_id[-2:].upper()),
        presence=st.presence, presence_label=_(PRESENCE_LABELS[st.presence]), reason=reason,
        seen_age=age_text(None if kit.last_seen is None else now - kit.last_seen),
        software=str(status.get("software") or h.get("software") or ""),
        no_tpm=status.get("security") == "software",
        lat=None if lat is None else float(lat), lon=None if lon is None else float(lon),
        acc=loc.get("acc"),
        location_age=age_text(None if kit.location_at is None else now - kit.location_at),
        location_stale=st.location_stale,
        battery=percent, charging=_(CHARGING.get(state, "")) if CHARGING.get(state) else "",
        minutes_left=h.get("minutes_left") if not battery_stale else None,
        battery_age=age_text(None if battery_at is None else now - battery_at),
        battery_stale=battery_stale,
        bars=signal_bars(h.get("rsrp_dbm"), h.get("rssi_dbm")), rsrp=h.get("rsrp_dbm"),
        sinr=h.get("sinr_db"), tech=str(h.get("access_tech") or ""),
        operator=str(h.get("operator") or ""), registered=h.get("registered"),
        health_age=age_text(health_age), health_stale=st.health_stale,
        # Ages at reading time, grown by how old the reading is.
        fix_age=duration_text(None if fix is None or health_age is None else fix + health_age),
        outbox=h.get("outbox_count"),
        outbox_oldest=duration_text(None if oldest is None or health_age is None
                                    else oldest + health_age)
        if h.get("outbox_count") else "",
        assignments=tuple(_assignment_view(a) for a in assignments),
    )


def _assignment_view(a: Assignment) -> AssignmentView:
    if a.delivered_at is not None:
        return AssignmentView(a.assignment_id, "delivered", _("diterima kit"))
    if a.error:
        return AssignmentView(a.assignment_id, "error", _("ditolak kit"))
    if a.sent_at is not None:
        return AssignmentView(a.assignment_id, "sent", _("terkirim"))
    return AssignmentView(a.assignment_id, "queued", _("menunggu kit"))


# -- reading the database --------------------------------------------------------------------
def _assignments_today(now: float, kit_ids: Iterable[str] | None = None
                       ) -> dict[str, list[Assignment]]:
    """Each kit's assignments queued today, and older ones it has not confirmed yet."""
    rows = Assignment.objects.filter(Q(queued_at__gte=day_start(now)) |
                                     Q(delivered_at__isnull=True)).defer("envelope")
    if kit_ids is not None:
        rows = rows.filter(kit_id__in=list(kit_ids))
    out: dict[str, list[Assignment]] = defaultdict(list)
    for a in rows.order_by("queued_at"):
        out[a.kit_id].append(a)
    return out


def fleet_views(now: float) -> list[KitView]:
    """Every kit's row, by kit id: two queries."""
    assignments = _assignments_today(now)
    return [kit_view(KitData.of(k), now, assignments.get(k.kit_id, ()))
            for k in Kit.objects.order_by("kit_id")]


# -- pages -----------------------------------------------------------------------------------
@require("office.view_fleet")
def fleet(request: HttpRequest) -> HttpResponse:
    now = time.time()
    views = fleet_views(now)
    lang = translation.get_language() or settings.LANGUAGE_CODE
    return render(request, "fleet/index.html", {
        "kits": views, "markers": [v.marker() for v in views], "now": now,
        "rows": mark_safe("".join(row_html(v, lang, oob=False) for v in views)),
        "tiles": settings.MAP_TILE_URL, "counts": _counts(views),
    })


def _counts(views: list[KitView]) -> dict[str, int]:
    counts = {"online": 0, "offline": 0, "silent": 0, "unknown": 0, "no_tpm": 0}
    for v in views:
        counts[v.presence] += 1
        counts["no_tpm"] += v.no_tpm
    return counts


@require("office.view_fleet")
def kit_page(request: HttpRequest, kit_id: str) -> HttpResponse:
    kit = Kit.objects.filter(kit_id=kit_id).first()
    if kit is None:
        raise Http404(_("Kit tidak dikenal"))
    now = time.time()
    start = day_start(now)
    data = KitData.of(kit)
    view = kit_view(data, now, _assignments_today(now, [kit_id]).get(kit_id, ()))
    track = [[p.lat, p.lon, p.source, p.tst] for p in
             Position.objects.filter(kit_id=kit_id, tst__gte=int(start)).order_by("tst")]
    return render(request, "fleet/kit.html", {
        "k": view, "kit": data, "track": track, "tiles": settings.MAP_TILE_URL,
        "offline_points": sum(1 for t in track if t[2] == "track"),
        "health": _health_rows(data), "events": kit_events(kit_id, start, data),
        "chart": health_chart(kit_id, start, now),
        **commands_context(request, kit_id),
    })


CHART_W, CHART_H, CHART_PAD = 640.0, 170.0, 28.0
RSRP_RANGE = (-140.0, -44.0)  # dBm, 3GPP's reporting range


def health_chart(kit_id: str, start: float, now: float) -> dict[str, Any]:
    """The day's battery (%) and LTE RSRP as SVG polylines (drawn server-side, no script):
    x from local midnight to now, a line broken where reports stopped for longer than two
    idle periods (the kit was off or out of reach)."""
    rows = list(HealthSample.objects.filter(kit_id=kit_id, tst__gte=start, tst__lte=now)
                .order_by("tst").values_list("tst", "battery", "rsrp"))
    end = max(now, start + 3600)
    w, h, pad = CHART_W, CHART_H, CHART_PAD

    def x(t: float) -> float:
        return round(pad + (t - start) / (end - start) * (w - 2 * pad), 1)

    def y(fraction: float) -> float:
        return round(h - pad - max(0.0, min(1.0, fraction)) * (h - 2 * pad), 1)

    def lines(values: list[tuple[float, float | None]]) -> list[str]:
        out: list[list[str]] = []
        last_t: float | None = None
        for t, v in values:
            if v is None:
                last_t = None
                continue
            if last_t is None or t - last_t > 2 * INTERVAL_IDLE_S:
                out.append([])
            out[-1].append(f"{x(t)},{y(v)}")
            last_t = t
        return [" ".join(points) for points in out if points]

    lo, hi = RSRP_RANGE
    battery = lines([(t, None if b is None else b / 100) for t, b, _r in rows])
    signal = lines([(t, None if r is None else (r - lo) / (hi - lo)) for t, _b, r in rows])
    hours = []
    for hour in range(0, 25, 3):
        t = start + hour * 3600
        if t <= end:
            hours.append({"x": x(t), "label": f"{hour:02d}"})
    return {"w": int(w), "h": int(h), "pad": pad, "battery": battery, "signal": signal,
            "samples": len(rows), "hours": hours, "top": y(1), "mid": y(0.5),
            "bottom": y(0), "right": w - pad, "label_y": h - 8}


def _health_rows(kit: KitData) -> list[tuple[str, str]]:
    """The latest merged health, as label and value (no personal data in it)."""
    h = kit.health
    names = [("battery_percent", _("Baterai (%)")), ("battery_state", _("Status baterai")),
             ("voltage_mv", _("Tegangan (mV)")), ("minutes_left", _("Sisa (menit)")),
             ("registered", _("Terdaftar di jaringan")), ("access_tech", _("Teknologi")),
             ("operator", _("Operator")), ("rssi_dbm", "RSSI (dBm)"),
             ("rsrp_dbm", "RSRP (dBm)"), ("rsrq_db", "RSRQ (dB)"), ("sinr_db", "SINR (dB)"),
             ("fix_age_s", _("Umur fix GNSS (dtk)")),
             ("disk_free_mib", _("Disk kosong (MiB)")), ("uptime_s", _("Uptime (dtk)")),
             ("outbox_count", _("Rekaman menunggu")),
             ("outbox_oldest_s", _("Tertua menunggu (dtk)")), ("software", _("Perangkat lunak")),
             ("ui_state", _("Keadaan kios"))]
    def shown(key: str, value: Any) -> str:
        if key == "battery_state":
            return _(CHARGING.get(int(value), "")) or _("tidak diketahui")
        if isinstance(value, bool):
            return _("ya") if value else _("tidak")
        return str(value)

    return [(label, shown(key, h[key])) for key, label in names if h.get(key) is not None]


def kit_events(kit_id: str, since: float, kit: KitData) -> list[dict[str, Any]]:
    """The kit's day, newest first: presence, records received, assignments, commands and
    refusals (what the office keeps of each; ids and sizes only, no contents)."""
    events: list[tuple[float, str, str]] = []
    if kit.status_at is not None and kit.status_at >= since:
        events.append((kit.status_at, "status", _("Status: %(s)s") % {
            "s": _("daring") if kit.status_online else _("luring")} +
            (f" ({kit.status['reason']})" if kit.status.get("reason") else "")))
    for r in Record.objects.filter(kit_id=kit_id, received_at__gte=since).only(
            "record_id", "size", "received_at"):
        events.append((r.received_at, "record", _("Rekaman %(id)s diterima (%(kb)d kB)") % {
            "id": r.record_id, "kb": max(1, r.size // 1000)}))
    for a in Assignment.objects.filter(kit_id=kit_id).filter(
            Q(queued_at__gte=since) | Q(sent_at__gte=since) |
            Q(delivered_at__gte=since)).defer("envelope"):
        for at, text in ((a.queued_at, _("Penugasan %(id)s diantrekan")),
                         (a.sent_at, _("Penugasan %(id)s dikirim")),
                         (a.delivered_at, _("Penugasan %(id)s diterima kit"))):
            if at is not None and at >= since:
                events.append((at, "assignment", text % {"id": a.assignment_id}))
    for c in Command.objects.filter(kit_id=kit_id).filter(
            Q(queued_at__gte=since) | Q(result_at__gte=since)).defer("payload"):
        events.append((c.queued_at, "command", _("Perintah %(n)s diantrekan") % {"n": c.name}))
        if c.result_at is not None and c.result_at >= since:
            events.append((c.result_at, "command", (
                _("Perintah %(n)s berhasil: %(r)s") if c.result_ok
                else _("Perintah %(n)s %(r)s")) % {"n": c.name, "r": result_text(c)}))
    revocation = Revocation.objects.filter(kit_id=kit_id, revoked_at__gte=since).first()
    if revocation is not None:
        events.append((revocation.revoked_at, "command", _("Kit dicabut oleh %(by)s") % {
            "by": revocation.revoked_by}))
    for f in Refusal.objects.filter(kit_id=kit_id, ts__gte=since):
        events.append((f.ts, "refusal", _("Ditolak: %(leaf)s, %(why)s") % {
            "leaf": f.leaf, "why": f.reason}))
    offline = Position.objects.filter(kit_id=kit_id, source="track", tst__gte=int(since))
    if offline.exists():
        first = offline.order_by("tst").values_list("tst", flat=True).first() or since
        events.append((float(first), "track", _("%(n)d titik jejak luring hari ini") % {
            "n": offline.count()}))
    events.sort(key=lambda e: e[0], reverse=True)
    return [{"at": timezone.localtime(dt.datetime.fromtimestamp(at, tz=dt.UTC)),
             "kind": kind, "kind_label": _(EVENT_KINDS[kind]), "text": text}
            for at, kind, text in events[:200]]


EVENT_KINDS = {"status": "status", "record": "rekaman", "assignment": "penugasan",
               "command": "perintah", "refusal": "penolakan", "track": "jejak"}


# -- the live stream -------------------------------------------------------------------------
_row_cache: dict[tuple[str, KitView], str] = {}


def row_html(view: KitView, lang: str, *, oob: bool = True) -> str:
    """A row's HTML (an htmx out-of-band swap by id unless ``oob`` is false), rendered once
    per distinct view and language however many pages show it."""
    key = (lang, view)
    html = _row_cache.get(key)
    if html is None:
        if len(_row_cache) > 20_000:
            _row_cache.clear()
        with translation.override(lang):
            html = render_to_string("fleet/row.html", {"k": view, "oob": "true"})
        _row_cache[key] = html
    return html if oob else html.replace(' hx-swap-oob="true"', "", 1)


class FleetHub:
    """One per process and language: reads the database for every open stream (one cheap
    query of changed kits each :data:`POLL_S`, every kit re-judged each :data:`TICK_S`) and
    wakes the streams, which send each page only the rows that changed for it."""

    hubs: ClassVar[dict[str, FleetHub]] = {}

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.data: dict[str, tuple[KitData, tuple[Assignment, ...]]] = {}
        self.views: dict[str, KitView] = {}
        self.version = 0
        self.log: list[tuple[int, frozenset[str]]] = []  # (version, kits changed)
        self.waiters: set[asyncio.Event] = set()
        self.task: asyncio.Task[None] | None = None
        self.loaded = asyncio.Event()

    @classmethod
    def get(cls, lang: str) -> FleetHub:
        hub = cls.hubs.get(lang)
        if hub is None:
            hub = cls.hubs[lang] = cls(lang)
        return hub

    def subscribe(self, event: asyncio.Event) -> None:
        self.waiters.add(event)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def unsubscribe(self, event: asyncio.Event) -> None:
        self.waiters.discard(event)

    def _load(self, since: float | None) -> tuple[float, dict[str, KitView]]:
        now = time.time()
        query = Kit.objects.all()
        if since is not None:
            query = query.filter(Q(status_at__gt=since) | Q(health_at__gt=since) |
                                 Q(location_at__gt=since) | Q(last_seen__gt=since))
        kits = [KitData.of(k) for k in query]
        if since is not None and not kits:
            return now, {}
        assignments = _assignments_today(now, None if since is None else
                                         [k.kit_id for k in kits])
        views: dict[str, KitView] = {}
        with translation.override(self.lang):
            for k in kits:
                a = tuple(assignments.get(k.kit_id, ()))
                self.data[k.kit_id] = (k, a)
                views[k.kit_id] = kit_view(k, now, a)
        return now, views

    def _apply(self, views: dict[str, KitView]) -> None:
        changed = frozenset(i for i, v in views.items() if self.views.get(i) != v)
        if not changed:
            return
        self.views.update({i: views[i] for i in changed})
        self.version += 1
        self.log = [*self.log[-500:], (self.version, changed)]
        for event in self.waiters:
            event.set()

    async def _run(self) -> None:
        load = sync_to_async(self._load, thread_sensitive=False)
        try:
            last, views = await load(None)
            self._apply(views)
            self.loaded.set()
            next_tick = time.monotonic() + TICK_S
            while self.waiters:
                await asyncio.sleep(POLL_S)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_S
                    last, views = await load(None)
                else:
                    started, views = await load(last - CHANGE_OVERLAP_S)
                    last = started
                self._apply(views)
        except Exception:
            log.exception("fleet stream reader failed; streams will reconnect")
            for event in self.waiters:
                event.set()
            raise
        finally:
            self.task = None

    def changed_since(self, version: int) -> set[str] | None:
        """Kits changed after ``version``; None when the log no longer reaches back."""
        if self.log and self.log[0][0] > version + 1:
            return None
        out: set[str] = set()
        for v, kits in self.log:
            if v > version:
                out |= kits
        return out


class FleetStream:
    """One page's stream: what it was sent, so only changes go out."""

    def __init__(self, hub: FleetHub) -> None:
        self.hub = hub
        self.sent: dict[str, KitView] = {}
        self.version = 0

    def start(self, since: float | None) -> list[str]:
        """At connect: the rows the page (rendered at ``since``) drew that are no longer
        right now, judged now: a kit reported since, or its view at ``since`` is not its
        view now (an age moved on, a kit went grey).

        The other rows stand as drawn: the page is as current as the hub's last judgement
        of them (or more: the page may be newer than it), and the next tick re-judges them.
        Comparing with the hub's views instead would resend, just after every page load,
        each row whose age the page already shows newer (hundreds in a fleet of 1,000)."""
        hub = self.hub
        now = time.time()
        at = now if since is None else since
        with translation.override(hub.lang):
            fresh = {i: kit_view(k, now, a) for i, (k, a) in hub.data.items()}
            shown = fresh if at == now else {
                i: kit_view(k, at, a) for i, (k, a) in hub.data.items()}
        changed = {i for i, (k, _a) in hub.data.items()
                   if fresh[i] != shown[i] or max(k.status_at or 0, k.health_at or 0,
                                                  k.location_at or 0, k.last_seen or 0) > at}
        self.sent = {i: shown[i] if i in changed else hub.views.get(i, shown[i])
                     for i in shown}
        self.version = hub.version
        return self._diff(changed, fresh)

    def next(self) -> list[str]:
        ids = self.hub.changed_since(self.version)
        self.version = self.hub.version
        return self._diff(set(self.hub.views) if ids is None else ids)

    def _diff(self, ids: set[str], current: dict[str, KitView] | None = None) -> list[str]:
        now = self.hub.views if current is None else current
        views = [v for i in sorted(ids) if (v := now.get(i)) is not None
                 and self.sent.get(i) != v]
        if not views:
            return []
        lang = self.hub.lang
        rows = "".join(row_html(v, lang) for v in views if v.kit_id in self.sent)
        added = "".join(row_html(v, lang, oob=False) for v in views if v.kit_id not in self.sent)
        for v in views:
            self.sent[v.kit_id] = v
        data = json.dumps([v.marker() for v in views], separators=(",", ":"))
        events = [sse_event("rows", rows)] if rows else []
        if added:  # kits new since the page loaded: their rows go at the end of the table,
            # in a message of their own (a <tbody> after <tr>s would not parse as one)
            events.append(sse_event("rows", f'<tbody hx-swap-oob="beforeend:#fleet-rows">'
                                            f'{added}</tbody>'))
        return [*events, sse_event("kits", data)]


def sse_event(name: str, data: str, event_id: str | None = None) -> str:
    """One Server-Sent Event; each line of ``data`` its own ``data:`` field."""
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


async def _stream(since: float | None, lang: str) -> AsyncIterator[str]:
    hub = FleetHub.get(lang)
    wake = asyncio.Event()
    started = time.monotonic()
    hub.subscribe(wake)
    try:
        await hub.loaded.wait()
        stream = FleetStream(hub)
        wake.clear()
        events = await sync_to_async(stream.start, thread_sensitive=False)(since)
        yield "retry: 3000\n\n"
        while True:
            if events:
                yield f"id: {time.time():.3f}\n\n"  # where a reconnect takes up
                for event in events:
                    yield event
            if time.monotonic() - started > STREAM_MAX_S or hub.task is None:
                return
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE_COMMENT_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                events = []
                continue
            wake.clear()
            events = await sync_to_async(stream.next, thread_sensitive=False)()
    except (asyncio.CancelledError, GeneratorExit):
        log.debug("fleet stream closed by the client after %.0f s", time.monotonic() - started)
        raise
    finally:
        hub.unsubscribe(wake)


@require("office.view_fleet")
async def fleet_events(request: HttpRequest) -> StreamingHttpResponse:
    """Server-Sent Events: ``rows`` (rows to swap by id, marked as htmx out-of-band swaps)
    and ``kits`` (marker JSON). One per browser, not per tab: ``fleet.js`` has the tabs
    share the stream of one of them, which reconnects from ``?since=`` (or Last-Event-ID)."""
    since: float | None = None
    for text in (request.headers.get("Last-Event-ID"), request.GET.get("since")):
        with contextlib.suppress(TypeError, ValueError):
            since = float(text or "")
            break
    lang = translation.get_language() or settings.LANGUAGE_CODE
    response = StreamingHttpResponse(_stream(since, lang),
                                     content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


urlpatterns: list[URLPattern] = [
    path("", fleet, name="fleet"),
    path("fleet/events", fleet_events, name="fleet-events"),
    path("kits/<str:kit_id>/", kit_page, name="kit"),
]
