"""Guards for a production deployment: system checks, and what daphne checks when it starts.

``manage.py check --deploy`` reports them; daphne (``portal/asgi.py``) runs ``start_checks``
with the database when it starts, logs the warnings and refuses to start on an error (e.g.
the published terms and ``PORTAL_RECORDING_RETENTION`` disagreeing, see ``consent/checks.py``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("portal.security")

# The checks daphne runs when it starts, with the database (e.g. consent/checks.py). A registry
# of their own, so that `migrate` does not run them: it must work while they fail.
start_checks = checks.registry.CheckRegistry()

NO_TRUSTED_PROXIES = (
    "PORTAL_TRUSTED_PROXIES is not set with debug off: behind a reverse proxy every customer "
    "then has the proxy's address, and shares one rate limit and one key lockout."
)


@checks.register(checks.Tags.security, deploy=True)
def trusted_proxies_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when debug is off and no trusted proxy is configured."""
    if settings.DEBUG or settings.TRUSTED_PROXIES:
        return []
    return [checks.Warning(
        NO_TRUSTED_PROXIES,
        hint="Set PORTAL_TRUSTED_PROXIES to the addresses of your TLS-terminating proxy "
             "(docs/deployment.md).",
        id="portal.W001",
    )]


def check_at_start() -> None:
    """Run the start checks with the database; log warnings, refuse to start on errors."""
    if not settings.DEBUG and not settings.TRUSTED_PROXIES:
        logger.warning(NO_TRUSTED_PROXIES)
    messages = start_checks.run_checks(databases=["default"])
    errors = [m for m in messages if m.is_serious() and not m.is_silenced()]
    for message in messages:
        if not message.is_serious() and not message.is_silenced() and message.id != "portal.W001":
            logger.warning("%s", message)
    if errors:
        raise ImproperlyConfigured("; ".join(str(error) for error in errors))
