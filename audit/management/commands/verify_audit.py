from django.core.management.base import BaseCommand, CommandError

from audit.chain import record_verification, verify_trail
from audit.events import Actor


class Command(BaseCommand):
    help = (
        "Verify the audit trail: the hash chain, every anchor and the signed head log; "
        "exit 1 and name the first break if it is not intact."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--record",
            action="store_true",
            help="Also append the outcome to the chain (read-only by default).",
        )

    def handle(self, *args, record: bool = False, **options):
        result = verify_trail()
        if record:
            record_verification(result, actor=Actor.system("manage.py verify_audit"))
        if result.intact:
            ahead = result.head_seq - result.signed_head_seq
            self.stdout.write(
                f"Checked {result.checked} audit events: chain intact. "
                f"Head #{result.head_seq} {result.head_hash}\n"
                f"Anchors: {result.anchors}; head log: {result.head_lines} signed lines, "
                f"newest signed head #{result.signed_head_seq}"
                + (f" ({ahead} newer events not yet in the head log)" if ahead else "")
            )
            return
        raise CommandError(
            f"Checked {result.checked} audit events: chain BROKEN at event "
            f"#{result.broken.seq}: {result.broken.reason}.",
            returncode=1,
        )
