"""Assignments and recordings in the kit store.

The glue between the domain model, the vault and the store: personal data
goes in encrypted under the officers' data key; a finished recording goes
in sealed to the office and signed by the kit, in one durable commit.

>>> store_assignment(store, data_key, assignment)                       # doctest: +SKIP
>>> stored = seal_recording(store, kit_sign_key, office_public, recording)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
from nacl.signing import SigningKey

from kit.domain import Assignment, Outcome, Recording, Target, TargetStatus
from kit.errors import ValidationError
from kit.store import Store, StoredRecord
from kit.vault import DataKey, OfficePublicKeys, canonical, read_header, seal

RECORD_KIND = "recording"

# What a target's status becomes when its recording is sealed with an outcome.
STATUS_FOR_OUTCOME = {
    Outcome.RECORDED: TargetStatus.RECORDED,
    Outcome.PARTIAL: TargetStatus.PARTIAL,
}


def read_assignment_file(path: Path) -> Assignment:
    """An assignment from a JSON file, with a clear error for a missing or unreadable one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(id=f"{path} tidak dapat dibaca ({exc.__class__.__name__})",
                              en=f"{path} cannot be read ({exc.__class__.__name__})",
                              hint_id="Periksa jalur dan isi berkas",
                              hint_en="Check the path and the file's content",
                              code="file") from None
    return Assignment.from_json(text)


def store_assignment(store: Store, key: DataKey, assignment: Assignment) -> None:
    """Keep an assignment on the kit, every byte of personal data encrypted."""
    assignment.validate()
    header = assignment.to_canonical()
    header["targets"] = [t.id for t in assignment.targets]
    payload = key.encrypt(canonical(header), f"assignment:{assignment.id}")
    targets = [
        (t.id, key.encrypt(canonical(t.to_canonical()), f"target:{t.id}"))
        for t in assignment.targets
    ]
    store.put_assignment(assignment.id, assignment.visit_date.isoformat(), payload, targets)


def load_assignment(store: Store, key: DataKey, assignment_id: str) -> Assignment:
    """Decrypt an assignment and its targets (needs an unlocked data key)."""
    payload = store.assignment_payload(assignment_id)
    if payload is None:
        raise ValidationError(
            id="Penugasan tidak ditemukan di kit",
            en="Assignment not found on the kit",
            hint_id="Terima penugasan dari kantor lebih dulu",
            hint_en="Receive the assignment from the office first",
            code="assignment_missing",
        )
    data: dict[str, Any] = cbor2.loads(key.decrypt(payload, f"assignment:{assignment_id}"))
    data["targets"] = [
        cbor2.loads(key.decrypt(row["payload"], f"target:{row['id']}"))
        for row in store.targets(assignment_id)
    ]
    return Assignment.from_canonical(data)


def load_target(store: Store, key: DataKey, assignment_id: str, target_id: str) -> Target:
    for row in store.targets(assignment_id):
        if row["id"] == target_id:
            return Target.from_canonical(cbor2.loads(key.decrypt(row["payload"],
                                                                  f"target:{target_id}")))
    raise ValidationError(
        id="Sasaran tidak ada dalam penugasan",
        en="Target is not in the assignment",
        code="target_missing",
    )


def seal_recording(
    store: Store, signer: SigningKey, office: OfficePublicKeys, recording: Recording,
    *, actor: str = "",
) -> StoredRecord:
    """Check, seal, sign and durably store a finished recording, and queue it for upload.

    When this returns, the record may be reported to the officer as saved.
    """
    recording.check_outcome()
    blob = seal(
        recording.to_canonical(),
        kind=RECORD_KIND,
        ids={"record_id": recording.id, "kit_id": recording.kit_id},
        recipient=office.seal,
        signer=signer,
    )
    status = STATUS_FOR_OUTCOME.get(recording.outcome, TargetStatus.NOT_RECORDED)
    return store.save_sealed(
        recording.id, RECORD_KIND, read_header(blob)["sealed_at"], blob,
        target_id=recording.target.id, target_status=str(status),
        outcome=str(recording.outcome), actor=actor,
    )
