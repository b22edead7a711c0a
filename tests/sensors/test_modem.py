"""The AT modem driver (pyserial) against the emulated SIM7600 / EC25 or a real modem.

Tests without ``require_emulator()`` run unchanged on a bench with
``--modem-port /dev/ttyUSB2`` (SIM inserted). The others set the emulated
radio and check that the driver reads back exactly those numbers, through
the real conversions (CSQ, CESQ, CPSI tenths, QENG SINR steps).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sensors.errors import DeviceError
from sensors.modem import REGISTRATION_STATES, AtModem, ModemCommandError
from tests.waiting import wait_until

pytestmark = pytest.mark.hil

SLACK_S = 0.5  # scheduling margin allowed on top of a call's own timeout


@pytest.fixture
def modem(modem_device: Any) -> Iterator[AtModem]:
    driver = AtModem(modem_device.url, 115200,
                     command_timeout=0.8 if modem_device.emulated else 3.0)
    yield driver
    driver.close()


def test_status_is_sane(modem: AtModem) -> None:
    status = modem.status()
    assert status.model
    assert status.registration in REGISTRATION_STATES.values()
    assert status.registered == (status.registration in ("home", "roaming"))
    if status.rssi_dbm is not None:
        assert -113 <= status.rssi_dbm <= -51
    if status.rsrp_dbm is not None:
        assert -141 <= status.rsrp_dbm <= -44
    if status.rsrq_db is not None:
        assert -20 <= status.rsrq_db <= 0
    if status.imei is not None:
        assert status.imei.isdigit() and len(status.imei) == 15
    if status.registered:
        assert status.operator
    assert modem.command("AT").ok


def test_emulated_sim7600_status(modem_device: Any, modem: AtModem) -> None:
    emulator = modem_device.require_emulator()
    emulator.control("signal", "-83")
    emulator.control("rsrp", "-95.5", "-11.5", "12")
    status = modem.status()
    assert status.errors == ()
    assert status.model == "SIMCOM_SIM7600E-H"
    assert (status.registered, status.registration) == (True, "home")
    assert (status.operator, status.mcc_mnc, status.access_tech) == ("Telkomsel", "510-10", "LTE")
    assert status.rssi_dbm == -83  # CSQ 15
    assert modem.command("AT+CSQ", prefix="+CSQ:").lines == ["+CSQ: 15,99"]
    assert status.rsrp_dbm == -95.5 and status.rsrq_db == -11.5  # CPSI, in tenths
    assert status.sinr_db == 12.0
    assert status.imei is not None and len(status.imei) == 15
    assert status.network_problem() is None


def test_cesq_alone_gives_the_standard_steps(modem_device: Any, modem: AtModem) -> None:
    from sensors.modem import parse_cesq

    emulator = modem_device.require_emulator()
    emulator.control("rsrp", "-101", "-14.5")
    reply = modem.command("AT+CESQ", prefix="+CESQ:")
    assert reply.lines == ["+CESQ: 99,99,255,255,11,40"]
    assert parse_cesq(reply.lines[0]) == (-14.5, -101.0)


def test_emulated_quectel_status(modem_device: Any, tmp_path: Path) -> None:
    emulator = modem_device.require_emulator()
    emulator.control("model", "ec25")
    emulator.control("operator", "xl")
    emulator.control("signal", "-91")
    emulator.control("rsrp", "-104", "-13", "4.2")
    with AtModem(modem_device.url, 115200, command_timeout=0.8) as modem:
        status = modem.status()
    assert status.errors == ()
    assert (status.model, status.imei is not None) == ("EC25", True)
    assert (status.operator, status.mcc_mnc) == ("XL", "510-11")
    assert status.rssi_dbm == -91  # CSQ 11
    assert (status.rsrp_dbm, status.rsrq_db) == (-104.0, -13.0)  # QENG whole dB
    assert status.sinr_db == pytest.approx(4.2)  # QENG raw 121 = 121/5 - 20 dB


def test_echo_on_and_off(modem: AtModem) -> None:
    assert modem.command("ATE1").ok
    on = modem.command("AT+CSQ", prefix="+CSQ:")
    assert on.echoed and len(on.lines) == 1
    assert modem.command("ATE0").ok
    off = modem.command("AT+CSQ", prefix="+CSQ:")
    assert not off.echoed and len(off.lines) == 1
    assert modem.status().model
    modem.command("ATE1")


def test_unsolicited_codes_do_not_pass_for_replies(modem_device: Any, modem: AtModem) -> None:
    emulator = modem_device.require_emulator()
    heard: list[str] = []
    modem.when_urc = heard.append
    modem.command("AT+CREG=1")
    # "+CREG: 5" (roaming) lands inside the reply to AT+CREG? ("+CREG: 1,1", home).
    emulator.control("urc-in-reply", "+CREG: 5")
    reply = modem.command("AT+CREG?", prefix="+CREG:")
    assert reply.lines == ["+CREG: 1,1"] and reply.urcs == ["+CREG: 5"]
    emulator.control("urc", "RING")
    emulator.control("register", "roaming")  # announced at once: "+CREG: 5"
    # The driver hears unsolicited codes while it talks to the modem: a bare AT now and
    # then, until both announcements are in.
    wait_until(lambda: modem.command("AT").ok and len(heard) >= 3, 3, "RING and +CREG: 5")
    status = modem.status()
    assert status.registration == "roaming"
    assert heard == ["+CREG: 5", "RING", "+CREG: 5"]
    assert list(modem.urcs)[-3:] == heard
    modem.command("AT+CREG=0")


@pytest.mark.parametrize(("state", "registered", "code"), [
    ("roaming", True, None),
    ("searching", False, "modem_searching"),
    ("denied", False, "modem_denied"),
])
def test_registration_states(modem_device: Any, modem: AtModem, state: str, registered: bool,
                             code: str | None) -> None:
    emulator = modem_device.require_emulator()
    emulator.control("register", state)
    status = modem.status()
    assert (status.registered, status.registration) == (registered, state)
    problem = status.network_problem()
    assert (problem.code if problem else None) == code
    if problem is not None:
        assert problem.device == "modem" and problem.operation == "registration"
        assert problem.text("id") != problem.text("en")
        assert status.operator is None and status.access_tech is None
    emulator.control("register", "home")
    assert modem.status().registered


def test_operator_by_mcc_mnc(modem_device: Any, modem: AtModem) -> None:
    emulator = modem_device.require_emulator()
    emulator.control("operator", "indosat")
    status = modem.status()
    assert (status.operator, status.mcc_mnc) == ("Indosat", "510-01")
    modem.command("AT+COPS=3,2")  # numeric format: the driver names known networks itself
    emulator.control("operator", "telkomsel")
    status = modem.status()
    assert (status.operator, status.mcc_mnc) == ("Telkomsel", "510-10")
    modem.command("AT+COPS=3,0")


def test_error_reply_names_the_command(modem_device: Any, modem: AtModem) -> None:
    emulator = modem_device.require_emulator()
    modem.status()
    emulator.control("error")
    with pytest.raises(ModemCommandError) as raised:
        modem.command("AT+CSQ", prefix="+CSQ:")
    error = raised.value
    assert (error.device, error.operation, error.code, error.cme) == (
        "modem", "AT+CSQ", "modem_error", None)
    assert "AT+CSQ" in error.text("id") and "AT+CSQ" in error.text("en")
    assert modem.command("AT+CSQ", prefix="+CSQ:").ok  # only the one command failed


def test_cme_error_explains_itself(modem_device: Any, modem: AtModem) -> None:
    emulator = modem_device.require_emulator()
    modem.status()
    emulator.control("cme-error", "10")
    with pytest.raises(ModemCommandError) as raised:
        modem.command("AT+COPS?", prefix="+COPS:")
    error = raised.value
    assert (error.cme, error.code, error.operation) == (10, "modem_cme", "AT+COPS?")
    assert "SIM" in error.text("id") and "Insert the SIM" in error.text("en")
    emulator.control("cme-error", "10")
    status = modem.status()  # one refused query leaves a hole, not a failure
    assert len(status.errors) == 1 and status.errors[0].cme == 10  # type: ignore[attr-defined]
    assert status.model and status.rssi_dbm is not None


def test_silent_modem_times_out_and_recovers(modem_device: Any, modem: AtModem) -> None:
    emulator = modem_device.require_emulator()
    modem.status()
    emulator.control("silence", "1.5")
    started = time.monotonic()
    with pytest.raises(DeviceError) as raised:
        modem.command("AT+CSQ", prefix="+CSQ:", timeout=0.6)
    assert time.monotonic() - started < 0.6 + SLACK_S
    assert (raised.value.code, raised.value.operation) == ("modem_no_reply", "AT+CSQ")
    started = time.monotonic()
    with pytest.raises(DeviceError) as raised:
        modem.status(timeout=3.0)
    assert time.monotonic() - started < 3.0 + SLACK_S
    assert raised.value.code == "modem_no_reply" and raised.value.device == "modem"
    wait_until(lambda: time.monotonic() >= emulator._silent_until, 3,
               "the end of the modem's 1.5 s silence")
    status = modem.status()
    assert status.registered and status.errors == ()
    assert modem.counters.timeouts >= 2


def test_unplugged_modem_is_reported_and_reopened(modem_device: Any, modem: AtModem) -> None:
    emulator = modem_device.require_emulator()
    modem.status()
    emulator.control("unplug")
    for _ in range(2):  # first the lost port, then the missing device
        started = time.monotonic()
        with pytest.raises(DeviceError) as raised:
            modem.status(timeout=2.0)
        assert time.monotonic() - started < 2.0 + SLACK_S
        assert raised.value.code == "modem_disconnected"
        assert "USB" in raised.value.text("en")
    assert raised.value.operation == "open"
    emulator.control("replug")  # boots with echo on and RDY / +CPIN: READY / SMS DONE...
    status = modem.status()
    assert status.registered and status.errors == ()
    assert modem.counters.reconnects == 1


def test_missing_port_is_reported(tmp_path: Path) -> None:
    with (AtModem(str(tmp_path / "no-such-modem"), command_timeout=0.5) as driver,
          pytest.raises(DeviceError) as raised):
        driver.status()
    error = raised.value
    assert (error.device, error.operation, error.code) == ("modem", "open", "modem_disconnected")
    assert "no-such-modem" in error.text("id")


def test_controls_refuse_bad_input(modem_device: Any) -> None:
    emulator = modem_device.require_emulator()
    assert set(emulator.CONTROLS) >= {"model", "signal", "rsrp", "register", "operator", "error",
                                      "cme-error", "silence", "urc", "unplug", "replug"}
    for name, args in [("reboot", ()), ("model", ("sim800",)), ("signal", ("loud",)),
                       ("signal", ("-200",)), ("register", ("maybe",)), ("operator", ("510",)),
                       ("cme-error", ()), ("silence", ("-3",)), ("error", ("now",))]:
        with pytest.raises(ValueError):
            emulator.control(name, *args)
