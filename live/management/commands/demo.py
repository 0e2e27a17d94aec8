"""Create one demo user per role (idempotent) and print how to sign in as each."""

from __future__ import annotations

import base64
import json
import secrets

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from audit.events import Actor, record
from portal import enrolment
from portal.roles import ADMINISTRATOR, COMPLIANCE_OFFICER, SUPPORT_STAFF
from recordings.demo import ensure_demo_recording

# username, role, display name, enrolled (False: each run prints a new enrolment code instead)
DEMO_USERS = [
    ("support", SUPPORT_STAFF, "Sabine Support", True),
    ("compliance", COMPLIANCE_OFFICER, "Clemens Compliance", True),
    ("admin", ADMINISTRATOR, "Anna Admin", True),
    ("neu", SUPPORT_STAFF, "Nils Neu", False),
]


def current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


class Command(BaseCommand):
    help = "Create demo staff users (one per role) and print their passwords and TOTP secrets."

    def add_arguments(self, parser):
        parser.add_argument(
            "--codes", action="store_true", help="Only print each demo user's current TOTP code."
        )

    def handle(self, *args, codes: bool = False, **options):
        if not settings.DEBUG:
            raise CommandError("demo refuses to run with debug off: it prints passwords.")
        credentials_file = settings.VAR_DIR / "demo-credentials.json"
        stored = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
        if codes:
            for username, *_rest in DEMO_USERS:
                device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
                if device:
                    self.stdout.write(f"{username:<11} {current_code(device)}")
            return

        created = self.ensure_users(stored)
        credentials_file.write_text(json.dumps(stored, indent=2))
        credentials_file.chmod(0o600)
        enrolment_codes = self.start_enrolments()
        self.print_credentials(stored, created, enrolment_codes)
        recording = ensure_demo_recording(staff=User.objects.get(username="support"))
        self.stdout.write(f"  Demo recording of session {recording.session.reference} "
                          f"({recording.get_state_display()}): sign in as compliance and open "
                          "Recordings in the admin.")

    @transaction.atomic
    def ensure_users(self, stored: dict) -> list[str]:
        created = []
        for username, role, full_name, enrolled in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            password = stored.get(username)
            if user is None or password is None or not user.check_password(password):
                password = secrets.token_urlsafe(12)
                stored[username] = password
                first, last = full_name.split(" ", 1)
                user, _new = User.objects.get_or_create(
                    username=username,
                    defaults={"first_name": first, "last_name": last, "is_staff": True},
                )
                user.set_password(password)
                user.save(update_fields=["password"])
                user.groups.set([Group.objects.get(name=role)])
                created.append(username)
            if enrolled and not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
        if created:
            record(
                event_type=EventType.DEMO_DATA_CREATED,
                actor=Actor.system("manage.py demo"),
                details={"users": created},
            )
        return created

    def start_enrolments(self) -> dict[str, str]:
        """A fresh one-time enrolment code for each demo user without an authenticator."""
        codes = {}
        for username, _role, _name, enrolled in DEMO_USERS:
            user = User.objects.get(username=username)
            if not enrolled and not enrolment.has_authenticator(user):
                issued = enrolment.issue_code(user=user, by=Actor.system("manage.py demo"))
                codes[username] = enrolment.format_code(issued.code)
        return codes

    def print_credentials(self, stored: dict, created: list[str], codes: dict[str, str]) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Demo staff (debug mode only):"))
        for username, role, _name, _enrolled in DEMO_USERS:
            device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
            if device:
                factor = f"TOTP secret {base64.b32encode(device.bin_key).decode()}"
            else:
                factor = f"enrolment code {codes[username]}"
            note = " (new)" if username in created else ""
            self.stdout.write(
                f"  {username:<11} {role:<19} password {stored[username]}  {factor}{note}"
            )
        if codes:
            self.stdout.write(
                f"  {', '.join(codes)}: sign in at /staff/login/ with the password, then enter "
                f"the enrolment code (one use, valid {settings.ENROLMENT_CODE_HOURS} h; every "
                "run of demo makes a new one)."
            )
        self.stdout.write(
            "  Add the TOTP secret to an authenticator app, or print the current codes with:\n"
            "    PORTAL_DEBUG=1 .venv/bin/python manage.py demo --codes"
        )
