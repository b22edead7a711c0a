"""How much CPU the NMEA and AT parsers need, and how long a modem status read takes.

``python -m tests.bench.bench_serial_parsers``. Baselines measured in the
same run:

* NMEA: ``pynmea2.parse(line, check=True)`` alone on the same lines -- the
  ratio is what framing, field checks and fix building add on top;
* AT: splitting the same bytes with ``bytes.split`` -- the ratio is the
  cost of classification (echo, finals, URCs) and value parsing;
* status: one bare ``AT`` round trip on the same emulated port -- the ratio
  is how many round trips a full ``status()`` costs.

The line budget: a receiver at 9600 baud delivers at most 960 bytes/s, a
modem's status exchange is a few hundred bytes. The "% of one core" figures
say how much of the CPU that takes on this machine (a Raspberry Pi 4 core is
roughly 3-5x slower than a current x86 core for this kind of Python code).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pynmea2

from sensors.emulated.gnss import Route, gga, gsa, gsv, rmc
from sensors.emulated.modem import ModemEmulator
from sensors.gnss import FixTracker, NmeaStream
from sensors.modem import (
    AtLineReader,
    AtModem,
    AtTransaction,
    parse_cesq,
    parse_cops,
    parse_cpsi,
    parse_csq,
    parse_registration,
)
from tests.bench import timings

EPOCHS = 3000
REPEATS = 5


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``repeats`` runs, seconds."""
    return statistics.median(timings(fn, repeats)[0])


def nmea_stream_bytes() -> tuple[bytes, list[str]]:
    route = Route()
    start = datetime(2025, 3, 14, 2, 0, 0, tzinfo=UTC)
    sky = [(2, 67, 41, 44), (5, 52, 310, 42), (7, 34, 122, 39), (9, 21, 255, 35),
           (13, 71, 190, 45), (15, 18, 80, 31), (18, 40, 15, 41), (20, 27, 148, 37),
           (25, 8, 290, 24), (29, 12, 210, 27)]
    lines: list[str] = []
    for second in range(EPOCHS):
        moment = start + timedelta(seconds=second)
        lat, lon, alt, course = route.at(second * 30 / 3.6)
        lines += [rmc(moment, lat, lon, speed_kmh=30.0, course_deg=course),
                  gga(moment, lat, lon, satellites=8, altitude_m=alt),
                  gsa([2, 5, 7, 9, 13, 15, 18, 20]), *gsv(sky)]
    return "".join(lines).encode("ascii"), lines


def bench_nmea() -> None:
    data, lines = nmea_stream_bytes()
    chunks = [data[i : i + 64] for i in range(0, len(data), 64)]  # as a port delivers them

    def ours() -> None:
        stream, tracker = NmeaStream(), FixTracker()
        for chunk in chunks:
            for sentence in stream.feed(chunk):
                tracker.update(sentence)
        assert stream.counters.sentences == len(lines)

    def baseline() -> None:
        for line in lines:
            pynmea2.parse(line, check=True)

    t_ours, t_base = best_of(ours), best_of(baseline)
    per_second = len(data) / EPOCHS  # bytes one 1 Hz receiver sends each second
    print(f"NMEA: {len(lines)} sentences, {len(data) / 1e6:.2f} MB, {EPOCHS} one-second epochs")
    print(f"  NmeaStream + FixTracker : {len(lines) / t_ours:10,.0f} sentences/s "
          f"({len(data) / t_ours / 1e6:.2f} MB/s)")
    print(f"  pynmea2.parse alone     : {len(lines) / t_base:10,.0f} sentences/s")
    print(f"  ratio ours / baseline   : {t_ours / t_base:.2f}x the time")
    print(f"  1 Hz receiver ({per_second:.0f} B/s)  : "
          f"{100 * per_second * t_ours / len(data):.3f} % of one core")


def at_exchange() -> bytes:
    """What a SIM7600 sends back for one status() with echo on."""
    replies = [
        ("AT+CREG?", ["+CREG: 0,1"]), ("AT+CEREG?", ["+CEREG: 0,1"]),
        ("AT+COPS?", ['+COPS: 0,0,"Telkomsel",7']), ("AT+CSQ", ["+CSQ: 15,99"]),
        ("AT+CESQ", ["+CESQ: 99,99,255,255,17,46"]),
        ("AT+CPSI?", ["+CPSI: LTE,Online,510-10,0x2B6C,27447297,291,EUTRAN-BAND3,1850,5,5,"
                      "-115,-955,-830,12"]),
    ]
    out = b""
    for command, info in replies:
        out += command.encode() + b"\r"
        out += b"".join(b"\r\n" + line.encode() + b"\r\n" for line in info)
        out += b"\r\nOK\r\n"
    return out


PARSE = {"+CREG:": parse_registration, "+CEREG:": parse_registration, "+COPS:": parse_cops,
         "+CSQ:": parse_csq, "+CESQ:": parse_cesq, "+CPSI:": parse_cpsi}
COMMANDS = [("AT+CREG?", "+CREG:"), ("AT+CEREG?", "+CEREG:"), ("AT+COPS?", "+COPS:"),
            ("AT+CSQ", "+CSQ:"), ("AT+CESQ", "+CESQ:"), ("AT+CPSI?", "+CPSI:")]


def bench_at() -> None:
    exchange = at_exchange()
    rounds = 5000

    def ours() -> None:
        for _ in range(rounds):
            lines = AtLineReader().feed(exchange)
            index = 0
            for command, prefix in COMMANDS:
                tx = AtTransaction(command, prefix)
                while not tx.feed(lines[index]):
                    index += 1
                index += 1
                PARSE[prefix](tx.reply.lines[0])

    def baseline() -> None:
        for _ in range(rounds):
            [line for line in exchange.replace(b"\r", b"\n").split(b"\n") if line]

    t_ours, t_base = best_of(ours), best_of(baseline)
    print(f"AT: {rounds} status exchanges of {len(exchange)} bytes (6 commands, echo on)")
    print(f"  reader + transactions + parsers : {rounds / t_ours:10,.0f} exchanges/s "
          f"({1e6 * t_ours / rounds:.0f} us each)")
    print(f"  bytes.split baseline            : {rounds / t_base:10,.0f} exchanges/s")
    print(f"  ratio ours / baseline           : {t_ours / t_base:.1f}x the time")


def bench_status() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        emulator = ModemEmulator(Path(tmp) / "modem", baud=115200)
        emulator.start()
        try:
            modem = AtModem(str(Path(tmp) / "modem"), 115200)
            modem.status()  # open, identify and read the IMEI once
            t_status = best_of(modem.status, repeats=15)
            t_at = best_of(lambda: modem.command("AT"), repeats=15)
            modem.close()
        finally:
            emulator.stop()
    print("Modem status() against the emulated SIM7600 at 115200 baud (pty, paced):")
    print(f"  status() : {1000 * t_status:7.1f} ms")
    print(f"  AT       : {1000 * t_at:7.1f} ms (one round trip)")
    print(f"  ratio    : {t_status / t_at:.1f} round trips per status")
    wire = len(at_exchange()) * 10 / 115200  # echo + replies, 10 bits a byte
    print(f"  line time of the {len(at_exchange())} reply bytes alone: {1000 * wire:.1f} ms "
          f"(status() is bound by the wire, not the parser)")


def main() -> None:
    bench_nmea()
    bench_at()
    bench_status()


if __name__ == "__main__":
    main()
