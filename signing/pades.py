"""PAdES baseline B-LTA signing with pyHanko: the employee's signature and the company countersignature.

One function, :func:`sign_b_lta`, does both: a visible approval signature in a new field (CAdES
detached, ``ETSI.CAdES.detached``) with a signature timestamp (B-T), the validation data of every
certificate involved (chains, CRLs, OCSP) written into the document security store (B-LT), then a
document timestamp over all of it (B-LTA). The countersignature is an incremental update: the
employee's signature keeps covering its revision and still validates (pyHanko's difference analysis
classifies the later revision as a permitted signature/DSS/timestamp addition).

Validation data is gathered offline from our own PKI (no fetching), so signing does not depend on
the app serving its CRL/OCSP URLs to itself.
"""

from __future__ import annotations

import asyncio
import io
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from pyhanko.pdf_utils import images
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, BoxConstraints, Margins, SimpleBoxLayoutRule
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from signing.pki import EventCredential, Pki, der_to_asn1, key_to_asn1

__all__ = ["Appearance", "SignedResult", "sign_b_lta", "event_signer", "KeySigner", "reserved_size"]


@dataclass(frozen=True)
class Appearance:
    """What the visible signature shows: an image (handwriting or seal) and two lines of text."""

    image_png: bytes | None
    line1: str
    line2: str
    font_file: str


@dataclass(frozen=True)
class SignedResult:
    pdf: bytes
    field_name: str
    signer_subject: str
    cert_serial: str


class KeySigner(signers.SimpleSigner):
    """pyHanko's SimpleSigner, signing with an already loaded ``cryptography`` key object.

    SimpleSigner re-imports its key from DER for every signature (for RSA that runs the key's
    consistency check, ~100-200 ms); ECDSA and RSA PKCS#1 v1.5 use the loaded key, anything else
    falls back to SimpleSigner.
    """

    def __init__(self, *, key, signing_cert, cert_registry=None):
        super().__init__(signing_cert=signing_cert, signing_key=key_to_asn1(key), cert_registry=cert_registry)
        self._key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        try:
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        except ValueError:
            mechanism = None
        hash_algo = get_pyca_cryptography_hash(digest_algorithm)
        if mechanism == "ecdsa" and isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hash_algo))
        if mechanism == "rsassa_pkcs1v15" and isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, PKCS1v15(), hash_algo)
        return super().sign_raw(data, digest_algorithm)


def event_signer(cred: EventCredential) -> signers.SimpleSigner:
    return KeySigner(key=cred.key, signing_cert=der_to_asn1(cred.cert),
                     cert_registry=SimpleCertificateStore.from_certs([der_to_asn1(c) for c in cred.chain]))


def reserved_size(signer: signers.Signer, timestamper, md_algorithm: str = "sha256") -> int:
    """Bytes to reserve in /Contents for the signature CMS, instead of pyHanko's dry-run signature.

    The CMS holds the certificates the signer embeds, the signed attributes, the signature value and
    the signature timestamp token (validation data goes to the DSS, outside the CMS). The token's size
    comes from the timestamper's own dummy token (pyHanko caches it per timestamper: one request per
    process), with a 50% margin; 3 KB cover the attributes and a signature value up to RSA-8192.
    Counted twice: /Contents is hex. Too small would fail loudly (pyHanko refuses to write), never
    produce a broken file.
    """
    certs = [signer.signing_cert, *(signer.cert_registry or ())]
    cert_bytes = sum(len(c.dump()) for c in certs if c is not None)
    token = asyncio.run(timestamper.async_dummy_response(md_algorithm)) if timestamper is not None else None
    token_bytes = len(token.dump()) if token is not None else 0
    return 2 * (cert_bytes + token_bytes + token_bytes // 2 + 3072)


STAMP_SCALE = 3  # appearance pixels per PDF point: sharp when printed or zoomed
STAMP_FONT_PT = 9
_fonts_lock = threading.Lock()


@lru_cache(maxsize=4)
def _stamp_font(path: str, size_px: int):
    """PIL font object, parsed once per process. A FreeType face is not documented as thread-safe, so every
    use of it holds ``_fonts_lock`` (drawing two lines takes a few milliseconds)."""
    from PIL import ImageFont

    return ImageFont.truetype(path, size_px)


def _stamp_image(appearance: Appearance, width_pt: float, height_pt: float):
    """The whole visible stamp as one RGBA picture: the image (handwriting or seal) above, two text lines below.

    Drawing the text into the picture (PIL, the same CJK font) instead of as PDF text means no font is
    parsed, subset and embedded per signature: that was most of the signing time.
    """
    from PIL import Image, ImageDraw

    k = STAMP_SCALE
    w, h = max(1, round(width_pt * k)), max(1, round(height_pt * k))
    canvas = Image.new("RGBA", (w, h), (255, 255, 255, 0))
    font_px = STAMP_FONT_PT * k
    line_h = round(font_px * 1.25)
    lines = [t for t in (appearance.line1, appearance.line2) if t]
    text_h = line_h * len(lines) + (k * 2 if lines else 0)
    if appearance.image_png:
        img = Image.open(io.BytesIO(appearance.image_png))
        img.load()
        img = img.convert("RGBA")
        room_w, room_h = w - 4 * k, h - text_h - 4 * k
        if room_w > 0 and room_h > 0:
            scale = min(room_w / img.width, room_h / img.height)
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img = img.resize(size, Image.LANCZOS)
            canvas.alpha_composite(img, ((w - size[0]) // 2, 2 * k + (room_h - size[1]) // 2))
    if lines:
        with _fonts_lock:
            font = _stamp_font(appearance.font_file, font_px)
            widest = max(font.getlength(t) for t in lines)
            if widest > w - 4 * k:  # a long company name: shrink the text to the box, never cut it
                font = _stamp_font(appearance.font_file, max(6, int(font_px * (w - 4 * k) / widest)))
            draw = ImageDraw.Draw(canvas)
            y = h - text_h + k
            for text in lines:
                draw.text((2 * k, y), text, font=font, fill=(0, 0, 0, 255))
                y += line_h
    return canvas


def _stamp_style(appearance: Appearance, box: tuple[float, float, float, float] = (0, 0, 210, 102)) -> StaticStampStyle:
    """A static stamp: one image XObject filling the signature box (no fonts in the appearance)."""
    width, height = box[2] - box[0], box[3] - box[1]
    picture = images.PdfImage(_stamp_image(appearance, width, height), box=BoxConstraints(width, height))
    return StaticStampStyle(background=picture, background_opacity=1.0, border_width=0,
                            background_layout=SimpleBoxLayoutRule(x_align=AxisAlignment.ALIGN_MID,
                                                                  y_align=AxisAlignment.ALIGN_MID,
                                                                  margins=Margins.uniform(0)))


def sign_b_lta(pdf: bytes, *, signer: signers.Signer, pki: Pki, timestamper, field_name: str, page: int,
               box: tuple[int, int, int, int], appearance: Appearance, reason: str, location: str = "中国",
               signer_cert=None) -> bytes:
    """Sign ``pdf`` at PAdES B-LTA in a new visible field; returns the new file (original bytes + updates)."""
    extra_ocsps = [pki.ocsp_for(signer_cert)] if signer_cert is not None else []
    vc = pki.validation_context(extra_ocsps=extra_ocsps)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, md_algorithm="sha256", reason=reason, location=location,
        subfilter=SigSeedSubFilter.PADES, embed_validation_info=True, use_pades_lta=True,
        validation_context=vc, signer_key_usage={"non_repudiation"},
    )
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    pdf_signer = signers.PdfSigner(
        meta, signer=signer, timestamper=timestamper, stamp_style=_stamp_style(appearance, box),
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=box),
    )
    out = io.BytesIO()
    pdf_signer.sign_pdf(w, output=out, bytes_reserved=reserved_size(signer, timestamper))
    return out.getvalue()


def cert_summary(cert) -> tuple[str, str]:
    """(subject as RFC 4514, serial hex) of a cryptography certificate."""
    return cert.subject.rfc4514_string(), format(cert.serial_number, "x")


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def now_text(now: datetime, tz) -> str:
    return now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"
