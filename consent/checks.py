"""The published terms must promise customers the recording retention that is configured."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from portal.deployment import start_checks


@start_checks.register()
@checks.register(checks.Tags.database, deploy=True)
def terms_state_the_configured_retention(app_configs=None, databases=None, **kwargs):
    """An error while the current terms in any language state another retention."""
    from consent.actions import configured_retention
    from consent.models import TermsVersion

    if not databases:
        return []
    configured = configured_retention()
    try:
        current = [TermsVersion.objects.current(code) for code, _name in settings.LANGUAGES]
    except DatabaseError:  # not migrated yet: nothing is published
        return []
    return [
        checks.Error(
            f"The current terms {terms} promise customers that recordings are kept "
            f"{terms.recording_retention}, but PORTAL_RECORDING_RETENTION keeps the "
            f"{settings.RECORDING_DEFAULT_CLASS!r} class {configured}.",
            hint="Set PORTAL_RECORDING_RETENTION to what the terms say, or publish new terms "
                 "with the new period (`manage.py publish_terms`) before starting with it.",
            id="consent.E001",
        )
        for terms in dict.fromkeys(t for t in current if t is not None)
        if terms.recording_retention and terms.recording_retention != configured
    ]
