import io
from pathlib import Path

import pytest
from PIL import Image

from cases.errors import InvalidInput, PayloadTooLarge
from identity.faces import compare, decode_image, encode_single_face

FX = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
KW = dict(max_pixels=40_000_000, max_side=640)


def _b(name):
    return (FX / name).read_bytes()


def test_genuine_matches_impostor_does_not():
    a = encode_single_face(_b("obama.jpg"), **KW).encoding
    b = encode_single_face(_b("obama2.jpg"), **KW).encoding
    c = encode_single_face(_b("biden.jpg"), **KW).encoding
    ok, d_gen = compare(a, b, 0.5)
    bad, d_imp = compare(a, c, 0.5)
    assert ok and not bad and d_gen < d_imp


def test_not_an_image_and_truncated():
    with pytest.raises(InvalidInput) as e:
        decode_image(b"hello", **KW)
    assert e.value.code == "image_invalid"
    with pytest.raises(InvalidInput) as e:
        decode_image(_b("obama.jpg")[:2000], **KW)
    assert e.value.code == "image_invalid"


def test_pixel_bomb_refused_from_header():
    buf = io.BytesIO()
    Image.new("L", (8000, 6250)).save(buf, "PNG")
    with pytest.raises(PayloadTooLarge) as e:
        decode_image(buf.getvalue(), **KW)
    assert e.value.code == "image_too_large"


def test_alpha_refused_grayscale_converted():
    buf = io.BytesIO()
    Image.new("RGBA", (50, 50), (1, 2, 3, 0)).save(buf, "PNG")
    with pytest.raises(InvalidInput) as e:
        decode_image(buf.getvalue(), **KW)
    assert e.value.code == "image_alpha"
    gray = io.BytesIO()
    Image.open(FX / "obama.jpg").convert("L").save(gray, "JPEG")
    assert encode_single_face(gray.getvalue(), **KW).faces == 1


def test_no_face_and_two_faces():
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (120, 120, 120)).save(buf, "JPEG")
    with pytest.raises(InvalidInput) as e:
        encode_single_face(buf.getvalue(), **KW)
    assert e.value.code == "face_not_found"
    a, b = Image.open(FX / "obama.jpg").convert("RGB"), Image.open(FX / "biden.jpg").convert("RGB")
    a.thumbnail((600, 600))
    b.thumbnail((600, 600))
    two = Image.new("RGB", (a.width + b.width, max(a.height, b.height)))
    two.paste(a, (0, 0))
    two.paste(b, (a.width, 0))
    out = io.BytesIO()
    two.save(out, "JPEG")
    with pytest.raises(InvalidInput) as e:
        encode_single_face(out.getvalue(), max_pixels=40_000_000, max_side=1280)
    assert e.value.code == "face_multiple"
