"""Grant the roles their rights on sessions, keys, teams and closed days."""

from django.db import migrations

from portal.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0001_initial"),
        ("portal", "0002_roles"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
