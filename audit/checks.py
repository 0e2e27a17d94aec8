"""Deployment checks of the audit trail (``manage.py check --deploy``)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Warning


def head_log_outside(app_configs=None, **kwargs) -> list[Warning]:
    """In production the head log is shipped to write-once storage and lives off the var folder."""
    warnings = []
    if not settings.AUDIT_S3_BUCKET:
        warnings.append(Warning(
            "The audit head log is shipped to a local folder, not to write-once storage.",
            hint="Set PORTAL_AUDIT_S3_BUCKET to an S3 bucket with Object Lock (docs/audit.md).",
            id="audit.W001",
        ))
    if Path(settings.AUDIT_HEAD_LOG).resolve().is_relative_to(Path(settings.VAR_DIR).resolve()):
        warnings.append(Warning(
            "The audit head log is in the portal's working folder, beside the embedded data.",
            hint="Set PORTAL_AUDIT_HEAD_LOG to a file on another volume (docs/audit.md).",
            id="audit.W002",
        ))
    return warnings
