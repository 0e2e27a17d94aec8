from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from audit.database_roles import grants


class Command(BaseCommand):
    help = (
        "Print (or with --apply, run) the PostgreSQL grants that leave the application role "
        "only SELECT and INSERT on audit events (docs/audit.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app-role", required=True, help="the role the portal connects as")
        parser.add_argument("--owner-role", required=True,
                            help="the role that owns the tables and runs migrate")
        parser.add_argument("--apply", action="store_true",
                            help="run the statements on the configured database (as its owner "
                                 "or a superuser) instead of printing them")

    def handle(self, *args, app_role: str, owner_role: str, apply: bool = False, **options):
        try:
            statements = grants(app_role=app_role, owner_role=owner_role)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not apply:
            self.stdout.write(";\n".join(statements) + ";")
            return
        if connection.vendor != "postgresql":
            raise CommandError("--apply needs PostgreSQL (DATABASE_URL)")
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"Applied {len(statements)} statements for {app_role}.")
