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
import threading
import time
from datetime import datetime, timezone

from asn1crypto import cms, core, tsp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pyhanko.sign.general import as_signing_certificate, simple_cms_attribute
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from signing.pki import Pki, der_to_asn1, key_to_asn1

__all__ = ["DevTsa", "dev_tsa", "make_timestamper", "respond"]

log = logging.getLogger(__name__)
_warned = False


class DevTsa(DummyTimeStamper):
    """QianLi's development TSA: tokens signed in-process with the TSA key of the internal PKI.

    pyHanko's ``DummyTimeStamper`` re-imports its private key from DER for every token (an RSA-3072
    import runs the key's consistency check: ~100-200 ms); this one signs with the PKI's loaded key
    object. It keeps no per-request state, so one instance may serve several threads at once.
    """

    def __init__(self, pki: Pki):
        super().__init__(tsa_cert=der_to_asn1(pki.tsa), tsa_key=key_to_asn1(pki.tsa_key),
                         certs_to_embed=[der_to_asn1(pki.ca)])
        if not isinstance(pki.tsa_key, RSAPrivateKey):
            raise NotImplementedError("the development TSA signs with RSA")
        self._private_key = pki.tsa_key  # cryptography key object, loaded once with the PKI
        # The constant signed attributes, as DER: asn1crypto builds them from Python values slowly (a few ms
        # per token); a fresh parse of the bytes per token is cheap and shares no object between threads.
        self._content_type_der = simple_cms_attribute("content_type", "tst_info").dump()
        self._signing_cert_der = simple_cms_attribute("signing_certificate",
                                                      as_signing_certificate(self.tsa_cert)).dump()
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

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime):
        digest = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        digest.update(tst_info_data)
        signed_attrs = cms.CMSAttributes([
            cms.CMSAttribute.load(self._content_type_der),
            simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
            cms.CMSAttribute.load(self._signing_cert_der),
            simple_cms_attribute("message_digest", digest.finalize()),
        ])
        signature = self._private_key.sign(signed_attrs.dump(), PKCS1v15(),
                                           get_pyca_cryptography_hash(md_algorithm.upper()))
        return signature, signed_attrs

    def request_tsa_response(self, req):
        global _warned
        if not _warned:
            log.warning("DEVELOPMENT TSA in use (QianLi's own, issued by the internal CA); set QIANLI_TSA_URL "
                        "to a trusted TSA in production")
            _warned = True
        # DummyTimeStamper.request_tsa_response, with the time as a local (no fixed_dt on the shared object)
        md_algorithm = req["message_imprint"]["hash_algorithm"]["algorithm"].native
        dt = datetime.now(timezone.utc)
        tst_info_data = self._build_tst_info(req["message_imprint"], dt, req).dump()
        signature, signed_attrs = self._sign_tst_info(tst_info_data, md_algorithm, dt)
        signed_data = self._build_signed_data(tst_info_data, md_algorithm, signature, signed_attrs)
        token = cms.ContentInfo({"content_type": cms.ContentType("signed_data"), "content": cms.SignedData(signed_data)})
        return tsp.TimeStampResp({"status": tsp.PKIStatusInfo({"status": tsp.PKIStatus("granted")}),
                                  "time_stamp_token": token})


_timestampers: dict[tuple, tuple[float, object]] = {}  # key -> (created, timestamper)
_timestampers_lock = threading.Lock()


def make_timestamper(settings, pki: Pki):
    """The configured timestamper, one per process for the same TSA (pyHanko's keep no per-request state).

    Reusing it keeps the dummy token pyHanko caches for size estimates and TSA path discovery, so that
    costs one request per process instead of one per signing. Keys: the URL and timeout, or the PKI
    directory and TSA certificate fingerprint (a re-created PKI gets a new DevTsa).
    """
    url = (getattr(settings, "tsa_url", "") or "").strip()
    if not url:
        return dev_tsa(pki)
    timeout = int(getattr(settings, "tsa_timeout_s", 10))
    # bounded lifetime: a TSA may change its certificate, and the cached dummy token names the old one
    return _cached(("http", url, timeout), lambda: HTTPTimeStamper(url, timeout=timeout), max_age_s=3600)


def dev_tsa(pki: Pki) -> DevTsa:
    """The development TSA of ``pki`` (one per process and PKI: same directory, same TSA certificate)."""
    return _cached(("dev", str(pki.dir), pki.tsa.fingerprint(hashes.SHA256())), lambda: DevTsa(pki))


def _cached(key: tuple, make, *, max_age_s: float | None = None):
    now = time.monotonic()
    with _timestampers_lock:
        found = _timestampers.get(key)
        if found is None or (max_age_s is not None and now - found[0] > max_age_s):
            if len(_timestampers) >= 16:  # tests create many PKIs; a deployment has one
                _timestampers.clear()
            found = _timestampers[key] = (now, make())
        return found[1]


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
    return dev_tsa(pki).request_tsa_response(req).dump()
