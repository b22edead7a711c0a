"""The officer session: log in with ID and PIN, lock when idle, unlock by fingerprint.

A PIN unlock unwraps the officers' data key (:class:`kit.vault.PinVault`)
and starts a session. After ``idle_lock_minutes`` without a touch the
screen locks: the key stays in memory so the officer can come back with a
PIN *or* an enrolled fingerprint, as a phone allows a fingerprint only
after the PIN since it started. After ``forget_minutes`` locked, or on
logout, the key is overwritten and only a PIN opens the kit again. A
fingerprint cannot unwrap the key by itself (the sensor only says "this is
template 3"), which is why it works only within a session.

Officers' templates live in the sensor's flash; which template belongs to
which officer is kept in the store (ids only). Residents' templates are
never stored on the sensor.

An officer a technician provisioned at first boot (:mod:`kit.firstboot`) logs in the
first time with a one-time enrolment code, which their slot is sealed with while the
store status ``pin_change_required`` lists them. Such a session is *PIN change
required* (:attr:`OfficerSession.must_set_pin`): it holds the data key but gives it to
nobody -- no assignment, no visit, no finger enrolment -- until :meth:`set_pin` has
re-sealed the slot with a PIN of the officer's own. The code is what everybody on the
technician's sheet could read, so it must not open the kit day to day. The list is
cleared only in the transaction that writes the new slot: a power cut before it leaves
the code working once more, and the officer is asked again.

>>> session = OfficerSession(vault, store)       # doctest: +SKIP
>>> session.login("P-0001", "4829135071")            # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from kit.firstboot import PIN_CHANGE_KEY
from kit.store import Store
from kit.vault import PASSPHRASE_MIN, PIN_MAX, PIN_MIN, DataKey, PinVault, check_pin_format
from sync.errors import VaultError

log = logging.getLogger(__name__)


def refuse_weak_pin(pin: str) -> None:
    """Refuse a new PIN that is guessed first: one digit throughout (111111), a run up or
    down (123456, 987654, 1234567890) or a short block repeated (121212, 123123). The
    slot's Argon2id and the TPM's lockout limit the guesses; these would be among the first.

    For PINs being chosen only (first login, ``jaranijo officer add``), never at unlock:
    an officer whose PIN is already one of these still gets in, and changes it later."""
    digits = [int(c) for c in pin] if pin.isdigit() else []
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}  # 9 -> 0 runs on
    repeated = any(len(pin) % n == 0 and pin == pin[:n] * (len(pin) // n) for n in (1, 2, 3))
    if digits and (repeated or steps in ({1}, {9})):
        raise VaultError(id="PIN terlalu mudah ditebak: angka sama, berurutan atau berulang",
                         en="The PIN is too easy to guess: one digit, a run or a repeated "
                            "pattern", hint_id="Pilih angka yang tidak berpola",
                         hint_en="Choose digits without a pattern", code="pin_weak")

FINGER_MAP_KEY = "officer_fingerprints"


class OfficerSession:
    """Who is logged in on the kit, and whether the screen is locked."""

    def __init__(self, vault: PinVault, store: Store, *, idle_lock_minutes: float = 5.0,
                 forget_minutes: float = 60.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.vault = vault
        self.store = store
        self.idle_lock_s = idle_lock_minutes * 60
        self.forget_s = forget_minutes * 60
        self.clock = clock
        self.officer: str | None = None
        self._key: DataKey | None = None
        self._last_touch = clock()
        self._locked = True
        # The enrolment code a "PIN change required" session was opened with (compared,
        # never logged); None for a normal session.
        self._code: str | None = None

    # -- state --------------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        self._check_idle()
        return self._locked

    @property
    def data_key(self) -> DataKey:
        """The data key of an unlocked session; refuses when locked, and while the officer
        has not yet replaced their enrolment code with a PIN of their own."""
        if self.locked or self._key is None:
            raise VaultError(id="Layar terkunci", en="The screen is locked",
                             hint_id="Masukkan PIN", hint_en="Enter your PIN", code="locked")
        self.require_own_pin()
        return self._key

    @property
    def must_set_pin(self) -> bool:
        """Logged in with a one-time enrolment code: a PIN must be set before anything."""
        return self._code is not None and self._key is not None

    def pin_change_required(self, officer_id: str) -> bool:
        """Whether ``officer_id``'s slot still holds their enrolment code (the store's list)."""
        listed = self.store.status(PIN_CHANGE_KEY, [])
        return isinstance(listed, list) and officer_id in listed

    def new_pin_digits(self) -> tuple[int, int]:
        """How many digits a new PIN may have on the kiosk's keypad: the vault's rule
        (:func:`kit.vault.check_pin_format`) for the kind of slot this kit makes."""
        if self.vault.mode == "tpm":
            return PIN_MIN, PIN_MAX
        return PASSPHRASE_MIN, PIN_MAX

    def require_own_pin(self) -> None:
        """Refuse (in both languages) while the session is "PIN change required"."""
        if self.must_set_pin:
            raise VaultError(
                id="Buat PIN Anda sendiri dulu: kode pendaftaran hanya untuk masuk pertama",
                en="Choose your own PIN first: the enrolment code is for the first login only",
                hint_id="Masukkan PIN baru dua kali", hint_en="Enter a new PIN twice",
                code="pin_change_required")

    def touch(self) -> None:
        """The officer did something: the idle timer starts again."""
        self._check_idle()
        if not self._locked:
            self._last_touch = self.clock()

    def _check_idle(self) -> None:
        idle = self.clock() - self._last_touch
        if not self._locked and idle >= self.idle_lock_s:
            self._locked = True
            self.store.audit("session_idle_locked", actor=self.officer or "")
        if self._locked and self._key is not None and idle >= self.idle_lock_s + self.forget_s:
            self._forget()

    # -- logging in and out ---------------------------------------------------------------------
    def login(self, officer_id: str, pin: str) -> None:
        """Unlock with an officer's PIN (rate-limited and locked out by the vault)."""
        key = self.vault.unlock(officer_id, pin)
        if self._key is not None and self._key is not key:
            self._key.forget()
        self._key, self.officer = key, officer_id
        self._locked, self._last_touch = False, self.clock()
        self._code = pin if self.pin_change_required(officer_id) else None
        if self._code is not None:
            log.info("officer session unlocked by enrolment code: a PIN must be set")
        else:
            log.info("officer session unlocked by PIN")

    # -- the officer's own PIN at first login --------------------------------------------------
    def check_new_pin(self, pin: str) -> None:
        """Refuse a new PIN the slot would not take (:func:`kit.vault.check_pin_format`, the
        rule provisioning used), one guessed first (:func:`refuse_weak_pin`) or the
        enrolment code itself."""
        if not self.must_set_pin or self._code is None:
            raise VaultError(id="Tidak ada PIN yang perlu dibuat", en="No PIN needs to be set",
                             code="no_pin_change")
        check_pin_format(pin, tpm=self.vault.mode == "tpm")
        refuse_weak_pin(pin)
        if hmac.compare_digest(pin.encode(), self._code.encode()):
            raise VaultError(id="PIN baru tidak boleh sama dengan kode pendaftaran",
                             en="The new PIN cannot be the enrolment code",
                             hint_id="Pilih PIN lain", hint_en="Choose another PIN",
                             code="pin_is_code")

    def set_pin(self, pin: str, repeat: str) -> None:
        """Replace the enrolment code with the officer's own PIN (typed twice); then the
        session is a normal one.

        The new slot, the officer's removal from ``pin_change_required`` and the audit
        entry are one transaction: a power cut leaves either the code (and the request)
        or the new PIN (and no request), never a code that opens the kit unasked.
        """
        self.check_new_pin(pin)
        if not hmac.compare_digest(pin.encode(), repeat.encode()):
            raise VaultError(id="Kedua PIN tidak sama", en="The two PINs do not match",
                             hint_id="Masukkan PIN baru lagi dari awal",
                             hint_en="Enter the new PIN again from the start",
                             code="pin_mismatch")
        officer, key = self.officer, self._key
        assert officer is not None and key is not None  # must_set_pin said so
        with self.store.transaction():
            self.vault.add_officer(key, officer, pin)
            listed = self.store.status(PIN_CHANGE_KEY, [])
            self.store.set_status(PIN_CHANGE_KEY, [o for o in listed if o != officer]
                                  if isinstance(listed, list) else [])
            self.store.audit("pin_set_first_login", actor=officer)
        self._code = None
        self._last_touch = self.clock()
        log.info("officer chose their own PIN at first login")

    def unlock_by_fingerprint(self, identify: Callable[[], tuple[int, int] | None]) -> str:
        """Unlock a locked session with an enrolled finger; returns the officer id.

        ``identify`` searches the sensor (e.g. ``sensor.identify_officer``)
        and returns (template position, score) or None.
        """
        self._check_idle()
        if self._key is None:
            raise VaultError(id="Sidik jari hanya membuka sesi yang terkunci; masukkan PIN",
                             en="A fingerprint only reopens a locked session; enter the PIN",
                             code="pin_required")
        found = identify()
        officer = self.fingerprint_map().get(str(found[0])) if found else None
        if officer is None:
            self.store.audit("fingerprint_unlock_failed")
            raise VaultError(id="Sidik jari tidak dikenali", en="Fingerprint not recognised",
                             hint_id="Coba lagi atau masukkan PIN",
                             hint_en="Try again or enter the PIN", code="finger_unknown")
        if officer != self.officer:  # another officer's finger: their own, normal session
            self._code = None
        self.officer, self._locked, self._last_touch = officer, False, self.clock()
        self.store.audit("officer_unlocked_fingerprint", actor=officer)
        return officer

    def lock(self) -> None:
        self._locked = True

    def logout(self) -> None:
        self._forget()

    def _forget(self) -> None:
        if self._key is not None:
            self._key.forget()
        self._key, self.officer, self._locked, self._code = None, None, True, None

    # -- officers' fingerprints -------------------------------------------------------------------
    def fingerprint_map(self) -> dict[str, str]:
        """Sensor template position (as text) -> officer id."""
        value: Any = self.store.status(FINGER_MAP_KEY, {})
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def enroll_fingerprint(self, enroll: Callable[[], int]) -> int:
        """Enroll the logged-in officer's finger on the sensor; returns the template position."""
        if self.locked or self.officer is None:
            raise VaultError(id="Masuk dengan PIN dulu", en="Log in with the PIN first",
                             code="locked")
        self.require_own_pin()
        position = enroll()
        mapping = self.fingerprint_map()
        mapping[str(position)] = self.officer
        self.store.set_status(FINGER_MAP_KEY, mapping)
        self.store.audit("officer_fingerprint_enrolled", actor=self.officer)
        return position
