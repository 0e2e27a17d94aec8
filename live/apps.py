from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LiveConfig(AppConfig):
    """The live relay: the customer's, staff and observer sockets (record, then forward)."""

    name = "live"
    verbose_name = _("Live relay")
