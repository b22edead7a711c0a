"""The one exception a device raises: which device, which operation, and what to do next.

A device library stands on its own (as gpiozero's exceptions do), so this is
not a subclass of the kit's faults; it offers the same ``code`` and
``text(lang)`` (see :class:`sync.errors.Fault`), so the kiosk and the command
line show it in the officer's language like any other fault.

>>> e = DeviceError("gnss", "read", id="GNSS tidak menjawab", en="GNSS does not answer",
...                 hint_en="Check the antenna")
>>> e.text("en")
'GNSS does not answer. Check the antenna'
"""

from __future__ import annotations

# Each device's name as the officer and the technician read it (Indonesian, English): the
# one table the kiosk's checks (kit.workflow), the self-test (kit.selftest) and the device
# messages share, so a device is never called two things.
DEVICE_LABELS: dict[str, tuple[str, str]] = {
    "camera": ("Kamera", "Camera"),
    "fingerprint": ("Sensor sidik jari", "Fingerprint sensor"),
    "gnss": ("GPS", "GPS"),
    "modem": ("Modem", "Modem"),
    "battery": ("Baterai", "Battery"),
}


class DeviceError(Exception):
    """A device did not answer as expected; names the device and the operation."""

    code = "device"

    def __init__(self, device: str, operation: str, *, id: str, en: str, hint_id: str = "",
                 hint_en: str = "", code: str | None = None) -> None:
        self.device = device
        self.operation = operation
        self.message = {"id": id, "en": en}
        self.hint = {"id": hint_id or hint_en, "en": hint_en}
        if code is not None:
            self.code = code
        super().__init__(self.text("en"))

    def text(self, lang: str = "id") -> str:
        """The message and the next step in ``lang`` ("id" or "en"; anything else is "id")."""
        lang = lang if lang in self.message else "id"
        return ". ".join(part for part in (self.message[lang], self.hint[lang]) if part)
