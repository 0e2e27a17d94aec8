"""Which audit events are security events, and at what level they go to the operators' log.

Beside ``audit.event_types.EventType``: ``audit.events.record`` logs every event type listed
here once its transaction commits (logger ``portal.security``, one JSON line each on standard
error; see docs/audit.md). WARNING for refusals and throttles, ERROR for alarms and integrity
failures. A new security event type gets one line here.
"""

import logging

from audit.event_types import EventType

SECURITY_EVENT_LEVELS: dict[str, int] = {
    EventType.PASSWORD_FAILED: logging.WARNING,
    EventType.OTP_FAILED: logging.WARNING,
    EventType.SIGNIN_THROTTLED: logging.WARNING,
    EventType.ACCESS_DENIED: logging.WARNING,
    EventType.SOCKET_REFUSED: logging.WARNING,
    EventType.FORWARDED_FOR_IGNORED: logging.WARNING,
    EventType.KEY_REDEMPTION_FAILED: logging.WARNING,
    EventType.SESSION_ACCESS_DENIED: logging.WARNING,
    EventType.KEY_REDEMPTION_THROTTLED: logging.WARNING,
    EventType.CSRF_FAILED: logging.WARNING,
    EventType.LIVE_REFUSED: logging.WARNING,
    EventType.KEY_GUESSING_ALARM: logging.ERROR,
    EventType.ADVISER_NOT_RECOGNISED: logging.ERROR,
    EventType.RECORDING_FAILED: logging.ERROR,
    EventType.RECORDING_ARCHIVE_FAILED: logging.ERROR,
    EventType.RECORDING_VERIFICATION_FAILED: logging.ERROR,
    EventType.AUDIT_BROKEN: logging.ERROR,
    EventType.KEY_ENTRY_BLOCKED_GLOBALLY: logging.ERROR,
    EventType.KEY_BLOCK_LIFTED: logging.WARNING,
    EventType.SECOND_FACTOR_RESET: logging.WARNING,
    EventType.ENROLMENT_STARTED: logging.WARNING,
    EventType.ROLE_CHANGE_REQUESTED: logging.WARNING,
    EventType.ROLE_CHANGE_APPROVED: logging.WARNING,
    EventType.ROLE_CHANGE_REJECTED: logging.WARNING,
    EventType.ROLE_CHANGED: logging.WARNING,
    EventType.RECORDINGS_DISK_LOW: logging.ERROR,
    EventType.ACCOUNT_CHANGE_REQUESTED: logging.WARNING,
    EventType.ACCOUNT_CHANGE_APPROVED: logging.WARNING,
    EventType.ACCOUNT_CHANGE_REJECTED: logging.WARNING,
    EventType.ACCOUNT_CHANGE_EXPIRED: logging.WARNING,
    EventType.ACCOUNT_CHANGE_REFUSED: logging.WARNING,
    EventType.PASSWORD_SET: logging.WARNING,
    EventType.ACCOUNT_DEACTIVATED: logging.WARNING,
    EventType.ACCOUNT_ACTIVATED: logging.WARNING,
}
