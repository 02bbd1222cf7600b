"""The visible company seal picture on the countersignature."""

from __future__ import annotations

import io


def test_seal_picture_shows_the_whole_company_name():
    """The seal used to cut the name at 12 characters, so two long names with one prefix looked alike."""
    from PIL import Image

    from signing.appearance import seal_image

    a = "北京市海淀区某某信息技术发展股份有限公司"
    b = "北京市海淀区某某信息技术发展研究有限公司"
    assert a[:12] == b[:12]
    images = {name: Image.open(io.BytesIO(seal_image(name))) for name in (a, b, a[:12])}
    assert all(im.size == (320, 320) and im.mode == "RGBA" for im in images.values())
    alpha = {name: im.getchannel("A").tobytes() for name, im in images.items()}
    assert alpha[a] != alpha[b] and alpha[a] != alpha[a[:12]]
