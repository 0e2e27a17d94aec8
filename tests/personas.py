"""The shared personas and the helpers that sign them in.

- alice: Support staff – schedules and runs sessions.
- bob: Compliance officer – reviews audit events, consents and recordings; runs no sessions.
- carol: Administrator – manages users, terms and settings; watches no recordings.
- dave: staff account with no role at all – may sign in, may do nothing.
"""

from __future__ import annotations

import time

from django.apps import apps
from django.contrib.auth.models import Group, User
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from portal.roles import ADMINISTRATOR, COMPLIANCE_OFFICER, SUPPORT_STAFF, sync_roles

PASSWORD = "correct-horse-battery-42"

PERSONAS = {
    "alice": SUPPORT_STAFF,
    "bob": COMPLIANCE_OFFICER,
    "carol": ADMINISTRATOR,
    "dave": None,
}


def make_staff(username: str, role: str | None, *, with_device: bool = True) -> User:
    user = User.objects.create_user(username, f"{username}@bank.example", PASSWORD, is_staff=True)
    if role:
        if not Group.objects.filter(name=role).exists():
            sync_roles(apps)  # a transactional test flushed the groups the migration made
        user.groups.add(Group.objects.get(name=role))
    if with_device:
        TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=True)
    return user


def totp_device(user: User) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=True)


def totp_code(device: TOTPDevice, *, steps: int = 0, at: float | None = None) -> str:
    """The code the staff member's app would show now (or ``steps`` time steps away)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = (at if at is not None else time.time()) + steps * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in_verified(client, user: User) -> None:
    """A browser session that has passed both factors, without going through the forms."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
    session.save()


def sign_in_password_only(client, user: User) -> None:
    """A browser session that passed the password step only."""
    client.force_login(user)


def events(event_type: str) -> list[AuditEvent]:
    """The audit events of one type, oldest first."""
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))
