"""The few DER encoding helpers the signing code uses where asn1crypto's object building is too slow.

asn1crypto builds a structure from Python values by re-encoding every nested value, several times over
(a CMS signature: ~6 ms of pure Python per signature); the fixed layouts we emit (timestamp tokens,
signature containers) are assembled from pre-encoded parts with these instead, and their tests compare
the bytes with what asn1crypto/pyHanko build.
"""

from __future__ import annotations

__all__ = ["tlv", "der_int", "set_of"]


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: a single identifier octet ``tag``, the definite length, ``content``."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def der_int(value: int) -> bytes:
    """An INTEGER (two's complement, minimal length)."""
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def set_of(elements: list[bytes], tag: int = 0x31) -> bytes:
    """A SET OF (or an implicitly tagged one): DER sorts the elements' encodings."""
    return tlv(tag, b"".join(sorted(elements)))
