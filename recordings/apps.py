from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = _("Recordings")

    def ready(self) -> None:
        from portal import health
        from recordings import disk_space

        health.register("recordings_free_space", lambda: disk_space.watch().as_dict())
