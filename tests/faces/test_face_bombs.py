"""Liveness bombs: frames over a few megapixels are refused from their headers before any frame is
decoded, and each employee has an hourly allowance of challenges and of verifications."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace

import pytest
from PIL import Image

from .conftest import burst, photo
from .test_faces_api import Api


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height (8-bit RGB) and holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def big_jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buf, "JPEG", quality=50)
    return buf.getvalue()


@pytest.fixture
def enrolled(client, faces_env):
    api = Api(client, faces_env)
    assert api.consent().status_code == 201
    assert api.enrol(photo("obama.jpg")).status_code == 201
    return api


@pytest.fixture
def no_decoding(monkeypatch):
    import identity.faces

    decoded = []
    real = identity.faces.decode_image
    monkeypatch.setattr(identity.faces, "decode_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    return decoded


@pytest.mark.parametrize("make, size", [(lambda: png_header_only(8000, 5000), (8000, 5000)),  # 40 MP, ~100 bytes
                                        (lambda: big_jpeg(2600, 1700), (2600, 1700))])      # 4.4 MP, small file
def test_frames_over_the_pixel_cap_are_refused_before_any_decoding(enrolled, no_decoding, make, size):
    api = enrolled
    cap = api.env.rt.settings.liveness_frame_max_pixels
    assert size[0] * size[1] > cap and cap <= 5_000_000
    ch = api.challenge().json
    frames = list(burst("obama.jpg", tuple(ch["actions"])))
    frames[3] = make()
    assert len(frames[3]) <= api.env.rt.settings.liveness_max_frame_bytes
    r = api.verify(ch["nonce"], frames)
    assert r.status_code == 413 and r.json["code"] == "image_too_large"
    assert r.json["details"] == {"frame": 3, "width": size[0], "height": size[1], "max_pixels": cap}
    assert no_decoding == []  # refused from the headers: not even frames 0-2 were decoded
    assert api.status().json["consecutive_failures"] == 0


def test_a_frame_at_the_cap_is_decoded(enrolled, no_decoding):
    api = enrolled
    ch = api.challenge().json
    frames = list(burst("obama.jpg", tuple(ch["actions"])))
    r = api.verify(ch["nonce"], frames)
    assert r.status_code == 200, r.json
    assert len(no_decoding) == len(frames)


def test_challenges_per_employee_are_rate_limited(enrolled):
    api = enrolled
    api.env.rt.settings = replace(api.env.rt.settings, liveness_challenges_per_hour=3)
    assert [api.challenge().status_code for _ in range(3)] == [201, 201, 201]
    r = api.challenge()
    assert r.status_code == 429 and r.json["code"] == "liveness_challenge_rate_limited"
    assert 3500 <= int(r.headers["Retry-After"]) <= 3600 and r.json["details"]["limit"] == 3
    # another employee of the company has an allowance of their own
    other = api.env.factory.employee(api.env.company, name="拜登")
    r = api.c.post("/api/v1/faces/liveness/challenges", json={"case_id": api.env.case.id},
                   headers=api.env.factory.employee_headers(other))
    assert r.json["code"] != "liveness_challenge_rate_limited"


def test_verifications_per_employee_are_rate_limited_whatever_their_outcome(enrolled, no_decoding):
    api = enrolled
    api.env.rt.settings = replace(api.env.rt.settings, face_verifications_per_hour=2)
    ch = api.challenge().json
    frames = list(burst("obama.jpg", tuple(ch["actions"])))
    assert api.verify(ch["nonce"], frames[:1]).json["code"] == "liveness_frame_count"  # counted
    assert api.verify("no-such-nonce", frames).json["code"] == "liveness_challenge_invalid"  # counted
    decoded = len(no_decoding)
    r = api.verify(ch["nonce"], frames)  # a good burst, but over the allowance: refused before any work
    assert r.status_code == 429 and r.json["code"] == "face_verification_rate_limited"
    assert int(r.headers["Retry-After"]) > 0 and len(no_decoding) == decoded
    assert api.status().json["consecutive_failures"] == 0
