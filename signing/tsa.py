"""Timestamps (RFC 3161): a client for the configured TSA, and the development TSA the app serves.

``make_timestamper(settings, pki)`` returns a pyHanko ``TimeStamper``:

* ``QIANLI_TSA_URL`` set: :class:`pyhanko.sign.timestamps.HTTPTimeStamper` against that URL (production:
  a trusted, accredited TSA).
* empty (development and test only; settings refuse it in production): :class:`DevTsa`, QianLi's own
  TSA whose certificate is issued by the internal CA. The app also serves it over HTTP at
  ``POST /pki/tsa`` (``application/timestamp-query``), so offline clients can use the same TSA.
  It logs a warning the first time it is used: it is a development TSA, not a trusted third party.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timezone

from asn1crypto import cms, core, tsp
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from signing.pki import Pki, der_to_asn1, key_to_asn1

__all__ = ["DevTsa", "make_timestamper", "respond"]

log = logging.getLogger(__name__)
_warned = False


class DevTsa(DummyTimeStamper):
    """QianLi's development TSA: tokens signed in-process with the TSA key of the internal PKI."""

    def __init__(self, pki: Pki):
        super().__init__(tsa_cert=der_to_asn1(pki.tsa), tsa_key=key_to_asn1(pki.tsa_key),
                         certs_to_embed=[der_to_asn1(pki.ca)])
        self.policy_oid = pki.policy_oid + ".3"  # our TSA policy, under the deployment's policy arc

    def _build_tst_info(self, message_imprint, dt, req):
        args = {
            "version": "v1",
            "policy": tsp.ObjectIdentifier(self.policy_oid),
            "message_imprint": message_imprint,
            "serial_number": secrets.randbits(63),
            "gen_time": dt.astimezone(timezone.utc),
            "accuracy": {"seconds": 1},
            "ordering": False,
            "tsa": {"directory_name": self.tsa_cert.subject},
        }
        if req["nonce"].native is not None:
            args["nonce"] = req["nonce"]
        return tsp.TSTInfo(args)

    def request_tsa_response(self, req):
        global _warned
        if not _warned:
            log.warning("DEVELOPMENT TSA in use (QianLi's own, issued by the internal CA); set QIANLI_TSA_URL "
                        "to a trusted TSA in production")
            _warned = True
        self.fixed_dt = datetime.now(timezone.utc)
        try:
            return super().request_tsa_response(req)
        finally:
            self.fixed_dt = None


def make_timestamper(settings, pki: Pki):
    url = (getattr(settings, "tsa_url", "") or "").strip()
    if url:
        return HTTPTimeStamper(url, timeout=int(getattr(settings, "tsa_timeout_s", 10)))
    return DevTsa(pki)


class _Rejection(core.Sequence):
    """TimeStampResp without a token (RFC 3161 makes timeStampToken OPTIONAL; asn1crypto's class does not)."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def respond(pki: Pki, request_der: bytes) -> bytes:
    """Answer one DER TimeStampReq (the HTTP endpoint). A malformed request gets a 'rejection' response."""
    try:
        req = tsp.TimeStampReq.load(request_der)
        req.native  # force a full parse  # noqa: B018
        if req["message_imprint"]["hash_algorithm"]["algorithm"].native not in ("sha256", "sha384", "sha512"):
            raise ValueError("unsupported hash")
    except Exception:  # noqa: BLE001 - any malformed or unsupported request
        return _Rejection({"status": {"status": "rejection", "fail_info": {"bad_request"}}}).dump()
    return DevTsa(pki).request_tsa_response(req).dump()
