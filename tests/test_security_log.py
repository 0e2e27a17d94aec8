"""Security events also go to the operators' log: one JSON line each on standard error."""

import json
import logging
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.db import transaction

from audit.event_types import EventType
from audit.events import Actor, record
from audit.security_events import SECURITY_EVENT_LEVELS
from audit.security_log import JsonLinesFormatter
from tests.processes import ROOT, child_env, wait_until
from tests.test_audit_chain import append, raw_sql


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.django_db(transaction=True)  # logged after commit
def test_a_security_event_is_logged_with_level_type_actor_address_and_session(caplog):
    caplog.set_level(logging.INFO, logger="portal.security")
    event = record(event_type=EventType.KEY_GUESSING_ALARM, actor=Actor.system("key throttle"),
                   ip="203.0.113.9", session_ref="S-7", details={"wrong_keys": 31})
    record(event_type=EventType.SESSION_SCHEDULED, actor=Actor.system())  # not security
    (logged,) = [r for r in caplog.records if r.name == "portal.security"]
    assert logged.levelno == logging.ERROR
    line = json.loads(JsonLinesFormatter().format(logged))
    assert line["level"] == "ERROR" and line["event"] == "security.key_guessing_alarm"
    assert line["actor"] == "key throttle" and line["actor_type"] == "system"
    assert line["address"] == "203.0.113.9" and line["session_ref"] == "S-7"
    assert line["details"] == {"wrong_keys": 31} and line["audit_seq"] == event.seq
    assert line["time"].startswith(event.created_at.strftime("%Y-%m-%dT%H:%M:%S"))


@pytest.mark.django_db(transaction=True)
def test_nothing_is_logged_for_a_transaction_that_rolls_back(caplog):
    caplog.set_level(logging.INFO, logger="portal.security")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            record(event_type=EventType.CSRF_FAILED, actor=Actor.anonymous())
            raise RuntimeError("rolled back")
    assert not [r for r in caplog.records if r.name == "portal.security"]


def test_refusals_warn_and_alarms_and_integrity_failures_are_errors():
    assert SECURITY_EVENT_LEVELS[EventType.SOCKET_REFUSED] == logging.WARNING
    assert SECURITY_EVENT_LEVELS[EventType.KEY_REDEMPTION_THROTTLED] == logging.WARNING
    assert SECURITY_EVENT_LEVELS[EventType.CSRF_FAILED] == logging.WARNING
    assert SECURITY_EVENT_LEVELS[EventType.ACCESS_DENIED] == logging.WARNING
    assert SECURITY_EVENT_LEVELS[EventType.KEY_GUESSING_ALARM] == logging.ERROR
    assert SECURITY_EVENT_LEVELS[EventType.AUDIT_BROKEN] == logging.ERROR
    assert SECURITY_EVENT_LEVELS[EventType.RECORDING_VERIFICATION_FAILED] == logging.ERROR
    assert EventType.SESSION_SCHEDULED not in SECURITY_EVENT_LEVELS


def test_a_lone_surrogate_in_the_details_still_makes_one_ascii_line():
    record_ = logging.LogRecord("portal.security", logging.WARNING, __file__, 1, "x", (), None)
    record_.security_event = {"event": "live.refused", "details": {"text": "\ud800"}}
    line = JsonLinesFormatter().format(record_)
    assert line.isascii() and "\n" not in line and json.loads(line)["details"]["text"] == "\ud800"


@pytest.mark.django_db(transaction=True)
def test_a_broken_chain_found_by_the_command_is_an_error_line_on_its_stderr():
    append(3)
    raw_sql("UPDATE audit_auditevent SET event_type = 'forged' WHERE seq = 2")
    result = subprocess.run([sys.executable, "manage.py", "verify_audit", "--record"], cwd=ROOT,
                            env=child_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    (line,) = [line for line in json_lines(result.stderr)
               if line.get("logger") == "portal.security"]
    assert line["level"] == "ERROR" and line["event"] == "audit.chain_broken"
    assert line["actor"] == "manage.py verify_audit" and line["details"]["broken_seq"] == 2
    assert not json_lines(result.stdout)


def test_a_csrf_failure_at_a_real_daphne_is_a_warning_line_in_its_log(live_portal):
    request = urllib.request.Request(live_portal("/staff/login/"), data=b"username=x",
                                     headers={"X-Forwarded-For": "198.51.100.4"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403

    def logged():
        return [line for line in json_lines(live_portal.log.read_text())
                if line.get("event") == "security.csrf_failed"]

    (line,) = wait_until(logged, timeout=10, what="the CSRF failure on daphne's stderr")
    assert line["level"] == "WARNING" and line["logger"] == "portal.security"
    assert line["address"] == "127.0.0.1" and line["actor_type"] == "anonymous"
    assert line["details"]["ignored_x_forwarded_for"] == "198.51.100.4"
