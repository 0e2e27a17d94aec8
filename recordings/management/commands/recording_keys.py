import base64
import secrets

from django.core.management.base import BaseCommand

from recordings import encryption, signing


class Command(BaseCommand):
    help = ("Print a new signing key and master key for the recording archive (to put in the "
            "environment), or with --public the configured signing key's public half.")

    def add_arguments(self, parser):
        parser.add_argument("--public", action="store_true",
                            help="Print the public key auditors use to check manifests.")

    def handle(self, *args, public: bool = False, **options):
        if public:
            key = signing.public_key_bytes()
            self.stdout.write(f"Ed25519 public key (base64): {base64.b64encode(key).decode()}")
            self.stdout.write(f"key id: {signing.signing_key_id()}")
            return
        self.stdout.write("# Keep both secret and backed up: without the master key no archived")
        self.stdout.write("# recording can be read again; without the signing key none signed.")
        for name in ("PORTAL_RECORDING_SIGNING_KEY", "PORTAL_RECORDING_MASTER_KEY"):
            self.stdout.write(f"{name}={base64.b64encode(secrets.token_bytes(32)).decode()}")
        current = encryption.key_id(encryption.master_key())
        self.stdout.write(f"# the master key configured now has the id {current}")
