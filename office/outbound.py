"""What the office sends kits: sealed assignments and signed commands.

Made here and queued in the office database (``office assign``, ``office
command``); ``office serve`` (:class:`office.ingest.OfficeReceiver`)
publishes what is queued and records each kit's answer. Both are checked
here against the protocol's size limits, so what is queued fits in one
message.

>>> command, payload = make_command("blitar-kit-01", "ping", {}, office_sign)  # doctest: +SKIP
>>> db.queue_command(command, payload)                                        # doctest: +SKIP
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from nacl.signing import SigningKey

from sync import protocol as p
from sync.envelope import KitPublicKeys, seal


def seal_assignment(content: dict[str, Any], assignment_id: str, kit_id: str,
                    kit_keys: KitPublicKeys, office_sign: SigningKey) -> tuple[bytes, str]:
    """The sealed, signed envelope of an assignment for one kit, and its sealing time."""
    envelope = seal(content, kind=p.ASSIGNMENT_KIND,
                    ids={"assignment_id": assignment_id, "kit_id": kit_id},
                    recipient=kit_keys.box, signer=office_sign)
    sealed_at = str(p.verify_envelope(envelope, office_sign.verify_key)["sealed_at"])
    if len(p.encode_assignment(p.AssignmentMessage(assignment_id, envelope))) > \
            p.LIMITS["assign"]:
        raise p.ProtocolError("oversized", "assignment is too large for one message; "
                                           "split it into several visits")
    return envelope, sealed_at


def make_command(kit_id: str, name: str, args: dict[str, Any], office_sign: SigningKey, *,
                 lifetime_s: int = 3600, now: float | None = None) -> tuple[p.Command, bytes]:
    """A signed command for one kit, valid for ``lifetime_s`` from now."""
    issued = int(now if now is not None else time.time())
    command = p.Command(command_id=str(uuid.uuid4()), kit_id=p.check_kit_id(kit_id), name=name,
                        args=args, issued_at=issued, expires_at=issued + lifetime_s)
    if name not in p.COMMANDS:
        raise p.ProtocolError("unknown_command", f"command {name!r} is not one of "
                                                 f"{', '.join(p.COMMANDS)}")
    payload = p.sign_command(command, office_sign)
    if len(payload) > p.LIMITS["cmd"]:
        raise p.ProtocolError("oversized", "command arguments are too large")
    return command, payload

