"""Expected faults, each with a message in Bahasa Indonesia and English.

Every fault a user can meet in the kit's or the office's data (a bad NIK, a
wrong PIN, a missing key file, a broken configuration) is a
:class:`JaranIjoError`; a device that does not answer raises
:class:`sensors.errors.DeviceError`, which speaks the same two languages.
Both are a :class:`Fault`. It carries both languages and
what to do next, so the kiosk shows it in the officer's language and the
command line prints one line without a traceback. Anything else that escapes
is a bug.

>>> e = ConfigError(id="Berkas rusak", en="File is broken", hint_en="Fix it")
>>> e.text("en")
'File is broken. Fix it'
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

LANGUAGES = ("id", "en")


@runtime_checkable
class Fault(Protocol):
    """What every expected fault offers, whichever package raised it: a stable ``code`` and
    ``text(lang)``, the message and what to do next. The command line and the kiosk show a
    fault this way and never as a traceback."""

    code: str

    def text(self, lang: str = "id") -> str: ...


class JaranIjoError(Exception):
    """A fault the user can act on. ``code`` is stable for programs and tests."""

    code = "error"

    def __init__(
        self,
        *,
        id: str,
        en: str,
        hint_id: str = "",
        hint_en: str = "",
        code: str | None = None,
    ) -> None:
        self.message = {"id": id, "en": en}
        self.hint = {"id": hint_id, "en": hint_en}
        if code is not None:
            self.code = code
        super().__init__(self.text("en"))

    def text(self, lang: str = "id") -> str:
        """The message and what to do next, in ``lang`` (``id`` or ``en``)."""
        lang = lang if lang in LANGUAGES else "id"
        hint = self.hint[lang] or self.hint["en"]
        return f"{self.message[lang]}. {hint}" if hint else self.message[lang]


class ValidationError(JaranIjoError):
    """User or office data that breaks a rule (NIK, KK, dates, outcomes...)."""

    code = "invalid"


class ConfigError(JaranIjoError):
    """A configuration file that cannot be used as it is."""

    code = "config"


class KeyFileError(JaranIjoError):
    """A key file that is missing, of the wrong kind, or readable by others."""

    code = "key_file"


class VaultError(JaranIjoError):
    """The vault refused: wrong PIN, locked out, or a sealed record that fails its checks."""

    code = "vault"


class StoreError(JaranIjoError):
    """A database (the kit's store or the office's) cannot be opened or written."""

    code = "store"
