"""The production database roles: the application may add audit events, never remove them.

The database trigger (migration ``audit/0002``) refuses ``UPDATE`` and ``DELETE`` on audit
events, but a table's owner can ``TRUNCATE`` it or switch the trigger off. So in production a
migration-owner role owns every table and runs ``migrate``; the portal connects as an
application role that owns nothing and holds only ``SELECT`` and ``INSERT`` on the audit table.
``manage.py audit_db_roles`` prints (or applies) these statements. See docs/audit.md.
"""

from __future__ import annotations

import re

AUDIT_TABLE = "audit_auditevent"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _checked(role: str) -> str:
    if not _NAME.match(role):
        raise ValueError(f"{role!r} is not a plain PostgreSQL role name (a-z, 0-9, _)")
    return role


def grants(*, app_role: str, owner_role: str, schema: str = "public") -> list[str]:
    """SQL that gives ``app_role`` ordinary rights everywhere but append-only ones on audit events.

    Run by a superuser (or ``owner_role``) in the portal's database after ``migrate``.
    """
    app, owner, schema = _checked(app_role), _checked(owner_role), _checked(schema)
    return [
        # Nobody but the owner creates objects; the application changes no schema.
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {schema} TO {app}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
        # The audit table: read and append; no UPDATE, DELETE or TRUNCATE, and not its owner,
        # so no ALTER TABLE ... DISABLE TRIGGER and no DROP either.
        f"REVOKE ALL ON {schema}.{AUDIT_TABLE} FROM {app}",
        f"GRANT SELECT, INSERT ON {schema}.{AUDIT_TABLE} TO {app}",
        # Tables that later migrations create get the ordinary rights; re-run this after each
        # migration that adds a table so that the audit table's exception stays in force.
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]
