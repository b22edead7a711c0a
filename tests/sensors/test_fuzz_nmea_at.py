"""Random and mutated bytes into the NMEA and AT parsers, and into the drivers on a pty.

The contracts under test: the byte-level parsers (NmeaStream, AtLineReader,
AtTransaction) never raise; the line parsers raise only their documented
error (NmeaError, AtParseError); what they accept is physically sensible;
a corrupted sentence is never mistaken for a different good one; and the
drivers keep their timeouts and recover once clean data flows again.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors.emulated.gnss import gga, gsa, gsv, rmc, sentence
from sensors.emulated.modem import ModemEmulator
from sensors.emulated.port import EmulatedPort, PortUnplugged
from sensors.errors import DeviceError
from sensors.gnss import (
    MAX_SENTENCE,
    FixTracker,
    Gga,
    Gsa,
    Gsv,
    NmeaError,
    NmeaGnss,
    NmeaStream,
    Rmc,
    parse_sentence,
)
from sensors.modem import (
    MAX_LINE,
    AtLineReader,
    AtModem,
    AtParseError,
    AtTransaction,
    parse_cesq,
    parse_cops,
    parse_cpsi,
    parse_csq,
    parse_qeng_servingcell,
    parse_registration,
)
from tests.waiting import wait_until

FUZZ = settings(max_examples=200, deadline=None)
# Driver-level examples wait on a real pty (up to a command timeout each): fewer of them.
FUZZ_DRIVER = settings(max_examples=25, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])
SLACK_S = 0.5

MOMENT = datetime(2025, 3, 14, 2, 30, 15, tzinfo=UTC)
EPOCH = [
    rmc(MOMENT, -8.0952, 112.1609, speed_kmh=27.5, course_deg=61.25),
    gga(MOMENT, -8.0952, 112.1609, satellites=8, hdop=1.1, altitude_m=167.2),
    gsa([2, 5, 7, 13, 18, 20]),
    *gsv([(2, 67, 41, 44), (5, 52, 310, 42), (7, 34, 122, None), (13, 71, 190, 45),
          (18, 40, 15, 41)]),
]
VALID_LINES = [
    *EPOCH,
    rmc(MOMENT, None, None, valid=False),
    gga(MOMENT, None, None, quality=0),
    gsa([], fix_type=1),
    gga(MOMENT, 51.4779, -0.0015, satellites=12, hdop=0.6, altitude_m=46.0, talker="GN"),
    rmc(MOMENT, -33.8568, 151.2153, speed_kmh=0.0, course_deg=359.99, talker="GN"),
]
EPOCH_BYTES = "".join(EPOCH).encode("ascii")


# ---------------------------------------------------------------------------------------------
# NMEA
# ---------------------------------------------------------------------------------------------


def test_valid_lines_are_accepted() -> None:
    """The baseline the mutations below start from."""
    for line in VALID_LINES:
        assert isinstance(parse_sentence(line), Gga | Rmc | Gsa | Gsv)


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=12))
def test_stream_takes_any_bytes(chunks: list[bytes]) -> None:
    stream = NmeaStream()
    for chunk in chunks:
        for item in stream.feed(chunk):
            assert isinstance(item, Gga | Rmc | Gsa | Gsv)
    counters = stream.counters
    assert counters.bytes == sum(map(len, chunks))
    # Every accepted, ignored or sentence-shaped rejection started at a '$'.
    dollars = sum(chunk.count(b"$") for chunk in chunks)
    assert (counters.sentences + counters.ignored + counters.checksum_errors
            + counters.truncated + counters.invalid) <= dollars


@FUZZ
@given(st.lists(st.integers(0, len(EPOCH_BYTES)), max_size=40))
def test_valid_stream_split_anywhere_loses_nothing(cuts: list[int]) -> None:
    stream = NmeaStream()
    edges = [0, *sorted(cuts), len(EPOCH_BYTES)]
    got = []
    for start, end in itertools.pairwise(edges):
        got += stream.feed(EPOCH_BYTES[start:end])
    assert len(got) == len(EPOCH)
    assert stream.counters.rejected == 0


@FUZZ
@given(st.sampled_from(VALID_LINES), st.integers(0, 10_000), st.integers(0, 255))
def test_one_corrupted_byte_is_never_a_different_sentence(line: str, where: int,
                                                          value: int) -> None:
    data = bytearray(line.encode("ascii"))
    where %= len(data) - 2  # leave CR LF alone
    data[where] = value
    try:
        result = parse_sentence(data.decode("latin-1"))
    except NmeaError as exc:
        assert exc.kind in NmeaError.KINDS
        return
    # Only changes that keep the meaning survive: the same byte, or the
    # checksum's hex digits in lower case.
    assert result == parse_sentence(line)


SAFE_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126,
                                           exclude_characters="$*"), max_size=14)
FIELD = st.one_of(
    SAFE_TEXT,
    st.integers(-100, 100_000).map(str),
    st.floats(-1e5, 1e5, allow_nan=False).map(lambda f: f"{f:.4f}"),
    st.sampled_from(["", "A", "V", "N", "S", "E", "W", "M", "0812.345", "11213.5678",
                     "023015.00", "140325", "999999", "9", "99.99"]),
)


@FUZZ
@given(st.sampled_from(["GPGGA", "GNRMC", "GPGSA", "GLGSV", "GPVTG", "PUBX"]),
       st.lists(FIELD, max_size=20))
def test_well_framed_nonsense_is_refused_or_sensible(address: str, fields: list[str]) -> None:
    line = sentence(f"{address},{','.join(fields)}")
    try:
        result = parse_sentence(line)
    except NmeaError as exc:
        # The checksum is right, so only content or size can be wrong.
        assert exc.kind in ("invalid", "unsupported", "garbage")
        if exc.kind == "garbage":
            assert len(line) > MAX_SENTENCE
        return
    for name in ("lat", "lon"):
        value = getattr(result, name, None)
        assert value is None or abs(value) <= (90 if name == "lat" else 180)
    if isinstance(result, Gga):
        assert 0 <= result.fix_quality <= 8
        assert result.hdop is None or 0 <= result.hdop <= 99.99
    if isinstance(result, Rmc):
        assert result.speed_kmh is None or result.speed_kmh >= 0
        assert result.course_deg is None or 0 <= result.course_deg <= 360


@FUZZ
@given(st.binary(max_size=400))
def test_stream_recovers_after_noise(noise: bytes) -> None:
    stream = NmeaStream()
    tracker = FixTracker(utc_now=lambda: MOMENT)
    for item in stream.feed(noise):
        tracker.update(item)
    before = stream.counters.sentences
    for item in stream.feed(EPOCH_BYTES):
        tracker.update(item)
    assert stream.counters.sentences - before == len(EPOCH)
    fix = tracker.latest
    assert fix is not None and fix.time_utc == MOMENT
    assert (fix.lat, fix.lon) == (pytest.approx(-8.0952), pytest.approx(112.1609))
    assert (fix.altitude_m, fix.satellites, fix.hdop) == (167.2, 8, 1.1)
    assert (fix.speed_kmh, fix.course_deg) == (pytest.approx(27.5, abs=0.001), 61.25)


def test_gnss_driver_survives_noise_on_the_wire(tmp_path: Path) -> None:
    """Noise straight onto a pty the real driver reads: it keeps reading and finds the fix."""
    port = EmulatedPort(tmp_path / "gps")
    receiver = NmeaGnss(str(tmp_path / "gps"), 9600)
    serial_no = iter(range(1, 10_000))

    @FUZZ_DRIVER
    @given(noise=st.binary(max_size=300))
    def run(noise: bytes) -> None:
        n = next(serial_no)
        moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=n)
        lat = -8.0 - n / 1000
        port.write(noise + (rmc(moment, lat, 112.2) + gga(moment, lat, 112.2)).encode())
        started = time.monotonic()
        found = wait_until(
            lambda: (fix := receiver.fix(timeout=0.2)) is not None and fix.time_utc == moment
            and fix, 2.0, f"the fix of {moment:%H:%M:%S} sent after the noise")
        assert time.monotonic() - started < 2.0 + SLACK_S
        assert found.lat == pytest.approx(lat)
        assert receiver.reading

    try:
        run()
        assert receiver.counters().sentences >= 2 * 25
    finally:
        receiver.close()
        port.close()


# ---------------------------------------------------------------------------------------------
# AT
# ---------------------------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.binary(max_size=2 * MAX_LINE), max_size=8))
def test_line_reader_takes_any_bytes(chunks: list[bytes]) -> None:
    reader = AtLineReader()
    for chunk in chunks:
        for line in reader.feed(chunk):
            assert line and len(line) <= MAX_LINE
            assert all(32 <= ord(c) <= 126 or c == "\t" for c in line)


AT_LINE = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.sampled_from(["OK", "ERROR", "+CME ERROR: 10", "+CME ERROR: SIM busy", "RING",
                     "+CREG: 1", "+CREG: 0,1", '+CEREG: 1,"2B6C","01A2D001",7', "+CSQ: 15,99",
                     "AT+CSQ", "SMS DONE", "+CPIN: READY", "NO CARRIER"]),
)


@FUZZ
@given(st.sampled_from([("AT+CSQ", "+CSQ:"), ("AT+CREG?", "+CREG:"), ("ATI", None),
                        ("AT+CPIN?", "+CPIN:")]),
       st.lists(AT_LINE, max_size=15))
def test_transaction_sorts_any_lines(command: tuple[str, str | None], lines: list[str]) -> None:
    tx = AtTransaction(*command)
    for index, line in enumerate(lines):
        if tx.feed(line):
            assert tx.reply.final == line
            assert all(tx.feed(extra) for extra in lines[index + 1 :])  # stays done
            break
    reply = tx.reply
    prefix = command[1]
    if prefix is not None:
        assert all(line.startswith(prefix) for line in reply.lines)
    assert not any(line in ("OK", "ERROR") for line in reply.lines + reply.urcs)


def _in(value: float | None, low: float, high: float) -> bool:
    return value is None or low <= value <= high


def _check_csq(line: str) -> None:
    assert _in(parse_csq(line), -113, -51)


def _check_cesq(line: str) -> None:
    rsrq, rsrp = parse_cesq(line)
    assert _in(rsrq, -20, -3) and _in(rsrp, -141, -44)


def _check_registration(line: str) -> None:
    reg = parse_registration(line)
    assert 0 <= reg.stat <= 11 and reg.registered == (reg.stat in (1, 5))


def _check_cops(line: str) -> None:
    oper = parse_cops(line)
    assert oper.mcc_mnc is None or len(oper.mcc_mnc) in (6, 7)


def _check_cell(parser: Callable[[str], Any]) -> Callable[[str], None]:
    def check(line: str) -> None:
        cell = parser(line)
        assert _in(cell.rsrp_dbm, -160, 0) and _in(cell.rsrq_db, -40, 40)
        assert _in(cell.sinr_db, -50, 60) and _in(cell.rssi_dbm, -160, 0)
    return check


AT_PARSERS: list[tuple[str, Callable[[str], None]]] = [
    ("+CSQ: ", _check_csq), ("+CESQ: ", _check_cesq), ("+CREG: ", _check_registration),
    ("+CEREG: ", _check_registration), ("+COPS: ", _check_cops),
    ("+CPSI: ", _check_cell(parse_cpsi)), ("+QENG: ", _check_cell(parse_qeng_servingcell)),
]
TOKEN = st.one_of(
    st.integers(-3000, 300_000).map(str),
    st.text(alphabet='0123456789ABCDEFx-" ,', max_size=9),
    st.sampled_from(["", '"servingcell"', '"NOCONN"', '"SEARCH"', '"LTE"', '"FDD"', "LTE",
                     "Online", "NO SERVICE", "510-10", "0x2B6C", "EUTRAN-BAND3", '"Telkomsel"',
                     '"51010"', "255", "99", "7"]),
)


@FUZZ
@given(st.sampled_from(AT_PARSERS), st.lists(TOKEN, max_size=20))
def test_information_parsers_refuse_or_make_sense(
    parser: tuple[str, Callable[[str], None]], tokens: list[str]
) -> None:
    prefix, check = parser
    with contextlib.suppress(AtParseError):  # refusing is fine; accepting nonsense is not
        check(prefix + ",".join(tokens))


def _emulated_replies() -> list[str]:
    lines = []
    for model in ("sim7600", "ec25"):
        emulator = ModemEmulator("unused", model=model)
        emulator.control("rsrp", "-97.5", "-12.5", "9")
        emulator.cereg_mode = 2
        lines += [emulator._cesq(), emulator._cops(), f"+CSQ: {emulator._csq()},99",
                  emulator._registration_read("+CEREG", 2, "TAC"), emulator._cpsi(),
                  emulator._qeng()]
    return lines


VALID_REPLIES = _emulated_replies()
CHECK_FOR = dict(AT_PARSERS)


def _cell(cell: Any) -> tuple[float | None, float | None, float | None]:
    return cell.rsrp_dbm, cell.rsrq_db, cell.sinr_db


# What each valid reply must read back as: the emulator was set to RSRP -97.5 dBm,
# RSRQ -12.5 dB, SINR 9 dB and keeps its default RSSI of -75 dBm on Telkomsel.
READ_BACK: dict[str, tuple[Callable[[str], Any], Any]] = {
    "+CSQ": (parse_csq, -75),
    "+CESQ": (parse_cesq, (-12.5, -97.0)),  # CESQ's steps: RSRQ 0.5 dB, RSRP 1 dB
    "+CEREG": (lambda line: parse_registration(line).stat, 1),  # registered, home network
    "+COPS": (lambda line: parse_cops(line).name, "Telkomsel"),
    "+CPSI": (lambda line: _cell(parse_cpsi(line)), (-97.5, -12.5, 9.0)),  # in tenths
    "+QENG": (lambda line: _cell(parse_qeng_servingcell(line)), (-98.0, -12.0, 9.0)),  # whole dB
}


def test_emulated_replies_parse() -> None:
    """The baseline for the mutations below: each valid reply passes its check and reads
    back the values the emulator was set to."""
    assert {line.split(":")[0] for line in VALID_REPLIES} == set(READ_BACK)
    for line in VALID_REPLIES:
        prefix = line.split(":")[0]
        CHECK_FOR[prefix + ": "](line)
        parse, expected = READ_BACK[prefix]
        assert parse(line) == expected, line


@FUZZ
@given(st.sampled_from(VALID_REPLIES), st.integers(0, 10_000),
       st.characters(min_codepoint=32, max_codepoint=126))
def test_mutated_replies_refuse_or_make_sense(line: str, where: int, char: str) -> None:
    where %= len(line)
    mutated = line[:where] + char + line[where + 1 :]
    check = CHECK_FOR.get(mutated.split(":")[0] + ": ")
    if check is None:
        return  # the prefix itself was hit: no parser would be asked
    with contextlib.suppress(AtParseError):
        check(mutated)


class FuzzedModem:
    """A 'modem' on a pty that answers the driver's set-up properly and everything else with
    whatever bytes the test chose."""

    def __init__(self, link: Path) -> None:
        self.port = EmulatedPort(link)
        self.reply = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                buffer += self.port.read(256, timeout=0.05)
            except PortUnplugged:
                return
            while b"\r" in buffer:
                line, _, buffer = buffer.partition(b"\r")
                answer = (b"\r\nOK\r\n" if line.strip() in (b"AT", b"AT+CMEE=1")
                          else self.reply)
                try:
                    self.port.write(answer)
                except PortUnplugged:
                    return

    def close(self) -> None:
        self._stop.set()
        self.port.close()
        self._thread.join(timeout=2)


def test_modem_driver_keeps_its_timeout_whatever_comes_back(tmp_path: Path) -> None:
    device = FuzzedModem(tmp_path / "modem")
    modem = AtModem(str(tmp_path / "modem"), command_timeout=0.3)

    @FUZZ_DRIVER
    @given(junk=st.binary(max_size=200), finish=st.booleans())
    def run(junk: bytes, finish: bool) -> None:
        device.reply = junk + (b"\r\nOK\r\n" if finish else b"")
        started = time.monotonic()
        try:
            reply = modem.command("AT+CSQ", prefix="+CSQ:", timeout=0.3)
            assert reply.ok
        except DeviceError as exc:
            assert exc.device == "modem" and exc.operation in ("AT+CSQ", "AT")
        assert time.monotonic() - started < 0.3 + SLACK_S
        # Clean answers work again straight away.
        device.reply = b"\r\n+CSQ: 15,99\r\n\r\nOK\r\n"
        clean = modem.command("AT+CSQ", prefix="+CSQ:", timeout=1.0)
        assert clean.lines[-1:] == ["+CSQ: 15,99"]

    try:
        run()
    finally:
        modem.close()
        device.close()
