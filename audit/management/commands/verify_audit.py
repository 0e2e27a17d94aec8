import base64
import binascii
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import heads
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
        parser.add_argument(
            "--head-log",
            type=Path,
            help="Check this copy of the head log instead of PORTAL_AUDIT_HEAD_LOG "
            "(e.g. the shipped objects put together in order).",
        )
        parser.add_argument(
            "--public-key",
            help="Check head-log signatures with this Ed25519 public key (base64) instead of "
            "the one of PORTAL_AUDIT_SIGNING_KEY.",
        )
        parser.add_argument(
            "--print-public-key",
            action="store_true",
            help="Print the head log's public key (base64) for auditors, and stop.",
        )

    def handle(self, *args, record: bool = False, head_log: Path | None = None,
               public_key: str | None = None, print_public_key: bool = False, **options):
        if print_public_key:
            self.stdout.write(base64.b64encode(heads.public_key_bytes()).decode())
            return
        key = None
        if public_key:
            try:
                key = base64.b64decode(public_key, validate=True)
            except (binascii.Error, ValueError):
                raise CommandError("--public-key: not base64", returncode=2) from None
            if len(key) != 32:
                raise CommandError("--public-key: not 32 bytes", returncode=2)
        result = verify_trail(head_log=head_log, public_key=key)
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
