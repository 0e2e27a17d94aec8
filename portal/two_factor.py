"""The two sign-in factors: the password, then a code from an authenticator app or a backup code.

Every check asks ``portal.throttle`` first, and every outcome is audited in the transaction of
its change. Views log the user in (``django.contrib.auth.login``, ``django_otp.login``).
"""

from __future__ import annotations

import enum
import math
import re
from base64 import b32encode
from dataclasses import dataclass

import segno
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from audit.event_types import EventType
from audit.events import Actor
from portal import client_ip, enrolment, throttle
from portal.enrolment import has_authenticator
from portal.request_audit import record_for_request

TOTP_CODE = re.compile(r"[0-9]{6}")
# StaticToken.random_token(): 5 random bytes in lower-case base32, shown as "abcd-efgh".
BACKUP_CODE = re.compile(r"[a-z2-7]{8}")
AUTHENTICATOR_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"
# Longest input worth looking at: a code typed with spaces or dashes.
CODE_MAX_LENGTH = 32
# The authenticator a browser is setting up: its secret, bound to that one session.
ENROLMENT_SESSION_KEY = "portal_enrolment"


class Outcome(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"
    REUSED = "reused"
    DEVICE_PAUSED = "device_paused"  # django-otp's own back-off after failed codes
    THROTTLED = "throttled"  # too many failures for the user name or the address
    EXPIRED = "expired"  # an enrolment code past its time


@dataclass(frozen=True)
class PasswordCheck:
    outcome: Outcome
    user: AbstractBaseUser | None = None


@dataclass(frozen=True)
class CodeCheck:
    outcome: Outcome
    device: Device | None = None
    method: str = ""  # "totp" or "backup_code"
    backup_codes_left: int | None = None
    retry_after: int | None = None  # seconds until the device checks codes again
    backup_codes: tuple[str, ...] = ()  # new codes, after an enrolment


class AlreadyEnrolled(Exception):
    """The user already has a confirmed authenticator app; enrolment is closed."""


_FAILURE_REASONS = {
    Outcome.WRONG: "wrong or expired code",
    Outcome.REUSED: "code already used",
    Outcome.DEVICE_PAUSED: "device paused after failed codes",
}


_ENROLMENT_CODE_FAILURES = {
    enrolment.CodeCheck.WRONG: "wrong enrolment code",
    enrolment.CodeCheck.USED: "enrolment code used or replaced",
    enrolment.CodeCheck.EXPIRED: "enrolment code expired",
}
_ENROLMENT_CODE_OUTCOMES = {
    enrolment.CodeCheck.WRONG: Outcome.WRONG,
    enrolment.CodeCheck.USED: Outcome.REUSED,
    enrolment.CodeCheck.EXPIRED: Outcome.EXPIRED,
}


def normalise_code(raw: str) -> str:
    """A code as typed ("123 456", "ABCD-EFGH") in the form it is stored and checked."""
    return re.sub(r"[\s-]", "", raw).lower()


def is_code(code: str) -> bool:
    """True for a normalised code that could be a TOTP code or a backup code."""
    return bool(TOTP_CODE.fullmatch(code) or BACKUP_CODE.fullmatch(code))


def format_backup_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def backup_codes_left(user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def authenticator_setup(device: TOTPDevice) -> dict[str, str]:
    """What the enrolment page shows: the QR code (inline SVG) and the key in blocks of four."""
    key = b32encode(device.bin_key).decode("ascii").rstrip("=")
    svg = segno.make(device.config_url, error="m").svg_inline(scale=4, omitsize=True, light="#fff")
    return {"qr_svg": svg, "key": " ".join(key[i : i + 4] for i in range(0, len(key), 4))}


def _refused_by_throttle(request, *, username: str, actor: Actor, step: str) -> bool:
    limit = throttle.claim_attempt(username=username, ip=client_ip.of(request))
    if limit is None:
        return False
    record_for_request(
        request,
        event_type=EventType.SIGNIN_THROTTLED,
        actor=actor,
        details={"username": username[:150], "step": step, "limit": limit},
    )
    return True


def _password_failure_reason(username: str, authenticated: AbstractBaseUser | None) -> str:
    if authenticated is not None:
        return "not staff"
    user_model = get_user_model()
    try:
        known = user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        return "unknown user"
    return "wrong password" if known.is_active else "inactive user"


def check_password(*, request, username: str, password: str) -> PasswordCheck:
    """The first factor: an active staff user with this password, unless throttled.

    Not one transaction on purpose: password hashing takes a while and must not hold the
    database write lock (SQLite begins every transaction IMMEDIATE).
    """
    actor = Actor.anonymous(username)
    if _refused_by_throttle(request, username=username, actor=actor, step="password"):
        return PasswordCheck(Outcome.THROTTLED)
    user = authenticate(request, username=username, password=password)
    if user is not None and user.is_staff and user.is_active:
        throttle.release_attempt(username=username, ip=client_ip.of(request))
        return PasswordCheck(Outcome.OK, user=user)
    reason = _password_failure_reason(username, user)
    record_for_request(
        request,
        event_type=EventType.PASSWORD_FAILED,
        actor=actor,
        details={"username": username[:150], "reason": reason},
    )
    return PasswordCheck(Outcome.WRONG)


def _seconds_until(when) -> int:
    return max(1, math.ceil((when - timezone.now()).total_seconds()))


def _was_used_already(device: TOTPDevice, token: int) -> bool:
    """True if ``token`` is a current code that an earlier sign-in already consumed."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    for offset in range(-device.tolerance, device.tolerance + 1):
        totp.drift = device.drift + offset
        if totp.t() <= device.last_t and totp.token() == token:
            return True
    return False


def _check_totp(device: TOTPDevice, code: str) -> tuple[Outcome, int | None]:
    allowed, info = device.verify_is_allowed()
    if not allowed:
        locked_until = (info or {}).get("locked_until")
        return Outcome.DEVICE_PAUSED, _seconds_until(locked_until) if locked_until else None
    if device.verify_token(code):
        return Outcome.OK, None
    if _was_used_already(device, int(code)):
        return Outcome.REUSED, None
    return Outcome.WRONG, None


def _check_backup_code(device: StaticDevice, code: str) -> tuple[Outcome, int | None]:
    allowed, info = device.verify_is_allowed()
    if not allowed:
        locked_until = (info or {}).get("locked_until")
        return Outcome.DEVICE_PAUSED, _seconds_until(locked_until) if locked_until else None
    return (Outcome.OK if device.verify_token(code) else Outcome.WRONG), None


def _first_success(devices, check, code: str) -> tuple[Outcome, Device | None, int | None]:
    """Try ``code`` on each device; the most telling failure if none accepts it."""
    failures: list[tuple[Outcome, int | None]] = []
    for device in devices:
        outcome, retry_after = check(device, code)
        if outcome is Outcome.OK:
            return outcome, device, None
        failures.append((outcome, retry_after))
    for telling in (Outcome.REUSED, Outcome.WRONG, Outcome.DEVICE_PAUSED):
        for outcome, retry_after in failures:
            if outcome is telling:
                return outcome, None, retry_after
    return Outcome.WRONG, None, None


def _code_failed(request, *, user, outcome: Outcome, step: str, backup: bool = False) -> None:
    # A paused device checked nothing, so only real wrong guesses count towards the throttle.
    if outcome is Outcome.DEVICE_PAUSED:
        throttle.release_attempt(username=user.get_username(), ip=client_ip.of(request))
    reason = _FAILURE_REASONS[outcome]
    if backup and outcome is Outcome.WRONG:
        reason = "wrong backup code"
    record_for_request(
        request,
        event_type=EventType.OTP_FAILED,
        actor=Actor.staff(user),
        details={"reason": reason, "step": step},
    )


def _signed_in(request, *, user, device: Device, method: str, enrolment: bool = False) -> None:
    # Only now, not after the password: someone who knows the password must not be able to
    # reset the count between guesses at the code.
    throttle.release_attempt(username=user.get_username(), ip=client_ip.of(request))
    throttle.forget_user_failures(username=user.get_username())
    details = {"method": method, "device": device.persistent_id}
    if enrolment:
        details["enrolment"] = True
    record_for_request(
        request, event_type=EventType.SIGNIN_SUCCEEDED, actor=Actor.staff(user), details=details
    )


@transaction.atomic
def verify_code(*, request, user: AbstractBaseUser, code: str) -> CodeCheck:
    """The second factor: a code from the authenticator app or a single-use backup code."""
    username = user.get_username()
    if _refused_by_throttle(request, username=username, actor=Actor.staff(user), step="code"):
        return CodeCheck(Outcome.THROTTLED)
    code = normalise_code(code)
    if TOTP_CODE.fullmatch(code):
        devices = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")
        outcome, device, retry_after = _first_success(
            devices.select_for_update(), _check_totp, code
        )
        method = "totp"
    else:
        devices = StaticDevice.objects.filter(user=user, confirmed=True).order_by("pk")
        outcome, device, retry_after = _first_success(
            devices.select_for_update(), _check_backup_code, code
        )
        method = "backup_code"
    if outcome is not Outcome.OK:
        _code_failed(
            request, user=user, outcome=outcome, step="sign-in", backup=method == "backup_code"
        )
        return CodeCheck(outcome, method=method, retry_after=retry_after)

    left = None
    if method == "backup_code":
        left = backup_codes_left(user)
        record_for_request(
            request,
            event_type=EventType.BACKUP_CODE_USED,
            actor=Actor.staff(user),
            details={"remaining": left},
        )
    _signed_in(request, user=user, device=device, method=method)
    return CodeCheck(Outcome.OK, device=device, method=method, backup_codes_left=left)


def pending_enrolment(request) -> TOTPDevice | None:
    """The authenticator this browser is setting up (not saved), once an enrolment code opened it.

    The secret lives only in this browser's session: another sign-in with the same password
    never sees it, and every enrolment code starts a new one.
    """
    state = request.session.get(ENROLMENT_SESSION_KEY)
    if not isinstance(state, dict) or state.get("user_id") != request.user.pk:
        return None
    if not enrolment.is_current(state.get("code_id"), user=request.user):
        # An administrator issued a newer code or reset the factor: this secret is void.
        request.session.pop(ENROLMENT_SESSION_KEY, None)
        return None
    return TOTPDevice(user=request.user, name=AUTHENTICATOR_NAME, key=state["key"], confirmed=False)


@transaction.atomic
def begin_enrolment(*, request, user: AbstractBaseUser, code: str) -> Outcome:
    """Use an enrolment code from an administrator: a fresh secret for this browser session."""
    username = user.get_username()
    # The user's row first, then the audit chain (inside record): one lock order everywhere,
    # since an audit event's insert also locks the row of the user it names.
    enrolment.lock_user(user)
    if _refused_by_throttle(
        request, username=username, actor=Actor.staff(user), step="enrolment-code"
    ):
        return Outcome.THROTTLED
    if has_authenticator(user):
        raise AlreadyEnrolled
    used = enrolment.use_code(user=user, code=code)
    if used.check is not enrolment.CodeCheck.OK:
        # The attempt claimed above stays counted: a wrong code is a failure.
        record_for_request(
            request,
            event_type=EventType.OTP_FAILED,
            actor=Actor.staff(user),
            details={
                "reason": _ENROLMENT_CODE_FAILURES[used.check],
                "step": "enrolment-code",
                "code_id": used.code.pk if used.code else None,
            },
        )
        return _ENROLMENT_CODE_OUTCOMES[used.check]
    throttle.release_attempt(username=username, ip=client_ip.of(request))
    record_for_request(
        request,
        event_type=EventType.ENROLMENT_CODE_USED,
        actor=Actor.staff(user),
        details={"code_id": used.code.pk},
    )
    request.session[ENROLMENT_SESSION_KEY] = {
        "user_id": user.pk,
        "key": random_hex(20),
        "code_id": used.code.pk,
    }
    return Outcome.OK


def _matching_step(device: TOTPDevice, code: str) -> int | None:
    """The time step at which ``code`` is the device's code (within its tolerance), if any."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    for offset in range(-device.tolerance, device.tolerance + 1):
        totp.drift = device.drift + offset
        if totp.token() == int(code):
            return totp.t()
    return None


@transaction.atomic
def issue_backup_codes(*, request, user: AbstractBaseUser) -> list[str]:
    """New single-use backup codes for ``user``; all earlier ones stop working. Shown once."""
    devices = StaticDevice.objects.select_for_update().filter(user=user).order_by("pk")
    device = devices.first() or StaticDevice(user=user, name=BACKUP_DEVICE_NAME)
    device.confirmed = True
    device.throttle_reset(commit=False)
    device.save()
    StaticToken.objects.filter(device__user=user).delete()
    codes: set[str] = set()
    while len(codes) < settings.BACKUP_CODE_COUNT:
        codes.add(StaticToken.random_token())
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    record_for_request(
        request,
        event_type=EventType.BACKUP_CODES_ISSUED,
        actor=Actor.staff(user),
        details={"count": len(codes)},
    )
    return sorted(codes)


@transaction.atomic
def confirm_enrolment(*, request, user: AbstractBaseUser, code: str) -> CodeCheck:
    """Confirm this browser's new authenticator with a code from it, then issue backup codes."""
    username = user.get_username()
    enrolment.lock_user(user)  # before any audit event, as in begin_enrolment
    if _refused_by_throttle(request, username=username, actor=Actor.staff(user), step="enrolment"):
        return CodeCheck(Outcome.THROTTLED)
    if has_authenticator(user):
        raise AlreadyEnrolled
    device = pending_enrolment(request)
    code = normalise_code(code)
    step = None
    if device is not None and TOTP_CODE.fullmatch(code):
        step = _matching_step(device, code)
    if step is None:
        _code_failed(request, user=user, outcome=Outcome.WRONG, step="enrolment")
        return CodeCheck(Outcome.WRONG, method="totp")

    state = request.session.pop(ENROLMENT_SESSION_KEY)
    # The code just typed counts as used: it cannot sign in a second time.
    device.last_t = step
    device.confirmed = True
    device.save()
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    record_for_request(
        request,
        event_type=EventType.DEVICE_ENROLLED,
        actor=Actor.staff(user),
        details={
            "device": device.persistent_id,
            "name": device.name,
            "enrolment_code_id": state.get("code_id"),
        },
    )
    codes = issue_backup_codes(request=request, user=user)
    _signed_in(request, user=user, device=device, method="totp", enrolment=True)
    return CodeCheck(Outcome.OK, device=device, method="totp", backup_codes=tuple(codes))


def check_reauthentication(*, request, user: AbstractBaseUser, password: str) -> Outcome:
    """The password once more before a sensitive step (new backup codes), throttled and audited."""
    username = user.get_username()
    if _refused_by_throttle(
        request, username=username, actor=Actor.staff(user), step="re-authentication"
    ):
        return Outcome.THROTTLED
    if user.check_password(password):
        throttle.release_attempt(username=username, ip=client_ip.of(request))
        return Outcome.OK
    # The attempt claimed above stays counted: a wrong password is a failure.
    record_for_request(
        request,
        event_type=EventType.PASSWORD_FAILED,
        actor=Actor.staff(user),
        details={
            "username": username[:150],
            "reason": "wrong password",
            "step": "re-authentication",
        },
    )
    return Outcome.WRONG
