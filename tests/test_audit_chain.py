"""The audit trail: append-only, hash-chained, verifiable, and safe under concurrent writers."""

import base64
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit import heads
from audit.chain import record_verification, verify_chain, verify_trail
from audit.event_types import ActorType, EventType
from audit.events import Actor, record
from audit.models import GENESIS_HASH, AuditEvent, AuditImmutableError
from audit.tasks import verify_audit_chain
from tests.processes import ROOT, child_env

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the trigger exists on PostgreSQL only"
)


def append(n: int, actor: Actor | None = None) -> list[AuditEvent]:
    return [
        record(event_type="test.event", actor=actor or Actor.system(), details={"n": i})
        for i in range(n)
    ]


def raw_sql(sql: str, params=()) -> None:
    """Change the table behind the application's back (trigger disabled on PostgreSQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # triggers off
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


def test_it_links_every_event_to_the_one_before(db, alice):
    first = record(
        event_type=EventType.SIGNIN_SUCCEEDED,
        actor=Actor.staff(alice),
        ip="2001:db8::1",
        session_ref="S-1",
        details={"method": "totp", "nested": {"ümlaut": "ä", "list": [1, 2.5, None]}},
    )
    second, third = append(2)
    assert first.seq == 1 and first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert [e.seq for e in AuditEvent.objects.order_by("seq")] == [1, 2, 3]

    stored = AuditEvent.objects.get(seq=1)
    assert stored.actor_type == ActorType.USER
    assert stored.actor_label == "alice" and stored.actor_role == "Support staff"
    assert stored.compute_hash() == stored.hash  # survives the database round trip


def test_it_refuses_to_change_or_delete_through_the_orm(db):
    (event,) = append(1)
    event.details = {"n": 99}
    with pytest.raises(AuditImmutableError):
        event.save()
    with pytest.raises(AuditImmutableError):
        event.delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(details={})
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).details == {"n": 0}


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET event_type = 'forged' WHERE seq = 1",
        "DELETE FROM audit_auditevent WHERE seq = 1",
    ],
)
def test_it_is_refused_by_the_database_trigger(db, sql):
    append(1)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.get(seq=1).event_type == "test.event"


def test_verification_passes_on_an_intact_chain(db):
    append(5)
    result = verify_chain()
    assert result.intact and result.checked == 5 and result.head_seq == 5


def test_verification_finds_a_row_edited_by_raw_sql(db):
    append(5)
    raw_sql(
        "UPDATE audit_auditevent SET details = %s WHERE seq = 3",
        ['{"n": 1000}'],
    )
    result = verify_chain()
    assert not result.intact
    assert result.broken.seq == 3 and "altered" in result.broken.reason
    assert result.checked == 2


def test_verification_finds_a_row_whose_hash_was_recomputed(db):
    # A forger who edits a row and recomputes its hash still breaks the next link.
    append(4)
    event = AuditEvent.objects.get(seq=2)
    event.details = {"n": "forged"}
    forged_hash = event.compute_hash()
    raw_sql(
        "UPDATE audit_auditevent SET details = %s, hash = %s WHERE seq = 2",
        ['{"n": "forged"}', forged_hash],
    )
    result = verify_chain()
    assert result.broken.seq == 3 and "previous-hash" in result.broken.reason


def test_verification_finds_a_deleted_row(db):
    append(5)
    raw_sql("DELETE FROM audit_auditevent WHERE seq = 4")
    result = verify_chain()
    assert result.broken.seq == 4 and "missing" in result.broken.reason


@pytest.mark.django_db(transaction=True)  # anchors and heads are written after commit
def test_verification_finds_events_cut_off_the_end(settings):
    append(3)
    record_verification(verify_trail(), actor=Actor.system())  # event #4, anchored outside
    append(2)
    raw_sql("DELETE FROM audit_auditevent WHERE seq >= 3")
    result = verify_trail()
    assert not result.intact and "cut off the end" in result.broken.reason
    assert result.broken.seq == 3


@pytest.mark.django_db(transaction=True)
def test_verification_finds_an_anchored_event_replaced(settings):
    append(2)
    record_verification(verify_trail(), actor=Actor.system())  # event #3 anchored
    # Rewrite the whole chain consistently from #1: only the records outside can tell.
    raw_sql("DELETE FROM audit_auditevent")
    Path(settings.AUDIT_HEAD_LOG).unlink()  # and the head log with it
    append(3)
    result = verify_trail()
    assert result.broken.seq == 3 and "anchored" in result.broken.reason


@pytest.mark.django_db(transaction=True)
def test_verify_audit_command_reports_count_and_exit_code(capsys):
    append(4)
    call_command("verify_audit")
    assert "Checked 4 audit events: chain intact" in capsys.readouterr().out

    raw_sql("UPDATE audit_auditevent SET actor_label = 'mallory' WHERE seq = 2")
    with pytest.raises(CommandError) as error:
        call_command("verify_audit")
    assert error.value.returncode == 1
    assert "BROKEN at event #2" in str(error.value)
    assert AuditEvent.objects.count() == 4  # read-only by default


@pytest.mark.django_db(transaction=True)
def test_nightly_task_appends_its_outcome():
    append(2)
    assert verify_audit_chain() is True
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.event_type == EventType.AUDIT_VERIFIED
    assert event.details["checked"] == 2 and event.details["head_seq"] == 2
    assert event.actor_type == ActorType.SYSTEM

    raw_sql("UPDATE audit_auditevent SET client_ip = '10.0.0.1' WHERE seq = 1")
    assert verify_audit_chain() is False
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.event_type == EventType.AUDIT_BROKEN and event.details["broken_seq"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_unbroken_chain():
    writers, per_writer = 4, 25
    errors = []
    start = threading.Barrier(writers)

    def write(worker: int):
        try:
            start.wait()
            for i in range(per_writer):
                with transaction.atomic():
                    record(event_type="test.concurrent", actor=Actor.system(f"w{worker}"),
                           details={"i": i})
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    result = verify_trail()  # the heads of four writers form one signed series too
    assert result.intact and result.checked == writers * per_writer
    assert result.signed_head_seq == writers * per_writer


@pytest.mark.django_db(transaction=True)
def test_verify_audit_exits_zero_when_intact_and_one_after_tampering(tmp_path):
    append(3)
    env = child_env(PORTAL_AUDIT_ANCHOR_FILE=str(tmp_path / "anchors.log"))

    def verify_audit() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    intact = verify_audit()
    assert intact.returncode == 0 and "Checked 3 audit events: chain intact" in intact.stdout
    raw_sql("UPDATE audit_auditevent SET event_type = 'forged' WHERE seq = 2")
    broken = verify_audit()
    assert broken.returncode == 1
    assert "chain BROKEN at event #2" in broken.stderr and "Traceback" not in broken.stderr
    # Deleting only the newest event leaves an intact chain, but not an intact trail.
    raw_sql("UPDATE audit_auditevent SET event_type = 'test.event' WHERE seq = 2")
    assert verify_audit().returncode == 0
    raw_sql("DELETE FROM audit_auditevent WHERE seq = 3")
    cut = verify_audit()
    assert cut.returncode == 1 and "events 3 to 3 are gone (cut off the end)" in cut.stderr


# --- The records outside the database: every anchor, the signed head log ---------------------


def head_log(settings) -> Path:
    return Path(settings.AUDIT_HEAD_LOG)


def anchor_file(settings) -> Path:
    return Path(settings.AUDIT_ANCHOR_FILE)


@pytest.mark.django_db(transaction=True)
def test_every_commit_appends_a_signed_head_that_chains_to_the_line_before(settings):
    settings.AUDIT_HEAD_LOG_FSYNC = True  # as in production
    first = append(1)[0]
    with transaction.atomic():  # one transaction, two events: its head is the newer one
        append(2)
    lines = list(heads.read())
    assert [(h.line_no, h.seq) for h in lines][0] == (1, first.seq)
    assert lines[-1].seq == 3 and lines[-1].hash == AuditEvent.objects.get(seq=3).hash
    assert lines[0].previous == "0" * 64 and lines[1].previous == lines[0].digest
    result = verify_trail()
    assert result.intact and result.signed_head_seq == 3 and result.head_lines == len(lines)


@pytest.mark.django_db(transaction=True)
def test_deleting_only_the_newest_event_is_detected(settings):
    append(3)
    raw_sql("DELETE FROM audit_auditevent WHERE seq = 3")
    assert verify_chain().intact  # the chain alone cannot tell
    result = verify_trail()
    assert not result.intact and result.broken.seq == 3
    assert "cut off the end" in result.broken.reason and "head-log line 3" in result.broken.reason


@pytest.mark.django_db(transaction=True)
def test_a_missing_or_empty_head_log_fails_while_events_exist(settings):
    assert verify_trail().intact  # no events, no head log: nothing to prove
    append(2)
    head_log(settings).write_bytes(b"")
    result = verify_trail()
    assert not result.intact and "head log" in result.broken.reason
    head_log(settings).unlink()
    assert "missing or empty" in verify_trail().broken.reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda lines: lines[:1] + lines[2:], "line 2 does not follow line 1"),
        (lambda lines: lines[1:], "the first line is not line 1"),
        (lambda lines: [lines[0].replace(b" 1 ", b" 9 ", 1), *lines[1:]], "no valid signature"),
        (lambda lines: [*lines, lines[-1]], "line 4 does not follow line 3"),
        (lambda lines: [*lines[:-1], lines[-1][:-20]], "no valid signature"),
    ],
    ids=["dropped-from-the-middle", "cut-off-the-start", "forged", "replayed", "garbled"],
)
def test_a_tampered_head_log_is_detected(settings, tamper, reason):
    append(3)
    lines = head_log(settings).read_bytes().splitlines()
    head_log(settings).write_bytes(b"\n".join(tamper(lines)) + b"\n")
    result = verify_trail()
    assert not result.intact and reason in result.broken.reason


@pytest.mark.django_db(transaction=True)
def test_events_committed_after_the_last_head_line_are_the_crash_window_not_tampering(
    settings, tmp_path, caplog
):
    append(3)
    written = settings.AUDIT_HEAD_LOG
    (tmp_path / "not-a-folder").write_text("")
    settings.AUDIT_HEAD_LOG = str(tmp_path / "not-a-folder" / "heads.log")  # the write fails
    (event,) = append(1)  # committed; its head line is lost as if the process died
    (failure,) = [r for r in caplog.records if r.name == "portal.security"]
    assert failure.levelname == "ERROR" and "could not append audit head #4" in failure.message
    assert failure.security_event["event"] == "audit.head_log_failed"
    settings.AUDIT_HEAD_LOG = written
    result = verify_trail()
    assert result.intact and result.head_seq == 4 and result.signed_head_seq == 3
    append(1)  # the next commit's head covers the lost one
    assert verify_trail().signed_head_seq == 5


@pytest.mark.django_db(transaction=True)
def test_every_anchor_is_checked_not_only_the_last(settings):
    append(2)
    record_verification(verify_trail(), actor=Actor.system())  # #3 anchored
    append(2)
    record_verification(verify_trail(), actor=Actor.system())  # #6 anchored
    lines = anchor_file(settings).read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["3", "6"]
    stamp, seq, _ = lines[0].split()
    anchor_file(settings).write_text(f"{stamp} {seq} {'f' * 64}\n{lines[1]}\n")
    result = verify_trail()
    assert result.broken.seq == 3 and "anchor file line 1" in result.broken.reason


@pytest.mark.django_db(transaction=True)
def test_an_old_anchor_appended_to_the_file_cannot_cut_the_chain_back(settings):
    append(2)
    record_verification(verify_trail(), actor=Actor.system())  # #3 anchored
    append(2)
    record_verification(verify_trail(), actor=Actor.system())  # #6 anchored
    raw_sql("DELETE FROM audit_auditevent WHERE seq >= 4")
    old = anchor_file(settings).read_text().splitlines()[0]
    with anchor_file(settings).open("a") as anchors:
        anchors.write(old + "\n")  # the newest line is #3 again
    result = verify_trail()
    assert not result.intact and "goes back to event #3 after #6" in result.broken.reason


@pytest.mark.django_db(transaction=True)
def test_a_missing_anchor_file_fails_once_a_verification_was_recorded(settings):
    append(2)
    assert verify_trail().intact  # never verified yet: no anchor file expected
    record_verification(verify_trail(), actor=Actor.system())
    anchor_file(settings).unlink()
    result = verify_trail()
    assert not result.intact and "anchor file" in result.broken.reason
    anchor_file(settings).write_text("")
    assert "missing or empty" in verify_trail().broken.reason


@pytest.mark.django_db(transaction=True)
def test_an_auditor_checks_a_copy_of_the_head_log_with_the_public_key(settings, tmp_path, capsys):
    append(3)
    call_command("verify_audit", "--print-public-key")
    public_key = capsys.readouterr().out.strip()
    copy = tmp_path / "copy-from-the-write-once-store.log"
    copy.write_bytes(head_log(settings).read_bytes())
    head_log(settings).unlink()  # the local one is gone; the copy still proves the end
    call_command("verify_audit", "--head-log", str(copy), "--public-key", public_key)
    assert "3 signed lines, newest signed head #3" in capsys.readouterr().out

    raw_sql("DELETE FROM audit_auditevent WHERE seq = 3")
    with pytest.raises(CommandError, match="cut off the end"):
        call_command("verify_audit", "--head-log", str(copy), "--public-key", public_key)
    other_key = base64.b64encode(bytes(range(32))).decode()
    with pytest.raises(CommandError, match="no valid signature"):
        call_command("verify_audit", "--head-log", str(copy), "--public-key", other_key)
