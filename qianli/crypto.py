"""Field encryption at rest (AES-256-GCM with key ids) and keyed lookup hashes.

Ciphertext format (text, safe for any column): ``v1:<kid>:<base64(nonce || ciphertext+tag)>``.
The associated data binds a value to its column and row owner (e.g. ``employee.phone:<id>``), so
a ciphertext copied into another row or column does not decrypt. Lookups by phone use
HMAC-SHA256 under a separate key, never the plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["FieldCipher", "DecryptionError", "lookup_hash", "normalize_phone"]


class DecryptionError(Exception):
    """Ciphertext unreadable: unknown key id, tampering, or wrong associated data."""


class FieldCipher:
    def __init__(self, key_ring: list[tuple[str, bytes]]):
        if not key_ring:
            raise ValueError("empty key ring")
        self._active_kid, active = key_ring[0]
        self._keys = {kid: AESGCM(key) for kid, key in key_ring}
        self._active = self._keys[self._active_kid]

    @classmethod
    def from_settings(cls, settings) -> "FieldCipher":
        return cls(settings.data_key_ring())

    def encrypt(self, plaintext: str | bytes, aad: str) -> str:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(12)
        ct = self._active.encrypt(nonce, data, aad.encode())
        return f"v1:{self._active_kid}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt_bytes(self, token: str, aad: str) -> bytes:
        try:
            version, kid, b64 = token.split(":", 2)
            raw = base64.b64decode(b64)
        except ValueError as exc:
            raise DecryptionError("malformed ciphertext") from exc
        if version != "v1" or kid not in self._keys:
            raise DecryptionError(f"unknown key id {kid!r}")
        try:
            return self._keys[kid].decrypt(raw[:12], raw[12:], aad.encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate") from exc

    def decrypt(self, token: str, aad: str) -> str:
        return self.decrypt_bytes(token, aad).decode()

    def needs_rotation(self, token: str) -> bool:
        return token.split(":", 2)[1] != self._active_kid


def normalize_phone(phone: str) -> str:
    """Mainland mobile numbers: strip spaces, dashes and a +86/86 prefix."""
    p = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    if p.startswith("+86"):
        p = p[3:]
    elif p.startswith("86") and len(p) == 13:
        p = p[2:]
    return p


def lookup_hash(key: bytes, kind: str, value: str) -> str:
    """Deterministic keyed hash for equality lookups (e.g. kind='phone')."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
