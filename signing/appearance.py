"""What a signature looks like on the page, apart from the cryptography: the employee's handwritten
signature picture (checked: a real, bounded, non-blank PNG), the company's round red seal picture,
where the seal goes, and the stamp (picture above two lines of text) pyHanko draws in the signature
field (:func:`stamp_style`). :mod:`signing.pades` signs; this module only draws.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFont
from pyhanko.pdf_utils import content, images
from pyhanko.pdf_utils.layout import AxisAlignment, BoxConstraints, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.stamp import StaticStampStyle

from cases.errors import Conflict, InvalidInput, PayloadTooLarge
from signing.fonts import font_path

__all__ = ["MAX_SIGNATURE_PIXELS", "Appearance", "check_signature_png", "seal_image", "seal_placement", "stamp_style",
           "now_text"]

MAX_SIGNATURE_PIXELS = 2000 * 1000


def check_signature_png(data: bytes, *, max_bytes: int) -> bytes:
    """A handwritten signature drawn on the mini-program canvas: a real, bounded, non-blank PNG."""
    if len(data) > max_bytes:
        raise PayloadTooLarge("signature_image_too_large", f"签名图片不能超过 {max_bytes // 1024} KB")
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise InvalidInput("signature_image_invalid", "签名图片必须是 PNG 格式")
    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "PNG" or img.width * img.height > MAX_SIGNATURE_PIXELS or img.width < 16 or img.height < 16:
            raise InvalidInput("signature_image_invalid", "签名图片尺寸无效", details={"size": [img.width, img.height]})
        img.load()
    except InvalidInput:
        raise
    except Exception:  # noqa: BLE001 - any decoding failure (truncated, bomb, bad chunks)
        raise InvalidInput("signature_image_invalid", "签名图片无法读取") from None
    rgba = img.convert("RGBA")
    # "Ink": pixels that are visible (alpha) and darker than the paper.
    dark = rgba.convert("L").point(lambda v: 255 if v < 200 else 0)
    opaque = rgba.getchannel("A").point(lambda v: 255 if v > 64 else 0)
    ink = ImageChops.multiply(dark, opaque).histogram()[255]
    if ink < max(30, rgba.width * rgba.height // 2000):
        raise InvalidInput("signature_image_blank", "签名为空，请手写签名后再提交")
    return data


def seal_image(company_name: str) -> bytes:
    """A round red seal picture (the visible appearance only; the cryptographic seal is the signature).

    Laid out like a Chinese company seal: the whole company name along the upper arc (the font
    shrinks and the arc widens for long names; nothing is cut off), a star in the middle and
    "电子印章" underneath.
    """
    size, red = 320, (200, 20, 20, 255)
    img = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((8, 8, size - 8, size - 8), outline=red, width=10)
    star = [(160, 120), (172, 156), (210, 156), (179, 178), (191, 214), (160, 192), (129, 214), (141, 178),
            (110, 156), (148, 156)]
    d.polygon(star, fill=red)
    name = " ".join(company_name.split()) or "—"
    span = min(250.0, max(140.0, 24.0 * len(name)))  # degrees of the upper arc the name takes
    radius = size / 2 - 46
    px = int(max(12, min(36, 0.92 * radius * math.radians(span) / len(name))))
    font = ImageFont.truetype(font_path(), px, index=0)
    for i, ch in enumerate(name):
        angle = -90 - span / 2 + span * (i + 0.5) / len(name)  # image coordinates: -90 is the top
        tile = Image.new("RGBA", (px * 2, px * 2), (255, 255, 255, 0))
        ImageDraw.Draw(tile).text((px, px), ch, fill=red, font=font, anchor="mm")
        tile = tile.rotate(-(angle + 90), resample=Image.Resampling.BICUBIC, expand=True)
        x = size / 2 + radius * math.cos(math.radians(angle)) - tile.width / 2
        y = size / 2 + radius * math.sin(math.radians(angle)) - tile.height / 2
        img.alpha_composite(tile, (round(x), round(y)))
    small = ImageFont.truetype(font_path(), 24, index=0)
    d.text((size / 2, 246), "电子印章", fill=red, font=small, anchor="mm")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def seal_placement(signed_letter: bytes) -> tuple[int, tuple[int, int, int, int]]:
    """Where the company seal goes on the employee's signed letter: the last page (0-based index) and
    a box right of the employee's signature field, the same size."""
    reader = PdfFileReader(io.BytesIO(signed_letter), strict=False)
    page = int(reader.root["/Pages"]["/Count"]) - 1
    for item in reader.root["/AcroForm"]["/Fields"]:
        f = item.get_object()
        if f.get("/T") == "employee_signature":
            x1, y1, x2, y2 = (float(v) for v in f["/Rect"])
            width = x2 - x1
            return page, (round(x2 + 17), round(y1), round(x2 + 17 + width), round(y2))
    raise Conflict("letter_layout_unknown", "辞职信缺少员工签名域")


# ---- the stamp in the signature field -----------------------------------------------------------

@dataclass(frozen=True)
class Appearance:
    """What the visible signature shows: an image (handwriting or seal) and two lines of text."""

    image_png: bytes | None
    line1: str
    line2: str
    font_file: str


STAMP_SCALE = 3  # appearance pixels per PDF point: sharp when printed or zoomed
STAMP_FONT_PT = 9
_fonts_lock = threading.Lock()


@lru_cache(maxsize=4)
def _stamp_font(path: str, size_px: int):
    """PIL font object, parsed once per process. A FreeType face is not documented as thread-safe, so every
    use of it holds ``_fonts_lock`` (drawing two lines takes a few milliseconds)."""
    from PIL import ImageFont

    return ImageFont.truetype(path, size_px)


def _text_image(appearance: Appearance, width_pt: float):
    """The name/time lines as a grayscale+alpha picture, or None. Returns (image, height in points)."""
    from PIL import Image, ImageDraw

    lines = [t for t in (appearance.line1, appearance.line2) if t]
    if not lines:
        return None, 0.0
    k = STAMP_SCALE
    font_px = STAMP_FONT_PT * k
    line_h = round(font_px * 1.25)
    w, h = max(1, round(width_pt * k)), line_h * len(lines) + 2 * k
    canvas = Image.new("LA", (w, h), (0, 0))
    with _fonts_lock:
        font = _stamp_font(appearance.font_file, font_px)
        widest = max(font.getlength(t) for t in lines)
        if widest > w - 4 * k:  # a long company name: shrink the text to the box, never cut it
            font = _stamp_font(appearance.font_file, max(6, int(font_px * (w - 4 * k) / widest)))
        draw = ImageDraw.Draw(canvas)
        for i, text in enumerate(lines):
            draw.text((2 * k, k + i * line_h), text, font=font, fill=(0, 255))
    return canvas, h / k


def _picture(png: bytes, max_w_px: int, max_h_px: int):
    """The handwriting or seal picture, decoded; shrunk by a whole factor only when far larger than needed
    (no resampling per signature: the PDF viewer scales the image XObject)."""
    from PIL import Image

    img: Image.Image = Image.open(io.BytesIO(png))
    img.load()
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA")
    factor = min(img.width // max(1, max_w_px), img.height // max(1, max_h_px))
    if factor >= 2:
        img = img.reduce(factor)
    return img


def _image_xobject(img, writer):
    """An image XObject for a PIL image (L/RGB, with the alpha of LA/RGBA as /SMask), Flate level 1.

    pyHanko's ``pil_image`` compresses at zlib's default level 6: ~1.5 ms per signature for a
    handwriting picture and the text lines, for ~2 KB less. The stamp is written once per signature,
    so the faster level wins.
    """
    import zlib

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.generic import pdf_name

    smask = None
    if img.mode.endswith("A"):
        smask = _image_xobject(img.getchannel("A"), writer)
        img = img.convert(img.mode[:-1])
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    d = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Image"),
        pdf_name("/Width"): generic.NumberObject(img.width), pdf_name("/Height"): generic.NumberObject(img.height),
        pdf_name("/ColorSpace"): pdf_name("/DeviceGray" if img.mode == "L" else "/DeviceRGB"),
        pdf_name("/BitsPerComponent"): generic.NumberObject(8), pdf_name("/Filter"): pdf_name("/FlateDecode"),
    })
    if smask is not None:
        d[pdf_name("/SMask")] = smask
    return writer.add_object(generic.StreamObject(d, encoded_data=zlib.compress(img.tobytes(), 1)))


class _StampImage(images.PdfImage):
    """pyHanko's PdfImage, written by :func:`_image_xobject`."""

    @property
    def image_ref(self):
        ref = self._image_ref
        if ref is None or ref.get_pdf_handler() is not self.writer:
            self._image_ref = ref = _image_xobject(self.image, self.writer)
        return ref


class _StampContent(content.PdfContent):
    """Images placed in the stamp box (points, from the bottom left): the stamp's only content."""

    def __init__(self, width: float, height: float, parts: list[tuple[images.PdfImage, float, float]]):
        super().__init__(box=BoxConstraints(width, height))
        self.parts = parts

    def render(self) -> bytes:
        self._resources = content.PdfResources()  # rendered once per signature: a style may be reused
        commands = []
        for picture, x, y in self.parts:
            picture.set_writer(self.writer)
            commands.append(b"q 1 0 0 1 %g %g cm %s Q" % (x, y, picture.render()))
            self.import_resources(picture.resources)
        return b" ".join(commands)


def stamp_style(appearance: Appearance, box: tuple[float, float, float, float] = (0, 0, 210, 102)) -> StaticStampStyle:
    """A static stamp: the image (handwriting or seal) above, the two text lines below, both image XObjects.

    The text is drawn into a picture (PIL, the same CJK font, parsed once per process) instead of being
    laid out as PDF text, so no font is parsed, subset and embedded per signature: that was most of the
    signing time.
    """
    width, height = box[2] - box[0], box[3] - box[1]
    parts: list[tuple[Any, float, float]] = []
    text, text_h = _text_image(appearance, width)
    if text is not None:
        parts.append((_StampImage(text, box=BoxConstraints(width, text_h)), 0.0, 0.0))
    room_w, room_h = width - 4, height - text_h - 4
    if appearance.image_png and room_w > 0 and room_h > 0:
        img = _picture(appearance.image_png, round(room_w * STAMP_SCALE), round(room_h * STAMP_SCALE))
        scale = min(room_w / img.width, room_h / img.height)
        w, h = img.width * scale, img.height * scale
        parts.append((_StampImage(img, box=BoxConstraints(w, h)), (width - w) / 2, text_h + 2 + (room_h - h) / 2))
    return StaticStampStyle(background=_StampContent(width, height, parts), background_opacity=1.0, border_width=0,
                            background_layout=SimpleBoxLayoutRule(x_align=AxisAlignment.ALIGN_MID,
                                                                  y_align=AxisAlignment.ALIGN_MID,
                                                                  margins=Margins.uniform(0)))


def now_text(now: datetime, tz) -> str:
    return now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"
