"""The kit's LTE modem: registration, operator and signal, asked over AT commands.

The modem (SIMCom SIM7600 or Quectel EC25 on USB) exposes an AT command
port (``/dev/ttyUSB2`` on a SIM7600). The kit only asks questions on it --
it never dials -- so a status read is a handful of 3GPP TS 27.007 queries:

* ``AT+CREG?`` / ``AT+CEREG?`` -- registration (circuit / LTE packet domain);
* ``AT+COPS?`` -- the operator and the access technology;
* ``AT+CSQ`` -- RSSI, ``dBm = -113 + 2 x rssi`` (0..31; 99 = unknown);
* ``AT+CESQ`` -- LTE RSRP ``= value - 141`` dBm and RSRQ ``= -20 + value / 2`` dB;
* ``AT+CPSI?`` (SIMCom) or ``AT+QENG="servingcell"`` (Quectel) -- the serving
  cell with finer RSRP/RSRQ and the SINR. The model is read once with
  ``AT+CGMM`` (``ATI`` if that fails) to pick the variant.

The AT channel is text in lines. A reply is the command's echo (if echo is
on), information lines, and one final result code: ``OK``, ``ERROR`` or
``+CME ERROR: <n>``. Unsolicited result codes (``RING``, ``+CREG: 1``,
``SMS DONE``...) may arrive at any moment, even in the middle of a reply;
:class:`AtTransaction` sets them aside so they never pass for an answer.
:class:`AtLineReader` and :class:`AtTransaction` work on bytes and lines
alone (no port), so tests and the fuzzer feed them directly.

Every command has a timeout and nothing waits past it: a silent modem is a
:class:`DeviceError` naming the command, an ``ERROR`` is a
:class:`ModemCommandError`, a vanished port is reopened on the next call.

Units of the vendor reports, from their AT manuals: SIM7600 ``+CPSI`` gives
RSRQ, RSRP and RSSI in tenths of dB/dBm and RSSNR in dB. Quectel
``+QENG`` gives RSRP, RSRQ and RSSI in whole dB/dBm and SINR as
``0..250 = -20..+30 dB`` (1/5 dB steps). For RSRP/RSRQ the serving-cell
report wins over CESQ when both are known (it is finer on a SIM7600).

>>> with AtModem("/dev/jaranijo/modem") as modem:     # doctest: +SKIP
...     status = modem.status()
>>> status.operator, status.rssi_dbm                   # doctest: +SKIP
('Telkomsel', -83)
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import serial

from sensors.errors import DeviceError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEVICE = "modem"
MAX_LINE = 1024  # the longest reply line we accept; ATI and +QENG stay well under it
READ_SLICE_S = 0.05  # one blocking read; a command may overrun its timeout by this much

REGISTRATION_STATES = {
    0: "not_registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming",
    6: "home_sms_only", 7: "roaming_sms_only", 8: "emergency_only",
    9: "home_csfb_not_preferred", 10: "roaming_csfb_not_preferred",
}
REGISTERED = (1, 5)  # registered with data service, home or roaming
ACCESS_TECH = {
    0: "GSM", 1: "GSM", 2: "UMTS", 3: "EDGE", 4: "HSDPA", 5: "HSUPA", 6: "HSPA", 7: "LTE",
    8: "EC-GSM-IoT", 9: "NB-IoT", 10: "LTE", 11: "NR", 12: "NR", 13: "EN-DC",
}
# MCC-MNC of the networks a Kabupaten Blitar kit may use (MCC 510 = Indonesia).
OPERATORS = {"510-10": "Telkomsel", "510-01": "Indosat", "510-11": "XL"}

# 3GPP TS 27.007 section 9.2 codes an officer can act on, with what to do.
CME_ERRORS: dict[int, tuple[str, str, str, str]] = {
    3: ("Modem menolak operasi ini", "The modem does not allow this operation",
        "Tunggu sebentar lalu coba lagi", "Wait a moment and try again"),
    4: ("Modem tidak mendukung operasi ini", "The modem does not support this operation",
        "Laporkan ke teknisi", "Report it to the technician"),
    10: ("Kartu SIM tidak terpasang", "No SIM card inserted",
         "Pasang kartu SIM lalu mulai ulang kit", "Insert the SIM card and restart the kit"),
    11: ("Kartu SIM meminta PIN", "The SIM card asks for its PIN",
         "Laporkan ke teknisi: PIN SIM harus dimatikan",
         "Tell the technician: the SIM PIN must be disabled"),
    12: ("Kartu SIM terkunci (PUK)", "The SIM card is locked (PUK)",
         "Serahkan kartu SIM ke teknisi", "Hand the SIM card to the technician"),
    13: ("Kartu SIM rusak", "The SIM card has failed",
         "Ganti kartu SIM", "Replace the SIM card"),
    14: ("Kartu SIM sedang sibuk", "The SIM card is busy",
         "Tunggu beberapa detik lalu coba lagi", "Wait a few seconds and try again"),
    15: ("Kartu SIM salah", "Wrong SIM card",
         "Pasang kartu SIM kantor", "Insert the office SIM card"),
    30: ("Tidak ada layanan jaringan", "No network service",
         "Pindah ke tempat dengan sinyal lebih baik", "Move to a place with better signal"),
    31: ("Jaringan tidak menjawab", "The network timed out",
         "Coba lagi sebentar lagi", "Try again in a moment"),
    100: ("Kesalahan modem yang tidak diketahui", "Unknown modem error",
          "Coba lagi; bila berulang, mulai ulang kit",
          "Try again; if it keeps happening, restart the kit"),
}
_CME_VERBOSE = {"SIM NOT INSERTED": 10, "SIM PIN REQUIRED": 11, "SIM PUK REQUIRED": 12,
                "SIM FAILURE": 13, "SIM BUSY": 14, "SIM WRONG": 15,
                "NO NETWORK SERVICE": 30, "NETWORK TIMEOUT": 31, "UNKNOWN": 100,
                "OPERATION NOT ALLOWED": 3, "OPERATION NOT SUPPORTED": 4}

# Lines a modem sends on its own. +CREG/+CEREG/+CGREG are told apart from a
# read reply by their shape (see is_registration_urc).
URC_PREFIXES = (
    "RING", "+CRING:", "+CLIP:", "+CMTI:", "+CMT:", "+CDS:", "+CBM:", "+CGEV:", "+CUSD:",
    "NO CARRIER", "RDY", "+CPIN:", "SMS DONE", "PB DONE", "+CFUN:", "+QIND:", "+QUSIM:",
    "POWERED DOWN", "NORMAL POWER DOWN", "+CTZV:", "+CTZE:", "+QNITZ:", "*PSUTTZ:", "DST:",
    "+CNTP:", "+SIMCARD:", "+CPSI: ", "+QSTAT:",
)
REGISTRATION_PREFIXES = ("+CREG:", "+CEREG:", "+CGREG:", "+C5GREG:")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class AtParseError(ValueError):
    """An information line that does not say what its command promises, and why.

    Only the ``parse_*`` functions raise it; the driver turns it into a
    :class:`DeviceError` (code ``modem_garbled``) in the status.
    """


class ModemCommandError(DeviceError):
    """The modem answered a command with ``ERROR`` or ``+CME ERROR: <n>``.

    ``cme`` is the 27.007 error number when the modem gave one (None for a
    bare ``ERROR``); ``final`` is the result line as received.
    """

    def __init__(self, operation: str, final: str) -> None:
        self.final = final
        self.cme = cme_code(final)
        if self.cme is not None and self.cme in CME_ERRORS:
            msg_id, msg_en, hint_id, hint_en = CME_ERRORS[self.cme]
            super().__init__(
                DEVICE, operation, code="modem_cme",
                id=f"{msg_id} ({operation}: CME {self.cme})",
                en=f"{msg_en} ({operation}: CME {self.cme})",
                hint_id=hint_id, hint_en=hint_en,
            )
        elif self.cme is not None:
            super().__init__(
                DEVICE, operation, code="modem_cme",
                id=f"Modem menolak {operation} (CME {self.cme})",
                en=f"The modem refused {operation} (CME {self.cme})",
                hint_id="Coba lagi; bila berulang, laporkan kode ini ke teknisi",
                hint_en="Try again; if it keeps happening, report this code to the technician",
            )
        else:
            super().__init__(
                DEVICE, operation, code="modem_error",
                id=f"Modem menolak perintah {operation} ({final})",
                en=f"The modem refused {operation} ({final})",
                hint_id="Coba lagi; model modem ini mungkin tidak mendukung perintah tersebut",
                hint_en="Try again; this modem model may not support the command",
            )


def cme_code(final: str) -> int | None:
    """The error number in ``+CME ERROR: 10`` (or its verbose form), else None."""
    for prefix in ("+CME ERROR:", "+CMS ERROR:"):
        if final.startswith(prefix):
            text = final[len(prefix):].strip()
            if text.isdigit() and len(text) <= 5:
                return int(text)
            return _CME_VERBOSE.get(text.upper())
    return None


def _no_reply(operation: str, timeout: float, garbled: int) -> DeviceError:
    extra_id = f"; {garbled} baris tak terbaca" if garbled else ""
    extra_en = f"; {garbled} unreadable lines" if garbled else ""
    return DeviceError(
        DEVICE, operation, code="modem_no_reply",
        id=f"Modem tidak menjawab {operation} dalam {timeout:.1f} detik{extra_id}",
        en=f"The modem did not answer {operation} within {timeout:.1f} s{extra_en}",
        hint_id=("Tunggu sebentar lalu coba lagi; bila berulang, cabut-pasang modem atau "
                 "mulai ulang kit"),
        hint_en=("Wait a moment and try again; if it keeps happening, unplug and replug the "
                 "modem or restart the kit"),
    )


def _disconnected(port: str, operation: str, reason: str) -> DeviceError:
    return DeviceError(
        DEVICE, operation, code="modem_disconnected",
        id=f"Modem tidak terhubung di {port} ({reason})",
        en=f"The modem is not connected at {port} ({reason})",
        hint_id="Periksa kabel USB modem; kit mencoba lagi pada permintaan berikutnya",
        hint_en="Check the modem's USB cable; the kit tries again on the next request",
    )


# ---------------------------------------------------------------------------------------------
# Bytes to lines, lines to a reply
# ---------------------------------------------------------------------------------------------


@dataclass
class AtCounters:
    """Trouble seen on the AT channel since it was opened."""

    lines: int = 0
    garbled: int = 0  # lines dropped: unprintable bytes or too long
    urcs: int = 0
    timeouts: int = 0
    reconnects: int = 0


class AtLineReader:
    """Cuts the modem's bytes into text lines; never raises.

    A line ends at CR or LF (echo ends in a bare CR, replies in CR LF);
    empty lines are skipped. A line with bytes outside printable ASCII, or
    longer than :data:`MAX_LINE`, is dropped and counted in ``garbled``.

    >>> AtLineReader().feed(b"AT+CSQ\\r\\r\\n+CSQ: 15,99\\r\\n\\r\\nOK\\r\\n")
    ['AT+CSQ', '+CSQ: 15,99', 'OK']
    """

    def __init__(self, counters: AtCounters | None = None) -> None:
        self.counters = counters or AtCounters()
        self._buffer = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        self._buffer += data
        while True:
            cr, lf = self._buffer.find(b"\r"), self._buffer.find(b"\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                if len(self._buffer) > MAX_LINE:
                    if not self._overlong:
                        self.counters.garbled += 1
                    self._overlong = True
                    self._buffer.clear()
                break
            end = min(ends)
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._overlong:
                self._overlong = False  # the tail of a line already counted
                continue
            text = raw.strip(b" \t")
            if not text:
                continue
            if len(text) > MAX_LINE or any(b < 32 or b > 126 for b in text if b != 9):
                self.counters.garbled += 1
                continue
            self.counters.lines += 1
            out.append(text.decode("ascii"))
        return out

    def clear(self) -> None:
        self._buffer.clear()
        self._overlong = False


def is_final(line: str) -> bool:
    return line in ("OK", "ERROR") or line.startswith(("+CME ERROR:", "+CMS ERROR:"))


def is_registration_urc(line: str) -> bool:
    """True for ``+CREG: 1`` or ``+CEREG: 1,"2B6C",...``; False for a read reply ``+CREG: 0,1``.

    A read reply starts with the report mode ``<n>`` and then ``<stat>``;
    the unsolicited code starts with ``<stat>``, followed (mode 2) by a
    quoted area code or an empty field.
    """
    try:
        values = _fields(line.split(":", 1)[1])
    except (IndexError, AtParseError):
        return False
    if len(values) == 1:
        return True
    return values[1] == "" or values[1].startswith('"')


def is_urc(line: str, prefix: str | None = None) -> bool:
    """True if ``line`` is an unsolicited result code, given the reply ``prefix`` awaited."""
    for registration in REGISTRATION_PREFIXES:
        if line.startswith(registration):
            return registration != prefix or is_registration_urc(line)
    if prefix is not None and line.startswith(prefix):
        return False
    return line.startswith(URC_PREFIXES)


@dataclass
class AtReply:
    """One command's answer: information lines, the final result, URCs seen meanwhile."""

    command: str
    lines: list[str] = field(default_factory=list)
    final: str | None = None
    urcs: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)  # neither the answer nor a known URC
    echoed: bool = False

    @property
    def ok(self) -> bool:
        return self.final == "OK"


class AtTransaction:
    """Sorts the lines that follow a command into its reply; never raises.

    ``prefix`` is what the information lines start with (``+CSQ:``); None
    for commands whose answer is bare text (``ATI``, ``AT+CGMM``). Feed
    lines until :meth:`feed` returns True (a final result arrived).

    >>> tx = AtTransaction("AT+CREG?", "+CREG:")
    >>> [tx.feed(line) for line in ["AT+CREG?", "+CREG: 5", "+CREG: 1,1", "OK"]]
    [False, False, False, True]
    >>> tx.reply.lines, tx.reply.urcs, tx.reply.echoed
    (['+CREG: 1,1'], ['+CREG: 5'], True)
    """

    def __init__(self, command: str, prefix: str | None = None) -> None:
        self.command = command
        self.prefix = prefix
        self.reply = AtReply(command)
        self.done = False

    def feed(self, line: str) -> bool:
        if self.done:
            return True
        reply = self.reply
        if (not reply.echoed and not reply.lines and not reply.stray
                and line.upper() == self.command.upper()):
            reply.echoed = True
        elif is_final(line):
            reply.final = line
            self.done = True
        elif is_urc(line, self.prefix):
            reply.urcs.append(line)
        elif self.prefix is None or line.startswith(self.prefix):
            reply.lines.append(line)
        else:
            reply.stray.append(line)
        return self.done


# ---------------------------------------------------------------------------------------------
# Parsers of information lines (pure; raise AtParseError only)
# ---------------------------------------------------------------------------------------------


def _fields(text: str) -> list[str]:
    """Comma-separated values; quoted ones keep their quotes so callers can tell."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text.strip():
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise AtParseError(f"unterminated quote in '{text}'")
    out.append("".join(current).strip())
    return out


def _after(line: str, prefix: str) -> list[str]:
    if not line.startswith(prefix):
        raise AtParseError(f"expected '{prefix}', got '{line[:40]}'")
    return _fields(line[len(prefix):])


def _int(text: str, what: str, low: int, high: int, base: int = 10) -> int:
    text = text.strip().strip('"')
    if base == 16 and text.lower().startswith("0x"):
        text = text[2:]
    pattern = r"[0-9A-Fa-f]{1,8}" if base == 16 else r"[-+]?\d{1,10}"
    if not re.fullmatch(pattern, text):
        raise AtParseError(f"{what} '{text[:20]}' is not a number")
    value = int(text, base)
    if not low <= value <= high:
        raise AtParseError(f"{what} {value} is outside {low}..{high}")
    return value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def csq_to_dbm(rssi: int) -> int | None:
    """``+CSQ`` rssi to dBm: 0 -> -113 or less, 2..30 -> -109..-53, 31 -> -51 or more, 99 -> None.

    >>> csq_to_dbm(15)
    -83
    """
    if rssi == 99:
        return None
    if not 0 <= rssi <= 31:
        raise AtParseError(f"CSQ rssi {rssi} is outside 0..31 and not 99")
    return -113 + 2 * rssi


def parse_csq(line: str) -> int | None:
    """``+CSQ: <rssi>,<ber>`` -> RSSI in dBm, None when unknown."""
    values = _after(line, "+CSQ:")
    if len(values) != 2:
        raise AtParseError(f"CSQ needs 2 values, got {len(values)}")
    _int(values[1], "CSQ ber", 0, 99)
    return csq_to_dbm(_int(values[0], "CSQ rssi", 0, 99))


def parse_cesq(line: str) -> tuple[float | None, float | None]:
    """``+CESQ: rxlev,ber,rscp,ecno,rsrq,rsrp`` -> (RSRQ dB, RSRP dBm); None when 255."""
    values = _after(line, "+CESQ:")
    if len(values) != 6:
        raise AtParseError(f"CESQ needs 6 values, got {len(values)}")
    rsrq, rsrp = _int(values[4], "CESQ rsrq", 0, 255), _int(values[5], "CESQ rsrp", 0, 255)
    if rsrq != 255 and rsrq > 34:
        raise AtParseError(f"CESQ rsrq {rsrq} is outside 0..34")
    if rsrp != 255 and rsrp > 97:
        raise AtParseError(f"CESQ rsrp {rsrp} is outside 0..97")
    return (None if rsrq == 255 else -20.0 + 0.5 * rsrq,
            None if rsrp == 255 else float(rsrp - 141))


@dataclass(frozen=True)
class Registration:
    """A ``+CREG?``/``+CEREG?`` read reply: report mode, state, area and cell."""

    mode: int
    stat: int
    area: str | None = None
    cell: str | None = None
    access_tech: int | None = None

    @property
    def state(self) -> str:
        return REGISTRATION_STATES.get(self.stat, "unknown")

    @property
    def registered(self) -> bool:
        return self.stat in REGISTERED


def parse_registration(line: str) -> Registration:
    """``+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]`` (or +CEREG/+CGREG) as read with ``?``."""
    prefix = line.split(":", 1)[0] + ":"
    if prefix not in REGISTRATION_PREFIXES:
        raise AtParseError(f"not a registration reply: '{line[:40]}'")
    values = _after(line, prefix)
    if len(values) < 2 or is_registration_urc(line):
        raise AtParseError(f"'{line[:40]}' is not a read reply (<n>,<stat>...)")
    mode = _int(values[0], "report mode", 0, 5)
    stat = _int(values[1], "registration state", 0, 11)
    area = _unquote(values[2]) or None if len(values) > 2 else None
    cell = _unquote(values[3]) or None if len(values) > 3 else None
    act = _int(values[4], "access technology", 0, 13) if len(values) > 4 and values[4] else None
    return Registration(mode, stat, area, cell, act)


@dataclass(frozen=True)
class Operator:
    """A ``+COPS?`` reply: who the modem is registered with and over what."""

    mode: int
    name: str | None = None
    mcc_mnc: str | None = None
    access_tech: str | None = None


def parse_cops(line: str) -> Operator:
    """``+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]``; format 2 is numeric MCC+MNC."""
    values = _after(line, "+COPS:")
    mode = _int(values[0], "COPS mode", 0, 4)
    if len(values) == 1:
        return Operator(mode)
    if len(values) < 3:
        raise AtParseError("COPS has a format but no operator")
    fmt = _int(values[1], "COPS format", 0, 2)
    oper = _unquote(values[2])
    if not oper or '"' in oper:
        raise AtParseError(f"COPS operator {values[2]!r} is not a quoted name")
    act = ACCESS_TECH.get(_int(values[3], "COPS AcT", 0, 13)) if len(values) > 3 else None
    if fmt == 2:
        if not re.fullmatch(r"\d{5,6}", oper):
            raise AtParseError(f"COPS numeric operator '{oper}' is not MCC+MNC")
        mcc_mnc = f"{oper[:3]}-{oper[3:]}"
        return Operator(mode, OPERATORS.get(mcc_mnc, mcc_mnc), mcc_mnc, act)
    return Operator(mode, oper, None, act)


@dataclass(frozen=True)
class ServingCell:
    """The cell the modem camps on, as the vendor's report gives it."""

    access_tech: str | None
    mcc_mnc: str | None = None
    tac: int | None = None
    cell_id: int | None = None
    pci: int | None = None
    band: str | None = None
    earfcn: int | None = None
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    rssi_dbm: float | None = None
    sinr_db: float | None = None


def _mcc_mnc(mcc: str, mnc: str) -> str:
    mcc_v = _int(mcc, "MCC", 0, 999)
    mnc_t = mnc.strip().strip('"')
    mnc_v = _int(mnc_t, "MNC", 0, 999)
    return f"{mcc_v:03d}-{mnc_v:0{max(2, len(mnc_t))}d}"


def parse_cpsi(line: str) -> ServingCell:
    """SIMCom ``+CPSI:`` -> the serving cell.

    ``<mode>,<op>[,MCC-MNC,TAC,SCellID,PCellID,band,EARFCN,dlbw,ulbw,RSRQ,RSRP,RSSI,RSSNR]``
    with RSRQ/RSRP/RSSI in tenths; other modes (WCDMA, GSM) give MCC-MNC only.
    """
    values = _after(line, "+CPSI:")
    system = values[0].upper()
    if not system or not re.fullmatch(r"[A-Z0-9 _-]{2,20}", system):
        raise AtParseError(f"CPSI system mode '{values[0][:20]}' is not a name")
    if system == "NO SERVICE" or len(values) < 3:
        return ServingCell(access_tech=None)
    mcc, _, mnc = values[2].partition("-")
    mcc_mnc = _mcc_mnc(mcc, mnc) if mnc else None
    if mcc_mnc is None:
        raise AtParseError(f"CPSI MCC-MNC '{values[2][:20]}' is not MCC-MNC")
    if system != "LTE":
        return ServingCell(access_tech="UMTS" if system == "WCDMA" else system, mcc_mnc=mcc_mnc)
    if len(values) < 14:
        raise AtParseError(f"CPSI LTE needs 14 values, got {len(values)}")
    return ServingCell(
        access_tech="LTE",
        mcc_mnc=mcc_mnc,
        tac=_int(values[3], "CPSI TAC", 0, 0xFFFF, base=16),
        cell_id=_int(values[4], "CPSI cell id", 0, 0xFFFFFFF),
        pci=_int(values[5], "CPSI PCI", 0, 503),
        band=values[6] or None,
        earfcn=_int(values[7], "CPSI EARFCN", 0, 262143),
        rsrq_db=_int(values[10], "CPSI RSRQ", -400, 400) / 10.0 if values[10] else None,
        rsrp_dbm=_int(values[11], "CPSI RSRP", -1600, 0) / 10.0 if values[11] else None,
        rssi_dbm=_int(values[12], "CPSI RSSI", -1600, 0) / 10.0 if values[12] else None,
        sinr_db=float(_int(values[13], "CPSI RSSNR", -50, 60)) if values[13] else None,
    )


def parse_qeng_servingcell(line: str) -> ServingCell:
    """Quectel ``+QENG: "servingcell"`` -> the serving cell.

    ``"servingcell",<state>,"LTE",<is_tdd>,MCC,MNC,cellID,PCID,EARFCN,band,ULbw,DLbw,TAC,
    RSRP,RSRQ,RSSI,SINR,...``; fields after SINR differ between firmware and are not read.
    """
    values = _after(line, "+QENG:")
    if _unquote(values[0]).lower() != "servingcell" or len(values) < 2:
        raise AtParseError("QENG reply is not the serving cell")
    state = _unquote(values[1]).upper()
    if state not in ("SEARCH", "LIMSRV", "NOCONN", "CONNECT"):
        raise AtParseError(f"QENG state '{state[:20]}' is unknown")
    if state == "SEARCH" or len(values) < 3:
        return ServingCell(access_tech=None)
    rat = _unquote(values[2]).upper()
    if rat != "LTE":
        if not re.fullmatch(r"[A-Z0-9 _-]{2,20}", rat):
            raise AtParseError(f"QENG access technology '{rat[:20]}' is not a name")
        return ServingCell(access_tech="UMTS" if rat == "WCDMA" else rat)
    if len(values) < 17:
        raise AtParseError(f"QENG LTE needs at least 17 values, got {len(values)}")
    sinr_raw = _int(values[16], "QENG SINR", 0, 255) if values[16] not in ("", "-") else None
    return ServingCell(
        access_tech="LTE",
        mcc_mnc=_mcc_mnc(values[4], values[5]),
        cell_id=_int(values[6], "QENG cell id", 0, 0xFFFFFFF, base=16),
        pci=_int(values[7], "QENG PCI", 0, 503),
        earfcn=_int(values[8], "QENG EARFCN", 0, 262143),
        band=f"EUTRAN-BAND{_int(values[9], 'QENG band', 1, 255)}",
        tac=_int(values[12], "QENG TAC", 0, 0xFFFF, base=16),
        rsrp_dbm=float(_int(values[13], "QENG RSRP", -160, 0)) if values[13] else None,
        rsrq_db=float(_int(values[14], "QENG RSRQ", -40, 40)) if values[14] else None,
        rssi_dbm=float(_int(values[15], "QENG RSSI", -160, 0)) if values[15] else None,
        sinr_db=None if sinr_raw is None or sinr_raw > 250 else sinr_raw / 5.0 - 20.0,
    )


def modem_family(model_text: str) -> str:
    """``simcom``, ``quectel`` or ``unknown`` from what CGMM/ATI said."""
    text = model_text.upper()
    if "SIMCOM" in text or re.search(r"\bSIM7\d{3}", text):
        return "simcom"
    if "QUECTEL" in text or re.match(r"^(EC|EG|EM|BG|RM|EP)\d{2}", text):
        return "quectel"
    return "unknown"


# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModemStatus:
    """What the modem says about the network, in physical units.

    * ``registered`` -- attached for data, at home or roaming;
    * ``registration`` -- ``home``, ``roaming``, ``searching``, ``denied``,
      ``not_registered``, ``unknown`` (27.007 states, see REGISTRATION_STATES);
    * ``operator`` -- the network's name; ``mcc_mnc`` -- e.g. ``510-10``;
    * ``access_tech`` -- ``LTE``, ``UMTS``, ``GSM``...;
    * ``rssi_dbm`` (CSQ), ``rsrp_dbm``, ``rsrq_db``, ``sinr_db`` -- None when unknown;
    * ``model``, ``imei`` -- as the modem reports them;
    * ``errors`` -- commands the modem refused or answered with nonsense;
      the fields they would have filled are None.
    """

    registered: bool
    registration: str
    operator: str | None
    access_tech: str | None
    rssi_dbm: int | None
    rsrp_dbm: float | None
    rsrq_db: float | None
    sinr_db: float | None
    model: str | None
    imei: str | None = None
    mcc_mnc: str | None = None
    errors: tuple[DeviceError, ...] = ()

    def network_problem(self) -> DeviceError | None:
        """Why the modem cannot carry data, as an error to show, or None if it can."""
        if self.registered:
            return None
        texts = {
            "denied": ("Jaringan menolak kartu SIM (registrasi ditolak)",
                       "The network refused the SIM card (registration denied)",
                       "Laporkan ke teknisi: SIM mungkin diblokir atau belum aktif",
                       "Tell the technician: the SIM may be blocked or not activated"),
            "searching": ("Modem masih mencari jaringan",
                          "The modem is still searching for a network",
                          "Tunggu sebentar atau pindah ke tempat dengan sinyal lebih baik",
                          "Wait a moment or move to a place with better signal"),
        }
        default = ("Modem tidak terdaftar di jaringan", "The modem is not registered on a network",
                   "Periksa kartu SIM; pindah ke tempat dengan sinyal lebih baik",
                   "Check the SIM card; move to a place with better signal")
        msg_id, msg_en, hint_id, hint_en = texts.get(self.registration, default)
        return DeviceError(DEVICE, "registration", code=f"modem_{self.registration}",
                           id=msg_id, en=msg_en, hint_id=hint_id, hint_en=hint_en)


def combine_registration(*regs: Registration | None) -> tuple[bool, str]:
    """One verdict from CREG and CEREG: registered if either is; else the most telling state."""
    known = [r for r in regs if r is not None]
    for reg in known:
        if reg.registered:
            return True, reg.state
    for state in ("denied", "searching", "emergency_only", "home_sms_only", "roaming_sms_only",
                  "not_registered"):
        if any(r.state == state for r in known):
            return False, state
    return False, "unknown"


# ---------------------------------------------------------------------------------------------
# The device
# ---------------------------------------------------------------------------------------------


class Modem(Protocol):
    """A cellular modem the kit can ask about the network."""

    @abstractmethod
    def status(self, timeout: float = 10.0) -> ModemStatus:
        """Registration, operator and signal, within ``timeout`` s or DeviceError."""

    @abstractmethod
    def close(self) -> None:
        """Release the port."""

    def __enter__(self) -> Modem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AtModem(Modem):
    """A modem's AT command port (a path or a pyserial URL).

    ``command_timeout`` bounds each command; real modems answer these
    queries in well under a second, so 2 s means the modem is stuck. The
    port is opened on first use and reopened after it vanishes. On open the
    driver checks the modem with ``AT`` and asks for numeric error codes
    (``AT+CMEE=1``); it works with echo on or off and never changes it.

    ``when_urc`` is called (in the caller's thread, during a command, so it
    must be quick and must not raise) with every unsolicited result code;
    the last 50 are kept in ``urcs``. The model and IMEI are read once per
    opening of the port.

    >>> modem = AtModem("/dev/jaranijo/modem", 115200)      # doctest: +SKIP
    >>> modem.command("AT+CSQ", prefix="+CSQ:").lines        # doctest: +SKIP
    ['+CSQ: 15,99']
    """

    def __init__(self, port: str, baud: int = 115200, *, command_timeout: float = 2.0,
                 read_imei: bool = True) -> None:
        self.port = port
        self.baud = baud
        self.command_timeout = command_timeout
        self.read_imei = read_imei
        self.counters = AtCounters()
        self.urcs: deque[str] = deque(maxlen=50)
        self.when_urc: Callable[[str], None] | None = None
        self._lock = threading.RLock()
        self._serial: Any = None
        self._reader = AtLineReader(self.counters)
        self._ready = False
        self._dirty = False
        self._ever_opened = False
        self.model: str | None = None
        self.family = "unknown"
        self.imei: str | None = None

    def close(self) -> None:
        with self._lock:
            self._close_port()

    # -- one command ----------------------------------------------------------------------------
    def command(self, command: str, *, prefix: str | None = None,
                timeout: float | None = None) -> AtReply:
        """Send ``command`` and return its reply once the final result arrives.

        Raises :class:`ModemCommandError` for ERROR / +CME ERROR, and
        :class:`DeviceError` when there is no answer within ``timeout`` or
        the port is gone. Opening the port and the ``AT`` check on first use
        share the same ``timeout``; a call may overrun it by one read slice
        (:data:`READ_SLICE_S`).
        """
        if not re.fullmatch(r"(?i)AT[\x20-\x7e]{0,250}", command):
            raise ValueError(f"not a single AT command line: {command!r}")
        limit = self.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._lock:
            self._ensure_ready(deadline)
            return self._transact(command, prefix, deadline)

    def _transact(self, command: str, prefix: str | None, deadline: float) -> AtReply:
        started = time.monotonic()
        self._drain(command)
        if self._dirty:
            self._resync(command, started, deadline)
        garbled_before = self.counters.garbled
        self._write(command, command)
        tx = AtTransaction(command, prefix)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._dirty = True
                self.counters.timeouts += 1
                for urc in tx.reply.urcs:
                    self._urc(urc)
                raise _no_reply(command, max(0.0, deadline - started),
                                self.counters.garbled - garbled_before)
            lines = self._read_lines(command)
            for index, line in enumerate(lines):
                if tx.feed(line):
                    for urc in tx.reply.urcs:
                        self._urc(urc)
                    for late in lines[index + 1 :]:
                        self._urc(late)  # whatever follows a final result is unsolicited
                    if tx.reply.stray:
                        log.debug("%s: %d unexpected lines", command, len(tx.reply.stray))
                    if not tx.reply.ok:
                        raise ModemCommandError(command, tx.reply.final or "")
                    return tx.reply

    def _write(self, text: str, operation: str) -> None:
        try:
            self._serial.write(text.encode("ascii") + b"\r")
        except (OSError, AttributeError) as exc:
            self._close_port()
            raise _disconnected(self.port, operation, str(exc)) from None

    def _read_lines(self, operation: str, block: bool = True) -> list[str]:
        """Lines from what has arrived; waits up to READ_SLICE_S for a first byte if ``block``."""
        port = self._serial
        try:
            waiting = port.in_waiting
            if not waiting and not block:
                return []
            data = port.read(max(1, min(waiting, 4096)))
        except (OSError, AttributeError) as exc:
            self._close_port()
            raise _disconnected(self.port, operation, str(exc)) from None
        return self._reader.feed(data) if data else []

    def _drain(self, operation: str) -> None:
        """Take in what arrived between commands (URCs, boot messages) without waiting."""
        for _ in range(64):  # bounded: a modem spewing text must not hold us here
            lines = self._read_lines(operation, block=False)
            if not lines:
                return
            for line in lines:
                self._urc(line)

    def _resync(self, command: str, started: float, deadline: float) -> None:
        """After a timeout, let the line go quiet, then check the modem answers ``AT``.

        A late answer to the timed-out command must not be taken for the
        next one's, so leftovers are read and dropped first.
        """
        quiet_until = min(deadline, time.monotonic() + 0.1)
        while time.monotonic() < quiet_until:
            for line in self._read_lines(command):
                self._urc(line)
        tx = AtTransaction("AT")
        self._write("AT", command)
        while not tx.done:
            if time.monotonic() >= deadline:
                self.counters.timeouts += 1
                raise _no_reply(command, deadline - started, 0)
            for line in self._read_lines(command):
                tx.feed(line)
        self._dirty = False

    def _urc(self, line: str) -> None:
        if is_final(line):
            return  # a stray OK/ERROR from a command already given up on
        self.counters.urcs += 1
        self.urcs.append(line)
        if self.when_urc is not None:
            self.when_urc(line)

    # -- port -----------------------------------------------------------------------------------
    def _ensure_ready(self, deadline: float) -> None:
        if self._serial is None:
            try:
                self._serial = serial.serial_for_url(
                    self.port, baudrate=self.baud, timeout=READ_SLICE_S,
                    write_timeout=self.command_timeout,
                )
                self._serial.reset_input_buffer()
            except (OSError, ValueError) as exc:
                self._serial = None
                raise _disconnected(self.port, "open", str(exc)) from None
            if self._ever_opened:
                self.counters.reconnects += 1
            self._ever_opened = True
            self._ready = False
            self._reader.clear()
            # A different modem may be plugged in now: ask again who it is.
            self.model, self.family, self.imei = None, "unknown", None
        if not self._ready:
            self._transact("AT", None, deadline)
            # Numeric +CME ERROR codes; a firmware without CMEE still answers plain ERROR.
            with contextlib.suppress(ModemCommandError):
                self._transact("AT+CMEE=1", None, deadline)
            self._ready = True

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        self._ready = False
        self._dirty = False
        if port is not None:
            with contextlib.suppress(OSError):  # already gone with the device
                port.close()

    # -- status ---------------------------------------------------------------------------------
    def status(self, timeout: float = 10.0) -> ModemStatus:
        """Ask the modem everything in one go; DeviceError if it stops answering.

        Commands the modem refuses (ERROR, +CME ERROR) or answers with
        nonsense leave their fields None and are listed in ``errors``.
        """
        deadline = time.monotonic() + timeout
        errors: list[DeviceError] = []

        def ask(command: str, prefix: str | None) -> list[str]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _no_reply("status", timeout, 0)
            try:
                reply = self._transact(command, prefix,
                                       time.monotonic() + min(self.command_timeout, remaining))
            except ModemCommandError as exc:
                errors.append(exc)
                return []
            return reply.lines

        def parsed(command: str, lines: list[str], parser: Callable[[str], Any]) -> Any:
            if not lines:
                return None
            try:
                return parser(lines[0])
            except AtParseError as exc:
                errors.append(DeviceError(
                    DEVICE, command, code="modem_garbled",
                    id=f"Jawaban modem atas {command} tidak masuk akal ({exc})",
                    en=f"The modem's answer to {command} makes no sense ({exc})",
                    hint_id="Coba lagi; bila berulang, laporkan ke teknisi",
                    hint_en="Try again; if it keeps happening, tell the technician",
                ))
                return None

        with self._lock:
            self._ensure_ready(min(deadline, time.monotonic() + self.command_timeout))
            if self.model is None:
                self._identify(ask)
            if self.read_imei and self.imei is None:
                self.imei = next((x for x in ask("AT+CGSN", None)
                                  if re.fullmatch(r"\d{14,17}", x)), None)
            creg = parsed("AT+CREG?", ask("AT+CREG?", "+CREG:"), parse_registration)
            cereg = parsed("AT+CEREG?", ask("AT+CEREG?", "+CEREG:"), parse_registration)
            cops = parsed("AT+COPS?", ask("AT+COPS?", "+COPS:"), parse_cops)
            rssi = parsed("AT+CSQ", ask("AT+CSQ", "+CSQ:"), parse_csq)
            cesq = parsed("AT+CESQ", ask("AT+CESQ", "+CESQ:"), parse_cesq)
            cell: ServingCell | None = None
            if self.family == "simcom":
                cell = parsed("AT+CPSI?", ask("AT+CPSI?", "+CPSI:"), parse_cpsi)
            elif self.family == "quectel":
                command = 'AT+QENG="servingcell"'
                cell = parsed(command, ask(command, "+QENG:"), parse_qeng_servingcell)
        registered, state = combine_registration(creg, cereg)
        rsrq, rsrp = cesq if cesq is not None else (None, None)
        if cell is not None:
            rsrp = cell.rsrp_dbm if cell.rsrp_dbm is not None else rsrp
            rsrq = cell.rsrq_db if cell.rsrq_db is not None else rsrq
        if rssi is None and cell is not None and cell.rssi_dbm is not None:
            rssi = round(cell.rssi_dbm)
        mcc_mnc = (cops.mcc_mnc if cops is not None else None) or (
            cell.mcc_mnc if cell is not None else None)
        operator = cops.name if cops is not None and cops.name else (
            OPERATORS.get(mcc_mnc or "") or mcc_mnc)
        access = (cops.access_tech if cops is not None else None) or (
            cell.access_tech if cell is not None else None)
        if not registered:
            access = None if cops is None or cops.name is None else access
        return ModemStatus(
            registered=registered, registration=state, operator=operator, access_tech=access,
            rssi_dbm=rssi, rsrp_dbm=rsrp, rsrq_db=rsrq,
            sinr_db=cell.sinr_db if cell is not None else None,
            model=self.model, imei=self.imei, mcc_mnc=mcc_mnc, errors=tuple(errors),
        )

    def _identify(self, ask: Callable[[str, str | None], list[str]]) -> None:
        lines = ask("AT+CGMM", None)
        model = lines[0] if lines else None
        if model is None:
            info = ask("ATI", None)
            model = next((x.split(":", 1)[1].strip() for x in info if x.startswith("Model:")),
                         info[1] if len(info) > 1 else (info[0] if info else None))
        self.model = model
        self.family = modem_family(model or "")
        log.info("modem model %s (%s)", model, self.family)
