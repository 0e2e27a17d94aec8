"""Grant Compliance officers their rights on recordings and exports."""

from django.db import migrations

from portal.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("recordings", "0001_initial"),
        ("consent", "0003_control_released"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
