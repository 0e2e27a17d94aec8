"""Every kind of audit event, defined once; the admin shows the labels."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorType(models.TextChoices):
    USER = "user", _("Staff user")
    CUSTOMER = "customer", _("Customer")
    SYSTEM = "system", _("System")
    ANONYMOUS = "anonymous", _("Not signed in")


class EventType(models.TextChoices):
    SIGNIN_SUCCEEDED = "staff.signin_succeeded", _("Staff signed in with two factors")
    PASSWORD_FAILED = "staff.password_failed", _("Wrong user name or password")
    OTP_FAILED = "staff.otp_failed", _("Wrong, reused or expired second-factor code")
    SIGNIN_THROTTLED = "staff.signin_throttled", _("Sign-in blocked after too many failures")
    BACKUP_CODE_USED = "staff.backup_code_used", _("Backup code used")
    DEVICE_ENROLLED = "staff.otp_device_enrolled", _("Authenticator app enrolled")
    BACKUP_CODES_ISSUED = "staff.backup_codes_issued", _("Backup codes issued")
    SIGNED_OUT = "staff.signed_out", _("Staff signed out")
    STAFF_SESSION_EXPIRED = "staff.session_expired", _("Staff session expired after inactivity")
    ACCESS_DENIED = "staff.access_denied", _("Staff page refused for lack of permission")
    SOCKET_REFUSED = "staff.socket_refused", _("Staff WebSocket refused")
    FORWARDED_FOR_IGNORED = "security.forwarded_for_ignored", _(
        "X-Forwarded-For from an untrusted address ignored"
    )
    SESSION_SCHEDULED = "session.scheduled", _("Session scheduled")
    SESSION_CANCELLED = "session.cancelled", _("Session cancelled")
    SESSION_EXPIRED = "session.expired", _("Session expired unused")
    SESSION_ENDED = "session.ended", _("Session ended")
    KEY_ISSUED = "key.issued", _("Session key issued")
    KEY_REVOKED = "key.revoked", _("Session key revoked")
    KEY_EXPIRED = "key.expired", _("Session key expired")
    KEY_REDEEMED = "key.redeemed", _("Session key redeemed; customer waiting")
    KEY_REDEMPTION_FAILED = "key.redemption_failed", _("Wrong or unusable session key entered")
    CUSTOMER_ADMITTED = "session.customer_admitted", _("Customer admitted")
    CUSTOMER_REFUSED = "session.customer_refused", _("Customer refused at admission")
    SESSION_ACCESS_DENIED = "session.access_denied", _("Session refused to a staff member")
    KEY_REDEMPTION_THROTTLED = "key.redemption_throttled", _(
        "Key entry blocked after too many wrong keys from one address"
    )
    KEY_GUESSING_ALARM = "security.key_guessing_alarm", _(
        "Alarm: many wrong keys across all addresses within a minute"
    )
    ADVISER_NOT_RECOGNISED = "security.adviser_not_recognised", _(
        "Customer did not recognise the adviser and ended the session"
    )
    CSRF_FAILED = "security.csrf_failed", _("Form refused: missing or invalid CSRF token")
    CONSENT_GIVEN = "consent.given", _("Customer accepted the terms and consented")
    CONSENT_WITHDRAWN = "consent.withdrawn", _("Customer withdrew consent")
    CONTROL_GRANTED = "consent.control_granted", _("Customer granted full control")
    RECEIPT_VIEWED = "consent.receipt_viewed", _("Consent receipt opened by staff")
    TERMS_PUBLISHED = "terms.published", _("Terms version published")
    CONTROL_REQUESTED = "consent.control_requested", _("Adviser asked for full control")
    CONTROL_DENIED = "consent.control_denied", _("Customer denied full control")
    CONTROL_REVOKED = "consent.control_revoked", _("Customer revoked full control")
    CONTROL_RELEASED = "consent.control_released", _(
        "Adviser gave full control back or withdrew the request"
    )
    LIVE_TOKEN_ISSUED = "live.token_issued", _("Live connection token issued to the customer")
    LIVE_CONNECTED = "live.connected", _("Live connection opened")
    LIVE_DISCONNECTED = "live.disconnected", _("Live connection closed")
    LIVE_REFUSED = "live.refused", _("Live connection or message refused")
    SHARING_PAUSED = "live.sharing_paused", _("Customer paused screen sharing")
    SHARING_RESUMED = "live.sharing_resumed", _("Customer resumed screen sharing")
    RECORDING_STARTED = "recording.started", _("Recording started")
    RECORDING_FAILED = "recording.failed", _("Recording failed: the session was ended")
    RECORDING_CLOSED = "recording.closed", _("Recording closed; archiving started")
    RECORDING_FINALIZED = "recording.finalized", _("Recording manifest written and signed")
    RECORDING_ARCHIVED = "recording.archived", _(
        "Recording archived encrypted and verified by reading it back"
    )
    RECORDING_ARCHIVE_FAILED = "recording.archive_failed", _("Archiving a recording failed")
    RECORDING_PURGED = "recording.purged", _("Recording purged after its retention period")
    RECORDING_LEGAL_HOLD_SET = "recording.legal_hold_set", _("Legal hold placed on a recording")
    RECORDING_LEGAL_HOLD_LIFTED = "recording.legal_hold_lifted", _(
        "Legal hold lifted from a recording"
    )
    RECORDING_VIEWED = "recording.viewed", _("Recording opened for playback")
    RECORDING_SEEKED = "recording.seeked", _("Recording playback jumped to another moment")
    RECORDING_EXPORT_REQUESTED = "recording.export_requested", _("Recording export requested")
    RECORDING_EXPORTED = "recording.exported", _("Recording exported as MP4")
    RECORDING_EXPORT_FAILED = "recording.export_failed", _("Recording export failed")
    RECORDING_EXPORT_DOWNLOADED = "recording.export_downloaded", _(
        "Recording export downloaded"
    )
    RECORDING_VERIFIED = "recording.verified", _("Recording verified intact")
    RECORDING_VERIFICATION_FAILED = "recording.verification_failed", _(
        "Recording verification found a mismatch"
    )
    AUDIT_VERIFIED = "audit.chain_verified", _("Audit chain verified intact")
    AUDIT_BROKEN = "audit.chain_broken", _("Audit chain verification found a break")
    DEMO_DATA_CREATED = "portal.demo_data_created", _("Demo users created")
    ENROLMENT_STARTED = "staff.enrolment_started", _(
        "Enrolment code for an authenticator app issued"
    )
    ENROLMENT_CODE_USED = "staff.enrolment_code_used", _("Enrolment code used")
    ENROLMENT_CODE_EXPIRED = "staff.enrolment_code_expired", _("Enrolment code expired unused")
    SECOND_FACTOR_RESET = "staff.second_factor_reset", _(
        "Second factor reset by an administrator"
    )
    ROLE_CHANGE_REQUESTED = "roles.change_requested", _("Role change requested")
    ROLE_CHANGE_APPROVED = "roles.change_approved", _("Role change approved (second person)")
    ROLE_CHANGE_REJECTED = "roles.change_rejected", _("Role change rejected or withdrawn")
    ROLE_CHANGE_EXPIRED = "roles.change_expired", _("Role change request expired undecided")
    ROLE_CHANGED = "roles.changed", _("Role granted or removed")
    KEY_ENTRY_BLOCKED_GLOBALLY = "security.key_entry_blocked_globally", _(
        "Too many wrong keys from all addresses: key entry stopped for everyone"
    )
    KEY_BLOCK_LIFTED = "key.block_lifted", _(
        "Adviser let the customer's browser past the key-entry block for this session"
    )
    RECORDINGS_DISK_LOW = "recording.disk_low", _(
        "Free space of the recordings folder below the minimum"
    )
    ACCOUNT_CHANGE_REQUESTED = "staff.account_change_requested", _(
        "New password or second factor for a privileged account requested"
    )
    ACCOUNT_CHANGE_APPROVED = "staff.account_change_approved", _(
        "New password or second factor for a privileged account approved (second person)"
    )
    ACCOUNT_CHANGE_REJECTED = "staff.account_change_rejected", _(
        "Request for a privileged account's password or second factor rejected or withdrawn"
    )
    ACCOUNT_CHANGE_EXPIRED = "staff.account_change_expired", _(
        "Request for a privileged account's password or second factor expired undecided"
    )
    ACCOUNT_CHANGE_REFUSED = "staff.account_change_refused", _(
        "Password or second factor change refused: own or privileged account"
    )
    PASSWORD_SET = "staff.password_set", _("Password set by an administrator")
    ACCOUNT_DEACTIVATED = "staff.account_deactivated", _("Staff account deactivated")
    ACCOUNT_ACTIVATED = "staff.account_activated", _("Staff account activated again")
