from django.core.management.base import BaseCommand, CommandError

from audit.chain import record_verification, verify_chain
from audit.events import Actor


class Command(BaseCommand):
    help = "Walk the audit hash chain; exit 1 and name the first broken link if it is not intact."

    def add_arguments(self, parser):
        parser.add_argument(
            "--record",
            action="store_true",
            help="Also append the outcome to the chain (read-only by default).",
        )

    def handle(self, *args, record: bool = False, **options):
        result = verify_chain()
        if record:
            record_verification(result, actor=Actor.system("manage.py verify_audit"))
        if result.intact:
            self.stdout.write(
                f"Checked {result.checked} audit events: chain intact. "
                f"Head #{result.head_seq} {result.head_hash}"
            )
            return
        raise CommandError(
            f"Checked {result.checked} audit events: chain BROKEN at event "
            f"#{result.broken.seq}: {result.broken.reason}.",
            returncode=1,
        )
