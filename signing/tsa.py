"""Timestamps (RFC 3161): a client for the configured TSA, and the development TSA the app serves.

``make_timestamper(settings, pki)`` returns a pyHanko ``TimeStamper``:

* ``QIANLI_TSA_URL`` set: :class:`HttpTsa` (pyHanko's ``HTTPTimeStamper``, see there) against that URL
  (production: a trusted, accredited TSA).
* empty (development and test only; settings refuse it in production): :class:`DevTsa`, QianLi's own
  TSA whose certificate is issued by the internal CA. The app also serves it over HTTP at
  ``POST /pki/tsa`` (``application/timestamp-query``), so offline clients can use the same TSA.
  It logs a warning the first time it is used: it is a development TSA, not a trusted third party.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import secrets
import ssl
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
import certifi
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pyhanko.sign.general import as_signing_certificate, simple_cms_attribute
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from signing.aio import run_sync
from signing.der import der_int, tlv
from signing.pki import Pki, der_to_asn1, key_to_asn1

__all__ = ["DevTsa", "HttpTsa", "dev_tsa", "make_timestamper", "one_http_session", "respond", "TimestampCheck",
           "check_timestamp_response"]

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
                         certs_to_embed=[der_to_asn1(pki.ca)])  # type: ignore[arg-type]  # any iterable: list()ed
        if not isinstance(pki.tsa_key, (RSAPrivateKey, EllipticCurvePrivateKey)):
            raise NotImplementedError("the development TSA signs with RSA or ECDSA")
        self._private_key = pki.tsa_key  # cryptography key object, loaded once with the PKI
        # The constant signed attributes, as DER: asn1crypto builds them from Python values slowly (a few ms
        # per token); a fresh parse of the bytes per token is cheap and shares no object between threads.
        self._content_type_der = simple_cms_attribute("content_type", "tst_info").dump()
        self._signing_cert_der = simple_cms_attribute("signing_certificate",
                                                      as_signing_certificate(self.tsa_cert)).dump()
        self.policy_oid = pki.policy_oid + ".3"  # our TSA policy, under the deployment's policy arc
        # The constant parts of every token, DER-encoded once (see response_der).
        self._policy_der = core.ObjectIdentifier(self.policy_oid).dump()
        self._accuracy_der = tsp.Accuracy({"seconds": 1}).dump()
        self._tsa_name_der = tlv(0xA0, asn1_x509.GeneralName({"directory_name": self.tsa_cert.subject}).dump())
        self._sid_der = cms.IssuerAndSerialNumber({"issuer": self.tsa_cert.issuer,
                                                   "serial_number": self.tsa_cert.serial_number}).dump()
        self._certs_der = b"".join(sorted(c.dump() for c in {*self.certs_to_embed, self.tsa_cert}))
        self._digest_algs: dict[str, tuple[bytes, bytes]] = {}

    def request_tsa_response(self, req):
        global _warned
        if not _warned:
            log.warning("DEVELOPMENT TSA in use (QianLi's own, issued by the internal CA); set QIANLI_TSA_URL "
                        "to a trusted TSA in production")
            _warned = True
        return tsp.TimeStampResp.load(self.response_der(req, datetime.now(timezone.utc), secrets.randbits(63)))

    def response_der(self, req, dt: datetime, serial: int) -> bytes:
        """A granted TimeStampResp for ``req``, as DER, assembled from pre-encoded parts.

        Building the token with asn1crypto objects cost ~1.5 ms per token (two per letter); the
        variable parts are few (message imprint and nonce copied from the request, serial, times,
        digest, signature), so they are encoded directly and the constant parts once. SET OF
        contents are sorted (DER). The result is the structure DummyTimeStamper builds with asn1crypto;
        the tests check it against one built that way and that it is canonical DER.
        """
        md = req["message_imprint"]["hash_algorithm"]["algorithm"].native
        tst_info = tlv(0x30, b"".join([
            b"\x02\x01\x01", self._policy_der, req["message_imprint"].dump(), der_int(serial),
            tlv(0x18, _generalized_time(dt)), self._accuracy_der,
            req["nonce"].dump() if req["nonce"].native is not None else b"", self._tsa_name_der]))
        digest = hashes.Hash(get_pyca_cryptography_hash(md))
        digest.update(tst_info)
        attrs = b"".join(sorted([
            self._content_type_der, self._signing_cert_der,
            tlv(0x30, _OID_SIGNING_TIME + tlv(0x31, tlv(0x17, dt.astimezone(timezone.utc).strftime("%y%m%d%H%M%SZ").encode()))),
            tlv(0x30, _OID_MESSAGE_DIGEST + tlv(0x31, tlv(0x04, digest.finalize()))),
        ]))
        hash_algo = get_pyca_cryptography_hash(md.upper())
        if isinstance(self._private_key, RSAPrivateKey):
            signature = self._private_key.sign(tlv(0x31, attrs), PKCS1v15(), hash_algo)
        else:
            signature = self._private_key.sign(tlv(0x31, attrs), ECDSA(hash_algo))
        digest_alg, sig_alg = self._algorithms_der(md)
        signer_info = tlv(0x30, b"".join([b"\x02\x01\x01", self._sid_der, digest_alg, tlv(0xA0, attrs),
                                            sig_alg, tlv(0x04, signature)]))
        signed_data = tlv(0x30, b"".join([
            b"\x02\x01\x03", tlv(0x31, digest_alg),
            tlv(0x30, _OID_TST_INFO + tlv(0xA0, tlv(0x04, tst_info))),
            tlv(0xA0, self._certs_der), tlv(0x31, signer_info)]))
        token = tlv(0x30, _OID_SIGNED_DATA + tlv(0xA0, signed_data))
        return tlv(0x30, b"\x30\x03\x02\x01\x00" + token)  # status: granted

    def _algorithms_der(self, md: str) -> tuple[bytes, bytes]:
        """(DigestAlgorithm, SignatureAlgorithm) DER for ``md``: rsassa_pkcs1v15, or ecdsa-with-<md>."""
        found = self._digest_algs.get(md)
        if found is None:
            sig = "rsassa_pkcs1v15" if isinstance(self._private_key, RSAPrivateKey) else f"{md}_ecdsa"
            found = self._digest_algs[md] = (algos.DigestAlgorithm({"algorithm": md}).dump(),
                                             algos.SignedDigestAlgorithm({"algorithm": sig}).dump())
        return found


def _generalized_time(dt: datetime) -> bytes:
    """UTC GeneralizedTime, fraction without trailing zeros (DER), as asn1crypto writes it."""
    dt = dt.astimezone(timezone.utc)
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return (dt.strftime("%Y%m%d%H%M%S") + (f".{frac}" if frac else "") + "Z").encode()


_OID_SIGNING_TIME = core.ObjectIdentifier("1.2.840.113549.1.9.5").dump()
_OID_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_OID_TST_INFO = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.4").dump()
_OID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()


# ---- the HTTP client for a real TSA -----------------------------------------------------------------

_tls_context: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def _tls() -> ssl.SSLContext:
    """The TLS client context of every TSA request: certifi's CAs (as pyHanko's), loaded once per process.

    pyHanko makes it per request (``ssl.create_default_context`` parses the whole CA bundle: ~14 ms of CPU,
    twice per letter); an SSLContext is safe to share between threads and event loops.
    """
    global _tls_context
    with _tls_lock:
        if _tls_context is None:
            _tls_context = ssl.create_default_context(cafile=certifi.where())
        return _tls_context


class _LazySession:
    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_tls()))
        return self.session


_shared_session: contextvars.ContextVar[_LazySession | None] = contextvars.ContextVar("qianli_tsa_session",
                                                                                      default=None)


@contextlib.asynccontextmanager
async def one_http_session() -> AsyncIterator[None]:
    """Within this block (one signing, in one event loop) the :class:`HttpTsa` requests share one HTTP
    session, so the signature timestamp and the document timestamp reuse one connection (TLS handshake
    once) when the TSA keeps it alive. Made on first use; closed at the end."""
    holder = _LazySession()
    token = _shared_session.set(holder)
    try:
        yield
    finally:
        _shared_session.reset(token)
        if holder.session is not None:
            await holder.session.close()


class HttpTsa(HTTPTimeStamper):
    """pyHanko's HTTP timestamp client (RFC 3161 over HTTP, the same requests and checks), with the TLS
    context made once per process and, inside :func:`one_http_session`, one session per signing.

    pyHanko's client opens a new session with a new TLS context for every request: that was ~28 ms of
    CPU per letter, more than the whole rest of the signing.
    """

    @contextlib.asynccontextmanager
    async def _acquire_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        shared = _shared_session.get()
        if shared is not None:
            yield shared.get()
            return
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_tls())) as session:
            yield session


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
    return _cached(("http", url, timeout), lambda: HttpTsa(url, timeout=timeout), max_age_s=3600)


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


# ---- checking a TimeStampResp ---------------------------------------------------------------------

@dataclass
class TimestampCheck:
    problems: list[str] = field(default_factory=list)
    time: str | None = None  # the token's genTime, UTC ISO 8601
    tsa_subject: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_timestamp_response(tsr_bytes: bytes, roots: list[asn1_x509.Certificate], *, data: bytes | None = None,
                             imprint: bytes | None = None) -> TimestampCheck:
    """Check an RFC 3161 TimeStampResp over SHA-256(``data``), or over the SHA-256 value ``imprint``.

    Strict: status granted, CMS SignedData v3 over a TSTInfo, one signer whose version matches its
    identifier, one digest algorithm, a SHA-256 imprint; the token's signature valid, intact for the
    data, and the TSA chaining to ``roots``; no certificate in the token off the validated path.
    Never raises for a bad token: the result lists what is wrong.
    """
    if (data is None) == (imprint is None):
        raise ValueError("give data or imprint")
    result = TimestampCheck()
    problems = result.problems
    try:
        resp = tsp.TimeStampResp.load(tsr_bytes, strict=True)
        status = resp["status"]["status"].native
        token = resp["time_stamp_token"]
        if status != "granted" or token.native is None:
            problems.append(f"timestamp: response status is {status!r}, not 'granted'")
            return result
        if token["content_type"].native != "signed_data":
            problems.append("timestamp: token is not CMS SignedData")
            return result
        sd: cms.SignedData = token["content"]
        tst_info = sd["encap_content_info"]["content"].parsed
        gen_time = tst_info["gen_time"].native
        signer_infos = sd["signer_infos"]
        # CMS leaves these fields outside the signature: require the only values RFC 5652/3161 allow.
        if sd["version"].native != "v3" or sd["encap_content_info"]["content_type"].native != "tst_info":
            problems.append("timestamp: SignedData version/content type not as RFC 3161 requires")
            return result
        if len(signer_infos) != 1:
            problems.append("timestamp: token must have exactly one signer")
            return result
        si = signer_infos[0]
        sid_kind = si["sid"].name
        if (sid_kind == "issuer_and_serial_number") != (si["version"].native == "v1"):
            problems.append("timestamp: signer version does not match its identifier")
            return result
        digest_algos = [a["algorithm"].native for a in sd["digest_algorithms"]]
        if digest_algos != [si["digest_algorithm"]["algorithm"].native]:
            problems.append("timestamp: digest algorithm set does not match the signer")
            return result
        if tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native != "sha256":
            problems.append("timestamp: message imprint is not SHA-256")
            return result
    except Exception as exc:  # noqa: BLE001 - any malformation is a verification failure
        problems.append(f"timestamp: unreadable token ({type(exc).__name__})")
        return result
    result.time = gen_time.astimezone(timezone.utc).isoformat() if gen_time else None
    vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail", moment=gen_time)
    try:
        expected = (lambda algo: imprint) if imprint is not None else (
            lambda algo: hashlib.new(algo, data).digest())
        kwargs = run_sync(validate_tst_signed_data(sd, vc, expected))
        st = TimestampSignatureStatus(**kwargs)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"timestamp: validation failed ({type(exc).__name__}: {exc})")
        return result
    result.tsa_subject = st.signing_cert.subject.human_friendly if st.signing_cert else None
    if not st.intact:
        problems.append("timestamp: message imprint does not match manifest.json (manifest changed)")
    if not st.valid:
        problems.append("timestamp: token signature invalid")
    if not st.trusted:
        problems.append("timestamp: TSA certificate does not chain to the trusted root")
    if problems:
        return result
    path_certs = {c.dump() for c in st.validation_path} if st.validation_path else set()
    allowed = path_certs | {r.dump() for r in roots}
    for c in sd["certificates"] or []:
        if c.name != "certificate" or c.chosen.dump() not in allowed:
            problems.append("timestamp: token carries a certificate that is not on the validated path")
            return result
    return result
