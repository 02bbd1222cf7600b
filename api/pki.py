"""The PKI's public endpoints (binary, outside the API contract): what our certificates point to.

``GET /pki/root.cer`` and ``/pki/ca.cer`` (DER), ``GET /pki/crl/root.crl`` and ``/pki/crl/ca.crl``
(fresh DER CRLs), ``POST /pki/ocsp`` (``application/ocsp-request``, RFC 6960) and ``GET /pki/ocsp/<b64>``,
and - only while the app is its own development TSA (``QIANLI_TSA_URL`` empty, never in production) -
``POST /pki/tsa`` (``application/timestamp-query``, RFC 3161).
"""

from __future__ import annotations

import base64
import binascii
import logging

from flask import Blueprint, Flask, Response, request

from cases.errors import InvalidInput, NotFound, PayloadTooLarge
from signing.tsa import respond as tsa_respond

from api.context import require_loopback_client, runtime

__all__ = ["bp", "register"]

log = logging.getLogger(__name__)
bp = Blueprint("pki", __name__, url_prefix="/pki")
MAX_REQUEST = 16 * 1024


def _der(data: bytes, mimetype: str, *, max_age: int = 300) -> Response:
    resp = Response(data, mimetype=mimetype)
    resp.headers["Cache-Control"] = f"public, max-age={max_age}"
    return resp


@bp.get("/<string:which>.cer")
def certificate(which: str):
    if which not in ("root", "ca"):
        raise NotFound("not_found", "no such certificate")
    return _der(runtime().pki.cert_der(which), "application/pkix-cert", max_age=86400)


@bp.get("/crl/<string:which>.crl")
def crl(which: str):
    if which not in ("root", "ca"):
        raise NotFound("not_found", "no such CRL")
    return _der(runtime().pki.crl_der(which), "application/pkix-crl")


def _body() -> bytes:
    data = request.get_data(cache=False)
    if len(data) > MAX_REQUEST:
        raise PayloadTooLarge("request_too_large", "request too large")
    return data


@bp.post("/ocsp")
def ocsp_post():
    return _der(runtime().pki.ocsp_response_der(_body()), "application/ocsp-response", max_age=0)


@bp.get("/ocsp/<path:encoded>")
def ocsp_get(encoded: str):
    try:
        der = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_" if "-" in encoded or "_" in encoded else None)
    except (binascii.Error, ValueError):
        raise InvalidInput("ocsp_request_invalid", "not base64") from None
    return _der(runtime().pki.ocsp_response_der(der), "application/ocsp-response", max_age=0)


@bp.post("/tsa")
def tsa():
    settings = runtime().settings
    if settings.tsa_url or settings.env == "production":  # only the development TSA is served here
        raise NotFound("not_found", "not found")
    require_loopback_client("tsa")
    if request.mimetype != "application/timestamp-query":
        raise InvalidInput("tsa_request_invalid", "Content-Type must be application/timestamp-query")
    return _der(tsa_respond(runtime().pki, _body()), "application/timestamp-reply", max_age=0)


def register(app: Flask) -> None:
    settings = app.extensions["qianli_runtime"].settings
    if not settings.tsa_url and settings.env != "production":
        log.warning("DEVELOPMENT TSA endpoint /pki/tsa is enabled (QianLi's own TSA). Set QIANLI_TSA_URL in production.")
    app.register_blueprint(bp)
