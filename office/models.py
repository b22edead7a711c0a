"""The office database's tables, as Django models: Django's migrations own the schema.

The MQTT ingest (:mod:`office.ingest`) writes these tables through :class:`office.db.OfficeDb`
(plain SQL that runs on SQLite and PostgreSQL alike, for speed); the web app reads them
through the models. Table and column names are the ones the office has used since before
the web app, so the SQL and the models name the same things. Times are Unix seconds
(``REAL``), as on the wire. Defaults the SQL leaves out are the database's own
(``db_default``), so a row written by either side is complete.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Record(models.Model):
    """A sealed record the office holds for good (its receipt told the kit to delete it)."""

    pk = models.CompositePrimaryKey("kit_id", "record_id")
    kit_id = models.TextField()
    record_id = models.TextField()
    sha256 = models.TextField()
    size = models.BigIntegerField()
    sealed_at = models.TextField()
    received_at = models.FloatField()
    opened = models.IntegerField(db_default=0)
    blob = models.BinaryField()

    class Meta:
        db_table = "records"
        permissions = (("view_personal", "Melihat data pribadi dalam rekaman"),
                       ("export_records", "Mengekspor rekaman untuk SIAK"))


class Upload(models.Model):
    """A record arriving chunk by chunk: how much of it the office has (``have``)."""

    pk = models.CompositePrimaryKey("kit_id", "record_id")
    kit_id = models.TextField()
    record_id = models.TextField()
    sha256 = models.TextField()
    size = models.BigIntegerField()
    have = models.BigIntegerField()
    started_at = models.FloatField()
    updated_at = models.FloatField()

    class Meta:
        db_table = "uploads"
        indexes = (models.Index(fields=["kit_id"], name="uploads_by_kit"),
                   models.Index(fields=["updated_at"], name="uploads_by_age"))


class Chunk(models.Model):
    pk = models.CompositePrimaryKey("kit_id", "record_id", "off")
    kit_id = models.TextField()
    record_id = models.TextField()
    off = models.BigIntegerField()
    data = models.BinaryField()

    class Meta:
        db_table = "chunks"


class Kit(models.Model):
    """Each kit's latest presence (``status``), merged health and location, as JSON text."""

    kit_id = models.TextField(primary_key=True)
    online = models.IntegerField(db_default=0)
    session = models.BigIntegerField(db_default=0)
    status_at = models.FloatField(null=True)
    status = models.TextField(null=True)
    health = models.TextField(null=True)
    health_at = models.FloatField(null=True)
    location = models.TextField(null=True)
    location_at = models.FloatField(null=True)
    last_seen = models.FloatField(null=True)

    class Meta:
        db_table = "kits"
        permissions = (("view_fleet", "Melihat armada kit (tanpa data pribadi)"),
                       ("command_kit", "Mengirim perintah ke kit (ping, uji, kunci)"),
                       ("wipe_kit", "Menghapus kunci kit dari jauh atau mencabut kit"))


class Position(models.Model):
    """A kit's past positions: live reports and the track it drove while offline."""

    pk = models.CompositePrimaryKey("kit_id", "tst")
    kit_id = models.TextField()
    tst = models.BigIntegerField()
    lat = models.FloatField()
    lon = models.FloatField()
    acc = models.FloatField(null=True)
    source = models.TextField()

    class Meta:
        db_table = "positions"


class Assignment(models.Model):
    """An assignment sealed to a kit, until the kit confirms it."""

    pk = models.CompositePrimaryKey("kit_id", "assignment_id")
    kit_id = models.TextField()
    assignment_id = models.TextField()
    sealed_at = models.TextField()
    envelope = models.BinaryField()
    queued_at = models.FloatField()
    sent_at = models.FloatField(null=True)
    delivered_at = models.FloatField(null=True)
    opened_at = models.FloatField(null=True)  # the kit's kiosk opened it (the kit's ack)
    error = models.TextField(db_default="")

    class Meta:
        db_table = "assignments"
        permissions = (("schedule_visits", "Menjadwalkan kunjungan dan menugaskan kit"),)
        indexes = (models.Index(fields=["queued_at"], name="assignments_undelivered",
                                condition=Q(delivered_at__isnull=True)),)


class Command(models.Model):
    """A signed command for a kit, and the kit's answer."""

    command_id = models.TextField(primary_key=True)
    kit_id = models.TextField()
    name = models.TextField()
    args = models.TextField()
    issued_at = models.BigIntegerField()
    expires_at = models.BigIntegerField()
    payload = models.BinaryField()
    queued_at = models.FloatField()
    sent_at = models.FloatField(null=True)
    result_ok = models.IntegerField(null=True)
    result = models.TextField(null=True)
    result_at = models.FloatField(null=True)

    class Meta:
        db_table = "commands"
        indexes = (models.Index(fields=["queued_at"], name="commands_unsent",
                                condition=Q(sent_at__isnull=True)),)


class Refusal(models.Model):
    """The first refusal of each kind (kit, topic leaf, reason) in each minute."""

    ts = models.FloatField()
    kit_id = models.TextField()
    leaf = models.TextField()
    reason = models.TextField()

    class Meta:
        db_table = "refusals"


class RefusalCount(models.Model):
    """Every refusal, counted per kit, leaf, reason and minute: a flood grows a counter."""

    pk = models.CompositePrimaryKey("kit_id", "leaf", "reason", "minute")
    kit_id = models.TextField()
    leaf = models.TextField()
    reason = models.TextField()
    minute = models.BigIntegerField()
    n = models.BigIntegerField()

    class Meta:
        db_table = "refusal_counts"


class Quarantined(models.Model):
    """A record whose id collided with a stored one, kept aside for review (never lost)."""

    pk = models.CompositePrimaryKey("kit_id", "record_id", "sha256")
    kit_id = models.TextField()
    record_id = models.TextField()
    sha256 = models.TextField()
    size = models.BigIntegerField()
    sealed_at = models.TextField()
    received_at = models.FloatField()
    blob = models.BinaryField()

    class Meta:
        db_table = "quarantine"


class QuarantineReason(models.Model):
    """Why a record in :class:`Quarantined` failed the office's check on receipt (its hash,
    the kit's signature, its header), when the bytes alone do not say it: a row per
    quarantined record the ingest refused as untrustworthy. A row of ``quarantine``
    without one is an id collision or a revoked kit's upload. Its own table, not columns
    of ``quarantine``, so the ingest's and the older tools' plain inserts into that table
    stay as they are; the reason is written in the same transaction as the bytes."""

    pk = models.CompositePrimaryKey("kit_id", "record_id", "sha256")
    kit_id = models.TextField()
    record_id = models.TextField()
    sha256 = models.TextField()  # of the bytes kept (the quarantine row's key)
    declared_sha256 = models.TextField()  # what the kit said they hash to
    code = models.TextField()  # the refusal reason the kit was told (sync/PROTOCOL.md)
    reason_id = models.TextField()  # the same in Bahasa Indonesia, for the page
    reason_en = models.TextField()
    at = models.FloatField()

    class Meta:
        db_table = "quarantine_reasons"


class AuditRefused(Exception):
    """An audit entry may be written once and never changed or deleted."""


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: object) -> int:
        raise AuditRefused("audit entries are never changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditRefused("audit entries are never deleted")


class AuditEntry(models.Model):
    """One line of the office's audit log: who did what, to what, when, from where.

    Append-only: :meth:`save` writes a new entry and refuses to change one, :meth:`delete`
    and the query set's ``update``/``delete`` refuse, and the database itself refuses an
    ``UPDATE`` or ``DELETE`` on the table (triggers of migration ``0004``). Written by
    :func:`office.web.audit.audit`; read on the page ``/audit/``."""

    at = models.DateTimeField(db_index=True)  # set when saved
    username = models.CharField(max_length=150, db_index=True, blank=True)
    roles = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    subject = models.CharField(max_length=200, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=120, blank=True)
    detail = models.TextField(blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        db_table = "audit"
        ordering = ("-at", "-id")
        default_permissions = ("view",)  # no add, change or delete: nobody edits the log
        verbose_name = "entri audit"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None or not self._state.adding:
            raise AuditRefused("audit entries are never changed")
        if self.at is None:
            from django.utils import timezone

            self.at = timezone.now()
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditRefused("audit entries are never deleted")


class HealthSample(models.Model):
    """One health report as it came (``tst``: when the office received it): the battery and
    signal history the kit page charts. A kit reports every 5-15 minutes, so a day is at
    most a few hundred rows a kit."""

    kit_id = models.TextField()
    tst = models.FloatField()
    battery = models.IntegerField(null=True)
    battery_state = models.IntegerField(null=True)
    rssi = models.IntegerField(null=True)
    rsrp = models.IntegerField(null=True)
    sinr = models.FloatField(null=True)
    outbox = models.IntegerField(null=True)

    class Meta:
        db_table = "health_samples"
        indexes = (models.Index(fields=["kit_id", "tst"], name="health_samples_by_kit"),)


class Alert(models.Model):
    """One alert about one kit: raised when its condition holds, cleared when it no longer
    does (:mod:`office.alerts`). At most one open (uncleared) alert per kit and kind, so a
    kit in the same trouble for hours is one line, not a flood. Acknowledging records who
    and when; the alert stays open until its condition clears."""

    kit_id = models.TextField()
    kind = models.CharField(max_length=20)  # office.alerts.KINDS
    raised_at = models.FloatField()
    detail = models.TextField(blank=True)  # figures only (a battery %, an age), no personal data
    cleared_at = models.FloatField(null=True)
    acked_at = models.FloatField(null=True)
    acked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "alerts"
        default_permissions = ("view",)
        constraints = (models.UniqueConstraint(
            fields=["kit_id", "kind"], condition=Q(cleared_at__isnull=True),
            name="alerts_one_open_per_kit_and_kind"),)
        indexes = (models.Index(fields=["kit_id", "kind", "raised_at"], name="alerts_by_kit"),
                   models.Index(fields=["raised_at"], name="alerts_open",
                                condition=Q(cleared_at__isnull=True)))


class AlertSettings(models.Model):
    """The office's alert thresholds: one row (id 1), edited on the alerts page by the head
    or an administrator (``office.change_alertsettings``)."""

    battery_percent = models.PositiveSmallIntegerField(default=20)
    no_fix_minutes = models.PositiveIntegerField(default=30)
    waiting_hours = models.PositiveIntegerField(default=24)
    visit_start_hour = models.PositiveSmallIntegerField(default=7)  # WIB
    visit_end_hour = models.PositiveSmallIntegerField(default=17)
    offline_during_visit = models.BooleanField(default=True)
    failed_selftest = models.BooleanField(default=True)
    no_tpm = models.BooleanField(default=True)

    class Meta:
        db_table = "alert_settings"
        default_permissions = ("change",)


class Revocation(models.Model):
    """A kit reported lost or stolen: its broker login and ACL entry are removed
    (:func:`office.broker.revoke_logins`) and whatever it still uploads is held in
    quarantine for review, never taken as a record."""

    kit_id = models.TextField(primary_key=True)
    revoked_at = models.FloatField()
    revoked_by = models.CharField(max_length=150)
    reason = models.TextField()
    broker_done_at = models.FloatField(null=True)  # when the broker's files were rewritten
    broker_error = models.TextField(blank=True)

    class Meta:
        db_table = "revocations"
        default_permissions = ()


class RecordReview(models.Model):
    """What the office knows and decides about one stored record (issue 12).

    Written when the web app first opens the record (it holds the office's seal key):
    the fields staff filter by, in clear (dates, village, officers, outcome, what is
    missing); the resident's name, NIK, birth date and target id sealed under the office's
    index key (:mod:`office.records`), so search runs in memory and the table alone
    names nobody. Then the review (``state``, ``note``), and the KTP-el clock:
    ``complete_on`` is the local day the complete recording arrived (the 14 working days
    run from it), ``printed_on`` / ``handed_over_on`` what staff mark.
    """

    STATES = ("received", "checked", "entered", "problem")

    pk = models.CompositePrimaryKey("kit_id", "record_id")
    kit_id = models.TextField()
    record_id = models.TextField()
    indexed_at = models.FloatField()
    open_error = models.TextField(blank=True)  # why it could not be opened (then nothing else)
    started_at = models.FloatField(null=True)  # the visit's recording, Unix seconds
    duration_s = models.FloatField(null=True)
    village = models.TextField(blank=True)  # desa/kelurahan of the resident's address
    kecamatan = models.TextField(blank=True)
    officers = models.TextField(blank=True)  # officer ids, comma-separated (no names)
    outcome = models.TextField(blank=True)
    complete = models.BooleanField(default=False)
    missing = models.TextField(blank=True)  # codes of what a partial recording lacks
    sealed = models.BinaryField(null=True)  # name, NIK, birth date, target id (index key)
    state = models.CharField(max_length=12, default="received")
    note = models.TextField(blank=True)
    state_at = models.FloatField(null=True)
    state_by = models.CharField(max_length=150, blank=True)
    complete_on = models.DateField(null=True)
    printed_on = models.DateField(null=True)
    handed_over_on = models.DateField(null=True)

    class Meta:
        db_table = "record_reviews"
        default_permissions = ()
        indexes = (models.Index(fields=["state"], name="record_reviews_by_state"),
                   models.Index(fields=["complete_on"], name="record_reviews_by_clock"))


class WorkingDayOverride(models.Model):
    """An office-edited day for the KTP-el clock: a decree adds a day off (``working``
    false) or cancels one (``working`` true), overriding the ``holidays`` package."""

    day = models.DateField(unique=True)
    working = models.BooleanField()
    note = models.CharField(max_length=200)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.FloatField()

    class Meta:
        db_table = "working_day_overrides"
        ordering = ("day",)


class ClockSettings(models.Model):
    """The KTP-el clock's one setting (row id 1): whether *cuti bersama* (the ``holidays``
    package's GOVERNMENT category) counts as non-working. On by default: the office is
    closed then."""

    cuti_bersama_off = models.BooleanField(default=True)

    class Meta:
        db_table = "clock_settings"
        default_permissions = ("change",)


# -- visits as the SOP prescribes them (issue 13) -----------------------------------------


class Officer(models.Model):
    """A recording officer (*petugas perekaman*) the office can put on a visit: the id is
    the one the kit's PIN slot and every record carry; the name is staff, not a resident."""

    officer_id = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=150)
    active = models.BooleanField(default=True)

    class Meta:
        db_table = "officers"
        ordering = ("name",)


class Village(models.Model):
    """What the schedule needs to know of a desa/kelurahan: its terrain (per-village
    setting; the time a visit takes and the team it needs depend on it)."""

    TERRAINS = ("flat", "hilly", "remote")

    kecamatan = models.CharField(max_length=80)
    name = models.CharField(max_length=120)
    terrain = models.CharField(max_length=8, default="flat")

    class Meta:
        db_table = "villages"
        default_permissions = ("change", "view")
        constraints = (models.UniqueConstraint(fields=["kecamatan", "name"],
                                               name="villages_one_per_kecamatan_and_name"),)


class VisitRequest(models.Model):
    """A request letter (SOP steps 1-2): from a desa/kelurahan of Kabupaten Blitar, or
    from another agency (hospital, social service) for medical, social or emergency
    cases. ``status`` is where it stands in the flow (:data:`office.visits.REQUEST_STATES`);
    every move is a :class:`RequestEvent`. ``version`` grows with each save, so two staff
    editing the same request are told instead of one overwriting the other."""

    letter_number = models.CharField(max_length=100)
    letter_date = models.DateField()
    received_on = models.DateField()
    applicant_kind = models.CharField(max_length=8)  # "village" | "agency"
    kecamatan = models.CharField(max_length=80, blank=True)
    village = models.CharField(max_length=120, blank=True)  # the desa (also an agency's)
    agency = models.CharField(max_length=200, blank=True)
    agency_reason = models.CharField(max_length=12, blank=True)  # medical|social|emergency
    summary = models.TextField(blank=True)  # what the letter asks, in the staff's words
    scan = models.BinaryField(null=True)
    scan_name = models.CharField(max_length=200, blank=True)
    scan_type = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, default="registered")
    disposition_note = models.TextField(blank=True)
    created_at = models.FloatField()
    created_by = models.CharField(max_length=150)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "visit_requests"
        permissions = (("register_requests", "Mencatat surat permohonan"),
                       ("disposition_requests", "Mendisposisi surat permohonan"))
        indexes = (models.Index(fields=["status"], name="visit_requests_by_status"),)


class RequestEvent(models.Model):
    """One move of a request through the flow: who, when, to which status, and why."""

    request = models.ForeignKey(VisitRequest, on_delete=models.CASCADE, related_name="events")
    at = models.FloatField()
    by = models.CharField(max_length=150)
    status = models.CharField(max_length=16)
    note = models.TextField(blank=True)  # no personal data: counts, numbers, reasons

    class Meta:
        db_table = "request_events"
        default_permissions = ()
        ordering = ("at", "id")


class Visit(models.Model):
    """A scheduled visit (SOP step 3): a day, a recording point, officers, a kit, the
    village staff asked to accompany; and the assignment sealed from it (step 6).

    ``assignment_id`` is the kit-side id (stable across changes: a change or a
    cancellation re-seals the same id, and the kit keeps the newest). ``version`` guards
    against two schedulers overwriting each other (optimistic concurrency)."""

    POINTS = ("village_office", "house_to_house", "hospital", "care_home")
    STATES = ("planned", "assigned", "cancelled", "done")

    request = models.ForeignKey(VisitRequest, on_delete=models.CASCADE, related_name="visits")
    visit_date = models.DateField()
    start_time = models.TimeField()
    end_time = models.TimeField(null=True)
    recording_point = models.CharField(max_length=16)
    officers = models.TextField()  # officer ids, comma-separated
    kit_id = models.TextField()
    village_staff = models.TextField(blank=True)  # names, one per line
    team_size = models.PositiveSmallIntegerField(default=2)
    minutes = models.PositiveIntegerField(default=0)  # the estimate the schedule showed
    state = models.CharField(max_length=10, default="planned")
    assignment_id = models.TextField(unique=True)
    assigned_at = models.FloatField(null=True)  # last sealed and queued for the kit
    created_at = models.FloatField()
    created_by = models.CharField(max_length=150)
    updated_at = models.FloatField()
    updated_by = models.CharField(max_length=150)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "visits"
        default_permissions = ("view",)
        indexes = (models.Index(fields=["visit_date"], name="visits_by_day"),
                   models.Index(fields=["kit_id", "visit_date"], name="visits_by_kit"))


class Target(models.Model):
    """One resident on a request's list (*data sasaran*).

    The resident's data (:class:`sync.domain.Target` canonical: NIK, KK, name, birth
    date, address) are sealed under the office's index key (:mod:`office.visits`), like
    a record's index row: the table alone names nobody. In clear only what planning and
    the clock need: the category and place (the time estimate), the desa, and where the
    target stands.

    ``status``: ``pending`` until a record closes it, then ``recorded``, ``partial``
    (``detail`` the missing parts) or ``not_recorded`` (``detail`` the outcome and its
    reason); ``verified`` None until Dafduk checks it (SOP step 3), False with
    ``verify_note`` saying why not. ``visit`` is the visit it is on now (a target not
    recorded can be moved to a later one)."""

    STATUSES = ("pending", "recorded", "partial", "not_recorded")

    id = models.CharField(max_length=36, primary_key=True)  # the kit's Target.id (uuid7)
    request = models.ForeignKey(VisitRequest, on_delete=models.CASCADE, related_name="targets")
    visit = models.ForeignKey(Visit, null=True, on_delete=models.SET_NULL,
                              related_name="targets")
    sealed = models.BinaryField()
    category = models.CharField(max_length=12)
    place = models.CharField(max_length=12)
    village = models.CharField(max_length=120, blank=True)
    source_row = models.PositiveIntegerField(null=True)  # row in the imported file
    verified = models.BooleanField(null=True)
    verify_note = models.TextField(blank=True)
    verified_by = models.CharField(max_length=150, blank=True)
    verified_at = models.FloatField(null=True)
    status = models.CharField(max_length=14, default="pending")
    detail = models.TextField(blank=True)
    record_kit = models.TextField(blank=True)  # the record that closed it
    record_id = models.TextField(blank=True)
    closed_at = models.FloatField(null=True)
    added_at = models.FloatField()
    added_by = models.CharField(max_length=150)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "targets"
        default_permissions = ()
        indexes = (models.Index(fields=["request", "status"], name="targets_by_request"),)


class ReplyLetter(models.Model):
    """The reply letter of a visit (SOP step 4). ``draft`` is kept byte for byte: the
    signed copy must be exactly that draft, signed (pyHanko checks it against these bytes).
    ``sent_at`` can only be set once ``verified_at`` is."""

    visit = models.OneToOneField(Visit, on_delete=models.CASCADE, related_name="letter")
    number = models.CharField(max_length=100)
    letter_date = models.DateField()
    fields = models.JSONField()  # what the letter says (office.letters.ReplyLetter)
    draft = models.BinaryField()
    draft_sha256 = models.CharField(max_length=64)
    drafted_at = models.FloatField()
    drafted_by = models.CharField(max_length=150)
    signed = models.BinaryField(null=True)
    signed_sha256 = models.CharField(max_length=64, blank=True)
    verification = models.JSONField(null=True)  # signer, time, certificate; or the reasons
    verified_at = models.FloatField(null=True)
    uploaded_by = models.CharField(max_length=150, blank=True)
    sent_at = models.FloatField(null=True)
    sent_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "reply_letters"
        default_permissions = ()


class KitCheckout(models.Model):
    """A kit taken out for a visit and brought back (SOP steps 6 and 11): who, when, its
    self-test and condition each way; at return, the records still waiting on it and the
    targets still pending. ``due_on`` is the day it should be back (the fleet alert
    ``not_returned`` fires after it)."""

    kit_id = models.TextField()
    visit = models.ForeignKey(Visit, null=True, on_delete=models.SET_NULL,
                              related_name="checkouts")
    taken_by = models.CharField(max_length=150)  # officer id or name of who took it
    out_at = models.FloatField()
    out_by = models.CharField(max_length=150)  # the staff member who handed it over
    out_selftest = models.JSONField(null=True)
    out_selftest_ok = models.BooleanField(null=True)
    out_condition = models.TextField(blank=True)
    due_on = models.DateField()
    returned_at = models.FloatField(null=True)
    returned_by = models.CharField(max_length=150, blank=True)
    return_selftest = models.JSONField(null=True)
    return_selftest_ok = models.BooleanField(null=True)
    return_condition = models.TextField(blank=True)
    waiting_records = models.PositiveIntegerField(null=True)
    pending_targets = models.PositiveIntegerField(null=True)

    class Meta:
        db_table = "kit_checkouts"
        permissions = (("checkout_kits", "Menyerahkan dan menerima kembali kit"),)
        constraints = (models.UniqueConstraint(
            fields=["kit_id"], condition=Q(returned_at__isnull=True),
            name="kit_checkouts_one_open_per_kit"),)
