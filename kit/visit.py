"""The one visit controller: the kit's store, the officer session, the devices, the recording.

The kiosk's screens and the scripted visits (:mod:`kit.scripted_visit`,
``jaranijo record``, the demo) both drive :class:`VisitController`, so they
cannot drift apart. It is glue, not rules: every decision (what a step needs,
which finger is next, when a poor finger is accepted, what sealing stores) is
made by :mod:`kit.workflow` and :mod:`kit.session`.

Nothing here touches Kivy: the blocking calls (a fingerprint download, a
photo, sealing) are plain functions the app runs on a worker thread.

>>> kiosk = VisitController(config)                # doctest: +SKIP
>>> kiosk.login("P-0001", "4829135071")                # doctest: +SKIP
>>> if kiosk.must_set_pin:                             # doctest: +SKIP
...     kiosk.set_pin("250913", "250913")   # first login with an enrolment code
>>> flow = kiosk.start(kiosk.assignment.targets[0])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from nacl import pwhash
from nacl.exceptions import InvalidkeyError

from kit.config import KitConfig
from kit.provision import open_vault
from kit.records import load_assignment, target_ref, target_states
from kit.session import OfficerSession
from kit.shared_readings import shared_modem_view
from kit.store import Store, StoredRecord
from kit.workflow import (
    Check,
    DraftInfo,
    KitContext,
    RecordingFlow,
    WorkflowSettings,
    drafts,
    preflight,
    require_storable,
)
from sensors import Quality
from sensors.errors import DeviceError
from sync.domain import Assignment, FingerCapture, FingerPosition, Outcome, PhotoCapture, Target
from sync.envelope import OfficePublicKeys
from sync.errors import JaranIjoError, ValidationError

log = logging.getLogger(__name__)

# The technician menu (self-test, device identities, log lines, language; no personal data)
# opens with the PIN whose Argon2id hash provisioning wrote to [ui] technician_pin_hash.
# There is no default PIN: without a hash the menu stays shut. Wrong PINs are counted in
# the store before the check, and after TECHNICIAN_MAX_ATTEMPTS the menu stays shut too.
TECHNICIAN_MAX_ATTEMPTS = 5
TECHNICIAN_FAILURES_KEY = "technician_pin_failures"

DiskUsage = Callable[[Path], Any]


@dataclass(frozen=True)
class TargetRow:
    """One line of the home list: the target, its status, and its paused draft if any."""

    number: int
    target: Target
    status: str
    draft: DraftInfo | None


@dataclass(frozen=True)
class StatusSnapshot:
    """What the status bar shows, read off the main thread."""

    battery_percent: float | None
    charging: bool
    signal_bars: int | None
    operator: str | None
    gnss_accuracy_m: float | None
    outbox: int
    remote_lock: bool


@dataclass(frozen=True)
class FingerResult:
    kept: FingerCapture
    quality: Quality
    image_png: bytes


class VisitController:
    """The kit as the kiosk sees it. ``devices`` is a :class:`kit.devices.KitDevices`
    (opened by the app off the main thread); ``emulator_control`` tells an emulated rig who
    is at the fingerprint sensor (only with emulated devices); ``disk_usage`` is
    :func:`shutil.disk_usage` unless a test or bench gives another view of the data disk."""

    def __init__(self, config: KitConfig, *, devices: Any = None,
                 emulator_control: Callable[[str], str] | None = None,
                 settings: WorkflowSettings | None = None,
                 disk_usage: DiskUsage | None = None,
                 technician_pin_hash: bytes | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.devices = devices
        self.emulator_control = emulator_control
        self.settings = settings or WorkflowSettings()
        self.disk_usage = disk_usage or shutil.disk_usage
        self.clock = clock
        self._tech_hash = technician_pin_hash or config.ui.technician_pin_hash.encode()
        self.store = Store.open(config.store_path, create=False)
        self.session = OfficerSession(open_vault(config, self.store), self.store,
                                      idle_lock_minutes=config.security.idle_lock_minutes)
        self.assignment: Assignment | None = None
        self.flow: RecordingFlow | None = None
        self.last_sealed: StoredRecord | None = None
        self.last_outcome: Outcome | None = None
        self._status_store: Store | None = None
        self._alive_at = 0.0  # the kiosk's last heartbeat for the agent (kit.selftest)
        # Set by the kiosk's main loop each time it draws the status bar (0.0 before its
        # first frame); None where no UI drives this controller. The heartbeat and the
        # screen shown are written only while the main loop runs, so a frozen or not yet
        # drawn screen is not reported as a kiosk that shows it or will answer.
        self.ui_alive_at: float | None = None
        self._selftest_seen = ""  # the office self-test request the kiosk last took up
        self._ui_state = ""  # the screen shown, for the agent's telemetry (set_ui_state)
        self._ui_state_written = ""

    def close(self) -> None:
        if self.session.officer is not None:
            self.session.logout()
        self.store.close()
        if self._status_store is not None:
            self._status_store.close()

    # -- officers ---------------------------------------------------------------------------
    def officers(self) -> list[str]:
        return self.store.key_slot_ids()

    def login(self, officer: str, pin: str) -> None:
        """PIN login (the vault counts wrong PINs and locks out); then the day's assignment.

        An officer logging in with their one-time enrolment code gets nothing more until
        they have chosen a PIN (:attr:`must_set_pin`, :meth:`set_pin`)."""
        self.session.login(officer, pin)
        self.store.audit("kiosk_login", actor=officer)
        if self.session.must_set_pin:
            return
        self._logged_in(officer)

    @property
    def must_set_pin(self) -> bool:
        """The officer logged in with their enrolment code: the kiosk must ask for a PIN of
        their own, and everything else is refused until :meth:`set_pin` (the rule is
        :class:`kit.session.OfficerSession`'s)."""
        return self.session.must_set_pin

    def new_pin_digits(self) -> tuple[int, int]:
        """(fewest, most) digits of a new PIN on this kit (TPM or software slots)."""
        return self.session.new_pin_digits()

    def check_new_pin(self, pin: str) -> None:
        """The first entry of a new PIN, checked before it is asked again."""
        self.session.check_new_pin(pin)

    def set_pin(self, pin: str, repeat: str) -> None:
        """The officer's own PIN (typed twice) replaces the enrolment code; then the rest of
        a login: the inbox and the day's assignment."""
        self.session.set_pin(pin, repeat)
        officer = self.session.officer
        assert officer is not None
        self._logged_in(officer)

    def _logged_in(self, officer: str) -> None:
        self.open_inbox()
        if self.store.status("ui_lock", {}).get("locked"):
            self.store.set_status("ui_lock", {"locked": False, "cleared_by": officer,
                                              "at": self.clock()})
        self.load_assignment()

    def open_inbox(self) -> list[str]:
        """Open assignments the agent received sealed (only an unlocked session can)."""
        from kit.records import open_inbox
        from sync.envelope import OfficePublicKeys

        self.session.require_own_pin()
        if not self.store.inbox():
            return []
        return open_inbox(self.store, self.session.data_key, self.session.vault,
                          OfficePublicKeys.load(self.config.keys_dir))

    def can_use_fingerprint_login(self) -> bool:
        """A locked session whose key is still held, an enrolled finger, and a sensor."""
        return (self.session.officer is not None and bool(self.session.fingerprint_map())
                and self.devices is not None and self.devices.fingerprint is not None)

    def login_by_fingerprint(self, cancel: threading.Event) -> str:
        sensor = self._sensor()
        return self.session.unlock_by_fingerprint(
            lambda: sensor.identify_officer(timeout=20.0, cancel=cancel))

    def enroll_fingerprint(self, cancel: threading.Event,
                           prompt: Callable[[str], None] = lambda _step: None) -> int:
        """Enrol the logged-in officer's own finger for unlocking a locked screen.

        Two impressions of the same finger on the glass (``prompt`` hears ``"place"``,
        ``"lift"``, ``"place-again"`` as the sensor needs them); the sensor keeps the
        template, the store only which position belongs to which officer. Returns the
        template position. On an emulated rig the emulator is told that this officer's
        right index finger is on the glass, as :meth:`capture_finger` does for residents.
        """
        sensor = self._sensor()
        officer = self.session.officer
        control = self.emulator_control if officer is not None else None
        if control is not None:
            control(f"fingerprint person officer-{officer}")
            control(f"fingerprint finger {int(FingerPosition.RIGHT_INDEX)}")
        try:
            return self.session.enroll_fingerprint(
                lambda: sensor.enroll_officer(timeout=20.0, cancel=cancel, prompt=prompt))
        finally:
            if control is not None:
                control("fingerprint lift")

    def technician_pin_ok(self, pin: str) -> bool:
        """Whether ``pin`` opens the technician menu; the attempt is counted first, so a
        power cut during the check gives no free guess, and after
        ``TECHNICIAN_MAX_ATTEMPTS`` wrong ones every PIN is refused."""
        if not self._tech_hash:
            self.store.audit("technician_pin_refused", detail="no technician PIN configured")
            return False
        failures = self.technician_failures()
        if failures >= TECHNICIAN_MAX_ATTEMPTS:
            self.store.audit("technician_pin_refused", detail="locked")
            return False
        self.store.set_status(TECHNICIAN_FAILURES_KEY, failures + 1)
        try:
            ok = bool(pwhash.verify(self._tech_hash, pin.encode()))
        except (InvalidkeyError, ValueError, TypeError):
            # InvalidkeyError: a wrong PIN; ValueError/TypeError: a hash that is not Argon2.
            ok = False
        if not ok:
            self.store.audit("technician_pin_refused", detail=f"failures={failures + 1}")
            return False
        self.store.set_status(TECHNICIAN_FAILURES_KEY, 0)
        return True

    def technician_failures(self) -> int:
        value = self.store.status(TECHNICIAN_FAILURES_KEY, 0)
        return value if isinstance(value, int) else TECHNICIAN_MAX_ATTEMPTS

    # -- the day's work -----------------------------------------------------------------------
    def load_assignment(self) -> Assignment | None:
        """Today's assignment, or the next one to come, or the latest (officers check dates).

        A visit the office cancelled is never offered (the store leaves it out)."""
        self.session.require_own_pin()
        rows = self.store.assignments()
        if not rows:
            self.assignment = None
            return None
        today = date.fromtimestamp(self.clock()).isoformat()
        upcoming = [r for r in rows if r["visit_date"] >= today]
        chosen = (upcoming or rows[-1:])[0]
        self.assignment = load_assignment(self.store, self.session.data_key, chosen["id"])
        return self.assignment

    def open_assignment(self, wanted: str = "first") -> Assignment:
        """One assignment by id, or ``"first"`` the first the kit holds (a scripted visit).
        A cancelled one is refused: the office called the visit off."""
        self.session.require_own_pin()
        ids = [a["id"] for a in self.store.assignments()]
        if wanted != "first" and self.store.assignment_cancelled(wanted):
            raise ValidationError(id="Penugasan ini dibatalkan oleh kantor",
                                  en="The office cancelled this assignment",
                                  hint_id="Tanyakan penugasan yang baru ke kantor",
                                  hint_en="Ask the office for the new assignment",
                                  code="assignment_cancelled")
        if not ids:
            raise ValidationError(id="Belum ada penugasan di kit",
                                  en="There is no assignment on the kit",
                                  hint_id="Impor atau terima penugasan dulu",
                                  hint_en="Import or receive an assignment first",
                                  code="no_assignment")
        self.assignment = load_assignment(self.store, self.session.data_key,
                                          ids[0] if wanted == "first" else wanted)
        return self.assignment

    def drafts(self) -> tuple[list[DraftInfo], list[DraftInfo]]:
        return drafts(self.store, self.clock(), self.settings)

    def rows(self, query: str = "") -> list[TargetRow]:
        """The assignment's targets in office order, filtered by name, NIK, hamlet or street."""
        if self.assignment is None:
            return []
        key = self.session.data_key
        status = {tid: state[0] for tid, state in
                  target_states(self.store, key, self.assignment.id).items()}
        live, _ = self.drafts()
        by_target = {d.target_id: d for d in live}  # by the target's reference
        words = query.lower().split()
        rows = []
        for n, target in enumerate(self.assignment.targets, start=1):
            haystack = " ".join([target.name, target.nik, target.address.dusun,
                                 target.address.street, target.address.desa]).lower()
            if all(w in haystack for w in words):
                rows.append(TargetRow(n, target, status.get(target.id, "pending"),
                                      by_target.get(target_ref(key, target.id))))
        return rows

    def row(self, target_id: str) -> TargetRow:
        for row in self.rows():
            if row.target.id == target_id:
                return row
        raise ValidationError(id="Sasaran tidak ada dalam penugasan",
                              en="Target is not in the assignment", code="target_missing")

    # -- starting a recording ---------------------------------------------------------------
    def context(self) -> KitContext:
        officer = self.session.officer
        if officer is None:
            raise ValidationError(id="Masuk dulu", en="Log in first", code="locked")
        devices = self.devices
        return KitContext(
            store=self.store, data_key=self.session.data_key,
            signer=self.session.vault.signing_key(self.session.data_key),
            office=OfficePublicKeys.load(self.config.keys_dir),
            kit_id=self.config.kit.id, officers=[officer], settings=self.settings,
            gnss_fix=devices.gnss_fix if devices is not None else (lambda: None),
            devices=devices.identities if devices is not None else dict, clock=self.clock)

    def preflight(self, lang: str, *, gnss_wait_s: float | None = None) -> list[Check]:
        """The checks before a recording. With ``gnss_wait_s`` a missing fix after that wait
        is a warning too (a scripted visit that holds its own receiver); without, only a
        missing receiver is (the kiosk, whose fix comes from the agent)."""
        devices = self.devices
        missing = devices.missing(lang) if devices is not None else {}
        present = {n: missing.get(n) for n in ("camera", "fingerprint", "gnss", "battery")}
        if gnss_wait_s is not None and devices is not None and \
                devices.gnss_fix(timeout=gnss_wait_s) is None:
            present["gnss"] = "tidak ada posisi GNSS" if lang == "id" else "no GNSS fix"
        return preflight(self.config.data_dir,
                         battery_percent=devices.battery_percent() if devices else None,
                         devices=present, now=self.clock(), disk_usage=self.disk_usage)

    def start(self, target: Target, lang: str) -> tuple[RecordingFlow, list[Check]]:
        """Pre-flight (refuses only when a record could not be stored), then a new recording
        or the paused one of this target."""
        self.session.require_own_pin()
        checks = self.preflight(lang)
        require_storable(checks)
        row = self.row(target.id)
        ctx = self.context()
        if row.draft is not None:
            self.flow = RecordingFlow.resume(ctx, row.draft.recording_id)
        else:
            self.flow = RecordingFlow.start(ctx, target)  # marks the target in progress
        return self.flow, [c for c in checks if not c.ok]

    def require_flow(self) -> RecordingFlow:
        self.session.require_own_pin()  # a recording an earlier session left open
        if self.flow is None:
            raise ValidationError(id="Tidak ada rekaman yang sedang berjalan",
                                  en="No recording in progress", code="no_flow")
        return self.flow

    def pause(self) -> None:
        """Keep the recording as a draft; allowed even before the officer's own PIN is set
        (logging out keeps an earlier session's recording rather than losing it)."""
        flow = self.flow
        if flow is None:
            self.require_flow()  # refuses: nothing to pause
            return
        flow.pause()
        self.flow = None

    # -- photo ---------------------------------------------------------------------------------
    def camera(self) -> Any:
        if self.devices is None or self.devices.camera is None:
            problem = self.devices.problems.get("camera") if self.devices else None
            raise problem or DeviceError("camera", "open", id="Kamera tidak tersedia",
                                         en="The camera is not available",
                                         hint_id="Periksa kabel kamera",
                                         hint_en="Check the camera cable")
        return self.devices.camera

    def take_photo(self) -> tuple[PhotoCapture, Any]:
        """A still, judged; the workflow keeps the best so far. Returns (kept, assessment)."""
        from sensors.photo_quality import assess_photo

        flow = self.require_flow()
        still = self.camera().capture()
        assessment = assess_photo(still.rgb)
        h, w = still.rgb.shape[:2]
        kept = flow.add_photo(PhotoCapture(
            jpeg=still.jpeg, width=w, height=h, quality_score=assessment.quality.score,
            quality_threshold=assessment.quality.threshold, below_threshold_reason=None,
            captured_at=datetime.now(UTC)))
        return kept, assessment

    # -- fingerprints --------------------------------------------------------------------------
    def _sensor(self) -> Any:
        if self.devices is None or self.devices.fingerprint is None:
            problem = self.devices.problems.get("fingerprint") if self.devices else None
            raise problem or DeviceError("fingerprint", "open",
                                         id="Sensor sidik jari tidak tersedia",
                                         en="The fingerprint sensor is not available",
                                         hint_id="Periksa kabel USB sensor",
                                         hint_en="Check the sensor's USB cable")
        return self.devices.fingerprint

    def capture_finger(self, position: FingerPosition, cancel: threading.Event,
                       progress: Callable[[int, int], None],
                       waiting: Callable[[], None] = lambda: None) -> FingerResult | None:
        """One attempt at ``position``: wait for the finger, download, judge, keep the best.
        None when ``cancel`` was set while waiting."""
        flow = self.require_flow()
        sensor = self._sensor()
        if self.emulator_control is not None:
            self.emulator_control(f"fingerprint person {flow.recording.target.id}")
            self.emulator_control(f"fingerprint finger {int(position)}")
        waiting()
        try:
            if not sensor.wait_for_finger(cancel=cancel):
                return None
            image = sensor.capture(progress)
        finally:
            if self.emulator_control is not None:
                self.emulator_control("fingerprint lift")
        quality = sensor.quality(image)
        kept = flow.add_finger(position, image.png, quality.score)
        return FingerResult(kept, quality, image.png)

    # -- signature, sealing ------------------------------------------------------------------
    def sign(self, strokes: list[list[tuple[float, float, float]]]) -> None:
        self.require_flow().sign(strokes, render_strokes(strokes))

    def seal(self) -> StoredRecord:
        flow = self.require_flow()
        stored = flow.seal()
        self.last_sealed, self.last_outcome = stored, flow.recording.outcome
        return stored

    def not_recorded(self, target_id: str, outcome: Any, note: str, lang: str) -> StoredRecord:
        """Close a target without biometrics (its paused draft, if any, goes into it)."""
        flow, _warnings = self.start(self.row(target_id).target, lang)
        stored = flow.not_recorded(outcome, note)
        self.flow = None
        self.last_sealed, self.last_outcome = stored, flow.recording.outcome
        return stored

    # -- status bar and technician -------------------------------------------------------------
    def status(self) -> StatusSnapshot:
        """Battery, signal, GNSS, outbox, remote lock: cheap reads for the status bar.

        Runs on the status thread with its own database connection, so it never waits on a
        write the main thread has open."""
        if self._status_store is None:
            self._status_store = Store.open(self.config.store_path, create=False, check=False)
        store = self._status_store
        devices = self.devices
        percent, charging = None, False
        if devices is not None and devices.battery is not None:
            try:
                reading = devices.battery.read()
                percent, charging = reading.percent, bool(reading.charging)
            except DeviceError:
                pass
        accuracy = None
        if devices is not None:
            # The agent's fix, shared through the store (or the kiosk's own receiver
            # when a test or a bench gives it one).
            fix = devices.gnss_fix(timeout=0.0)
            accuracy = None if fix is None else fix.accuracy_m
        modem = shared_modem_view(store)  # the agent's, which alone opens the modem port
        bars = operator = None
        if modem is not None:
            operator = modem.operator
            bars = _bars(modem.rssi_dbm)
        lock = store.status("ui_lock", {})
        return StatusSnapshot(percent, charging, bars, operator, accuracy, len(store.outbox()),
                              isinstance(lock, dict) and bool(lock.get("locked")))

    def tick(self) -> None:
        """The status thread's beat, after :meth:`status`: a heartbeat for the agent (once
        a minute, so it knows a kiosk will answer) and the kiosk's part of an office
        self-test (:func:`kit.selftest.kiosk_checks`) when the agent asks for it.

        The checks run on a thread of their own: a sensor busy with a finger (its driver
        holds it for the whole wait) delays the answer, never the status bar or a remote
        lock."""
        from kit.selftest import ANSWER_KEY, KIOSK_ALIVE_KEY, KIOSK_ALIVE_S, REQUEST_KEY

        if self._status_store is None:
            self._status_store = Store.open(self.config.store_path, create=False, check=False)
        store = self._status_store
        now = self.clock()
        drawing = self.ui_alive_at is None or abs(now - self.ui_alive_at) < 30.0
        state = self._ui_state
        if drawing and state and state != self._ui_state_written:  # shown: drawn, not built
            store.set_status("ui_state", state)
            self._ui_state_written = state
        if drawing and abs(now - self._alive_at) >= 60.0:
            store.set_status(KIOSK_ALIVE_KEY, {"at": now})
            self._alive_at = now
        request = store.status(REQUEST_KEY, {})
        if not isinstance(request, dict):
            return
        rid, at = request.get("id"), request.get("at")
        if not isinstance(rid, str) or not rid or rid == self._selftest_seen:
            return
        self._selftest_seen = rid
        answered = store.status(ANSWER_KEY, {})
        if (isinstance(answered, dict) and answered.get("id") == rid) or \
                not isinstance(at, int | float) or abs(now - at) > KIOSK_ALIVE_S:
            return  # answered before a restart, or too old for the agent to be waiting
        threading.Thread(target=self._answer_selftest, args=(rid,), name="kiosk-selftest",
                         daemon=True).start()

    def _answer_selftest(self, request_id: str) -> None:
        from kit.selftest import ANSWER_KEY, REQUEST_KEY, Devices, checks_to_json, kiosk_checks

        try:
            devices = Devices.of(self.devices) if self.devices is not None else Devices()
            checks = kiosk_checks(devices)
            with Store.open(self.config.store_path, create=False, check=False) as store, \
                    store.transaction():
                request = store.status(REQUEST_KEY, {})
                if not isinstance(request, dict) or request.get("id") != request_id:
                    # answered without us meanwhile, or a newer request: ours would overwrite
                    log.info("office self-test %s: no longer asked", request_id)
                    return
                store.set_status(ANSWER_KEY, {"id": request_id, "at": self.clock(),
                                              "checks": checks_to_json(checks)})
            log.info("office self-test %s: the kiosk's devices tested", request_id)
        except Exception:  # the kiosk keeps running; the agent answers without our part
            log.exception("office self-test %s: the kiosk's part failed", request_id)

    def set_ui_state(self, state: str) -> None:
        """Tell the agent which screen is up (it reports it in telemetry; no personal data).

        Kept here and written by :meth:`tick` on the status thread's own connection: the
        screen's thread never waits on the database, and a screen shown before the status
        thread opened its connection (the first one) is not lost."""
        self._ui_state = state[:32]

    def self_test(self, lang: str) -> list[tuple[bool, str]]:
        """Pre-flight checks plus the store's integrity, as (ok, message) lines."""
        lines = [(c.ok, c.message(lang)) for c in self.preflight(lang)]
        integrity = self.store.integrity_check()
        lines.append((integrity == "ok", f"kit.db: {integrity}"))
        from kit import keyring

        try:
            ok, text = keyring.security_line(self.config, lang)
        except JaranIjoError as exc:
            ok, text = False, exc.text(lang)
        lines.append((ok, ("Keys: " if lang == "en" else "Kunci: ") + text))
        return lines

    def device_info(self) -> list[str]:
        devices = self.devices
        if devices is None:
            return []
        out = [f"{k}: {v}" for k, v in devices.identities().items()]
        out += [f"{k}: {v}" for k, v in devices.missing("en").items()]
        return out


def _bars(rssi_dbm: float | None) -> int | None:
    """0-4 bars from RSSI (3GPP TS 27.007 range -113...-51 dBm)."""
    if rssi_dbm is None:
        return None
    return int(np.clip((rssi_dbm + 113) / 62 * 4 + 0.5, 0, 4))


def render_strokes(strokes: list[list[tuple[float, float, float]]], width: int = 600,
                   height: int = 200) -> bytes:
    """Draw strokes in black on white and return PNG bytes (what the office prints)."""
    import cv2  # here, not at the top: the kiosk's screens import this module early

    canvas = np.full((height, width), 255, np.uint8)
    for stroke in strokes:
        pts = np.array([[int(x * width), int(y * height)] for x, y, _ in stroke], np.int32)
        if len(pts) > 1:
            cv2.polylines(canvas, [pts], False, 0, thickness=3, lineType=cv2.LINE_AA)
    ok, png = cv2.imencode(".png", canvas)
    if not ok:
        raise JaranIjoError(id="Gagal membuat gambar tanda tangan",
                            en="Could not render the signature")
    return png.tobytes()
