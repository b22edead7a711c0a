"""Key files and sealed envelopes: what kit and office need to trust each other's bytes.

Two jobs, both with libsodium (PyNaCl):

**Key files.** The office has two key pairs: *seal* (X25519, records are
encrypted to it) and *sign* (Ed25519, it signs assignments and commands).
Each kit has two: *sign* (Ed25519, it signs its sealed records) and *box*
(X25519, the office seals assignments to it). A key file is one line,
``jaranijo-key-v1 <kind> <base64>``, so a public key given where a secret
one is expected, or an office key where a kit key is expected, is caught
with a clear message. Secret key files are written 0600 and refused when
group or others can read them (as OpenSSH does).

**Sealed envelopes.** ``seal()`` encrypts canonical CBOR content to the
recipient's X25519 key with a libsodium sealed box (ephemeral sender key,
so after sealing not even the sender can read it back), then signs
``[domain, header, ciphertext]`` with the sender's Ed25519 key. The header
is routing metadata only (kind, ids, time, key fingerprints) and stays in
clear. ``open_sealed()`` checks the signature *first* (nothing unsigned is
ever decrypted or parsed further), then decrypts, then checks that the ids
inside the ciphertext match the header, so a valid ciphertext cannot be
re-used under another record's header. The same envelope carries records
(kit -> office) and assignments (office -> kit).

PIN-protected data on the kit is :mod:`kit.vault`.

>>> office = OfficeKeys.generate()
>>> kit = KitKeys.generate()
>>> blob = seal({"hello": "dunia"}, kind="record", ids={"record_id": "r1", "kit_id": "k1"},
...             recipient=office.seal_public, signer=kit.sign)
>>> open_sealed(blob, recipient=office.seal, sender=kit.sign_public).content
{'hello': 'dunia'}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2
import nacl.exceptions
import nacl.pwhash
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from sync.errors import KeyFileError, VaultError

log = logging.getLogger(__name__)

KEY_MAGIC = "jaranijo-key-v1"
ENVELOPE_VERSION = 1
SIGN_DOMAIN = "jaranijo-sealed-v1"
RECORD_KIND = "recording"  # the header kind of a sealed recording (kit -> office)

# ---------------------------------------------------------------------------------------------
# Key files
# ---------------------------------------------------------------------------------------------


def fingerprint(public_key: bytes) -> str:
    """A short, stable name for a public key (BLAKE2b-64, hex), as shown in headers and logs."""
    return hashlib.blake2b(public_key, digest_size=8).hexdigest()


def write_key_file(path: Path, kind: str, raw: bytes, *, secret: bool) -> None:
    """Write one key; a secret key is created 0600 and never overwrites an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"{KEY_MAGIC} {kind} {base64.b64encode(raw).decode()}\n".encode()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if secret else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o600 if secret else 0o644)
    except FileExistsError:
        raise KeyFileError(
            id=f"Berkas kunci {path} sudah ada; tidak ditimpa",
            en=f"Key file {path} already exists; not overwriting it",
            hint_id="Pindahkan berkas lama bila memang ingin kunci baru",
            hint_en="Move the old file away if you really want new keys",
        ) from None
    try:
        if secret:
            os.fchmod(fd, 0o600)  # the umask may have widened nothing, but be explicit
        os.write(fd, text)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path, kind: str, *, secret: bool) -> bytes:
    """Read one key of ``kind``; refuse a secret key file that others can read."""
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(
            id=f"Berkas kunci {path} tidak ada",
            en=f"Key file {path} is missing",
            hint_id="Jalankan 'jaranijo provision' (kit) atau 'jaranijo office keygen' (kantor)",
            hint_en="Run 'jaranijo provision' (kit) or 'jaranijo office keygen' (office)",
        ) from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise KeyFileError(
            id=f"Berkas kunci {path} tidak dapat dibaca ({exc.__class__.__name__})",
            en=f"Key file {path} cannot be read ({exc.__class__.__name__})",
            hint_id="Periksa berkas dan haknya",
            hint_en="Check the file and its permissions",
        ) from None
    if secret and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            id=f"Berkas kunci rahasia {path} dapat dibaca orang lain",
            en=f"Secret key file {path} is readable by others",
            hint_id=f"Jalankan: chmod 600 {path}",
            hint_en=f"Run: chmod 600 {path}",
        )
    parts = text.split()
    if len(parts) != 3 or parts[0] != KEY_MAGIC:
        raise KeyFileError(
            id=f"{path} bukan berkas kunci Jaran Ijo",
            en=f"{path} is not a Jaran Ijo key file",
            hint_id="Periksa jalur berkas",
            hint_en="Check the file path",
        )
    if parts[1] != kind:
        raise KeyFileError(
            id=f"{path} berisi kunci '{parts[1]}', bukan '{kind}'",
            en=f"{path} holds a '{parts[1]}' key, not '{kind}'",
            hint_id="Berkas tertukar; periksa jalur berkas",
            hint_en="The files are mixed up; check the file path",
        )
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise KeyFileError(
            id=f"{path}: isi kunci rusak",
            en=f"{path}: key content is damaged",
            hint_id="Pulihkan berkas dari cadangan",
            hint_en="Restore the file from a backup",
        )
    return raw


def key_file(directory: Path, kind: str) -> Path:
    """Where a key of ``kind`` lives in a key folder: ``office-sign-secret`` is
    ``office-sign.key``, ``kit-box-public`` is ``kit-box.pub``. The one place key file
    names are spelled."""
    base, _, half = kind.rpartition("-")
    if half not in ("secret", "public") or not base:
        raise ValueError(f"not a key kind: {kind!r}")
    return Path(directory) / f"{base}.{'key' if half == 'secret' else 'pub'}"


def load_key(directory: Path, kind: str) -> bytes:
    """The raw key of ``kind`` from its file in ``directory`` (see :func:`key_file`)."""
    return read_key_file(key_file(directory, kind), kind, secret=kind.endswith("-secret"))


def save_key(directory: Path, kind: str, raw: bytes) -> None:
    """Write the key of ``kind`` into ``directory``; a secret one 0600."""
    write_key_file(key_file(directory, kind), kind, raw, secret=kind.endswith("-secret"))


def read_secret_file(path: Path, what: str) -> str:
    """A password kept in a file of its own (the broker login of a kit or of the office).

    ``what`` names it in the message (``mqtt-password``). The file must be readable by
    its owner only, as a secret key file must.
    """
    try:
        return read_secret_bytes(path, what).decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise _unreadable(path, what, exc) from None


def _unreadable(path: Path, what: str, exc: Exception) -> KeyFileError:
    return KeyFileError(
        id=f"Berkas {what} {path} tidak dapat dibaca ({exc.__class__.__name__})",
        en=f"The {what} file {path} cannot be read ({exc.__class__.__name__})",
        hint_id="Periksa jalur dan hak baca berkas (pengguna layanan)",
        hint_en="Check the path, and that the service's user can read it",
        code="secret_file")


def read_secret_bytes(path: Path, what: str) -> bytes:
    """The bytes of a secret file, refused when anyone but its owner may read it."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, what, exc) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            id=f"Berkas {what} {path} dapat dibaca pengguna lain",
            en=f"The {what} file {path} is readable by other users",
            hint_id=f"Jalankan: chmod 600 {path}", hint_en=f"Run: chmod 600 {path}",
            code="secret_file_mode")
    return data


@dataclass(frozen=True)
class OfficePublicKeys:
    """What a kit knows of the office: where to seal records, whose signatures to trust."""

    seal: PublicKey
    sign: VerifyKey

    @classmethod
    def load(cls, directory: Path) -> OfficePublicKeys:
        return cls(
            seal=PublicKey(load_key(directory, "office-seal-public")),
            sign=VerifyKey(load_key(directory, "office-sign-public")),
        )

    def save(self, directory: Path) -> None:
        save_key(directory, "office-seal-public", bytes(self.seal))
        save_key(directory, "office-sign-public", bytes(self.sign))


@dataclass(frozen=True)
class OfficeKeys:
    """The office's secret keys: open records, sign assignments and commands."""

    seal: PrivateKey
    sign: SigningKey

    @classmethod
    def generate(cls) -> OfficeKeys:
        return cls(seal=PrivateKey.generate(), sign=SigningKey.generate())

    @property
    def seal_public(self) -> PublicKey:
        return self.seal.public_key

    @property
    def public(self) -> OfficePublicKeys:
        return OfficePublicKeys(seal=self.seal.public_key, sign=self.sign.verify_key)

    def save(self, directory: Path) -> None:
        save_key(directory, "office-seal-secret", bytes(self.seal))
        save_key(directory, "office-sign-secret", bytes(self.sign))
        self.public.save(directory)

    @classmethod
    def load(cls, directory: Path) -> OfficeKeys:
        return cls(
            seal=PrivateKey(load_key(directory, "office-seal-secret")),
            sign=SigningKey(load_key(directory, "office-sign-secret")),
        )


@dataclass(frozen=True)
class KitPublicKeys:
    """What the office knows of a kit: whose records to trust, where to seal assignments."""

    sign: VerifyKey
    box: PublicKey

    @classmethod
    def load(cls, directory: Path) -> KitPublicKeys:
        return cls(
            sign=VerifyKey(load_key(directory, "kit-sign-public")),
            box=PublicKey(load_key(directory, "kit-box-public")),
        )

    def save(self, directory: Path) -> None:
        save_key(directory, "kit-sign-public", bytes(self.sign))
        save_key(directory, "kit-box-public", bytes(self.box))


@dataclass(frozen=True)
class KitKeys:
    """A kit's own key pairs: *sign* its records, open assignments sealed to its *box* key.

    Neither secret key lives in a file: both are kept in the kit's vault under the
    officers' data key (only an officer's session seals records or opens
    assignments), so a lost SD card yields neither a forged record nor an open
    assignment: see :meth:`kit.vault.PinVault.put_secret`. Only the public keys are
    files, for the technician to copy to the office.
    """

    sign: SigningKey
    box: PrivateKey

    @classmethod
    def generate(cls) -> KitKeys:
        return cls(sign=SigningKey.generate(), box=PrivateKey.generate())

    @property
    def sign_public(self) -> VerifyKey:
        return self.sign.verify_key

    @property
    def public(self) -> KitPublicKeys:
        return KitPublicKeys(sign=self.sign.verify_key, box=self.box.public_key)

    def save(self, directory: Path) -> None:
        """Write both public keys; the secret keys go to the kit's vault."""
        self.public.save(directory)


# ---------------------------------------------------------------------------------------------
# Sealed envelopes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """A sealed envelope after its checks: the clear header and the decrypted content."""

    header: dict[str, Any]
    content: dict[str, Any]


def canonical(value: Any) -> bytes:
    """Canonical CBOR (RFC 8949 deterministic encoding): the same value, the same bytes."""
    return cbor2.dumps(value, canonical=True)


def seal(
    content: dict[str, Any],
    *,
    kind: str,
    ids: dict[str, str],
    recipient: PublicKey,
    signer: SigningKey,
    now: datetime | None = None,
) -> bytes:
    """Encrypt ``content`` to ``recipient`` and sign it; returns the envelope bytes.

    ``ids`` (e.g. record_id, kit_id) appear both in the clear header, for
    routing, and inside the ciphertext, so the two are bound together.
    """
    sealed_at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    inner = canonical({"kind": kind, "ids": ids, "sealed_at": sealed_at, "content": content})
    ciphertext = SealedBox(recipient).encrypt(inner)
    header = {
        "v": ENVELOPE_VERSION,
        "kind": kind,
        **ids,
        "sealed_at": sealed_at,
        "to": fingerprint(bytes(recipient)),
        "by": fingerprint(bytes(signer.verify_key)),
    }
    signature = signer.sign(canonical([SIGN_DOMAIN, header, ciphertext])).signature
    return canonical({"hdr": header, "ct": ciphertext, "sig": signature})


def read_header(blob: bytes) -> dict[str, Any]:
    """The clear header of an envelope, *unverified*: for routing only, never for trust."""
    return _decode_envelope(blob)[0]


def open_sealed(
    blob: bytes,
    *,
    recipient: PrivateKey,
    sender: VerifyKey | Callable[[dict[str, Any]], VerifyKey],
) -> Opened:
    """Check the signature, decrypt, and check the inner ids against the header.

    ``sender`` is the expected signer's key, or a function from the header to
    it (the office looks the kit's key up by ``kit_id``).
    """
    header, ciphertext, signature = _decode_envelope(blob)
    verify_key = sender(header) if callable(sender) else sender
    try:
        verify_key.verify(canonical([SIGN_DOMAIN, header, ciphertext]), signature)
    except nacl.exceptions.BadSignatureError:
        raise VaultError(
            id="Tanda tangan amplop tidak cocok: isi diubah atau bukan dari pengirimnya",
            en="Envelope signature does not match: altered, or not from its sender",
            hint_id="Jangan dipakai; minta kirim ulang",
            hint_en="Do not use it; ask for it to be sent again",
            code="bad_signature",
        ) from None
    try:
        inner_bytes = SealedBox(recipient).decrypt(ciphertext)
    except nacl.exceptions.CryptoError:
        raise VaultError(
            id="Amplop tidak dapat dibuka dengan kunci ini",
            en="Envelope cannot be opened with this key",
            hint_id="Hanya kunci tujuan (kunci segel kantor) yang dapat membukanya",
            hint_en="Only the recipient's key (the office seal key) can open it",
            code="not_for_this_key",
        ) from None
    try:
        inner = cbor2.loads(inner_bytes)
    except (cbor2.CBORDecodeError, ValueError, TypeError):
        inner = None
    ids = {k: v for k, v in header.items()
           if k not in ("v", "kind", "sealed_at", "to", "by")}
    if (
        not isinstance(inner, dict)
        or inner.get("kind") != header.get("kind")
        or inner.get("ids") != ids
        or inner.get("sealed_at") != header.get("sealed_at")
        or not isinstance(inner.get("content"), dict)
    ):
        raise VaultError(
            id="Isi amplop tidak sesuai dengan kepalanya",
            en="Envelope content does not match its header",
            hint_id="Jangan dipakai; laporkan ke teknisi",
            hint_en="Do not use it; report it to a technician",
            code="header_mismatch",
        )
    return Opened(header=header, content=inner["content"])


def _decode_envelope(blob: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    damaged = VaultError(
        id="Amplop rusak: tidak dapat dibaca",
        en="Envelope is damaged: it cannot be decoded",
        hint_id="Jangan dipakai; minta kirim ulang",
        hint_en="Do not use it; ask for it to be sent again",
        code="damaged",
    )
    try:
        outer = cbor2.loads(blob)
    except Exception:  # cbor2 raises several types on garbage; all mean "damaged"
        raise damaged from None
    if not isinstance(outer, dict) or set(outer) != {"hdr", "ct", "sig"}:
        raise damaged
    header, ciphertext, signature = outer["hdr"], outer["ct"], outer["sig"]
    if (
        not isinstance(header, dict)
        or not isinstance(ciphertext, bytes)
        or not isinstance(signature, bytes)
        or len(signature) != 64
        or not all(isinstance(k, str) and isinstance(v, str | int) for k, v in header.items())
    ):
        raise damaged
    if header.get("v") != ENVELOPE_VERSION:
        raise VaultError(
            id=f"Versi amplop {header.get('v')!r} tidak dikenal",
            en=f"Unknown envelope version {header.get('v')!r}",
            hint_id="Perbarui perangkat lunak",
            hint_en="Update the software",
            code="version",
        )
    return header, ciphertext, signature


