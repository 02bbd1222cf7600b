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

import io
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import images
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.pki import EventCredential, Pki, der_to_asn1, key_to_asn1

__all__ = ["Appearance", "SignedResult", "sign_b_lta", "event_signer"]


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


def event_signer(cred: EventCredential) -> signers.SimpleSigner:
    return signers.SimpleSigner(signing_cert=der_to_asn1(cred.cert), signing_key=key_to_asn1(cred.key),
                                cert_registry=SimpleCertificateStore.from_certs([der_to_asn1(c) for c in cred.chain]))


@lru_cache(maxsize=4)
def _font_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class _FontFromMemory(GlyphAccumulatorFactory):
    """pyHanko's factory opens the font file and never closes it; read it once and hand out memory copies."""

    def create_font_engine(self, writer, obj_stream=None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(_font_bytes(self.font_file)),
                                font_size=self.font_size, ot_script_tag=self.ot_script_tag,
                                ot_language_tag=self.ot_language_tag, writing_direction=self.writing_direction,
                                bcp47_lang_code=self.bcp47_lang_code, obj_stream=obj_stream)


def _stamp_style(appearance: Appearance) -> TextStampStyle:
    background = None
    if appearance.image_png:
        from PIL import Image

        img = Image.open(io.BytesIO(appearance.image_png))
        img.load()
        if img.mode not in ("RGB", "RGBA", "L", "LA"):
            img = img.convert("RGBA")
        background = images.PdfImage(img)
    return TextStampStyle(stamp_text="%(line1)s\n%(line2)s", background=background, background_opacity=1.0,
                          border_width=0,
                          text_box_style=TextBoxStyle(font=_FontFromMemory(appearance.font_file, font_size=9)))


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
        meta, signer=signer, timestamper=timestamper, stamp_style=_stamp_style(appearance),
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=box),
    )
    out = io.BytesIO()
    pdf_signer.sign_pdf(w, output=out, appearance_text_params={"line1": appearance.line1, "line2": appearance.line2})
    return out.getvalue()


def cert_summary(cert) -> tuple[str, str]:
    """(subject as RFC 4514, serial hex) of a cryptography certificate."""
    return cert.subject.rfc4514_string(), format(cert.serial_number, "x")


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def now_text(now: datetime, tz) -> str:
    return now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"
