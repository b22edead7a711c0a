"""The headless driver: a whole visit from a small script, on the configured devices.

``jaranijo record --script FILE`` runs it; the demo and the tests use it. It
drives exactly the API the kiosk drives (:mod:`kit.workflow`), against the
real drivers (on emulated or real devices), and prints what happens.

A script is TOML::

    officer = "P-0001"
    pin_env = "OFFICER_PIN"        # the PIN from this environment variable; without it,
                                   # the PIN is asked for (or read from stdin, --pin-stdin)
    assignment = "first"           # an assignment id, or "first"

    [[visit]]
    target = 1                     # position in the assignment (1-based) or a target id
    # outcome: "record" (default: recorded, or partial if something is missing),
    # or a not-recorded outcome: refused, not_home, deceased, moved, unfit, not_found, other
    outcome = "record"
    photo_scene = "good"           # emulated camera only: good, dark, blurred, cluttered,
                                   # turned, eyes-closed, side-lit, ...; one scene gives the
                                   # best of two stills, a list one still each in order (what
                                   # the camera sees as the officer fixes what the check said:
                                   # ["cluttered", "good"] is the backdrop hung between them)
    photo_reason = ""              # needed when the photo stays below the threshold
    fingers = [1, 2]               # which fingers to capture (default: all ten)
    exceptions = { 4 = "amputated", 5 = "amputated" }
    cannot_sign = ""               # a reason instead of a signature
    witness = { name = "Sulastri", role = "perangkat desa", consent = true }
    pause_at = ""                  # pause at this step and stop (a draft remains)

    [[visit]]
    target = 3
    outcome = "refused"
    note = "keluarga menolak"

On a bench with real devices the driver asks a person to place each finger;
with emulated devices it tells the emulated sensor who is there through the
rig's control FIFO (``emulator_control = "DIR/control"`` in the script, or
``--emulator-control``).

A PIN is never written in the script (a file is copied, backed up and left
behind): a script with ``pin = ...`` is refused.
"""

from __future__ import annotations

import os
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.config import KitConfig
from kit.devices import KitDevices
from kit.store import StoredRecord
from kit.visit import VisitController
from kit.workflow import Step, WorkflowSettings, describe, require_storable
from sync.domain import Assignment, FingerException, FingerPosition, Outcome, Target
from sync.errors import ValidationError

Say = Callable[[str], None]

VISIT_KEYS = {"target", "outcome", "note", "photo_scene", "photo_reason", "fingers",
              "exceptions", "cannot_sign", "witness", "pause_at", "resume", "approve_photo"}
SCRIPT_KEYS = {"officer", "pin_env", "assignment", "emulator_control", "visit"}


@dataclass
class Visit:
    target: int | str
    outcome: str = "record"
    note: str = ""
    photo_scene: str | list[str] = "good"
    photo_reason: str = ""
    fingers: list[int] = field(default_factory=lambda: [int(p) for p in FingerPosition])
    exceptions: dict[int, str] = field(default_factory=dict)
    cannot_sign: str = ""
    witness: dict[str, Any] = field(default_factory=lambda: {
        "name": "Pendamping desa", "role": "perangkat desa", "consent": True})
    pause_at: str = ""
    resume: bool = False
    approve_photo: bool = True


@dataclass
class VisitScript:
    officer: str
    pin: str
    assignment: str
    visits: list[Visit]
    emulator_control: str = ""


def _bad(path: Path, what: str) -> ValidationError:
    return ValidationError(id=f"{path}: {what}", en=f"{path}: {what}",
                           hint_id="Perbaiki skrip kunjungan", hint_en="Fix the visit script",
                           code="script")


def load_script(path: Path, read_pin: Callable[[str], str] | None = None) -> VisitScript:
    """Read and check a visit script; a clear error names the file and what is wrong.

    The officer's PIN comes from the environment variable named by ``pin_env``, or else
    from ``read_pin`` (the terminal or stdin); never from the file itself.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(path, "file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _bad(path, f"invalid TOML ({exc})") from None
    if "pin" in raw:
        raise ValidationError(
            id=f"{path}: PIN tidak boleh ditulis di skrip ('pin')",
            en=f"{path}: a PIN must not be written in the script ('pin')",
            hint_id="Hapus 'pin'; gunakan pin_env = \"NAMA_VARIABEL\" atau berikan PIN di "
                    "stdin (--pin-stdin)",
            hint_en="Remove 'pin'; use pin_env = \"VARIABLE_NAME\" or give the PIN on stdin "
                    "(--pin-stdin)",
            code="script_pin")
    unknown = set(raw) - SCRIPT_KEYS
    if unknown:
        raise _bad(path, f"unknown key(s) {sorted(unknown)}")
    if not raw.get("officer"):
        raise _bad(path, "'officer' is required")
    pin_env = str(raw.get("pin_env", ""))
    if pin_env:
        pin = os.environ.get(pin_env, "")
        if not pin:
            raise _bad(path, f"pin_env names {pin_env}, which is not set in the environment")
    elif read_pin is not None:
        pin = read_pin(f"PIN of officer {raw['officer']}: ")
    else:
        raise _bad(path, "no PIN: set 'pin_env' or give the PIN on stdin (--pin-stdin)")
    visits = []
    for n, item in enumerate(raw.get("visit", []), start=1):
        if not isinstance(item, dict) or "target" not in item:
            raise _bad(path, f"visit {n} needs a 'target'")
        unknown = set(item) - VISIT_KEYS
        if unknown:
            raise _bad(path, f"visit {n}: unknown key(s) {sorted(unknown)}")
        try:
            visit = Visit(**{k: v for k, v in item.items() if k != "exceptions"})
            visit.exceptions = {int(k): str(v) for k, v in item.get("exceptions", {}).items()}
            for position in [*visit.fingers, *visit.exceptions]:
                FingerPosition(int(position))
            for name in visit.exceptions.values():
                FingerException(name)
            if visit.outcome != "record":
                Outcome(visit.outcome)
            if visit.pause_at:
                Step(visit.pause_at)
            scenes = _scenes(visit)
            if not scenes or not all(isinstance(x, str) and x for x in scenes):
                raise ValueError(f"photo_scene must name a scene or list scenes, not "
                                 f"{visit.photo_scene!r}")
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"visit {n}: {exc}") from None
        visits.append(visit)
    if not visits:
        raise _bad(path, "no [[visit]] in the script")
    return VisitScript(officer=str(raw["officer"]), pin=str(pin),
                       assignment=str(raw.get("assignment", "first")), visits=visits,
                       emulator_control=str(raw.get("emulator_control", "")))


class ScriptedVisits:
    """Runs visit scripts through the one :class:`~kit.visit.VisitController` the kiosk drives,
    saying what happens; what the script may not decide (which finger is next, when a
    poor finger is accepted, what sealing stores) the workflow decides."""

    def __init__(self, config: KitConfig, devices: KitDevices, say: Say = print, *,
                 emulator_control: Callable[[str], str] | None = None,
                 lang: str = "id", settings: WorkflowSettings | None = None) -> None:
        self.config = config
        self.devices = devices
        self.say = say
        self.emulator_control = emulator_control
        self.lang = lang
        self.settings = settings or WorkflowSettings()

    def run(self, script: VisitScript) -> list[StoredRecord]:
        if script.emulator_control and self.emulator_control is None:
            self.emulator_control = fifo_writer(Path(script.emulator_control))
        controller = VisitController(self.config, devices=self.devices,
                                     emulator_control=self.emulator_control,
                                     settings=self.settings)
        sealed: list[StoredRecord] = []
        try:
            controller.login(script.officer, script.pin)
            self.say(f"officer {script.officer} unlocked the kit")
            assignment = controller.open_assignment(script.assignment)
            checks = controller.preflight(self.lang, gnss_wait_s=2.0)
            for check in checks:
                self.say(f"  pre-flight {'ok  ' if check.ok else 'WARN'} "
                         f"{check.message(self.lang)}")
            require_storable(checks)
            for visit in script.visits:
                target = _pick_target(assignment, visit.target)
                number = assignment.targets.index(target) + 1
                stored = self.visit(controller, target, visit, label=f"resident {number}")
                if stored is not None:
                    sealed.append(stored)
        finally:
            controller.close()
        return sealed

    # -- one visit ----------------------------------------------------------------------------
    def visit(self, controller: VisitController, target: Target, visit: Visit,
              label: str = "resident") -> StoredRecord | None:
        draft = controller.row(target.id).draft
        if visit.resume and draft is None:
            raise ValidationError(id="Tidak ada draf untuk dilanjutkan",
                                  en="No draft to resume for this target", code="no_draft")
        if not visit.resume and draft is not None:
            raise ValidationError(
                id="Ada draf rekaman untuk warga ini: lanjutkan (resume) atau buang dulu",
                en="A draft recording exists for this resident: resume it or discard it",
                hint_id="Tambahkan resume = true pada kunjungan ini",
                hint_en="Add resume = true to this visit", code="draft_exists")
        if visit.outcome not in ("record",):
            stored = controller.not_recorded(target.id, Outcome(visit.outcome), visit.note,
                                             self.lang)
            self.say(f"{label}: not recorded ({visit.outcome}), sealed {stored.size} bytes")
            return stored
        flow, _warnings = controller.start(target, self.lang)
        if draft is not None:
            self.say(f"{label}: resumed at step {flow.step}")
        else:
            self.say(f"{label}: recording {flow.recording.id} started")
        steps = {
            Step.PHOTO: lambda: self._photo(controller, visit),
            Step.PHOTO_APPROVAL: lambda: flow.approve_photo(visit.approve_photo),
            Step.FINGERPRINTS: lambda: self._fingers(controller, visit),
            Step.SIGNATURE: lambda: self._signature(controller, visit),
            Step.WITNESS: lambda: flow.set_witness(str(visit.witness.get("name", "")),
                                                   str(visit.witness.get("role", "")),
                                                   bool(visit.witness.get("consent", False))),
        }
        while flow.step != Step.REVIEW:
            self.say(f"{label}: at step {flow.step}")
            if visit.pause_at and flow.step == Step(visit.pause_at):
                controller.pause()
                self.say(f"{label}: paused at {flow.step} (draft kept, encrypted)")
                return None
            steps[flow.step]()
        summary = describe(flow.recording)
        stored = controller.seal()
        self.say(f"{label}: sealed {stored.size} bytes (sha256 {stored.sha256[:12]}...): "
                 f"{flow.recording.outcome}, {summary['fingers_captured']} fingers, "
                 f"exceptions {summary['finger_exceptions'] or 'none'}, "
                 f"signature {summary['signature']}")
        return stored

    def _photo(self, controller: VisitController, visit: Visit) -> None:
        controller.camera()  # a missing camera says so before anything else
        scenes = _scenes(visit)
        shown = None
        for scene in scenes if len(scenes) > 1 else scenes * 2:  # one scene: best of two
            if self.devices.camera_emulator is not None and scene != shown:
                self.devices.camera_emulator.control("scene", scene)
                time.sleep(2.5 / max(1.0, self.config.devices.camera.fps))  # new frames
                shown = scene
            _kept, assessment = controller.take_photo()
            quality = assessment.quality
            # every failed component with its fix, as the photo screen lists them
            failed = "" if quality.ok else "; ".join(assessment.reasons(self.lang))
            self.say(f"  photo: quality {quality.score}/100{' - ' + failed if failed else ''}")
        photo = controller.require_flow().recording.photo
        if photo is not None:
            self.say(f"  photo kept: quality {photo.quality_score}/100")
        controller.require_flow().accept_photo(visit.photo_reason or None)

    def _fingers(self, controller: VisitController, visit: Visit) -> None:
        flow = controller.require_flow()
        for position, exception in visit.exceptions.items():
            if FingerPosition(position) not in flow.recording.fingers:
                flow.finger_exception(FingerPosition(position), FingerException(exception),
                                      note="" if exception != "other" else "lihat catatan")
                self.say(f"  finger {position}: exception {exception}")
        wanted = [FingerPosition(p) for p in visit.fingers if p not in visit.exceptions]
        never = threading.Event()
        while (position := flow.next_finger()) is not None:
            if position not in wanted:
                flow.finger_exception(position, FingerException.OTHER,
                                      note="tidak direkam atas keputusan petugas")
                continue
            if self.emulator_control is None:
                self.say(f"  place finger {int(position)} ({position.label(self.lang)})")
            started = time.monotonic()
            result = controller.capture_finger(position, never, progress=lambda _got, _all: None)
            if result is None:  # only a cancel ends a wait without a finger; nobody cancels
                raise ValidationError(id="Perekaman jari dibatalkan", en="Finger capture cancelled",
                                      code="cancelled")
            self.say(f"  finger {int(position)} ({position.label('en')}): quality "
                     f"{result.quality.score}/100 in {time.monotonic() - started:.1f} s"
                     f"{' (accepted low quality)' if result.kept.low_quality_accepted else ''}")
        flow.next()

    def _signature(self, controller: VisitController, visit: Visit) -> None:
        if visit.cannot_sign:
            controller.require_flow().cannot_sign(visit.cannot_sign)
            self.say(f"  signature: cannot sign ({visit.cannot_sign})")
            return
        strokes = synthetic_signature()
        controller.sign(strokes)
        self.say(f"  signature: {sum(len(s) for s in strokes)} points")


def _scenes(visit: Visit) -> list[str]:
    """The scenes the emulated camera shows for ``visit``'s stills, in order."""
    scene = visit.photo_scene
    return [scene] if isinstance(scene, str) else list(scene)


def _pick_target(assignment: Assignment, wanted: int | str) -> Target:
    if isinstance(wanted, int):
        if not 1 <= wanted <= len(assignment.targets):
            raise ValidationError(id=f"Sasaran nomor {wanted} tidak ada",
                                  en=f"There is no target number {wanted}", code="target")
        return assignment.targets[wanted - 1]
    return assignment.target(wanted)


def fifo_writer(path: Path) -> Callable[[str], str]:
    """Send control lines to an emulated rig through its FIFO."""

    def send(line: str) -> str:
        with open(path, "w", encoding="utf-8") as fifo:
            fifo.write(line + "\n")
        time.sleep(0.05)  # the rig applies it before the next command reaches the device
        return line

    return send


def synthetic_signature(seed: int = 7) -> list[list[tuple[float, float, float]]]:
    """A plausible hand-written flourish: two strokes of time-stamped points (x, y in 0..1)."""
    rng = np.random.default_rng(seed)
    strokes, t = [], 0.0
    for stroke in range(2):
        points = []
        for i in range(40):
            x = 0.1 + 0.8 * i / 39
            y = 0.5 + 0.25 * np.sin(i / 5 + stroke) + rng.normal(0, 0.01)
            t += 0.015
            points.append((round(float(x), 4), round(float(y), 4), round(t, 3)))
        strokes.append(points)
        t += 0.3
    return strokes
