"""The kit's one self-test: every device, the clock, disk, key files, the store and the broker.

``jaranijo selftest`` (a technician at checkout and return, SOP steps 6 and 11) and the
office's ``selftest`` command (:meth:`kit.agent.service.Agent.self_test`) run the same
checks from here, so what the office sees is what the technician sees. Each
:class:`Check` says whether it is required (a kit that fails one must not go out),
whether it passed, what was measured, and for a failure the technician's next step in
Bahasa Indonesia or English.

Devices come from :class:`kit.devices.KitDevices` (the kit's one factory), so a device
that cannot be opened fails with the reason the factory recorded. A device switched off
in the configuration is skipped, not failed. In the agent, the camera and the fingerprint
sensor belong to the kiosk (DESIGN.md s4), so they are skipped there and the kiosk is
asked to test them (``kit_status.selftest_request``); the modem and battery figures are
the agent's latest readings (a second reader would garble the AT port).

The kiosk answers the agent's request through the store (:func:`kiosk_checks`,
``selftest_request`` then ``selftest_kiosk``): the fingerprint sensor's parameters and a
camera frame, taken by the process that holds them, so the office's answer covers them too.
On a kit image (:data:`IMAGE_MARK`), :func:`check_system` adds what the image promises: the
root read-only under its RAM overlay, the store on its own data partition, the agent and the
kiosk running, and no SSH server listening.

The last result is kept in ``DATA_DIR/selftest-last.json`` (0600) for the checkout/return
record. No personal data is read or kept: device identities and figures only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit import keyring
from kit.config import KitConfig
from sensors.errors import DEVICE_LABELS, DeviceError
from sync import __version__
from sync.errors import JaranIjoError

if TYPE_CHECKING:
    from kit.devices import KitDevices
    from kit.store import Store
    from sensors.gpio import KitGpio

LAST_RESULT_FILE = "selftest-last.json"
# The clock must not be before the software was built (a Pi has no RTC: after a power cut
# it may start in 1970 or at the last shutdown) nor absurdly far after it.
EARLIEST_PLAUSIBLE = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
LATEST_AFTER_BUILD_S = 10 * 365 * 86400
CLOCK_AGREEMENT_S = 3.0  # GNSS time vs the kit's clock
DISK_MIN_MIB = 500  # about a thousand records with photos and fingerprints
GNSS_FIX_MAX_AGE_S = 30.0
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
# Written by image-build/build (the commit the image was built from): this is a kit image, so
# its overlay root, data partition, services and SSH are checked. A kit set up by hand from a
# clone (or the demo) has none of them and skips those checks.
IMAGE_MARK = Path("/opt/jaranijo/COMMIT")
DATA_MOUNT = Path("/var/lib/jaranijo-data")
SYSTEMD_SLICE = Path("/sys/fs/cgroup/system.slice")
KIT_SERVICES = ("jaranijo-agent.service", "jaranijo-kiosk.service")
WANTS_DIR = Path("/etc/systemd/system/multi-user.target.wants")
SSH_PORT = 22
# The agent and the kiosk share the store: the agent asks, the kiosk answers (kiosk_checks).
REQUEST_KEY = "selftest_request"
ANSWER_KEY = "selftest_kiosk"
KIOSK_ALIVE_KEY = "kiosk_alive"  # the kiosk's heartbeat (once a minute): worth waiting for
KIOSK_ALIVE_S = 150.0

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Check:
    """One check's outcome. ``status`` is pass, fail or skip (not checked here: switched off
    in the configuration, or held by another process); ``value`` is what was measured."""

    name: str
    required: bool
    status: str
    value: str = ""
    next_id: str = ""
    next_en: str = ""
    value_id: str = ""  # the measured value in Indonesian, where it is words (a device's error)

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def shown(self, lang: str = "id") -> str:
        return self.value_id if lang != "en" and self.value_id else self.value

    def next_step(self, lang: str = "id") -> str:
        if self.status != FAIL:
            return ""
        return self.next_en if lang == "en" else (self.next_id or self.next_en)

    def as_dict(self, lang: str = "id") -> dict[str, Any]:
        return {"name": self.name, "label": label(self.name, lang), "required": self.required,
                "status": self.status, "ok": self.ok, "value": self.shown(lang),
                "next_step": self.next_step(lang)}


LABELS: dict[str, tuple[str, str]] = {
    **DEVICE_LABELS,
    "fingerprint_image": ("Citra sidik jari", "Fingerprint image"),
    "gnss_fix": ("Posisi GPS", "GPS fix"),
    "network": ("Jaringan seluler", "Mobile network"),
    "gpio": ("Tombol, LED, buzzer", "Button, LED, buzzer"),
    "clock": ("Jam", "Clock"),
    "disk": ("Ruang disk", "Disk space"),
    "key_files": ("Berkas kunci", "Key files"),
    "key_security": ("Penyimpanan kunci", "Key storage"),
    "store": ("Basis data kit", "Kit database"),
    "broker": ("Server MQTT (TCP+TLS)", "MQTT broker (TCP+TLS)"),
    "broker_login": ("Login MQTT", "MQTT login"),
    "root_overlay": ("Root hanya-baca (overlay)", "Read-only root (overlay)"),
    "data_partition": ("Partisi data", "Data partition"),
    "services": ("Layanan kit", "Kit services"),
    "ssh": ("SSH mati", "SSH off"),
}


def label(name: str, lang: str = "id") -> str:
    pair = LABELS.get(name, (name, name))
    return pair[1] if lang == "en" else pair[0]


@dataclass
class SelfTestResult:
    checks: list[Check]
    kit_id: str
    at: float
    source: str = "cli"  # "cli" (jaranijo selftest) or "agent" (the office's command)

    @property
    def ok(self) -> bool:
        """True when every required check passed (optional failures are only reported)."""
        return all(c.ok for c in self.checks if c.required)

    def failed(self, *, required_only: bool = False) -> list[str]:
        return [c.name for c in self.checks
                if not c.ok and (c.required or not required_only)]

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def replace(self, others: Iterable[Check]) -> None:
        """Put checks made elsewhere (the kiosk's) in place of the same-named ones here."""
        for other in others:
            for n, mine in enumerate(self.checks):
                if mine.name == other.name:
                    self.checks[n] = other
                    break
            else:
                self.checks.append(other)

    def as_dict(self, lang: str = "id") -> dict[str, Any]:
        return {"kit": self.kit_id, "at": _iso(self.at), "source": self.source,
                "software": __version__, "ok": self.ok,
                "failed_required": self.failed(required_only=True),
                "checks": [c.as_dict(lang) for c in self.checks]}

    def text(self, lang: str = "id") -> str:
        """The technician's screen: one line per check, the next step under each failure."""
        en = lang == "en"
        words = {PASS: "OK", FAIL: "FAIL" if en else "GAGAL", SKIP: "SKIP" if en else "LEWAT"}
        need = ("required", "optional") if en else ("wajib", "opsional")
        title = "Self-test of kit" if en else "Uji mandiri kit"
        lines = [f"{title} {self.kit_id} - {_iso(self.at)}"]
        for c in self.checks:
            lines.append(f"  {words[c.status]:<5} {label(c.name, lang):<24} "
                         f"{need[0] if c.required else need[1]:<9} {c.shown(lang)}")
            if c.status == FAIL:
                lines.append(f"        -> {c.next_step(lang)}")
        bad = self.failed(required_only=True)
        if not bad:
            lines.append("Result: PASSED" if en else "Hasil: LULUS")
        else:
            lines.append(f"Result: FAILED ({len(bad)} required check(s) failed)" if en else
                          f"Hasil: GAGAL ({len(bad)} pemeriksaan wajib gagal)")
        return "\n".join(lines)

    def save(self, data_dir: Path) -> Path:
        """Keep the result for the checkout/return record (atomic, 0600)."""
        path = data_dir / LAST_RESULT_FILE
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"id": self.as_dict("id"), "en_next_steps": {
                c.name: c.next_en for c in self.checks if c.status == FAIL}}, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return path


def load_last(data_dir: Path) -> dict[str, Any] | None:
    """The last self-test kept on this kit, as saved (None if there is none)."""
    try:
        saved = json.loads((data_dir / LAST_RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("id") if isinstance(saved, dict) else None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fail(name: str, required: bool, value: str, next_id: str, next_en: str) -> Check:
    return Check(name, required, FAIL, value, next_id, next_en)


def _from_error(name: str, required: bool, exc: JaranIjoError | DeviceError | Exception,
                next_id: str, next_en: str) -> Check:
    """A failure whose message is the device's own; its hint, else ours, is the next step."""
    if isinstance(exc, DeviceError):
        hint_id, hint_en = exc.hint["id"], exc.hint["en"]
        return Check(name, required, FAIL, exc.message["en"], hint_id or next_id,
                     hint_en or next_en, exc.message["id"])
    if isinstance(exc, JaranIjoError):
        return Check(name, required, FAIL, exc.message["en"], next_id, next_en,
                     exc.message["id"])
    return Check(name, required, FAIL, f"{type(exc).__name__}: {exc}", next_id, next_en)


def _missing(name: str, required: bool, problem: Exception | None, held: str | None,
             next_id: str, next_en: str) -> Check:
    """A device that is not open here: held elsewhere, switched off, or failed to open."""
    if held is not None:
        return Check(name, required, SKIP, held)
    if problem is not None and getattr(problem, "code", "") == "disabled":
        return Check(name, False, SKIP, "disabled in the configuration")
    if problem is None:
        return _fail(name, required, "not opened", next_id, next_en)
    return _from_error(name, required, problem, next_id, next_en)


# ---------------------------------------------------------------------------------------------
# The devices
# ---------------------------------------------------------------------------------------------


@dataclass
class ModemReading:
    """What the self-test needs from the modem, from a fresh status or the agent's reading."""

    registered: bool | None
    registration: str = ""
    operator: str | None = None
    access_tech: str | None = None
    rssi_dbm: float | None = None
    model: str | None = None


@dataclass
class Devices:
    """The devices one self-test looks at (None where not open) and why each is missing.

    ``held`` names devices another process owns here, with the reason shown (the agent
    cannot open the kiosk's camera). ``modem_reading`` replaces asking the modem (the
    agent's sampler already reads it); ``gpio`` False means do not try the GPIO.
    """

    camera: Any = None
    fingerprint: Any = None
    gnss: Any = None
    modem: Any = None
    battery: Any = None
    problems: dict[str, Exception] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    modem_reading: ModemReading | None = None
    battery_reading: Any = None

    @classmethod
    def of(cls, kit: KitDevices) -> Devices:
        return cls(camera=kit.camera, fingerprint=kit.fingerprint, gnss=kit.gnss,
                   modem=kit.modem, battery=kit.battery, problems=dict(kit.problems))


FP_NEXT = ("Periksa kabel USB sensor sidik jari dan /dev/jaranijo/fingerprint; cabut dan "
           "pasang lagi", "Check the fingerprint sensor's USB cable and "
           "/dev/jaranijo/fingerprint; unplug and plug it back in")


def check_fingerprint(devices: Devices, *, finger_timeout: float | None,
                      prompt: Callable[[str], None]) -> list[Check]:
    """Sensor parameters (identity), then one image when a finger is placed."""
    sensor = devices.fingerprint
    if sensor is None:
        first = _missing("fingerprint", True, devices.problems.get("fingerprint"),
                         devices.held.get("fingerprint"), *FP_NEXT)
        return [first, Check("fingerprint_image", finger_timeout is not None, SKIP,
                             "sensor not open")]
    try:
        info = sensor.system_parameters()
    except DeviceError as exc:
        return [_from_error("fingerprint", True, exc, *FP_NEXT),
                Check("fingerprint_image", finger_timeout is not None, SKIP, "sensor not ready")]
    checks = [Check("fingerprint", True, PASS,
                    f"ZFM system_id=0x{info.system_id:04x} capacity={info.capacity} "
                    f"templates={info.templates} security={info.security_level} "
                    f"packet={info.packet_size} baud={info.baud}")]
    if finger_timeout is None:
        checks.append(Check("fingerprint_image", False, SKIP, "not asked (--no-finger)"))
        return checks
    prompt(f"{finger_timeout:g}")
    try:
        sensor.wait_for_finger(timeout=finger_timeout)
        started = time.monotonic()
        image = sensor.capture()
        quality = sensor.quality(image)
    except DeviceError as exc:
        checks.append(_from_error(
            "fingerprint_image", True, exc,
            "Letakkan jari rata di kaca sensor saat diminta, lalu ulangi uji mandiri",
            "Lay a finger flat on the glass when asked, then run the self-test again"))
        return checks
    h, w = image.pixels.shape[:2]
    checks.append(Check("fingerprint_image", True, PASS,
                        f"{w}x{h} in {time.monotonic() - started:.1f} s, quality "
                        f"{quality.score}/100 ({quality.reason_en or 'ok'})"))
    return checks


def check_camera(devices: Devices) -> Check:
    from sensors.photo_quality import photo_quality

    nxt = ("Periksa kabel pita kamera dan bahwa tutup lensa terbuka; nyalakan ulang kit",
           "Check the camera's ribbon cable and that the lens cap is off; restart the kit")
    camera = devices.camera
    if camera is None:
        return _missing("camera", True, devices.problems.get("camera"),
                        devices.held.get("camera"), *nxt)
    try:
        frame = camera.preview_frame()
    except DeviceError as exc:
        return _from_error("camera", True, exc, *nxt)
    if frame is None or getattr(frame, "size", 0) == 0:
        return _fail("camera", True, "empty frame", *nxt)
    h, w = frame.shape[:2]
    rgb = frame[..., :3]
    spread = float(rgb.std())
    if spread < 2.0:  # one flat colour: a covered lens or a dead sensor
        return _fail("camera", True, f"{w}x{h}, flat image (spread {spread:.1f})",
                     "Buka tutup lensa dan bersihkan lensa; periksa kabel pita kamera",
                     "Remove the lens cap and clean the lens; check the ribbon cable")
    quality = photo_quality(rgb)
    # The score is for a face in front of the kit: reported, not required (nobody poses).
    return Check("camera", True, PASS,
                 f"{w}x{h}, photo quality {quality.score}/100 ({quality.reason_en or 'ok'})")


def check_gnss(devices: Devices, *, fix_timeout: float, now: float) -> list[Check]:
    nxt = ("Periksa kabel modem/GNSS dan /dev/jaranijo/gps", "Check the modem/GNSS cable "
           "and /dev/jaranijo/gps")
    gnss = devices.gnss
    if gnss is None:
        first = _missing("gnss", True, devices.problems.get("gnss"), devices.held.get("gnss"),
                         *nxt)
        return [first, Check("gnss_fix", False, SKIP, "no receiver")]
    fix = gnss.fix(timeout=fix_timeout, max_age_s=GNSS_FIX_MAX_AGE_S)
    problem = gnss.problem()
    if problem is not None and fix is None:
        return [_from_error("gnss", True, problem, *nxt),
                Check("gnss_fix", False, SKIP, "receiver not talking")]
    counters = gnss.counters()
    checks = [Check("gnss", True, PASS, f"{counters.sentences} NMEA sentences, "
                    f"{counters.rejected} rejected")]
    if fix is None:
        checks.append(_fail("gnss_fix", False, f"no fix within {fix_timeout:g} s",
                            "Bawa kit ke luar ruangan, langit terbuka, tunggu 1-2 menit",
                            "Take the kit outdoors under open sky and wait 1-2 minutes"))
    else:
        checks.append(Check("gnss_fix", False, PASS,
                            f"fix age {fix.age_s:.1f} s, {fix.satellites} satellites, "
                            f"HDOP {fix.hdop}, accuracy {fix.accuracy_m} m"))
    return checks


def gnss_time_offset(devices: Devices, now: float) -> float | None:
    """Kit clock minus GNSS time (seconds) from a fresh fix, or None without one."""
    gnss = devices.gnss
    if gnss is None:
        return None
    fix = gnss.fix(timeout=0.0, max_age_s=GNSS_FIX_MAX_AGE_S)
    if fix is None:
        return None
    return now - (fix.time_utc.timestamp() + fix.age_s)


def check_modem(devices: Devices) -> list[Check]:
    nxt = ("Periksa kabel USB modem dan /dev/jaranijo/modem; nyalakan ulang kit",
           "Check the modem's USB cable and /dev/jaranijo/modem; restart the kit")
    reading = devices.modem_reading
    problem: Exception | None = None
    if reading is None and devices.modem is not None:
        try:
            status = devices.modem.status(timeout=10.0)
            reading = ModemReading(status.registered, status.registration, status.operator,
                                   status.access_tech, status.rssi_dbm, status.model)
        except DeviceError as exc:
            problem = exc
    if reading is None:
        if devices.modem is None:
            first = _missing("modem", True, devices.problems.get("modem"),
                             devices.held.get("modem"), *nxt)
        else:
            first = _from_error("modem", True, problem or RuntimeError("no answer"), *nxt)
        return [first, Check("network", False, SKIP, "no modem")]
    checks = [Check("modem", True, PASS, f"answers ({reading.model or 'model not read'})")]
    signal = "unknown" if reading.rssi_dbm is None else f"{reading.rssi_dbm:.0f} dBm"
    value = (f"{reading.registration or ('registered' if reading.registered else '?')}, "
             f"{reading.operator or 'no operator'}, {reading.access_tech or '-'}, "
             f"RSSI {signal}")
    if reading.registered:
        checks.append(Check("network", False, PASS, value))
    else:
        checks.append(_fail("network", False, value,
                            "Periksa kartu SIM (terpasang, aktif, ada paket data); pindah ke "
                            "tempat dengan sinyal lebih baik",
                            "Check the SIM card (inserted, active, has a data plan); move to "
                            "a place with better signal"))
    return checks


def check_battery(devices: Devices) -> Check:
    nxt = ("Periksa kabel baterai/UPS HAT dan devices.battery di kit.toml",
           "Check the battery/UPS HAT connection and devices.battery in kit.toml")
    reading = devices.battery_reading
    if reading is None:
        if devices.battery is None:
            return _missing("battery", True, devices.problems.get("battery"),
                            devices.held.get("battery"), *nxt)
        try:
            reading = devices.battery.read()
        except DeviceError as exc:
            return _from_error("battery", True, exc, *nxt)
    percent = getattr(reading, "percent", None)
    charging = bool(getattr(reading, "charging", False))
    state = getattr(reading, "status", None) or ("Charging" if charging else "Discharging")
    if percent is None:
        return _fail("battery", True, f"level unreadable ({state})", *nxt)
    return Check("battery", True, PASS, f"{percent:.0f}%, {state}")


def check_gpio(config: KitConfig, gpio: KitGpio | None, held: str | None) -> Check:
    """Button state, LED on and off, one beep. Optional: the screen has the same buttons.
    ``gpio`` None: open the configured pins here (and close them after)."""
    if held is not None:
        return Check("gpio", False, SKIP, held)
    own = gpio is None
    parts: Any = gpio
    if own:
        from sensors.registry import open_gpio

        parts, problem = open_gpio(config.devices.gpio)
        if parts is None:
            return _from_error("gpio", False, problem or RuntimeError("no GPIO"),
                               "Periksa nomor pin di devices.gpio; hentikan kios dulu",
                               "Check the pin numbers in devices.gpio; stop the kiosk first")
    try:
        pressed = parts.button.is_pressed
        parts.led.show("idle")
        parts.led.show("off")
        parts.buzzer.ok(wait=True)
    except Exception as exc:  # gpiozero raises many kinds; any is a failed part
        return _from_error("gpio", False, exc, "Periksa kabel tombol, LED dan buzzer",
                           "Check the button, LED and buzzer wiring")
    finally:
        if own:
            with contextlib.suppress(Exception):
                parts.close()
    if pressed:
        return _fail("gpio", False, "button reads pressed (stuck or shorted)",
                     "Periksa tombol: mungkin macet atau kabelnya terhubung singkat",
                     "Check the button: it may be stuck or its wires shorted")
    pins = config.devices.gpio
    return Check("gpio", False, PASS,
                 f"button released (BCM {pins.capture_button}), LED (BCM {pins.status_led}) "
                 f"on/off, buzzer (BCM {pins.buzzer}) beeped")


# ---------------------------------------------------------------------------------------------
# The kit itself
# ---------------------------------------------------------------------------------------------


def build_time() -> float:
    """When this software was installed (the package's files), at the earliest 2026-01-01."""
    import sync

    try:
        installed = Path(sync.__file__).stat().st_mtime
    except OSError:
        installed = 0.0
    return max(EARLIEST_PLAUSIBLE, installed)


def check_clock(now: float, gnss_offset_s: float | None, *,
                timesync_flag: Path = TIMESYNC_FLAG) -> Check:
    built = build_time()
    nxt = ("Hubungkan kit ke internet (NTP) atau bawa ke luar untuk posisi GNSS, lalu "
           "ulangi", "Connect the kit to the internet (NTP) or take it outdoors for a GNSS "
           "fix, then run again")
    if now < built:
        return _fail("clock", True, f"{_iso(now)} is before the build ({_iso(built)})", *nxt)
    if now > built + LATEST_AFTER_BUILD_S:
        return _fail("clock", True, f"{_iso(now)} is implausibly late", *nxt)
    sources = []
    if timesync_flag.exists():
        sources.append("NTP synchronised")
    if gnss_offset_s is not None:
        if abs(gnss_offset_s) > CLOCK_AGREEMENT_S:
            return _fail("clock", True, f"{_iso(now)}, {gnss_offset_s:+.1f} s from GNSS time",
                         "Jam kit tidak sama dengan waktu GNSS: periksa NTP "
                         "(timedatectl), lalu nyalakan ulang kit",
                         "The kit's clock disagrees with GNSS time: check NTP "
                         "(timedatectl), then restart the kit")
        sources.append(f"GNSS {gnss_offset_s:+.1f} s")
    return Check("clock", True, PASS,
                 f"{_iso(now)} ({', '.join(sources) or 'no NTP or GNSS to compare'})")


def check_disk(data_dir: Path, min_mib: int = DISK_MIN_MIB) -> Check:
    try:
        free = shutil.disk_usage(data_dir).free // (1024 * 1024)
    except OSError as exc:
        return _fail("disk", True, f"{data_dir}: {exc}", "Periksa partisi data",
                     "Check the data partition")
    value = f"{free} MiB free in {data_dir}"
    if free < min_mib:
        return _fail("disk", True, f"{value} (need {min_mib})",
                     "Unggah rekaman ke kantor, lalu hapus yang sudah diterima",
                     "Upload the records to the office, then delete those it received")
    return Check("disk", True, PASS, value)


def key_files(config: KitConfig) -> list[Path]:
    """Every file that must be the kit user's alone (0600): the keys folder (secrets, and the
    public keys provisioning also makes 0600), the configuration, the store, TLS files."""
    keys = config.keys_dir
    files = sorted(p for p in keys.iterdir() if p.is_file()) if keys.is_dir() else []
    for extra in (config.source, str(config.store_path), config.mqtt.password_file,
                  config.mqtt.key_file):
        if extra and Path(extra).exists() and Path(extra) not in files:
            files.append(Path(extra))
    return files


def check_key_files(config: KitConfig) -> Check:
    keys = config.keys_dir
    uid = os.geteuid()
    if not keys.is_dir():
        return _fail("key_files", True, f"{keys} missing",
                     "Kit belum disiapkan: jalankan 'jaranijo firstboot' atau "
                     "'jaranijo provision'",
                     "The kit is not provisioned: run 'jaranijo firstboot' or "
                     "'jaranijo provision'")
    bad: list[str] = []
    fix: list[str] = []
    mode = stat.S_IMODE(keys.stat().st_mode)
    if mode & 0o077:
        bad.append(f"{keys} {mode:04o}")
        fix.append(f"chmod 700 {keys}")
    files = key_files(config)
    for path in files:
        st = path.stat()
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            bad.append(f"{path.name} {mode:04o}")
            fix.append(f"chmod 600 {path}")
        elif st.st_uid != uid:
            bad.append(f"{path.name} owner uid {st.st_uid}")
            fix.append(f"chown {uid} {path}")
    if bad:
        todo = "; ".join(fix)
        return _fail("key_files", True, "; ".join(bad)[:200],
                     f"Berkas kunci terbuka untuk pengguna lain atau milik pengguna lain: "
                     f"jalankan '{todo}'",
                     f"Key files open to or owned by other users: run '{todo}'")
    return Check("key_files", True, PASS, f"{len(files)} files 0600, owner uid {uid}")


def check_key_security(config: KitConfig, lang: str) -> Check:
    try:
        ok, text = keyring.security_line(config, "en")
        text_id = keyring.security_line(config, "id")[1]
    except JaranIjoError as exc:
        return Check("key_security", False, FAIL, exc.message["en"],
                     "Periksa modul TPM dan security.tpm di kit.toml",
                     "Check the TPM module and security.tpm in kit.toml", exc.message["id"])
    if ok:
        return Check("key_security", False, PASS, text, value_id=text_id)
    return Check("key_security", False, FAIL, text,
                 "Pasang modul TPM (lihat README) atau pakai PIN 10 angka atau lebih",
                 "Fit a TPM module (see README) or use PINs of 10 digits or more", text_id)


def quick_check(store: Store | None, path: Path) -> str:
    """SQLite's ``PRAGMA quick_check`` of the kit's store ("ok" when sound)."""
    if store is not None:
        rows = store.conn.execute("PRAGMA quick_check").fetchall()
    else:
        from kit.store import Store

        with Store.open(path, create=False, check=False) as opened:
            rows = opened.conn.execute("PRAGMA quick_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)[:200]


def check_store(config: KitConfig, store: Store | None) -> tuple[Check, str]:
    nxt = ("Basis data kit rusak: jangan pakai kit, kembalikan ke kantor untuk dipulihkan",
           "The kit's database is damaged: do not use the kit, return it to the office "
           "for recovery")
    try:
        result = quick_check(store, config.store_path)
    except (JaranIjoError, OSError, ValueError) as exc:
        msg = exc.text("en") if isinstance(exc, JaranIjoError) else str(exc)
        return _fail("store", True, msg[:200], *nxt), msg[:200]
    except Exception as exc:  # sqlite3.DatabaseError: "file is not a database"
        return _fail("store", True, str(exc)[:200], *nxt), str(exc)[:200]
    if result != "ok":
        return _fail("store", True, f"quick_check: {result}", *nxt), result
    return Check("store", True, PASS, f"quick_check ok ({config.store_path.name})"), result


def _tls_context(config: KitConfig) -> ssl.SSLContext:
    mqtt = config.mqtt
    context = ssl.create_default_context(cafile=mqtt.ca_file or None)
    if mqtt.cert_file:
        context.load_cert_chain(mqtt.cert_file, mqtt.key_file or None)
    return context


def check_broker(config: KitConfig, *, timeout: float = 10.0) -> Check:
    """TCP to the configured broker, then the TLS handshake (certificate checked)."""
    mqtt = config.mqtt
    where = f"{mqtt.host}:{mqtt.port}"
    started = time.monotonic()
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=timeout) as raw:
            if not mqtt.tls:
                return Check("broker", True, PASS, f"{where} TCP (no TLS configured) in "
                             f"{(time.monotonic() - started) * 1000:.0f} ms")
            with _tls_context(config).wrap_socket(raw, server_hostname=mqtt.host) as tls:
                version = tls.version()
    except ssl.SSLError as exc:
        return _fail("broker", True, f"{where}: TLS {exc.reason or exc}",
                     "Sertifikat server tidak cocok: periksa mqtt.ca_file dan jam kit",
                     "The server's certificate does not check out: check mqtt.ca_file and "
                     "the kit's clock")
    except (OSError, ValueError) as exc:
        return _fail("broker", True, f"{where}: {exc}",
                     "Server tidak terjangkau: periksa sinyal/SIM, lalu mqtt.host dan "
                     "mqtt.port di kit.toml",
                     "The broker cannot be reached: check signal/SIM, then mqtt.host and "
                     "mqtt.port in kit.toml")
    return Check("broker", True, PASS,
                 f"{where} {version} in {(time.monotonic() - started) * 1000:.0f} ms")


def check_broker_login(config: KitConfig, *, timeout: float = 10.0) -> Check:
    """An MQTT CONNECT with the kit's own credentials, and the broker's CONNACK."""
    import paho.mqtt.client as mqtt_client

    mqtt = config.mqtt
    nxt = ("Login ditolak: periksa mqtt.username dan kata sandi kit dengan kantor (kit "
           "mungkin dicabut)", "Login refused: check mqtt.username and the kit's password "
           "with the office (the kit may be revoked)")
    try:
        password = keyring.broker_password(config)
    except JaranIjoError as exc:
        return _fail("broker_login", True, exc.text("en"), *nxt)
    # Its own client id: the agent's session (client id = kit id) must not be taken over.
    client = mqtt_client.Client(mqtt_client.CallbackAPIVersion.VERSION2,
                                client_id=f"{config.kit.id}-selftest",
                                protocol=mqtt_client.MQTTv311, clean_session=True)
    if mqtt.username:
        client.username_pw_set(mqtt.username, password)
    if mqtt.tls:
        client.tls_set_context(_tls_context(config))
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["reason"] = str(reason)
        outcome["failure"] = bool(getattr(reason, "is_failure", False))
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=30)
        client.loop_start()
        answered.wait(timeout)
    except (OSError, ValueError) as exc:
        return _fail("broker_login", True, f"{mqtt.host}:{mqtt.port}: {exc}", *nxt)
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        with contextlib.suppress(Exception):
            client.loop_stop()
    if not answered.is_set():
        return _fail("broker_login", True, f"no CONNACK within {timeout:g} s", *nxt)
    who = mqtt.username or "(anonymous)"
    if outcome["failure"]:
        return _fail("broker_login", True, f"CONNACK {outcome['reason']} as {who}", *nxt)
    return Check("broker_login", True, PASS, f"CONNACK {outcome['reason']} as {who}")


def _mounts(mounts: Path) -> dict[str, tuple[str, str]]:
    """Mount point -> (source, filesystem type), the last mount on each point winning."""
    out: dict[str, tuple[str, str]] = {}
    with contextlib.suppress(OSError):
        for line in mounts.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 3:
                out[fields[1].replace("\\040", " ")] = (fields[0], fields[2])
    return out


def _running(unit: str, slice_dir: Path) -> int:
    """How many processes the unit has (its cgroup; no D-Bus needed, readable unprivileged)."""
    try:
        return sum(1 for line in (slice_dir / unit / "cgroup.procs").read_text().split() if line)
    except OSError:
        return 0


def _listening(port: int, tables: Iterable[Path]) -> bool:
    """True if a TCP socket listens on ``port`` (any address), from /proc/net/tcp{,6}."""
    want = f":{port:04X}"
    for table in tables:
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 3 and fields[1].endswith(want) and fields[3] == "0A":
                    return True
    return False


def check_system(*, running: bool = True, mark: Path = IMAGE_MARK,
                 mounts: Path = Path("/proc/self/mounts"), data_mount: Path = DATA_MOUNT,
                 slice_dir: Path = SYSTEMD_SLICE, wants: Path = WANTS_DIR,
                 tcp: Iterable[Path] = (Path("/proc/net/tcp"), Path("/proc/net/tcp6")),
                 ) -> list[Check]:
    """What a kit image promises (image-build/README.md): a power cut cannot corrupt the
    system (root read-only under a RAM overlay, the store on its own data partition), the
    kit's services run, and SSH is off. Skipped on a kit set up by hand.

    ``running`` False (``jaranijo selftest``, which a technician runs with the services
    stopped to free the devices): the services must be enabled rather than running."""
    if not mark.exists():
        return [Check("root_overlay", False, SKIP, "not a kit image (set up by hand)")]
    table = _mounts(mounts)
    checks: list[Check] = []
    source, fstype = table.get("/", ("?", "?"))
    if fstype == "overlay":
        checks.append(Check("root_overlay", True, PASS, "/ is an overlay: the SD card's root "
                                                        "is read-only, changes stay in RAM"))
    else:
        checks.append(_fail("root_overlay", True, f"/ is {fstype} on {source}, writable",
                            "Root tidak dilindungi dari mati listrik: pastikan "
                            "jaranijo.overlay=1 ada di cmdline.txt partisi boot, lalu "
                            "nyalakan ulang", "The root is not protected from power cuts: "
                            "make sure jaranijo.overlay=1 is in the boot partition's "
                            "cmdline.txt, then restart"))
    data = table.get(str(data_mount))
    if data is not None and data[1] == "ext4":
        checks.append(Check("data_partition", True, PASS, f"{data_mount} on {data[0]} (ext4)"))
    else:
        shown = f"{data[1]} on {data[0]}" if data else "not mounted"
        checks.append(_fail("data_partition", True, f"{data_mount}: {shown}",
                            "Partisi data (JARANIJO-DATA) tidak terpasang: rekaman tidak "
                            "boleh dibuat; kembalikan kit ke teknisi",
                            "The data partition (JARANIJO-DATA) is not mounted: no "
                            "recording may be made; return the kit to a technician"))
    if not running:
        off = [unit for unit in KIT_SERVICES if not (wants / unit).exists()]
        if off:
            names = " ".join(off)
            checks.append(_fail("services", True, f"not enabled: {', '.join(off)}",
                                f"Jalankan 'systemctl enable {names}'",
                                f"Run 'systemctl enable {names}'"))
        else:
            checks.append(Check("services", True, PASS, "agent and kiosk enabled at boot"))
    else:
        counts = {unit: _running(unit, slice_dir) for unit in KIT_SERVICES}
        down = [unit for unit, n in counts.items() if n == 0]
        if down:
            names = " ".join(down)
            checks.append(_fail("services", True, f"not running: {', '.join(down)}",
                                f"Lihat 'journalctl -u {names}' lalu 'systemctl restart "
                                f"{names}'", f"Read 'journalctl -u {names}', then "
                                f"'systemctl restart {names}'"))
        else:
            checks.append(Check("services", True, PASS, ", ".join(
                f"{u.removesuffix('.service')} {n} proc" for u, n in counts.items())))
    if _listening(SSH_PORT, tcp):
        checks.append(_fail("ssh", True, f"a server listens on TCP port {SSH_PORT}",
                            "Matikan SSH sebelum kit keluar: 'systemctl disable --now "
                            "ssh.service ssh.socket'", "Turn SSH off before the kit goes "
                            "out: 'systemctl disable --now ssh.service ssh.socket'"))
    else:
        checks.append(Check("ssh", True, PASS, f"nothing listens on TCP port {SSH_PORT}"))
    return checks


def kiosk_checks(devices: Devices) -> list[Check]:
    """The kiosk's part of the office's self-test: the fingerprint sensor's parameters (no
    finger image: nobody stands at the kit to place one) and a camera frame. The GPIO is not
    tried from afar (the buzzer would sound at a bedside): ``jaranijo selftest`` does it."""
    checks = check_fingerprint(devices, finger_timeout=None, prompt=lambda _s: None)
    checks.append(check_camera(devices))
    return checks


def checks_to_json(checks: Iterable[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]


def checks_from_json(data: Any) -> list[Check]:
    """The kiosk's answer as read back from the store; anything malformed is left out."""
    out: list[Check] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or item.get("status") not in (PASS, FAIL, SKIP):
            continue
        name = item.get("name")
        if name not in LABELS:
            continue
        out.append(Check(str(name), bool(item.get("required")), str(item["status"]),
                         *(str(item.get(k) or "")[:300] for k in
                           ("value", "next_id", "next_en", "value_id"))))
    return out


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------


@dataclass
class Options:
    finger_timeout: float | None = 15.0  # None: no fingerprint image (--no-finger)
    fix_timeout: float = 5.0
    broker_timeout: float = 10.0
    # The agent answering the office's command over MQTT: it is logged in, by definition.
    broker_connected: bool | None = None
    gpio: Any = None  # None: open the configured pins; False: held by the kiosk; or parts
    prompt: Callable[[str], None] = field(default=lambda seconds: None)
    clock: Callable[[], float] = time.time


def run_selftest(config: KitConfig, devices: Devices, *, store: Store | None = None,
                 options: Options | None = None, source: str = "cli",
                 lang: str = "id") -> SelfTestResult:
    """Every check, in the order a technician walks the kit; never raises for a check."""
    opt = options or Options()
    checks: list[Check] = []
    checks += check_fingerprint(devices, finger_timeout=opt.finger_timeout, prompt=opt.prompt)
    checks.append(check_camera(devices))
    checks += check_gnss(devices, fix_timeout=opt.fix_timeout, now=opt.clock())
    checks += check_modem(devices)
    checks.append(check_battery(devices))
    held_gpio = opt.gpio is False
    checks.append(check_gpio(config, None if held_gpio else opt.gpio,
                             "held by the kiosk" if held_gpio else None))
    now = opt.clock()
    checks.append(check_clock(now, gnss_time_offset(devices, now)))
    checks.append(check_disk(config.data_dir))
    checks.append(check_key_files(config))
    checks.append(check_key_security(config, lang))
    checks.append(check_store(config, store)[0])
    checks += check_system(running=source == "agent")
    if opt.broker_connected is None:
        checks.append(check_broker(config, timeout=opt.broker_timeout))
        if checks[-1].ok:
            checks.append(check_broker_login(config, timeout=opt.broker_timeout))
        else:
            checks.append(Check("broker_login", True, FAIL, "broker not reached",
                                "Perbaiki dulu koneksi ke server", "Fix the broker "
                                "connection first"))
    elif opt.broker_connected:
        value = f"{config.mqtt.host}:{config.mqtt.port} connected (this command came over it)"
        checks += [Check("broker", True, PASS, value), Check("broker_login", True, PASS,
                                                            f"as {config.mqtt.username}")]
    else:
        checks.append(_fail("broker", True, "agent not connected", "Periksa sinyal dan server",
                            "Check the signal and the broker"))
    return SelfTestResult(checks, config.kit.id, now, source)


def agent_answer(result: SelfTestResult, *, device_problems: Iterable[str] = (),
                 keys_mode: str, disk_free_mib: int) -> dict[str, Any]:
    """The office command's answer: the fields the office already reads (``store``,
    ``gnss``, ``modem``, ``battery``, ``disk_free_mib``, ``keys``, ``problems``; see
    office/alerts.py ``SelfTest.faults`` and office/web/commands.py ``result_text``) and
    ``failed``, every failed check by name. A failed required check also goes into
    ``problems``, so the office's failed-self-test alert fires for it."""

    def status(name: str) -> Check | None:
        return result.check(name)

    store = status("store")
    gnss, fix = status("gnss"), status("gnss_fix")
    modem, network = status("modem"), status("network")
    battery = status("battery")
    if gnss is None or gnss.status in (SKIP, FAIL):  # switched off, held, or not talking
        gnss_word = "absent"
    else:
        gnss_word = "fix" if fix is not None and fix.status == PASS else "no_fix"
    if modem is None or modem.status != PASS:
        modem_word = "absent"
    else:
        modem_word = "registered" if network and network.status == PASS else "not_registered"
    battery_value: Any = "absent"
    if battery is not None and battery.status == PASS:
        battery_value = int(battery.value.split("%")[0])
    elif battery is not None and battery.status == FAIL and "unreadable" in battery.value:
        battery_value = "unreadable"
    store_value = "ok" if store is not None and store.status == PASS else (
        store.value.removeprefix("quick_check: ") if store is not None else "unchecked")
    problems = list(device_problems) + [f"selftest_{n}" for n in
                                        result.failed(required_only=True)]
    # Every check's status, and what was found where it did not pass (figures and device
    # errors, never personal data), so the office shows each device, not only a summary.
    return {"store": store_value, "gnss": gnss_word, "modem": modem_word,
            "battery": battery_value, "disk_free_mib": disk_free_mib, "keys": keys_mode,
            "problems": ",".join(problems)[:200], "failed": ",".join(result.failed())[:200],
            "checks": {c.name: c.status for c in result.checks},
            "notes": {c.name: c.value[:120] for c in result.checks if c.status != PASS}}
