"""PIN-protected personal data on the kit: the data key in officer key slots.

Target lists and drafts are encrypted with one random 256-bit *data key*
(XChaCha20-Poly1305, the row's table and id as associated data so rows
cannot be swapped). The data key is wrapped once per officer under a *slot key*,
like LUKS key slots: any officer can unlock, and deleting every slot
crypto-erases all personal data. A slot key is made one of two ways:

- **TPM** (a kit with its TPM module, :mod:`kit.tpm`): a random slot key sealed in
  the TPM with the officer's PIN as its authorisation. A copy of the SD card is
  useless without this chip, and the chip's dictionary-attack lockout limits
  guesses on the kit itself; no file edit resets it. PINs are 6-12 digits.
- **software** (a development PC, or a kit without the module): an Argon2id key
  from the PIN. A copy of the files can be attacked offline, so the PIN must be a
  passphrase of at least 10 characters (10 digits on the kiosk's keypad), and the
  kit reports the weaker mode (``jaranijo status``, the self-test, the office).

Failed PIN attempts are recorded *before* the slot work (so pulling the power
does not reset the count), force a growing wait measured on the monotonic clock
(a clock corrected at boot changes nothing), and lock the officer's slot after
``pin_max_attempts``.

Key files and sealed envelopes, which the office shares, are in
:mod:`sync.envelope`.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash
from nacl.signing import SigningKey

from sync.errors import VaultError

if TYPE_CHECKING:
    from kit.store import Store
    from kit.tpm import Tpm

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Personal data at rest: a data key in PIN-protected slots
# ---------------------------------------------------------------------------------------------

PIN_MIN, PIN_MAX = 6, 12        # with a TPM: digits on the keypad
PASSPHRASE_MIN, PASSPHRASE_MAX = 10, 64  # without one
SLOT_AAD = b"jaranijo-slot-v1:"
MAX_WAIT_S = 60.0
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
PIN_CLOCK_KEY = "pin_clock_boot"


@dataclass(frozen=True)
class Argon2Cost:
    """Argon2id cost: ``opslimit`` passes over ``memlimit`` bytes."""

    opslimit: int = 3
    memlimit: int = 64 * 1024 * 1024


def derive_slot_key(pin: str, salt: bytes, cost: Argon2Cost) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        32, pin.encode("utf-8"), salt, opslimit=cost.opslimit, memlimit=cost.memlimit
    )


class DataKey:
    """The unlocked data key: encrypts and decrypts personal data for one table row."""

    def __init__(self, key: bytes) -> None:
        self._key = bytearray(key)

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(24)
        return nonce + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, context.encode(), nonce, bytes(self._key)
        )

    def decrypt(self, blob: bytes, context: str) -> bytes:
        try:
            return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                blob[24:], context.encode(), blob[:24], bytes(self._key)
            )
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise VaultError(
                id="Data terenkripsi rusak atau bukan milik baris ini",
                en="Encrypted data is damaged or belongs to another row",
                hint_id="Laporkan ke teknisi; jangan hapus basis data",
                hint_en="Report it to a technician; do not delete the database",
                code="data_damaged",
            ) from None

    def raw(self) -> bytes:
        return bytes(self._key)

    def forget(self) -> None:
        """Overwrite the key in memory (best effort in Python) when the session locks."""
        for i in range(len(self._key)):
            self._key[i] = 0


def check_pin_format(pin: str, *, tpm: bool = True) -> None:
    """A PIN as the slot kind needs: 6-12 digits behind a TPM, else a passphrase of at
    least 10 characters (which offline guessing cannot exhaust)."""
    if tpm:
        if not (pin.isascii() and pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
            raise VaultError(
                id=f"PIN harus {PIN_MIN}-{PIN_MAX} angka",
                en=f"A PIN must be {PIN_MIN}-{PIN_MAX} digits",
                hint_id="Pilih PIN lain",
                hint_en="Choose another PIN",
                code="pin_format",
            )
        return
    if not (pin.isprintable() and pin == pin.strip()
            and PASSPHRASE_MIN <= len(pin) <= PASSPHRASE_MAX):
        raise VaultError(
            id=f"Kit ini tanpa TPM: PIN harus {PASSPHRASE_MIN} angka atau lebih "
               f"(atau frasa sandi {PASSPHRASE_MIN}-{PASSPHRASE_MAX} karakter)",
            en=f"This kit has no TPM: a PIN must be {PASSPHRASE_MIN} or more digits "
               f"(or a passphrase of {PASSPHRASE_MIN}-{PASSPHRASE_MAX} characters)",
            hint_id="Pilih PIN yang lebih panjang",
            hint_en="Choose a longer PIN",
            code="pin_format",
        )


def boot_id() -> str:
    """This boot's id (the monotonic clock restarts with it); "" where there is none."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


class PinVault:
    """Officer key slots over the kit store.

    >>> vault = PinVault(store, Argon2Cost(), max_attempts=5)  # doctest: +SKIP
    >>> key = vault.unlock("P-0012", "4829135071")                 # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        cost: Argon2Cost,
        max_attempts: int = 5,
        clock: Callable[[], float] = time.monotonic,
        tcti: str | None = None,
    ) -> None:
        self.store = store
        self.cost = cost
        self.max_attempts = max_attempts
        self.clock = clock
        # Where new slots go: the TPM behind this TCTI (kit.tpm), or Argon2id when None.
        self.tcti = tcti

    @property
    def mode(self) -> str:
        """``tpm`` or ``software``: how new slots are made (see the module's docstring)."""
        return "tpm" if self.tcti else "software"

    def _tpm(self) -> Tpm:
        from kit.tpm import Tpm

        if self.tcti is None:
            raise VaultError(
                id="Slot PIN ini tersegel di TPM, tetapi TPM tidak ada",
                en="This PIN slot is sealed in the TPM, but there is no TPM",
                hint_id="Periksa modul TPM dan security.tpm di kit.toml",
                hint_en="Check the TPM module and security.tpm in kit.toml",
                code="tpm_unavailable")
        return Tpm(self.tcti)

    # -- slots -----------------------------------------------------------------------
    def initialise(self, officer_id: str, pin: str) -> DataKey:
        """Create the data key and the first officer's slot (at provisioning)."""
        if self.store.key_slot_ids():
            raise VaultError(
                id="Brankas sudah berisi slot petugas",
                en="The vault already has officer slots",
                hint_id="Tambahkan petugas dengan 'jaranijo officer add'",
                hint_en="Add officers with 'jaranijo officer add'",
                code="already_initialised",
            )
        key = DataKey(secrets.token_bytes(32))
        self.add_officer(key, officer_id, pin)
        return key

    def add_officer(self, key: DataKey, officer_id: str, pin: str) -> None:
        """Give ``officer_id`` a slot (replacing theirs): needs an unlocked data key."""
        check_pin_format(pin, tpm=self.tcti is not None)
        salt = secrets.token_bytes(16)
        tpm_blob: bytes | None = None
        if self.tcti is not None:
            from kit.tpm import pin_auth

            slot_key = secrets.token_bytes(32)
            with self._tpm() as tpm:
                tpm_blob = tpm.seal(slot_key, pin_auth(pin, salt))
            opslimit = memlimit = 0
        else:
            slot_key = derive_slot_key(pin, salt, self.cost)
            opslimit, memlimit = self.cost.opslimit, self.cost.memlimit
        nonce = secrets.token_bytes(24)
        wrapped = nonce + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            key.raw(), SLOT_AAD + officer_id.encode(), nonce, slot_key
        )
        self.store.put_key_slot(officer_id, salt, opslimit, memlimit, wrapped, tpm_blob)
        self.store.reset_pin_failures(officer_id)
        self.store.audit("officer_slot_set", actor=officer_id)

    def put_secret(self, key: DataKey, name: str, secret: bytes) -> None:
        """Keep a small secret (e.g. the kit's box key) encrypted under the data key."""
        blob = key.encrypt(secret, f"secret:{name}")
        self.store.set_status(f"secret:{name}", base64.b64encode(blob).decode())

    def get_secret(self, key: DataKey, name: str) -> bytes:
        value = self.store.status(f"secret:{name}")
        if not isinstance(value, str):
            raise VaultError(
                id=f"Rahasia '{name}' tidak ada di brankas",
                en=f"Secret '{name}' is not in the vault",
                hint_id="Kit perlu disiapkan ulang oleh teknisi",
                hint_en="A technician must provision the kit again",
                code="secret_missing",
            )
        return key.decrypt(base64.b64decode(value), f"secret:{name}")

    def signing_key(self, key: DataKey) -> SigningKey:
        """The kit's record-signing key, which lives only under the data key."""
        return SigningKey(self.get_secret(key, "kit-sign"))

    def remove_officer(self, officer_id: str) -> None:
        self.store.delete_key_slot(officer_id)
        self.store.audit("officer_slot_removed", actor=officer_id)

    def crypto_erase(self) -> None:
        """Delete every slot: all personal data on the kit becomes unreadable for good."""
        with self.store.transaction():
            for officer_id in self.store.key_slot_ids():
                self.store.delete_key_slot(officer_id)
            for name in self.store.status_keys("secret:"):
                self.store.delete_status(name)
        self.store.audit("crypto_erase")

    def wipe(self) -> dict[str, int]:
        """A remote wipe's share of the store: crypto-erase every slot and secret, drop
        every draft and every sealed inbox envelope; the counts of each. The caller notes
        the wipe, then :meth:`kit.store.Store.scrub` removes the deleted bytes for good."""
        slots = len(self.store.key_slot_ids())
        self.crypto_erase()
        with self.store.transaction():
            drafts = self.store.delete_drafts()
            inbox = self.store.clear_inbox()
        return {"slots": slots, "drafts": drafts, "inbox": inbox}

    # -- unlocking -------------------------------------------------------------------
    def unlock(self, officer_id: str, pin: str) -> DataKey:
        """The data key for a correct PIN; refuses while a wait is due or the slot is locked."""
        self._restart_waits_after_boot()
        failures, last_failure = self.store.pin_failures(officer_id)
        if failures >= self.max_attempts:
            raise VaultError(
                id="Akun petugas terkunci karena terlalu banyak PIN salah",
                en="Officer account is locked after too many wrong PINs",
                hint_id="Minta kantor membuka kunci atau petugas lain menyetel PIN baru",
                hint_en="Ask the office to unlock it, or another officer to set a new PIN",
                code="locked_out",
            )
        wait = self.wait_seconds(failures, last_failure)
        if wait > 0:
            raise VaultError(
                id=f"Tunggu {wait:.0f} detik sebelum mencoba lagi",
                en=f"Wait {wait:.0f} seconds before trying again",
                hint_id=f"Sisa percobaan: {self.max_attempts - failures}",
                hint_en=f"Attempts left: {self.max_attempts - failures}",
                code="pin_wait",
            )
        # Count the attempt first: cutting the power during the Argon2 work must
        # not give an attacker a free guess.
        self.store.record_pin_failure(officer_id, self.clock())
        slot = self.store.key_slot(officer_id)
        key: bytes | None = None
        if slot is not None:
            salt, opslimit, memlimit, wrapped, tpm_blob = slot
            slot_key: bytes | None
            if tpm_blob is not None:
                slot_key = self._unseal_slot(tpm_blob, pin, salt)
            else:
                slot_key = derive_slot_key(pin, salt, Argon2Cost(opslimit, memlimit))
            try:
                if slot_key is not None:
                    key = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                        wrapped[24:], SLOT_AAD + officer_id.encode(), wrapped[:24], slot_key)
            except nacl.exceptions.CryptoError:
                key = None
        elif self.tcti is None:
            # Same work for an unknown officer, so timing does not tell ids apart. (With a
            # TPM an unknown id is answered without a TPM command; officer ids are printed
            # on their cards, not secrets, and the answer's text is the same.)
            derive_slot_key(pin, b"\0" * 16, self.cost)
        if key is None:
            left = self.max_attempts - failures - 1
            self.store.audit("pin_failed", actor=officer_id)
            log.info("PIN rejected for an officer slot (%d attempts left)", left)
            raise VaultError(
                id="ID petugas atau PIN salah",
                en="Wrong officer ID or PIN",
                hint_id=f"Sisa percobaan: {left}" if left > 0 else "Akun kini terkunci",
                hint_en=f"Attempts left: {left}" if left > 0 else "The account is now locked",
                code="wrong_pin" if left > 0 else "locked_out",
            )
        self.store.reset_pin_failures(officer_id)
        self.store.audit("officer_unlocked", actor=officer_id)
        return DataKey(key)

    def _unseal_slot(self, blob: bytes, pin: str, salt: bytes) -> bytes | None:
        """The slot key from the TPM; None for a wrong PIN (the TPM counted it too)."""
        from kit.tpm import pin_auth

        with self._tpm() as tpm:
            try:
                return tpm.unseal(blob, pin_auth(pin, salt))
            except VaultError as exc:
                if exc.code == "wrong_pin":
                    return None
                raise

    def _restart_waits_after_boot(self) -> None:
        """Failure times are monotonic-clock readings, which restart at boot: after a
        reboot every pending wait starts again from now (never shorter, never 86,400 s)."""
        current = boot_id()
        if self.store.status(PIN_CLOCK_KEY) != current:
            with self.store.transaction():
                self.store.restart_pin_waits(self.clock())
                self.store.set_status(PIN_CLOCK_KEY, current)

    def wait_seconds(self, failures: int, last_failure: float) -> float:
        """Seconds to wait before the next attempt: 0 after one failure, then 2, 4, 8 ... 60."""
        if failures < 2:
            return 0.0
        due = last_failure + min(MAX_WAIT_S, 2.0 ** (failures - 1))
        return max(0.0, due - self.clock())

    def unlock_officer(self, officer_id: str) -> None:
        """Clear a lockout (an office command or a technician with the office's say-so)."""
        self.store.reset_pin_failures(officer_id)
        self.store.audit("officer_lockout_cleared", actor=officer_id)
