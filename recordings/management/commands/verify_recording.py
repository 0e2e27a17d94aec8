from django.core.management.base import BaseCommand, CommandError

from audit.events import Actor
from recordings import actions, archive
from recordings.models import Recording, RecordingState


class Command(BaseCommand):
    help = ("Read an archived recording back in full: decryption, every segment's hash, the hash "
            "chain and checkpoints, and the manifest signature. Exit 1 on any mismatch.")

    def add_arguments(self, parser):
        parser.add_argument("recording_id", type=int, nargs="+", help="Recording id(s)")
        parser.add_argument("--record", action="store_true",
                            help="Also append each outcome to the audit chain.")

    def handle(self, *args, recording_id: list[int], record: bool = False, **options):
        broken = []
        for pk in recording_id:
            recording = Recording.objects.select_related("session").filter(pk=pk).first()
            if recording is None:
                raise CommandError(f"recording {pk}: no such recording", returncode=2)
            if recording.state != RecordingState.ARCHIVED:
                raise CommandError(
                    f"recording {pk}: {recording.get_state_display()}, not archived"
                    + (f" (manifest SHA-256 {recording.manifest_sha256})"
                       if recording.manifest_sha256 else ""),
                    returncode=2,
                )
            result = archive.verify_stored(recording)
            if record:
                actions.record_verification(result,
                                            by=Actor.system("manage.py verify_recording"))
            line = (f"{result.summary()}; session {recording.session.reference}; manifest "
                    f"SHA-256 {recording.manifest_sha256}")
            if result.intact:
                self.stdout.write(line)
            else:
                self.stderr.write(line)
                broken.append(pk)
        if broken:
            raise CommandError(f"{len(broken)} of {len(recording_id)} recordings do NOT verify: "
                               + ", ".join(map(str, broken)), returncode=1)
