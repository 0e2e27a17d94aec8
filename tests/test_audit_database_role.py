"""Production roles on PostgreSQL: the application role appends audit events and can do no more."""

import uuid

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.chain import verify_trail
from audit.events import Actor, record
from audit.models import AuditEvent

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="the roles exist on PostgreSQL only")


def reconnect() -> None:
    """Close Django's connection and its pool, so that the next one logs in afresh."""
    connection.close()
    if connection.settings_dict["OPTIONS"].get("pool"):
        connection.close_pool()


def execute(sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def app_role():
    """A fresh login role (roles are cluster-wide: a unique name, dropped afterwards)."""
    role = f"portal_app_test_{uuid.uuid4().hex[:12]}"
    execute(f"CREATE ROLE {role} LOGIN")
    try:
        yield role
    finally:
        reconnect()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")


@pytest.fixture
def connected_as(app_role):
    """Django's connection, as the application role for the test's body."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
    call_command("audit_db_roles", app_role=app_role, owner_role=owner, apply=True)
    reconnect()
    connection.settings_dict["USER"] = app_role
    try:
        yield app_role
    finally:
        reconnect()
        connection.settings_dict["USER"] = owner


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        ("TRUNCATE audit_auditevent", "permission denied"),
        ("DELETE FROM audit_auditevent", "permission denied"),
        ("UPDATE audit_auditevent SET event_type = 'forged'", "permission denied"),
        ("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only", "must be owner"),
        ("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL", "must be owner"),
        ("DROP TABLE audit_auditevent", "must be owner"),
        ("SET session_replication_role = replica", "permission denied"),
    ],
)
def test_the_application_role_appends_but_cannot_remove_or_unguard(connected_as, sql, refusal):
    event = record(event_type="test.event", actor=Actor.system(), details={"as": connected_as})
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (connected_as,)
    with pytest.raises(DatabaseError, match=refusal):
        execute(sql)
    assert AuditEvent.objects.get(seq=event.seq).details == {"as": connected_as}
    assert verify_trail().intact


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_application_role_keeps_ordinary_rights_on_the_other_tables(connected_as):
    execute("DELETE FROM django_session")
    execute("UPDATE auth_user SET is_active = is_active")


def test_the_command_prints_the_statements_for_the_database_administrator(capsys):
    call_command("audit_db_roles", app_role="portal_app", owner_role="portal_owner")
    out = capsys.readouterr().out
    assert "REVOKE ALL ON public.audit_auditevent FROM portal_app;" in out
    assert "GRANT SELECT, INSERT ON public.audit_auditevent TO portal_app;" in out
