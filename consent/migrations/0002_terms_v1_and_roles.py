"""Publish the first terms, in German and English, and grant the roles their consent rights."""

import hashlib
from pathlib import Path

from django.db import migrations
from django.utils import timezone

from portal.roles import sync_roles

TERMS_DIR = Path(__file__).resolve().parent.parent / "terms"


def publish_first_terms(apps, schema_editor):
    TermsVersion = apps.get_model("consent", "TermsVersion")
    for language in ("de", "en"):
        text = (TERMS_DIR / f"1.{language}.txt").read_text(encoding="utf-8")
        TermsVersion.objects.get_or_create(
            version=1,
            language=language,
            defaults={
                "text": text,
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "published_at": timezone.now(),
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0001_initial"),
        ("sessions_app", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(publish_first_terms, migrations.RunPython.noop),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
