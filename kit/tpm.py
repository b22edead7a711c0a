"""The kit's TPM 2.0: secrets sealed to this one chip, behind its dictionary-attack lockout.

A Raspberry Pi has no TPM of its own; the kit carries an SPI TPM 2.0 module (an
Infineon SLB 9670 board, ``dtoverlay=tpm-slb9670``; wiring in the README), which the
kernel offers as ``/dev/tpmrm0``. Tests and the demo use ``swtpm``, the software TPM,
over its TCP socket (TCTI ``swtpm:host=127.0.0.1,port=N``).

What is sealed here (:meth:`Tpm.seal`) is a *sealed data object*: the TPM encrypts it
under a primary storage key that never leaves the chip, so the blob kept on the SD card
opens only in this TPM. Each object has an authorisation value:

- an officer's PIN slot (:mod:`kit.vault`) uses a digest of the PIN, and is subject to
  the TPM's dictionary-attack (DA) lockout: after ``max_tries`` wrong PINs (any officer,
  the counter is the chip's) the TPM refuses every PIN until one failure is forgiven
  each ``recovery_s``. The counter lives in the chip; no file edit resets it. With the
  policy provisioning sets (10 tries, one forgiven each 10 minutes), guessing a 6-digit
  PIN takes about 19 years;
- a machine secret (:mod:`kit.keyring`: the agent's key, the broker password) has no
  authorisation and is exempt from the lockout (``noDA``), so PIN guessing cannot stop
  the agent reporting the kit's position.

Every command runs in a salted HMAC session with parameter encryption (AES-128-CFB):
neither the PIN digest nor an unsealed secret crosses the SPI bus in clear.

Provisioning (:meth:`Tpm.take_lockout`) sets the DA policy and replaces the TPM's empty
lockout authorisation with a random *lockout code*, printed once for the office's safe:
it is what clears a DA lockout early (``jaranijo kit tpm-unlock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sync.errors import VaultError

# The TSS writes every TPM error response to stderr (a wrong PIN among them); the
# caller turns them into messages of its own. Set before tpm2_pytss is imported.
os.environ.setdefault("TSS2_LOG", "all+none")

if TYPE_CHECKING:
    from tpm2_pytss import ESAPI, TCTILdr, TSS2_Exception
    from tpm2_pytss.constants import (
        ESYS_TR,
        TPM2_ALG,
        TPM2_CAP,
        TPM2_PT,
        TPM2_RC,
        TPM2_SE,
        TPMA_OBJECT,
        TPMA_PERMANENT,
        TPMA_SESSION,
    )
    from tpm2_pytss.types import (
        TPM2B_AUTH,
        TPM2B_PRIVATE,
        TPM2B_PUBLIC,
        TPM2B_SENSITIVE_CREATE,
        TPM2B_SENSITIVE_DATA,
        TPMS_SENSITIVE_CREATE,
        TPMT_PUBLIC,
        TPMT_SYM_DEF,
        TPMU_SYM_KEY_BITS,
        TPMU_SYM_MODE,
    )


log = logging.getLogger(__name__)

DEVICE = Path("/dev/tpmrm0")
BLOB_MAGIC = b"JITPM1"
PRIMARY_TEMPLATE = "ecc256:aes128cfb"  # the storage primary: fast to re-create, never stored


def _load_tss() -> None:
    """Import tpm2_pytss (and with it cffi, cryptography and the TSS libraries: about
    20 MiB resident) on the first TPM operation, not when this module is imported.

    :mod:`kit.vault`, :mod:`kit.keyring` and :mod:`kit.provision` import this module on
    every kit, and the kiosk and the agent both import those; a kit without a TPM (or a
    kiosk before the first PIN) never needs the TSS (issue 15: resident memory). The
    names land in this module's globals, where the code below has always found them.
    """
    if "ESAPI" in globals():
        return
    import tpm2_pytss
    from tpm2_pytss import constants, types

    names = {"ESAPI": tpm2_pytss.ESAPI, "TCTILdr": tpm2_pytss.TCTILdr,
             "TSS2_Exception": tpm2_pytss.TSS2_Exception}
    for name in ("ESYS_TR", "TPM2_ALG", "TPM2_CAP", "TPM2_PT", "TPM2_RC", "TPM2_SE",
                 "TPMA_OBJECT", "TPMA_PERMANENT", "TPMA_SESSION"):
        names[name] = getattr(constants, name)
    for name in ("TPM2B_AUTH", "TPM2B_PRIVATE", "TPM2B_PUBLIC", "TPM2B_SENSITIVE_CREATE",
                 "TPM2B_SENSITIVE_DATA", "TPMS_SENSITIVE_CREATE", "TPMT_PUBLIC",
                 "TPMT_SYM_DEF", "TPMU_SYM_KEY_BITS", "TPMU_SYM_MODE"):
        names[name] = getattr(types, name)
    globals().update(names)


@dataclass(frozen=True)
class LockoutPolicy:
    """The TPM's dictionary-attack settings: ``max_tries`` failures, then one forgiven each
    ``recovery_s``; ``lockout_recovery_s`` after a wrong lockout code."""

    max_tries: int = 10
    recovery_s: int = 600
    lockout_recovery_s: int = 86_400


@dataclass(frozen=True)
class LockoutState:
    failures: int
    max_tries: int
    recovery_s: int
    lockout_recovery_s: int

    @property
    def locked(self) -> bool:
        return self.failures >= self.max_tries > 0


def resolve_tcti(setting: str) -> str | None:
    """The TCTI for ``security.tpm``: ``auto`` (the kernel's TPM if there is one), ``off``,
    or a TCTI string such as ``device:/dev/tpmrm0`` or ``swtpm:host=127.0.0.1,port=2321``."""
    setting = setting.strip()
    if setting in ("", "off", "none"):
        return None
    if setting == "auto":
        return f"device:{DEVICE}" if DEVICE.exists() else None
    return setting


def _fault(id: str, en: str, code: str, hint_id: str = "Hubungi teknisi",
           hint_en: str = "Call a technician") -> VaultError:
    return VaultError(id=id, en=en, hint_id=hint_id, hint_en=hint_en, code=code)


def pin_auth(pin: str, salt: bytes) -> bytes:
    """A PIN slot's authorisation value: SHA-256 of the slot's salt and the PIN."""
    return hashlib.sha256(b"jaranijo-pin-v1:" + salt + pin.encode("utf-8")).digest()


class Tpm:
    """One open connection to the TPM. Use as a context manager, or :meth:`close`."""

    def __init__(self, tcti: str) -> None:
        self.tcti = tcti
        name, _, conf = tcti.partition(":")
        _load_tss()
        try:
            self._ctx = ESAPI(TCTILdr(name, conf or None))
        except (TSS2_Exception, RuntimeError) as exc:
            raise _fault(f"TPM ({tcti}) tidak dapat dibuka: {exc}",
                         f"The TPM ({tcti}) cannot be opened: {exc}", "tpm_unavailable",
                         "Periksa modul TPM dan dtoverlay=tpm-slb9670 (README)",
                         "Check the TPM module and dtoverlay=tpm-slb9670 (README)") from None
        self._primary: ESYS_TR | None = None

    def __enter__(self) -> Tpm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            with contextlib.suppress(TSS2_Exception):
                if self._primary is not None:
                    ctx.flush_context(self._primary)
            ctx.close()

    # -- internals -------------------------------------------------------------------
    def _parent(self) -> ESYS_TR:
        if self._primary is None:
            # noDA: the storage key has no secret to guess, and must stay usable while
            # the TPM is locked out (the machine secrets under it are needed then too).
            template = TPM2B_PUBLIC.parse(
                PRIMARY_TEMPLATE,
                objectAttributes=TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS
                | TPMA_OBJECT.NODA)
            self._primary, *_ = self._ctx.create_primary(TPM2B_SENSITIVE_CREATE(), template)
        return self._primary

    @contextlib.contextmanager
    def _session(self) -> Iterator[ESYS_TR]:
        """A salted HMAC session encrypting the first command and response parameters."""
        sym = TPMT_SYM_DEF(algorithm=TPM2_ALG.AES, keyBits=TPMU_SYM_KEY_BITS(aes=128),
                           mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB))
        session = self._ctx.start_auth_session(self._parent(), ESYS_TR.NONE, TPM2_SE.HMAC,
                                               sym, TPM2_ALG.SHA256)
        self._ctx.trsess_set_attributes(session, TPMA_SESSION.DECRYPT | TPMA_SESSION.ENCRYPT)
        try:
            yield session
        finally:
            with contextlib.suppress(TSS2_Exception):
                self._ctx.flush_context(session)

    # -- sealing ---------------------------------------------------------------------
    def seal(self, secret: bytes, auth: bytes = b"") -> bytes:
        """A blob only this TPM opens, with ``auth`` (DA-protected) or none (``noDA``)."""
        attrs = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.USERWITHAUTH
        if not auth:
            attrs |= TPMA_OBJECT.NODA
        public = TPM2B_PUBLIC(TPMT_PUBLIC.parse("keyedhash", objectAttributes=attrs))
        sensitive = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(
            userAuth=TPM2B_AUTH(auth), data=TPM2B_SENSITIVE_DATA(secret)))
        parent = self._parent()
        with self._session() as session:
            private, public_out, *_ = self._ctx.create(parent, sensitive, public,
                                                       session1=session)
        pub, priv = public_out.marshal(), private.marshal()
        return BLOB_MAGIC + struct.pack(">HH", len(pub), len(priv)) + pub + priv

    def unseal(self, blob: bytes, auth: bytes = b"") -> bytes:
        """The secret in ``blob``. A wrong ``auth`` raises ``wrong_pin`` (and counts towards
        the TPM's lockout); a locked TPM ``tpm_lockout``; a blob of another TPM
        ``tpm_foreign``."""
        public, private = _split_blob(blob)
        parent = self._parent()
        try:
            handle = self._ctx.load(parent, private, public)
        except TSS2_Exception as exc:
            if exc.error == TPM2_RC.LOCKOUT:
                raise self._locked() from None
            raise _fault("Kunci ini bukan milik TPM kit ini",
                         "This key does not belong to this kit's TPM", "tpm_foreign",
                         "Kit perlu disiapkan ulang oleh teknisi",
                         "A technician must provision the kit again") from None
        try:
            self._ctx.tr_set_auth(handle, auth)
            with self._session() as session:
                return bytes(self._ctx.unseal(handle, session1=session))
        except TSS2_Exception as exc:
            if exc.error == TPM2_RC.LOCKOUT:
                raise self._locked() from None
            if exc.error in (TPM2_RC.AUTH_FAIL, TPM2_RC.BAD_AUTH):
                raise _fault("PIN salah", "Wrong PIN", "wrong_pin", "Coba lagi",
                             "Try again") from None
            raise _fault(f"TPM menolak: {exc}", f"The TPM refused: {exc}", "tpm_error") from None
        finally:
            with contextlib.suppress(TSS2_Exception):
                self._ctx.flush_context(handle)

    # -- the dictionary-attack lockout -----------------------------------------------
    def _locked(self) -> VaultError:
        minutes = max(1, self.lockout_state().recovery_s // 60)
        return _fault(
            f"TPM terkunci setelah terlalu banyak PIN salah; coba lagi dalam {minutes} menit",
            f"The TPM is locked after too many wrong PINs; try again in {minutes} minutes",
            "tpm_lockout", "Kantor dapat membukanya dengan kode kunci TPM",
            "The office can clear it with the TPM lockout code")

    def lockout_state(self) -> LockoutState:
        _more, data = self._ctx.get_capability(TPM2_CAP.TPM_PROPERTIES,
                                               TPM2_PT.LOCKOUT_COUNTER, 4)
        values = {int(p.property): int(p.value) for p in data.data.tpmProperties}
        return LockoutState(failures=values.get(int(TPM2_PT.LOCKOUT_COUNTER), 0),
                            max_tries=values.get(int(TPM2_PT.MAX_AUTH_FAIL), 0),
                            recovery_s=values.get(int(TPM2_PT.LOCKOUT_INTERVAL), 0),
                            lockout_recovery_s=values.get(int(TPM2_PT.LOCKOUT_RECOVERY), 0))

    def take_lockout(self, policy: LockoutPolicy) -> str | None:
        """At provisioning: set ``policy`` and a random lockout code, returned once.

        None when the TPM's lockout authorisation is already set (a kit provisioned
        before, or a TPM owned by someone else): the policy stays as the TPM has it.
        """
        # Asking with a wrong (empty) lockout authorisation would itself lock the
        # lockout hierarchy for a day: look first.
        _more, data = self._ctx.get_capability(TPM2_CAP.TPM_PROPERTIES, TPM2_PT.PERMANENT, 1)
        permanent = {int(p.property): int(p.value) for p in data.data.tpmProperties}
        if permanent.get(int(TPM2_PT.PERMANENT), 0) & int(TPMA_PERMANENT.LOCKOUTAUTHSET):
            log.warning("TPM lockout code already set; the TPM's lockout policy is kept")
            return None
        try:
            self._ctx.dictionary_attack_parameters(policy.max_tries, policy.recovery_s,
                                                   policy.lockout_recovery_s)
        except TSS2_Exception as exc:
            log.warning("TPM lockout policy left as the TPM has it (%s)", exc)
            return None
        code = secrets.token_hex(16)
        self._ctx.hierarchy_change_auth(ESYS_TR.LOCKOUT, code.encode("ascii"))
        return code

    def clear_lockout(self, code: str) -> None:
        """Reset the DA failure counter with the lockout code from provisioning."""
        self._ctx.tr_set_auth(ESYS_TR.LOCKOUT, code.strip().encode("ascii"))
        try:
            self._ctx.dictionary_attack_lock_reset()
        except TSS2_Exception:
            raise _fault("Kode kunci TPM salah (TPM menunggu sebelum kode berikutnya)",
                         "Wrong TPM lockout code (the TPM waits before the next one)",
                         "tpm_lockout_code") from None
        finally:
            self._ctx.tr_set_auth(ESYS_TR.LOCKOUT, b"")


def _split_blob(blob: bytes) -> tuple[TPM2B_PUBLIC, TPM2B_PRIVATE]:
    _load_tss()
    try:
        if not blob.startswith(BLOB_MAGIC):
            raise ValueError("magic")
        n_pub, n_priv = struct.unpack_from(">HH", blob, len(BLOB_MAGIC))
        start = len(BLOB_MAGIC) + 4
        pub, priv = blob[start:start + n_pub], blob[start + n_pub:start + n_pub + n_priv]
        if len(pub) != n_pub or len(priv) != n_priv:
            raise ValueError("length")
        public, _ = TPM2B_PUBLIC.unmarshal(pub)
        private, _ = TPM2B_PRIVATE.unmarshal(priv)
    except (ValueError, struct.error, TSS2_Exception):
        raise _fault("Data TPM di kit rusak", "The kit's TPM data is damaged",
                     "tpm_blob") from None
    return public, private


def open_tpm(setting: str) -> Tpm | None:
    """The TPM named by ``security.tpm`` (see :func:`resolve_tcti`), or None for none."""
    tcti = resolve_tcti(setting)
    return None if tcti is None else Tpm(tcti)


class SoftwareTpm:
    """``swtpm`` (Debian's software TPM) on 127.0.0.1: the demo's and the tests' TPM.

    Its state lives in ``directory``; stop and start it again and the sealed objects,
    the lockout counter and the lockout code are all still there, as on a real chip.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        swtpm = shutil.which("swtpm") or "/usr/bin/swtpm"
        for _ in range(5):
            self.port = _free_port_pair()
            self.proc = subprocess.Popen(
                [swtpm, "socket", "--tpm2", "--tpmstate", f"dir={self.directory}",
                 "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                 "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
                 "--flags", "not-need-init,startup-clear"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while self.proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(
                        ("127.0.0.1", self.port), timeout=0.2):
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("swtpm did not start (is Debian's swtpm installed?)")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _free_port_pair() -> int:
    """A free port whose successor is free too (swtpm's server and control ports)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with contextlib.suppress(OSError), socket.socket() as s2:
            s2.bind(("127.0.0.1", port + 1))
            return port
