"""An emulated LTE modem: the AT command port of a SIMCom SIM7600E-H or a Quectel EC25.

It answers, byte for byte in the V.250 "verbose" format, the queries the
kit's driver sends and the ones a technician types in a terminal::

    AT  ATE0  ATE1  ATI  AT+CGMI  AT+CGMM  AT+CGMR  AT+CGSN  AT+CPIN?  AT+CFUN?
    AT+CMEE=<n>  AT+CREG?  AT+CREG=<n>  AT+CEREG?  AT+CEREG=<n>  AT+CGREG?
    AT+COPS?  AT+COPS=3,<format>  AT+COPS=0  AT+CSQ  AT+CESQ
    AT+CPSI? (SIM7600 only)   AT+QENG="servingcell" (EC25 only)

Anything else answers ``ERROR``, as a real modem does for an unknown
command. Characters are echoed as they arrive while echo is on (the
power-up default; ``ATE0`` turns it off). With ``AT+CREG=1`` /
``AT+CEREG=1`` a change of registration is announced unsolicited
(``+CREG: 5``). Replies are paced at the port's baud rate.

The network is Telkomsel LTE band 3 by default; controls change the
signal, registration and operator, and inject faults from outside the
wire (``CONTROLS``). ``unplug``/``replug`` is a power cycle: echo comes
back on, settings reset, and the boot messages (``RDY``, ``+CPIN: READY``,
``SMS DONE``, ``PB DONE``) are sent.

The IMEI is made up (valid check digit, fictional serial).

>>> modem = ModemEmulator(tmp_path / "modem", baud=115200)   # doctest: +SKIP
>>> modem.start(); modem.control("signal", "-83")             # doctest: +SKIP
'RSSI -83 dBm (CSQ 15)'
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sensors.emulated.port import EmulatedPort, PortUnplugged

log = logging.getLogger(__name__)


def luhn_digit(digits: str) -> str:
    """The check digit that completes an IMEI (Luhn, as 3GPP TS 23.003 specifies)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class ModelIdentity:
    manufacturer: str
    model: str
    revision: str
    imei: str
    ati: tuple[str, ...]
    boot: tuple[str, ...]


def _identities() -> dict[str, ModelIdentity]:
    sim_imei = "86123405123456"  # fictional TAC and serial
    sim_imei += luhn_digit(sim_imei)
    ec_imei = "86769804127654"
    ec_imei += luhn_digit(ec_imei)
    return {
        "sim7600": ModelIdentity(
            manufacturer="SIMCOM INCORPORATED",
            model="SIMCOM_SIM7600E-H",
            revision="SIM7600M22_V2.0",
            imei=sim_imei,
            ati=("Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600E-H",
                 "Revision: SIM7600M22_V2.0", f"IMEI: {sim_imei}", "+GCAP: +CGSM"),
            boot=("RDY", "+CPIN: READY", "SMS DONE", "PB DONE"),
        ),
        "ec25": ModelIdentity(
            manufacturer="Quectel",
            model="EC25",
            revision="EC25EFAR06A06M4G",
            imei=ec_imei,
            ati=("Quectel", "EC25", "Revision: EC25EFAR06A06M4G"),
            boot=("RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE",
                  "+QIND: PB DONE"),
        ),
    }


IDENTITIES = _identities()

# MCC-MNC facts; the long names are what the emulator shows in +COPS.
NETWORKS = {
    "telkomsel": ("510-10", "Telkomsel"),
    "indosat": ("510-01", "Indosat"),
    "xl": ("510-11", "XL"),
}
REGISTRATION = {"home": 1, "roaming": 5, "searching": 2, "denied": 3}

# The serving cell: an LTE band 3 (1800 MHz) cell, 20 MHz wide, near Kanigoro (made up).
TAC, CELL_ID, PCI, BAND, EARFCN, BANDWIDTH_CODE = 0x2B6C, 0x1A2D001, 291, 3, 1850, 5


class ModemEmulator:
    """An LTE modem's AT port on a pty linked at ``link``, replies paced at ``baud``."""

    CONTROLS: ClassVar[dict[str, str]] = {
        "model": "model sim7600|ec25: answer as a SIMCom SIM7600E-H or a Quectel EC25",
        "signal": "signal <rssi_dbm>: received signal strength, -113..-51 dBm (AT+CSQ)",
        "rsrp": "rsrp <dbm> [rsrq_db] [sinr_db]: LTE signal power, quality and SINR",
        "register": "register home|roaming|searching|denied: network registration state",
        "operator": "operator telkomsel|indosat|xl|<MCC-MNC>: the network camped on",
        "echo": "echo on|off: command echo, as ATE1/ATE0 would set it",
        "error": "error: the next command answers ERROR",
        "cme-error": "cme-error <n>: the next command answers +CME ERROR: n (10 = no SIM)",
        "silence": "silence <seconds>: the modem hangs - reads commands, answers nothing",
        "urc": "urc [TEXT]: send an unsolicited result code now (default RING)",
        "urc-in-reply": "urc-in-reply [TEXT]: put an unsolicited code inside the next reply",
        "unplug": "unplug: pull the USB cable; the port disappears",
        "replug": "replug: plug it back; the modem boots (echo on, settings reset)",
    }

    def __init__(self, link: str | Path, baud: int = 115200, *, model: str = "sim7600") -> None:
        if model not in IDENTITIES:
            raise ValueError(f"model must be one of {', '.join(IDENTITIES)}")
        self.link = Path(link)
        self.baud = baud
        self._port: EmulatedPort | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # radio state (survives a power cycle)
        self.model = model
        self.rssi_dbm = -75.0
        self.rsrp_dbm = -95.0
        self.rsrq_db = -10.0
        self.sinr_db = 13.0
        self.registration = "home"
        self.network = NETWORKS["telkomsel"]
        self._silent_until = 0.0
        self._next_error: str | None = None
        self._urc_now: list[str] = []
        self._urc_in_reply: list[str] = []
        self._reset_settings()

    def _reset_settings(self) -> None:
        """Power-up defaults of the AT interface."""
        self.echo = True
        self.cmee = 0
        self.creg_mode = 0
        self.cereg_mode = 0
        self.cgreg_mode = 0
        self.cops_format = 0
        self._line = bytearray()

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._port = EmulatedPort(self.link, self.baud)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="modem-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._port is not None:
            self._port.close()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def __enter__(self) -> ModemEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls -------------------------------------------------------------------------------
    def control(self, name: str, *args: str) -> str:
        """Apply one of :attr:`CONTROLS`; ValueError with the reason if it is not one."""
        if name not in self.CONTROLS:
            raise ValueError(f"unknown control '{name}' (known: {', '.join(self.CONTROLS)})")
        with self._lock:
            if name == "model":
                choice = _one(args, name, tuple(IDENTITIES))
                self.model = choice
                return f"now a {IDENTITIES[choice].model}"
            if name == "signal":
                _count(args, name, 1, 1)
                self.rssi_dbm = _number(args[0], "rssi_dbm", -120, -40)
                return f"RSSI {self.rssi_dbm:g} dBm (CSQ {self._csq()})"
            if name == "rsrp":
                _count(args, name, 1, 3)
                self.rsrp_dbm = _number(args[0], "rsrp dBm", -150, -40)
                if len(args) > 1:
                    self.rsrq_db = _number(args[1], "rsrq dB", -30, 0)
                if len(args) > 2:
                    self.sinr_db = _number(args[2], "sinr dB", -20, 30)
                return (f"RSRP {self.rsrp_dbm:g} dBm, RSRQ {self.rsrq_db:g} dB, "
                        f"SINR {self.sinr_db:g} dB")
            if name == "register":
                self.registration = _one(args, name, tuple(REGISTRATION))
                self._announce_registration()
                return f"registration {self.registration}"
            if name == "operator":
                _count(args, name, 1, 1)
                key = args[0].lower()
                if key in NETWORKS:
                    self.network = NETWORKS[key]
                elif len(key) in (6, 7) and key[3] == "-" and key.replace("-", "").isdigit():
                    self.network = (key, key)
                else:
                    raise ValueError(f"operator must be {', '.join(NETWORKS)} or MCC-MNC "
                                     f"like 510-10, not '{args[0]}'")
                return f"operator {self.network[1]} ({self.network[0]})"
            if name == "echo":
                self.echo = _one(args, name, ("on", "off")) == "on"
                return f"echo {'on' if self.echo else 'off'}"
            if name == "error":
                _count(args, name, 0, 0)
                self._next_error = "ERROR"
                return "the next command answers ERROR"
            if name == "cme-error":
                _count(args, name, 1, 1)
                code = int(_number(args[0], "CME error", 0, 999))
                self._next_error = f"+CME ERROR: {code}"
                return f"the next command answers +CME ERROR: {code}"
            if name == "silence":
                _count(args, name, 1, 1)
                seconds = _number(args[0], "seconds", 0, 3600)
                self._silent_until = time.monotonic() + seconds
                return f"silent for {seconds:g} s"
            if name in ("urc", "urc-in-reply"):
                text = " ".join(args) if args else "RING"
                if not text.isprintable() or len(text) > 200:
                    raise ValueError("the URC must be printable text up to 200 characters")
                (self._urc_now if name == "urc" else self._urc_in_reply).append(text)
                return f"queued {text!r}"
        port = self._port
        if port is None:
            raise ValueError("the emulator is not started")
        _count(args, name, 0, 0)
        if name == "unplug":
            port.unplug()
            return "unplugged"
        port.replug()
        with self._lock:
            self._reset_settings()
            self._urc_now.extend(IDENTITIES[self.model].boot)
        return f"plugged in at {port.path}; booted"

    # -- the device loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            port = self._port
            if port is None or not port.plugged:
                self._stop.wait(0.02)
                continue
            try:
                data = port.read(512, timeout=0.02)
                with self._lock:
                    urcs, self._urc_now = self._urc_now, []
                if urcs:
                    port.write(b"".join(_line(u) for u in urcs))
                if data:
                    self._receive(port, data)
            except PortUnplugged:
                continue

    def _receive(self, port: EmulatedPort, data: bytes) -> None:
        with self._lock:
            if time.monotonic() < self._silent_until:
                self._line.clear()
                return  # hung: input is swallowed, nothing echoed or answered
            echo = self.echo
        if echo:
            port.write(data)
        for byte in data:
            if byte in (0x0D,):  # S3: the command line ends at CR
                line = self._line.decode("latin-1").strip()
                self._line.clear()
                if line:
                    reply = self._answer(line)
                    if reply:
                        port.write(reply)
            elif byte == 0x08:  # S5: backspace, for a technician typing in a terminal
                del self._line[-1:]
            elif byte != 0x0A and len(self._line) < 560:
                self._line.append(byte)

    def _answer(self, line: str) -> bytes:
        """The bytes a modem sends back for one command line."""
        if line[:2].upper() != "AT":
            return b""  # not a command: a real modem ignores it
        with self._lock:
            inserted, self._urc_in_reply = self._urc_in_reply, []
            error, self._next_error = self._next_error, None
            if error is None:
                info, final = self._execute(line)
            else:
                info, final = [], error
            if final.startswith("+CME ERROR:") and self.cmee != 1:
                if self.cmee == 0:
                    final = "ERROR"
                else:
                    final = f"+CME ERROR: {_CME_TEXT.get(final.split(':')[1].strip(), 'unknown')}"
        out = b"".join(_line(u) for u in inserted)
        out += b"".join(_line(text) for text in info)
        return out + _line(final)

    # -- commands -------------------------------------------------------------------------------
    def _execute(self, line: str) -> tuple[list[str], str]:
        command = line.upper()  # V.250: command names are case-insensitive
        ident = IDENTITIES[self.model]
        simple: dict[str, list[str]] = {
            "AT": [],
            "ATI": list(ident.ati),
            "AT+CGMI": [ident.manufacturer], "AT+GMI": [ident.manufacturer],
            "AT+CGMM": [ident.model], "AT+GMM": [ident.model],
            "AT+CGMR": [f"+CGMR: {ident.revision}" if self.model == "sim7600"
                        else f"Revision: {ident.revision}"],
            "AT+CGSN": [ident.imei], "AT+GSN": [ident.imei],
            "AT+CPIN?": ["+CPIN: READY"],
            "AT+CFUN?": ["+CFUN: 1"],
            "AT+CMEE?": [f"+CMEE: {self.cmee}"],
            "AT+CSQ": [f"+CSQ: {self._csq()},99"],
            "AT+CESQ": [self._cesq()],
            "AT+COPS?": [self._cops()],
            "AT+CREG?": [self._registration_read("+CREG", self.creg_mode, "LAC")],
            "AT+CEREG?": [self._registration_read("+CEREG", self.cereg_mode, "TAC")],
            "AT+CGREG?": [self._registration_read("+CGREG", self.cgreg_mode, "LAC")],
        }
        if command in simple:
            return simple[command], "OK"
        if command in ("ATE", "ATE0", "ATE1"):
            self.echo = command == "ATE1"
            return [], "OK"
        if command == "AT+CPSI?" and self.model == "sim7600":
            return [self._cpsi()], "OK"
        if command == 'AT+QENG="SERVINGCELL"' and self.model == "ec25":
            return [self._qeng()], "OK"
        for prefix, attribute in (("AT+CMEE=", "cmee"), ("AT+CREG=", "creg_mode"),
                                  ("AT+CEREG=", "cereg_mode"), ("AT+CGREG=", "cgreg_mode")):
            if command.startswith(prefix):
                value = command[len(prefix):]
                if value in ("0", "1", "2"):
                    setattr(self, attribute, int(value))
                    return [], "OK"
                return [], "+CME ERROR: 50"  # incorrect parameters
        if command in ("AT+COPS=0", "AT+COPS=3,0", "AT+COPS=3,1", "AT+COPS=3,2"):
            if command.startswith("AT+COPS=3,"):
                self.cops_format = int(command[-1])
            return [], "OK"
        return [], "ERROR"

    # -- answers, from the radio state ----------------------------------------------------------
    @property
    def _registered(self) -> bool:
        return self.registration in ("home", "roaming")

    def _csq(self) -> int:
        if self.registration == "searching":
            return 99
        return max(0, min(31, round((self.rssi_dbm + 113) / 2)))

    def _cesq(self) -> str:
        if self.registration == "searching":
            return "+CESQ: 99,99,255,255,255,255"
        rsrq = max(0, min(34, round((self.rsrq_db + 20) * 2)))
        rsrp = max(0, min(97, round(self.rsrp_dbm + 141)))
        return f"+CESQ: 99,99,255,255,{rsrq},{rsrp}"

    def _cops(self) -> str:
        if not self._registered:
            return "+COPS: 0"
        mcc_mnc, name = self.network
        oper = mcc_mnc.replace("-", "") if self.cops_format == 2 else name
        return f'+COPS: 0,{self.cops_format},"{oper}",7'

    def _registration_read(self, prefix: str, mode: int, area: str) -> str:
        stat = REGISTRATION[self.registration]
        if mode == 2 and self._registered:
            return f'{prefix}: {mode},{stat},"{TAC:04X}","{CELL_ID:08X}",7'
        return f"{prefix}: {mode},{stat}"

    def _registration_urc(self, prefix: str, mode: int) -> str | None:
        stat = REGISTRATION[self.registration]
        if mode == 1 or (mode == 2 and not self._registered):
            return f"{prefix}: {stat}"
        if mode == 2:
            return f'{prefix}: {stat},"{TAC:04X}","{CELL_ID:08X}",7'
        return None

    def _announce_registration(self) -> None:
        for prefix, mode in (("+CREG", self.creg_mode), ("+CEREG", self.cereg_mode),
                             ("+CGREG", self.cgreg_mode)):
            urc = self._registration_urc(prefix, mode)
            if urc is not None:
                self._urc_now.append(urc)

    def _cpsi(self) -> str:
        if not self._registered:
            return "+CPSI: NO SERVICE,Online"
        return (f"+CPSI: LTE,Online,{self.network[0]},0x{TAC:04X},{CELL_ID},{PCI},"
                f"EUTRAN-BAND{BAND},{EARFCN},{BANDWIDTH_CODE},{BANDWIDTH_CODE},"
                f"{round(self.rsrq_db * 10)},{round(self.rsrp_dbm * 10)},"
                f"{round(self.rssi_dbm * 10)},{round(self.sinr_db)}")

    def _qeng(self) -> str:
        if not self._registered:
            return '+QENG: "servingcell","SEARCH"'
        mcc, mnc = self.network[0].split("-")
        sinr = max(0, min(250, round((self.sinr_db + 20) * 5)))
        srxlev = max(0, round(self.rsrp_dbm + 140))
        return (f'+QENG: "servingcell","NOCONN","LTE","FDD",{mcc},{mnc},{CELL_ID:X},{PCI},'
                f"{EARFCN},{BAND},{BANDWIDTH_CODE},{BANDWIDTH_CODE},{TAC:X},"
                f"{round(self.rsrp_dbm)},{round(self.rsrq_db)},{round(self.rssi_dbm)},"
                f"{sinr},{srxlev}")


_CME_TEXT = {"3": "operation not allowed", "4": "operation not supported",
             "10": "SIM not inserted", "11": "SIM PIN required", "12": "SIM PUK required",
             "13": "SIM failure", "14": "SIM busy", "15": "SIM wrong", "30": "no network service",
             "50": "incorrect parameters", "100": "unknown"}


def _line(text: str) -> bytes:
    """One V.250 verbose response: CR LF text CR LF."""
    return b"\r\n" + text.encode("latin-1") + b"\r\n"


def _one(args: tuple[str, ...], name: str, choices: tuple[str, ...]) -> str:
    if len(args) != 1 or args[0].lower() not in choices:
        raise ValueError(f"{name} needs one of: {' | '.join(choices)}")
    return args[0].lower()


def _count(args: tuple[str, ...], name: str, low: int, high: int) -> None:
    if not low <= len(args) <= high:
        wanted = f"{low}" if low == high else f"{low} to {high}"
        raise ValueError(f"{name} takes {wanted} argument(s), got {len(args)}")


def _number(text: str, what: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{what} {text} is outside {low:g}..{high:g}")
    return value
