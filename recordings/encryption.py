"""Encryption at rest: one AES-256-GCM data key per recording, wrapped by the master key.

A sealed blob is ``BLOB_MAGIC``, a 96-bit random nonce, then AES-256-GCM over the
zstd-compressed plaintext (tag at the end). The associated data names the recording and the
object, so a blob cannot be swapped for another one unnoticed. See docs/recording-archive.md.
"""

from __future__ import annotations

import base64
import hashlib
import os

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings

BLOB_MAGIC = b"FWARC\x01\r\n"  # 8 bytes; version 1 of the sealed-blob layout
NONCE_BYTES = 12
TAG_BYTES = 16
ZSTD_LEVEL = 3  # kept for years: level 1 stores 2× faster but 3.5 % larger (bench/recording.py)
MAX_PLAINTEXT_BYTES = 64 * 1024 * 1024  # far above a segment (8 MiB); caps a forged frame
AAD_PREFIX = b"fernwartung-archive:v1:"


class SealBroken(Exception):
    """A blob that does not decrypt: wrong key, changed bytes, or another object's blob."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def key_id(key: bytes) -> str:
    """A short, non-secret name for a key, to tell which one sealed what."""
    return hashlib.sha256(b"fernwartung-key-id:" + key).hexdigest()[:16]


def master_key() -> bytes:
    return settings.RECORDING_MASTER_KEY


def wrap(data_key: bytes, master: bytes | None = None) -> str:
    """The data key wrapped with AES key wrap (RFC 3394) under the master key, in base64."""
    return base64.b64encode(aes_key_wrap(master or master_key(), data_key)).decode()


def unwrap(wrapped: str, master: bytes | None = None) -> bytes:
    try:
        return aes_key_unwrap(master or master_key(), base64.b64decode(wrapped))
    except (InvalidUnwrap, ValueError) as exc:
        raise SealBroken("the data key does not unwrap with this master key") from exc


def associated_data(archive_name: str, object_name: str) -> bytes:
    return AAD_PREFIX + f"{archive_name}/{object_name}".encode()


def seal(plaintext: bytes, data_key: bytes, aad: bytes) -> bytes:
    """Compress, then encrypt and authenticate."""
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress(
        plaintext
    )
    nonce = os.urandom(NONCE_BYTES)
    return BLOB_MAGIC + nonce + AESGCM(data_key).encrypt(nonce, compressed, aad)


def unseal(blob: bytes, data_key: bytes, aad: bytes) -> bytes:
    """Check, decrypt and decompress a sealed blob; SealBroken if anything is off."""
    if len(blob) < len(BLOB_MAGIC) + NONCE_BYTES + TAG_BYTES or not blob.startswith(BLOB_MAGIC):
        raise SealBroken("not a sealed archive blob")
    nonce = blob[len(BLOB_MAGIC):len(BLOB_MAGIC) + NONCE_BYTES]
    try:
        compressed = AESGCM(data_key).decrypt(nonce, blob[len(BLOB_MAGIC) + NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise SealBroken("the blob does not decrypt: changed, or sealed for another object") \
            from exc
    try:
        return zstandard.ZstdDecompressor().decompress(compressed,
                                                       max_output_size=MAX_PLAINTEXT_BYTES)
    except zstandard.ZstdError as exc:
        raise SealBroken(f"the blob does not decompress: {exc}") from exc
