"""Encrypts every Temporal payload with AES-GCM, so whoever operates Temporal (or opens
its web UI) sees ciphertext where a case's details, evidence and notes would be.

The codec sits on the client's DataConverter (`app.platform.temporal.connect`), so the
service layer, the worker and the CLI all encrypt and decrypt alike. Keys come
from `CASEWORK_PAYLOAD_KEYS` (`id:base64key,id:base64key`): the first encrypts,
every one decrypts, so a key is rotated by putting the new one first and keeping
the old ones until no running case holds a payload they encrypted. Each payload
names its key id in its metadata. A payload without our encoding passes through
as it is: histories written before encryption was switched on still read.

With no key configured and no `CASEWORK_TEMPORAL_ADDRESS` (the embedded dev server
of `casework up`), a key is generated once into the data directory (mode 0600), so
a developer's histories are encrypted too. With an external cluster and no key,
`casework up`, `worker` and `web` warn loudly at every start and send plaintext: they
do not refuse, so that a deployment upgraded to this version keeps running while its
operators choose and distribute a key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from app.platform.keyfile import read_or_create

log = logging.getLogger(__name__)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12  # AES-GCM's standard nonce; random per payload
KEY_FILE = "payload-keys"  # in the data directory, for the embedded stack only
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
KEY_SIZES = (16, 24, 32)  # AES-128/192/256; a generated key is 32 bytes

PayloadKey = tuple[str, bytes]  # (key id, key)


class PayloadKeyError(ValueError):
    """A key list is malformed; the message names the entry, never the key."""


class PayloadDecryptionError(RuntimeError):
    """A payload cannot be decrypted: its key is not configured, or it is the wrong key."""


def parse_keys(raw: str) -> tuple[PayloadKey, ...]:
    """`id:base64key,id:base64key` (whitespace around entries ignored) into (id, key)s."""
    keys: list[PayloadKey] = []
    for n, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not KEY_ID_PATTERN.fullmatch(key_id):
            raise PayloadKeyError(
                f"entry {n}: expected id:base64key, the id of letters, digits, '.', '_' or '-'"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"key {key_id!r}: not valid base64") from None
        if len(key) not in KEY_SIZES:
            raise PayloadKeyError(
                f"key {key_id!r}: {len(key)} bytes; AES needs 16, 24 or 32 (32 recommended)"
            )
        if any(key_id == known for known, _ in keys):
            raise PayloadKeyError(f"key {key_id!r}: given twice")
        keys.append((key_id, key))
    if not keys:
        raise PayloadKeyError("no key given")
    return tuple(keys)


def format_keys(keys: Sequence[PayloadKey]) -> str:
    return ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in keys)


def new_key(key_id: str | None = None) -> PayloadKey:
    """A fresh 256-bit key, its id the day it was made unless given."""
    return (key_id or f"k{datetime.now(UTC):%Y%m%d}", secrets.token_bytes(32))


def embedded_keys(data_dir: Path) -> tuple[PayloadKey, ...]:
    """The embedded stack's keys: read from the data directory, made there on first use.

    Made by `read_or_create` (mode 0600): two processes starting at once agree on one
    key, and no other user can read it.
    """
    path = data_dir / KEY_FILE
    text = read_or_create(path, lambda: format_keys([new_key()]) + "\n")
    try:
        return parse_keys(text)
    except PayloadKeyError as e:
        raise PayloadKeyError(f"{path}: {e}") from None


class AesGcmCodec(PayloadCodec):
    """AES-GCM over each whole serialised payload (its metadata included), the key id
    as associated data, so a payload cannot be passed off under another key's id."""

    def __init__(self, keys: Sequence[PayloadKey]) -> None:
        if not keys:
            raise PayloadKeyError("no key given")
        self._encrypt_id, key = keys[0]
        self._encryptor = AESGCM(key)
        self._by_id = {key_id: AESGCM(key) for key_id, key in keys}

    @property
    def key_id(self) -> str:
        """The id of the key that encrypts."""
        return self._encrypt_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        aad = self._encrypt_id.encode()
        sealed = self._encryptor.encrypt(nonce, payload.SerializeToString(), aad)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: aad},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was on (or by a plaintext client)
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._by_id.get(key_id)
        if cipher is None:
            known = ", ".join(self._by_id)
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r}, which CASEWORK_PAYLOAD_KEYS "
                f"does not hold (it holds: {known})"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload under key id {key_id!r} does not decrypt: the key configured "
                "under that id is not the one that encrypted it, or the payload was altered"
            ) from None
        return Payload.FromString(plain)
