"""Publish a drafted terms version in every language, with the configured recording retention.

For changing PORTAL_RECORDING_RETENTION: with the new value in the environment, publish the
new terms with this command, then restart daphne (which refuses to start while the current
terms promise another retention). Audited like publishing in the admin.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from consent import actions
from consent.models import TermsVersion
from portal.roles import PUBLISH_TERMS


class Command(BaseCommand):
    help = "Publish the drafts of a terms version, stating the configured recording retention."

    def add_arguments(self, parser):
        parser.add_argument("version", type=int)
        parser.add_argument("--by", required=True, help="user name of the publishing administrator")

    def handle(self, *args, version: int, by: str, **options):
        user = get_user_model().objects.filter(username=by, is_active=True).first()
        if user is None or not user.has_perm(PUBLISH_TERMS):
            raise CommandError(f"{by!r} is no active user who may publish terms.")
        drafts = list(TermsVersion.objects.filter(version=version, published_at__isnull=True))
        if not drafts:
            raise CommandError(f"Version {version} has no unpublished draft.")
        with transaction.atomic():
            for terms in drafts:
                try:
                    actions.publish_terms(terms=terms, by_user=user)
                except actions.ConsentRefused as refused:
                    raise CommandError(f"{terms}: {refused}") from None
        for terms in drafts:
            self.stdout.write(f"Published {terms}: recordings kept {terms.recording_retention}, "
                              f"SHA-256 {terms.sha256}")
