"""Recordings and their exports in the admin: the evidence, the player, exports and legal holds.

Compliance officers read the facts of each recording, play it back (``portal.watch_recordings``)
segment by segment, request MP4 exports with a stated reason and place or lift legal holds
(``recordings.set_legal_hold``). Every view, jump, export and download is audited
(``recordings/playback.py``); every view here is behind the OTP-verified admin site.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal import client_ip
from portal.admin_site import ReadOnlyAdmin
from portal.roles import SET_LEGAL_HOLD, WATCH_RECORDINGS
from recordings import actions, archive, playback
from recordings import format as fmt
from recordings.encryption import SealBroken
from recordings.models import ExportState, Recording, RecordingExport, RecordingState

log = logging.getLogger(__name__)

UNFINISHED_EXPORTS = (ExportState.QUEUED, ExportState.RUNNING)


class ExportForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason for the export"), max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Interpolated per request, so that it is in the reader's language.
        self.fields["reason"].help_text = _(
            "Who asked for it and why, so that an auditor can follow it up (at least %(n)d "
            "characters)."
        ) % {"n": actions.REASON_MIN_CHARS}


class LegalHoldForm(forms.Form):
    hold = forms.TypedChoiceField(choices=[("1", "1"), ("0", "0")], coerce=lambda v: v == "1",
                                  widget=forms.HiddenInput)
    reason = forms.CharField(
        label=gettext_lazy("Reason for the legal hold"), max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=gettext_lazy("For example the case or the request that requires it."),
    )


def _duration(recording: Recording) -> str:
    return playback.clock(recording.duration_us)


@admin.register(Recording)
class RecordingAdmin(ReadOnlyAdmin):
    list_display = ("session", "started_at", "state", "duration", "size", "legal_hold",
                    "retention_until")
    list_filter = ("state", "legal_hold", "recording_class", "started_at", "retention_until")
    search_fields = ("=session__reference",)
    date_hierarchy = "started_at"
    list_select_related = ("session",)
    fieldsets = [
        (None, {"fields": ("session", "state", "recording_class", "duration", "size",
                           "ended_cleanly", "truncated", "close_reason")}),
        (gettext_lazy("Proof of integrity"),
         {"fields": ("manifest_sha256", "signing_key_id", "signature", "segment_count",
                     "records", "uid", "storage_prefix", "master_key_id", "stored_size")}),
        (gettext_lazy("Retention"), {"fields": ("retention_until", "legal_hold")}),
        (gettext_lazy("States and times"),
         {"fields": ("started_at", "closed_at", "finalized_at", "stored_at", "archived_at",
                     "working_copy_deleted_at", "purged_at", "attempts", "last_error")}),
    ]
    readonly_fields = ("duration", "size", "stored_size", "records")

    @admin.display(description=gettext_lazy("duration"), ordering="duration_us")
    def duration(self, obj: Recording) -> str:
        return _duration(obj)

    @admin.display(description=gettext_lazy("size"), ordering="size_bytes")
    def size(self, obj: Recording) -> str:
        return filesizeformat(obj.size_bytes)

    @admin.display(description=gettext_lazy("stored size (encrypted)"))
    def stored_size(self, obj: Recording) -> str:
        return filesizeformat(obj.stored_bytes)

    @admin.display(description=gettext_lazy("records per type"))
    def records(self, obj: Recording) -> str:
        counts = sorted((obj.counts or {}).items())
        return ", ".join(f"{name}: {count}" for name, count in counts if count)

    # --- URLs ------------------------------------------------------------------------------

    def get_urls(self):
        routes = [
            ("<int:pk>/play/", self.player_view, "play"),
            ("<int:pk>/segment/<int:number>/", self.segment_view, "segment"),
            ("<int:pk>/exports.json", self.exports_json_view, "exports"),
            ("<int:pk>/export/", self.export_view, "export"),
            ("<int:pk>/export/<int:export_id>/download/", self.download_view, "download"),
            ("<int:pk>/legal-hold/", self.legal_hold_view, "legal_hold"),
        ]
        own = [path(route, self.admin_site.admin_view(view), name=f"recordings_recording_{name}")
               for route, view, name in routes]
        return own + super().get_urls()

    # --- Helpers ---------------------------------------------------------------------------

    def _require(self, request, permission: str, pk: int) -> None:
        """Refuse (403) and audit unless the user holds ``permission``."""
        if request.user.has_perm(permission):
            return
        session_ref = (Recording.objects.filter(pk=pk)
                       .values_list("session__reference", flat=True).first() or "")
        playback.record_refused(request, permission=permission, recording_id=pk,
                                session_ref=session_ref)
        raise PermissionDenied

    def _recording(self, pk: int) -> Recording:
        return get_object_or_404(Recording.objects.select_related("session"), pk=pk)

    def _context(self, request, recording: Recording, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": recording,
            "recording": recording,
            "title": title,
            "change_url": reverse("admin:recordings_recording_change", args=[recording.pk]),
        }

    # --- The change page ---------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        recording = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if recording is not None and self.has_view_permission(request, recording):
            extra.update(self._panel_context(request, recording))
        return super().change_view(request, object_id, form_url, extra)

    def _panel_context(self, request, recording: Recording) -> dict:
        may_watch = request.user.has_perm(WATCH_RECORDINGS)
        exports = list(recording.exports.select_related("requested_by"))
        return {
            "recording": recording,
            "playable": recording.state == RecordingState.ARCHIVED,
            "may_watch": may_watch,
            "may_hold": request.user.has_perm(SET_LEGAL_HOLD),
            "export_form": ExportForm(prefix="export"),
            "hold_form": LegalHoldForm(prefix="hold",
                                       initial={"hold": "0" if recording.legal_hold else "1"}),
            "exports": exports,
            "exports_unfinished": any(e.state in UNFINISHED_EXPORTS for e in exports),
            "watch_log": playback.watch_log(recording),
            "duration_label": _duration(recording),
        }

    # --- The player ----------------------------------------------------------------------------

    def player_view(self, request, pk: int):
        """The player; opening it is audited (RECORDING_VIEWED)."""
        self._require(request, WATCH_RECORDINGS, pk)
        recording = self._recording(pk)
        context = self._context(request, recording, _("Playback of %(recording)s")
                                % {"recording": recording})
        try:
            actions.check_playable(recording)
        except actions.RecordingRuleError as refused:
            context["not_playable"] = str(refused)
            return render(request, "admin/recordings/recording/player.html", context)
        segment_urls = [
            reverse("admin:recordings_recording_segment", args=[recording.pk, number])
            for number in range(len(recording.manifest["segments"]))
        ]
        viewer = playback.viewer_name(request.user)
        playback.record_viewed(request, recording=recording)
        context.update(
            viewer=viewer,
            index=playback.player_index(recording, segment_urls=segment_urls),
            timeline=playback.timeline_items(recording),
            duration_label=_duration(recording),
            texts={
                "play": _("Play"), "pause": _("Pause"), "loading": _("Loading…"),
                "failed": _("This part of the recording could not be loaded."),
                "ended": _("End of the recording."),
                "viewer": viewer,
            },
        )
        return render(request, "admin/recordings/recording/player.html", context)

    def segment_view(self, request, pk: int, number: int):
        """One decrypted segment, never more; a jump is audited (RECORDING_SEEKED)."""
        self._require(request, WATCH_RECORDINGS, pk)
        recording = self._recording(pk)
        if recording.state != RecordingState.ARCHIVED:
            return HttpResponse(_("Only archived recordings can be played."), status=409,
                                content_type="text/plain; charset=utf-8")
        if number >= len(recording.manifest["segments"]):
            return HttpResponse(status=404)
        try:
            seek_to = _position(request.GET.get("seek"), recording)
            from_us = _position(request.GET.get("from"), recording)
        except ValueError:
            return HttpResponseBadRequest(_("The position is not a time in this recording."),
                                          content_type="text/plain; charset=utf-8")
        try:
            data = playback.read_segment(recording, number)
        except (fmt.RecordingCorrupt, SealBroken) as broken:
            log.error("recording %s segment %s: %s", recording.pk, number, broken)
            playback.record_integrity_failure(request, recording=recording,
                                              problem=str(broken), found_by="player")
            return HttpResponse(_("This part of the recording does not match its signed "
                                  "manifest; it is not shown."), status=502,
                                content_type="text/plain; charset=utf-8")
        playback.record_segment_served(request, recording=recording, number=number,
                                       seek_to_us=seek_to, from_us=from_us)
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Cache-Control"] = "no-store, private"
        return response

    # --- Exports -----------------------------------------------------------------------------

    def export_view(self, request, pk: int):
        """GET: the export form; POST: request an export with its reason."""
        self._require(request, WATCH_RECORDINGS, pk)
        recording = self._recording(pk)
        form = ExportForm(request.POST if request.method == "POST" else None, prefix="export")
        if request.method == "POST" and form.is_valid():
            try:
                actions.request_export(recording=recording, by_user=request.user,
                                       reason=form.cleaned_data["reason"],
                                       ip=client_ip.of(request))
            except actions.RecordingRuleError as refused:
                form.add_error("reason", str(refused))
            else:
                messages.success(request, _("The export is queued. This page shows its "
                                            "progress."))
                return redirect(f"{reverse('admin:recordings_recording_change', args=[pk])}"
                                "#recording-exports")
        context = self._context(request, recording, _("Export %(recording)s")
                                % {"recording": recording})
        context["export_form"] = form
        return render(request, "admin/recordings/recording/export.html", context,
                      status=400 if form.errors else 200)

    def exports_json_view(self, request, pk: int):
        """State and progress of this recording's exports, for the page's polling."""
        recording = self._recording(pk)
        if not self.has_view_permission(request, recording):
            raise PermissionDenied
        may_download = request.user.has_perm(WATCH_RECORDINGS)
        exports = [
            {"id": export.pk, "state": export.state, "state_label": export.get_state_display(),
             "progress": export.progress,
             "download": (reverse("admin:recordings_recording_download",
                                  args=[pk, export.pk])
                          if may_download and export.state == ExportState.DONE else None)}
            for export in recording.exports.all()
        ]
        return JsonResponse({"exports": exports})

    def download_view(self, request, pk: int, export_id: int):
        """A finished export's MP4; audited with its SHA-256 (RECORDING_EXPORT_DOWNLOADED)."""
        self._require(request, WATCH_RECORDINGS, pk)
        export = get_object_or_404(
            RecordingExport.objects.select_related("recording__session"),
            pk=export_id, recording_id=pk, state=ExportState.DONE,
        )
        if not export.storage_name or not playback.export_intact(export):
            playback.record_integrity_failure(
                request, recording=export.recording, found_by="export download",
                problem=f"export {export.pk}: the stored file is missing or differs from "
                        f"its SHA-256 {export.sha256}",
            )
            return HttpResponse(_("The stored export is missing or no longer matches its "
                                  "SHA-256; it is not handed out."), status=502,
                                content_type="text/plain; charset=utf-8")
        playback.record_export_downloaded(request, export=export)
        filename = f"{export.recording.session.reference}-recording-{pk}-export-{export.pk}.mp4"
        response = FileResponse(archive.storage().open(export.storage_name, "rb"),
                                as_attachment=True, filename=filename,
                                content_type="video/mp4")
        response["Cache-Control"] = "no-store, private"
        return response

    # --- Legal hold ----------------------------------------------------------------------------

    def legal_hold_view(self, request, pk: int):
        """GET: the form; POST: place or lift the legal hold with a reason (audited)."""
        self._require(request, SET_LEGAL_HOLD, pk)
        recording = self._recording(pk)
        form = LegalHoldForm(request.POST if request.method == "POST" else None, prefix="hold",
                             initial={"hold": "0" if recording.legal_hold else "1"})
        if request.method == "POST" and form.is_valid():
            hold = form.cleaned_data["hold"]
            try:
                changed = actions.set_legal_hold(recording=recording, hold=hold,
                                                 reason=form.cleaned_data["reason"],
                                                 by_user=request.user,
                                                 ip=client_ip.of(request))
            except actions.RecordingRuleError as refused:
                form.add_error("reason", str(refused))
            else:
                if not changed:
                    messages.warning(request, _("Nothing changed: the legal hold was already "
                                                "in that state, or the recording is purged."))
                elif hold:
                    messages.success(request, _("The legal hold is placed: this recording "
                                                "is not purged until it is lifted."))
                else:
                    messages.success(request, _("The legal hold is lifted: the recording is "
                                                "purged after its retention period."))
                return redirect("admin:recordings_recording_change", pk)
        context = self._context(request, recording, _("Legal hold for %(recording)s")
                                % {"recording": recording})
        context["hold_form"] = form
        return render(request, "admin/recordings/recording/legal_hold.html", context,
                      status=400 if form.errors else 200)


def _position(value: str | None, recording: Recording) -> int | None:
    """A session time in µs from a query parameter, within the recording (ValueError if not)."""
    if value in (None, ""):
        return None
    position = int(value)
    if not 0 <= position <= max(recording.duration_us, 0):
        raise ValueError(value)
    return position


@admin.register(RecordingExport)
class RecordingExportAdmin(ReadOnlyAdmin):
    list_display = ("recording", "requested_by", "requested_at", "state", "progress_bar",
                    "finished_at", "size", "short_hash", "download")
    list_filter = ("state", "requested_at")
    search_fields = ("=recording__session__reference", "requested_by__username")
    list_select_related = ("recording__session", "requested_by")
    readonly_fields = ("progress_bar", "size")
    exclude = ("size_bytes",)

    @admin.display(description=gettext_lazy("progress"), ordering="progress")
    def progress_bar(self, obj: RecordingExport):
        return format_html('<progress max="100" value="{}" aria-label="{}">{} %</progress> {} %',
                           obj.progress, _("progress"), obj.progress, obj.progress)

    @admin.display(description=gettext_lazy("size"), ordering="size_bytes")
    def size(self, obj: RecordingExport) -> str:
        return filesizeformat(obj.size_bytes) if obj.size_bytes else "–"

    @admin.display(description=gettext_lazy("SHA-256"))
    def short_hash(self, obj: RecordingExport) -> str:
        return f"{obj.sha256[:16]}…" if obj.sha256 else "–"

    @admin.display(description=gettext_lazy("download"))
    def download(self, obj: RecordingExport):
        if obj.state != ExportState.DONE:
            return "–"
        url = reverse("admin:recordings_recording_download", args=[obj.recording_id, obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download MP4"))

    def get_list_display(self, request):
        # Downloading needs the right to watch; the column is only there for those who have it.
        shown = super().get_list_display(request)
        if request.user.has_perm(WATCH_RECORDINGS):
            return shown
        return [f for f in shown if f != "download"]
