"""Recordings of live sessions and their exports. See docs/recording-archive.md.

A recording is one customer connection's segments (docs/recording-format.md). Its life:
``recording`` (the relay writes) → ``finalizing`` (closed; the archive pipeline signs,
compresses, encrypts, stores and verifies it) → ``archived`` → ``purged`` (past retention).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.transitions import Transitions
from sessions_app.models import SupportSession


class RecordingState(models.TextChoices):
    RECORDING = "recording", _("Being recorded")
    FINALIZING = "finalizing", _("Finalizing")
    ARCHIVED = "archived", _("Archived")
    PURGED = "purged", _("Purged")


class Recording(Transitions):
    # Every state change goes through move_to (portal/transitions.py), from this table only.
    TRANSITIONS = {
        "finalizing": (frozenset({"recording"}), "closed_at"),
        "archived": (frozenset({"finalizing"}), "archived_at"),
        "purged": (frozenset({"archived"}), "purged_at"),
    }

    session = models.ForeignKey(SupportSession, verbose_name=_("session"),
                                on_delete=models.PROTECT, related_name="recordings")
    uid = models.UUIDField(_("archive name"), default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(_("state"), max_length=12, choices=RecordingState.choices,
                             default=RecordingState.RECORDING, db_index=True)
    recording_class = models.CharField(_("recording class"), max_length=40)
    # The relay's working copy, relative to RECORDINGS_DIR; deleted once the archive verified.
    directory = models.CharField(_("working copy"), max_length=300, unique=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.CharField(_("closed because"), max_length=40, blank=True)
    finalized_at = models.DateTimeField(_("finalized at"), null=True, blank=True)
    stored_at = models.DateTimeField(_("stored at"), null=True, blank=True)
    archived_at = models.DateTimeField(_("archived and verified at"), null=True, blank=True)
    working_copy_deleted_at = models.DateTimeField(_("working copy deleted at"), null=True,
                                                   blank=True)
    purged_at = models.DateTimeField(_("purged at"), null=True, blank=True)

    # From the signed manifest (docs/recording-format.md, "Manifest").
    manifest = models.JSONField(_("manifest"), null=True, blank=True, editable=False)
    manifest_sha256 = models.CharField(_("manifest SHA-256"), max_length=64, blank=True)
    signature = models.CharField(_("manifest signature"), max_length=200, blank=True)
    signing_key_id = models.CharField(_("signing key"), max_length=16, blank=True)
    segment_count = models.PositiveIntegerField(_("segments"), default=0)
    size_bytes = models.BigIntegerField(_("size (bytes)"), default=0)
    duration_us = models.BigIntegerField(_("duration (µs)"), default=0)
    counts = models.JSONField(_("records per type"), default=dict, blank=True)
    ended_cleanly = models.BooleanField(_("ends with an end record"), default=False)
    truncated = models.BooleanField(_("cut short by a crash"), default=False)
    # Chat lines and control/consent events with their times, for the player's list.
    timeline = models.JSONField(_("timeline"), default=list, blank=True, editable=False)

    # At rest: where the encrypted blobs are, and the data key wrapped by the master key.
    storage_prefix = models.CharField(_("storage location"), max_length=200, blank=True)
    wrapped_key = models.CharField(_("wrapped data key"), max_length=100, blank=True,
                                   editable=False)
    master_key_id = models.CharField(_("master key"), max_length=16, blank=True)
    stored_bytes = models.BigIntegerField(_("stored size (bytes)"), default=0)

    retention_until = models.DateTimeField(_("kept until"), db_index=True)
    legal_hold = models.BooleanField(_("legal hold"), default=False)

    # The pipeline's claim: a run holds the recording until then; a crashed run's claim lapses.
    lease_until = models.DateTimeField(_("pipeline claim until"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("pipeline attempts"), default=0)
    last_error = models.TextField(_("last pipeline error"), blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")
        permissions = [("set_legal_hold", _("Can place and lift a legal hold on recordings"))]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="archived") | ~Q(manifest_sha256=""),
                name="archived_recording_has_manifest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session.reference} · {timezone.localtime(self.started_at):%Y-%m-%d %H:%M:%S}"

    @property
    def duration_seconds(self) -> float:
        return self.duration_us / 1_000_000

    @property
    def working_path(self):
        return settings.RECORDINGS_DIR / self.directory


class ExportState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RecordingExport(Transitions):
    """An MP4 of a recording, made on request with a stated reason (docs/recording-archive.md)."""

    TRANSITIONS = {
        "running": (frozenset({"queued"}), "started_at"),
        "done": (frozenset({"running"}), "finished_at"),
        "failed": (frozenset({"queued", "running"}), "finished_at"),
    }

    recording = models.ForeignKey(Recording, verbose_name=_("recording"),
                                  on_delete=models.PROTECT, related_name="exports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("requested by"),
                                     on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(_("reason"))
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    state = models.CharField(_("state"), max_length=10, choices=ExportState.choices,
                             default=ExportState.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    storage_name = models.CharField(_("file"), max_length=300, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    size_bytes = models.BigIntegerField(_("size (bytes)"), default=0)
    width = models.PositiveIntegerField(_("width"), default=0)
    height = models.PositiveIntegerField(_("height"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("recording export")
        verbose_name_plural = _("recording exports")

    def __str__(self) -> str:
        return f"{self.recording} · MP4 {timezone.localtime(self.requested_at):%Y-%m-%d %H:%M}"
