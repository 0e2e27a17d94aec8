"""Security events for the operators' log shipper: one JSON line each on standard error.

``audit.events.record`` calls ``emit`` after commit for every event type listed in
``audit.security_events.SECURITY_EVENT_LEVELS``; settings route the logger
``portal.security`` through ``JsonLinesFormatter`` to standard error. See docs/audit.md.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger("portal.security")


def emit(event, level: int) -> None:
    """Log one committed audit event (an ``AuditEvent``) as a security event."""
    fields = {
        "event": event.event_type,
        "time": event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor_label,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "address": event.client_ip,
        "session_ref": event.session_ref,
        "audit_seq": event.seq,
        "details": event.details,
    }
    logger.log(level, "%s", event.event_type, extra={"security_event": fields})


class JsonLinesFormatter(logging.Formatter):
    """A log record as one JSON line: level, logger, message and a security event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # The event's own time replaces the record's: it is the time in the audit trail.
        line.update(getattr(record, "security_event", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # ASCII escapes: a lone surrogate from a hostile client must not break the stream.
        return json.dumps(line, cls=DjangoJSONEncoder, ensure_ascii=True)
