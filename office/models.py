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
