"""Create the three staff roles as groups with their permissions."""

from django.db import migrations

from portal.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auditlog", "0017_add_actor_email"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
