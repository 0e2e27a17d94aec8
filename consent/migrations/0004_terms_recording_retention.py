"""Terms versions record the recording retention they promise; version 1 says 24 months.

Version 1's text and hash stay as they are: consent receipts cite them.
"""

from django.db import migrations, models


def version_one_says_24_months(apps, schema_editor):
    TermsVersion = apps.get_model("consent", "TermsVersion")
    TermsVersion.objects.filter(version=1, published_at__isnull=False).update(
        recording_retention="24m"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0003_control_released"),
    ]

    operations = [
        migrations.AddField(
            model_name="termsversion",
            name="recording_retention",
            field=models.CharField(blank=True, editable=False, max_length=8,
                                   verbose_name="recording retention"),
        ),
        migrations.RunPython(version_one_says_24_months, migrations.RunPython.noop),
    ]
