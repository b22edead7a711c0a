"""Opening sealed records at the office.

Only the office's seal key opens a record, and only after the kit's
signature checks out (see :func:`kit.vault.open_sealed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nacl.signing import VerifyKey

from sync.domain import Recording
from sync.envelope import RECORD_KIND, OfficeKeys, open_sealed
from sync.errors import VaultError


def open_record(
    blob: bytes, office: OfficeKeys, kit_key: Callable[[str], VerifyKey]
) -> tuple[dict[str, Any], Recording]:
    """Verify and decrypt one sealed record; ``kit_key`` maps a kit id to its signing key."""

    def sender(header: dict[str, Any]) -> VerifyKey:
        kit_id = header.get("kit_id")
        if header.get("kind") != RECORD_KIND or not isinstance(kit_id, str):
            raise VaultError(
                id="Amplop ini bukan rekaman",
                en="This envelope is not a recording",
                code="wrong_kind",
            )
        return kit_key(kit_id)

    opened = open_sealed(blob, recipient=office.seal, sender=sender)
    return opened.header, Recording.from_canonical(opened.content)
