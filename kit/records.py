"""Assignments and recordings in the kit store.

The glue between the domain model, the vault and the store: personal data
goes in encrypted under the officers' data key; a finished recording goes
in sealed to the office and signed by the kit, in one durable commit.

>>> store_assignment(store, data_key, assignment)                       # doctest: +SKIP
>>> stored = seal_recording(store, kit_sign_key, office_public, recording,
...                         key=data_key)                               # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import cbor2
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kit.store import Store, StoredRecord
from kit.vault import DataKey, PinVault
from sync import protocol as p
from sync.domain import Assignment, Outcome, Recording, Target, TargetStatus
from sync.envelope import RECORD_KIND, OfficePublicKeys, canonical, open_sealed, read_header, seal
from sync.errors import JaranIjoError, ValidationError

log = logging.getLogger(__name__)

# What a target's status becomes when its recording is sealed with an outcome.
STATUS_FOR_OUTCOME = {
    Outcome.RECORDED: TargetStatus.RECORDED,
    Outcome.PARTIAL: TargetStatus.PARTIAL,
}


def store_assignment(store: Store, key: DataKey, assignment: Assignment) -> None:
    """Keep an assignment on the kit, every byte of personal data encrypted.

    A newer version of one already held replaces it: a target no longer in it goes
    from the list if nobody touched it (pending, no draft), and stays if it has a
    recording state (recorded, partial, not recorded, in progress) or a draft, so
    nothing an officer recorded is lost. A cancelled one (no targets) is kept only
    for the targets that stay; the kiosk no longer lists it. The store decides again
    inside its one transaction, so a draft started meanwhile still keeps its target.
    """
    assignment.validate()
    drop: list[str] = []
    if store.assignment_payload(assignment.id) is not None:
        # Also moves rows kept before m005 to their references.
        states = target_states(store, key, assignment.id)
        wanted = {t.id for t in assignment.targets}
        with_draft = {d["target_id"] for d in store.drafts()}
        for target_id, (status, _outcome) in states.items():
            ref = target_ref(key, target_id)
            if target_id not in wanted and status == str(TargetStatus.PENDING) \
                    and ref not in with_draft:
                drop.append(ref)
    header = assignment.to_canonical()
    header["targets"] = [t.id for t in assignment.targets]
    payload = key.encrypt(canonical(header), f"assignment:{assignment.id}")
    targets = []
    for t in assignment.targets:
        ref = target_ref(key, t.id)
        targets.append((ref, key.encrypt(canonical(t.to_canonical()), f"target:{ref}")))
    dropped = store.put_assignment(assignment.id, assignment.visit_date.isoformat(), payload,
                                   targets, drop=drop, cancelled=assignment.cancelled)
    if dropped or assignment.cancelled:
        log.info("assignment %s stored%s; %d untouched target(s) no longer in it removed",
                 assignment.id, " (cancelled)" if assignment.cancelled else "", dropped)


def target_ref(key: DataKey, target_id: str) -> str:
    """The name the store keeps a target under: a keyed hash of its id under the data key,
    so a copy of the files cannot tell which resident a row, draft or status is about."""
    mac = hmac.new(key.raw(), b"jaranijo target-ref\x00" + target_id.encode(), hashlib.sha256)
    return "t-" + mac.hexdigest()[:32]


def set_target_state(store: Store, key: DataKey, target_id: str, status: str,
                     outcome: str = "") -> None:
    """Where a target stands (status, and the outcome's name when not recorded), encrypted."""
    ref = target_ref(key, target_id)
    store.set_target_state(ref, _target_state(key, ref, target_id, status, outcome))


def _target_state(key: DataKey, ref: str, target_id: str, status: str, outcome: str) -> bytes:
    return key.encrypt(canonical({"target_id": target_id, "status": status,
                                  "outcome": outcome}), f"target-state:{ref}")


def target_states(store: Store, key: DataKey, assignment_id: str) -> dict[str, tuple[str, str]]:
    """Each target's (status, outcome) by target id; a target never touched is pending.

    A row kept before migration m005 still has its target's id as row id and its status
    and outcome in clear: it is rewritten here, with the key of this unlocked session,
    under its reference, its state encrypted and its clear columns blanked (its drafts
    follow). A state that does not open reads as pending, with a log line.
    """
    out: dict[str, tuple[str, str]] = {}
    for row in store.targets(assignment_id):
        row_id = row["id"]
        plain = key.decrypt(row["payload"], f"target:{row_id}")
        target_id = str(cbor2.loads(plain)["id"])
        ref = target_ref(key, target_id)
        status, outcome = str(TargetStatus.PENDING), ""
        if row["state"] is not None:
            try:
                data = cbor2.loads(key.decrypt(bytes(row["state"]), f"target-state:{ref}"))
                status, outcome = str(data["status"]), str(data.get("outcome", ""))
            except (JaranIjoError, KeyError, TypeError, ValueError, cbor2.CBORDecodeError):
                log.warning("a target's stored state does not open; shown as pending")
        elif row["status"] or row["outcome"]:
            status, outcome = row["status"] or status, row["outcome"]
            if ref == row_id:
                store.set_target_state(ref, _target_state(key, ref, target_id, status, outcome))
        if ref != row_id:  # kept before m005: under the target's id
            store.rekey_target(row_id, ref, key.encrypt(plain, f"target:{ref}"),
                               _target_state(key, ref, target_id, status, outcome))
        out[target_id] = (status, outcome)
    return out


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
    wanted = {target_ref(key, target_id), target_id}  # the id itself: a row kept before m005
    for row in store.targets(assignment_id):
        if row["id"] in wanted:
            return Target.from_canonical(cbor2.loads(key.decrypt(row["payload"],
                                                                  f"target:{row['id']}")))
    raise ValidationError(
        id="Sasaran tidak ada dalam penugasan",
        en="Target is not in the assignment",
        code="target_missing",
    )


def seal_recording(
    store: Store, signer: SigningKey, office: OfficePublicKeys, recording: Recording,
    *, key: DataKey, actor: str = "",
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
    ref = target_ref(key, recording.target.id)
    return store.save_sealed(
        recording.id, RECORD_KIND, read_header(blob)["sealed_at"], blob, target_ref=ref,
        target_state=_target_state(key, ref, recording.target.id, str(status),
                                   str(recording.outcome)),
        actor=actor,
    )


# ---------------------------------------------------------------------------------------------
# Assignments the agent received sealed: opened at an officer's login
# ---------------------------------------------------------------------------------------------


def open_inbox(store: Store, data_key: DataKey, vault: PinVault,
               office: OfficePublicKeys) -> list[str]:
    """Open every assignment waiting sealed in the inbox and store it (encrypted) for the UI.

    Needs an officer's unlocked data key: the kit's box key is a vault
    secret. Returns the ids stored; one that fails to open is left in the
    inbox with its error noted (``store.inbox(pending_only=True)``).
    """
    box = PrivateKey(vault.get_secret(data_key, "kit-box"))
    opened_ids: list[str] = []
    for row in store.inbox():
        aid = row["assignment_id"]
        try:
            opened = open_sealed(bytes(row["envelope"]), recipient=box, sender=office.sign)
            if opened.header.get("assignment_id") != aid or \
                    opened.header.get("kind") != p.ASSIGNMENT_KIND:
                raise p.ProtocolError("malformed", "envelope holds another assignment")
            assignment = Assignment.from_canonical(opened.content)
            if assignment.id != aid:
                raise p.ProtocolError("malformed", "assignment id differs from its envelope")
            store_assignment(store, data_key, assignment)
            store.inbox_opened(aid, row["sealed_at"])
            opened_ids.append(aid)
            log.info("assignment %s opened and stored", aid)
        except JaranIjoError as exc:
            store.inbox_error(aid, exc.code)
            store.audit("assignment_unopened", subject=aid, detail=exc.code)
            log.warning("assignment %s cannot be opened: %s", aid, exc.text("en"))
    return opened_ids
