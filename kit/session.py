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

>>> session = OfficerSession(vault, store)       # doctest: +SKIP
>>> session.login("P-0001", "4829135071")            # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kit.store import Store
from kit.vault import DataKey, PinVault
from sync.errors import VaultError

log = logging.getLogger(__name__)

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

    # -- state --------------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        self._check_idle()
        return self._locked

    @property
    def data_key(self) -> DataKey:
        """The data key of an unlocked session; refuses when locked."""
        if self.locked or self._key is None:
            raise VaultError(id="Layar terkunci", en="The screen is locked",
                             hint_id="Masukkan PIN", hint_en="Enter your PIN", code="locked")
        return self._key

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
        log.info("officer session unlocked by PIN")

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
        self._key, self.officer, self._locked = None, None, True

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
        position = enroll()
        mapping = self.fingerprint_map()
        mapping[str(position)] = self.officer
        self.store.set_status(FINGER_MAP_KEY, mapping)
        self.store.audit("officer_fingerprint_enrolled", actor=self.officer)
        return position
