from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Portal")

    def ready(self):
        from portal import deployment  # noqa: F401 - registers the system checks


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"
