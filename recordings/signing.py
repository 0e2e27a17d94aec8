"""Manifest signatures: Ed25519 over the manifest's canonical bytes. See docs/recording-archive.md.

The private key is a 32-byte seed from ``PORTAL_RECORDING_SIGNING_KEY``; its public key is
published (``manage.py recording_keys --public``) so that an auditor can check a manifest
without the portal.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

from recordings.encryption import key_id

ALGORITHM = "ed25519"


def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(settings.RECORDING_SIGNING_KEY)


def public_key_bytes() -> bytes:
    return private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signing_key_id() -> str:
    return key_id(public_key_bytes())


def sign(data: bytes) -> str:
    """The Ed25519 signature of ``data``, in base64."""
    return base64.b64encode(private_key().sign(data)).decode()


def signature_valid(data: bytes, signature: str, public_key: bytes | None = None) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key or public_key_bytes())
        key.verify(base64.b64decode(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True
