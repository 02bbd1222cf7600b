import base64

import pytest

from qianli.crypto import DecryptionError, FieldCipher, lookup_hash, normalize_phone

K1 = ("k1", b"\x01" * 32)
K2 = ("k2", b"\x02" * 32)


def test_roundtrip_and_randomised():
    c = FieldCipher([K1])
    a, b = c.encrypt("13800138000", "employees.phone:x"), c.encrypt("13800138000", "employees.phone:x")
    assert a != b and "13800138000" not in a
    assert c.decrypt(a, "employees.phone:x") == "13800138000"


def test_wrong_associated_data_fails():
    c = FieldCipher([K1])
    token = c.encrypt("secret", "employees.phone:A")
    with pytest.raises(DecryptionError):
        c.decrypt(token, "employees.phone:B")


def test_tampered_ciphertext_fails():
    c = FieldCipher([K1])
    v, kid, b64 = c.encrypt("secret", "aad").split(":")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    with pytest.raises(DecryptionError):
        c.decrypt(f"{v}:{kid}:{base64.b64encode(bytes(raw)).decode()}", "aad")


def test_rotation_old_key_still_decrypts_new_key_encrypts():
    old = FieldCipher([K1]).encrypt("v", "a")
    ring = FieldCipher([K2, K1])
    assert ring.decrypt(old, "a") == "v" and ring.needs_rotation(old)
    assert ring.encrypt("v", "a").startswith("v1:k2:")
    with pytest.raises(DecryptionError):
        FieldCipher([K2]).decrypt(old, "a")


def test_lookup_hash_is_keyed_and_phone_normalised():
    assert normalize_phone("+86 138-0013-8000") == normalize_phone("13800138000") == "13800138000"
    assert lookup_hash(b"a" * 32, "phone", "1") != lookup_hash(b"b" * 32, "phone", "1")
