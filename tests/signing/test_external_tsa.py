"""An external TSA (QIANLI_TSA_URL + QIANLI_TSA_TRUST_ROOTS), as production has: a TSA of another PKI,
reached over HTTP with pyHanko's RFC 3161 client, whose chain's CRLs and OCSP are fetched from the
URLs in its certificates. The local server speaks the documented wire formats (RFC 3161 over HTTP,
DER CRLs, RFC 6960 OCSP over POST) from a second, independent PKI of ours."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import zipfile
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qianli.cli.pki import sample_letter, sample_signature_png, sign_as_employee
from qianli.settings import SettingsError, load_settings
from qianli.services.dossier import TSA_ROOTS_PEM, TrustServices, verify_dossier
from signing.letter import render_letter
from signing.pki import init_pki
from signing.tsa import HttpTsa, make_timestamper, respond
from signing.verify import verify_pdf


class _Tsa(BaseHTTPRequestHandler):
    pki = None
    hits: Counter = Counter()

    def _reply(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - http.server's name
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).hits[self.path] += 1
        if self.path == "/pki/tsa" and self.headers.get("Content-Type") == "application/timestamp-query":
            return self._reply(respond(self.pki, data), "application/timestamp-reply")
        if self.path == "/pki/ocsp":
            return self._reply(self.pki.ocsp_response_der(data), "application/ocsp-response")
        self.send_error(404)

    def do_GET(self):  # noqa: N802
        type(self).hits[self.path] += 1
        crls = {"/pki/crl/root.crl": "root", "/pki/crl/ca.crl": "ca"}
        certs = {"/pki/root.cer": "root", "/pki/ca.cer": "ca"}
        if self.path in crls:
            return self._reply(self.pki.crl_der(crls[self.path]), "application/pkix-crl")
        if self.path in certs:
            return self._reply(self.pki.cert_der(certs[self.path]), "application/pkix-cert")
        self.send_error(404)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def external_tsa(settings, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tsa)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    # a TSA provider of its own (another organisation name, so other certificate names, as in reality)
    tsa_pki, _ = init_pki(replace(settings, var_dir=tmp_path / "tsa-provider", public_base_url=url),
                          organisation="Example Time Authority")
    _Tsa.pki, _Tsa.hits = tsa_pki, Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    roots = tmp_path / "tsa-roots.pem"
    roots.write_bytes(tsa_pki.root_pem)
    app_settings = replace(settings, var_dir=tmp_path / "app", tsa_url=f"{url}/pki/tsa", tsa_trust_roots=str(roots),
                           tsa_timeout_s=5)
    app_pki, _ = init_pki(app_settings)
    yield app_settings, app_pki, tsa_pki
    server.shutdown()
    server.server_close()


def test_b_lta_with_an_external_tsa_over_http(external_tsa):
    app_settings, app_pki, tsa_pki = external_tsa
    assert app_pki.tsa_roots == [tsa_pki.root] and app_pki.tsa_roots_pem == [tsa_pki.root_pem]
    assert isinstance(make_timestamper(app_settings, app_pki), HttpTsa)  # pyHanko's HTTPTimeStamper, TLS set up once
    pdf, layout = render_letter(sample_letter(date(2026, 10, 1)))
    signed, _, _ = sign_as_employee(app_settings, app_pki, pdf, layout, signature_png=sample_signature_png(),
                                    name="陈晓", employee_no="P001", company="示例科技有限公司")
    assert _Tsa.hits["/pki/tsa"] >= 2, _Tsa.hits  # the signature timestamp and the document timestamp
    # the TSA chain's revocation data was fetched from the provider, as it would be in production
    assert _Tsa.hits["/pki/ocsp"] + _Tsa.hits["/pki/crl/ca.crl"] >= 1, _Tsa.hits

    report = verify_pdf(signed, trust_roots=[app_pki.root_pem], tsa_roots=app_pki.tsa_roots_pem)
    sig = [s for s in report.signatures if s.kind == "signature"][0]
    doc_ts = [s for s in report.signatures if s.kind == "document_timestamp"]
    assert report.ok and sig.pades_level == "B-LTA" and sig.trusted and "陈晓" in sig.signer, report
    assert len(doc_ts) == 1 and doc_ts[0].trusted

    # The TSA's root is what makes the timestamps trusted ...
    without = verify_pdf(signed, trust_roots=[app_pki.root_pem])
    assert not without.ok
    # ... and it is trusted for timestamps only: it does not make the employee's signature trusted.
    tsa_only = verify_pdf(signed, trust_roots=[tsa_pki.root_pem])
    assert not [s for s in tsa_only.signatures if s.kind == "signature"][0].trusted


def test_the_tsa_chain_is_validated_once_while_its_revocation_data_is_valid(external_tsa, monkeypatch):
    """The external TSA's chain (path validation, its CRLs and OCSP fetched from the provider) is not redone
    for every letter: reused until TSA_DATA_MAX_AGE or the fetched data's nextUpdate, then fetched again.
    Every letter still carries the chain's revocation data in its DSS and validates at B-LTA."""
    from asn1crypto import ocsp as asn1_ocsp
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    from signing import pades

    app_settings, app_pki, tsa_pki = external_tsa
    pdf, layout = render_letter(sample_letter(date(2026, 10, 1)))

    def sign() -> bytes:
        return sign_as_employee(app_settings, app_pki, pdf, layout, signature_png=sample_signature_png(),
                                name="陈晓", employee_no="P001", company="示例科技有限公司")[0]

    def revinfo_fetches() -> int:
        return sum(n for path, n in _Tsa.hits.items() if path != "/pki/tsa")

    first = sign()
    fetched = revinfo_fetches()
    assert fetched >= 1
    second = sign()
    assert revinfo_fetches() == fetched, "validated and fetched once, reused for the next letter"
    for signed in (first, second):  # the TSA chain's revocation data, as fetched, is in every letter's DSS
        dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(signed)))
        assert tsa_pki.root_crl_der() in {c.get_object().data for c in dss.crls}
        ocsp_serials = {r["cert_id"]["serial_number"].native for o in dss.ocsps for r in
                        asn1_ocsp.OCSPResponse.load(o.get_object().data).basic_ocsp_response["tbs_response_data"][
                            "responses"]}
        assert tsa_pki.tsa.serial_number in ocsp_serials
        sig = [s for s in verify_pdf(signed, trust_roots=[app_pki.root_pem], tsa_roots=app_pki.tsa_roots_pem)
               .signatures if s.kind == "signature"][0]
        assert sig.pades_level == "B-LTA" and sig.trusted

    # past the reuse window the chain is validated and its revocation data fetched again
    timestamper = make_timestamper(app_settings, app_pki)
    later = datetime.now(timezone.utc) + pades.TSA_DATA_MAX_AGE + timedelta(seconds=1)
    asyncio.run(pades.tsa_validation_data(app_pki, timestamper, now=later))
    assert revinfo_fetches() > fetched
    # and the window never outlasts the data: an OCSP response or CRL whose nextUpdate is sooner bounds it
    monkeypatch.setattr(pades, "TSA_DATA_MAX_AGE", timedelta(days=30))
    pades._tsa_data.clear()
    asyncio.run(pades.tsa_validation_data(app_pki, timestamper))
    until = next(iter(pades._tsa_data[timestamper].values()))[0]
    assert until <= datetime.now(timezone.utc) + timedelta(hours=12, minutes=1)  # the provider's OCSP lifetime


def test_dossier_carries_and_checks_the_tsa_root(external_tsa):
    """The dossier's manifest timestamp comes from the external TSA too: its root travels in the dossier
    (pki/tsa-roots.pem, listed in the manifest) and the offline verification uses it for timestamps."""
    from qianli.services import dossier as d

    app_settings, app_pki, tsa_pki = external_tsa
    services = TrustServices(timestamper=make_timestamper(app_settings, app_pki), root_pem=app_pki.root_pem,
                             verify_pdf=verify_pdf, tsa_roots_pem=tuple(app_pki.tsa_roots_pem))
    members = {d.ROOT_PEM: app_pki.root_pem, TSA_ROOTS_PEM: b"".join(services.tsa_roots_pem)}
    manifest = d._json_bytes({"format": d.DOSSIER_FORMAT, "case_id": "c1", "files": [
        {"path": n, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in sorted(members.items())]})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(d.MANIFEST, manifest)
        zf.writestr(d.TIMESTAMP, d._timestamp(services, manifest))
        for n, b in members.items():
            zf.writestr(n, b)
    result = verify_dossier(buf.getvalue())
    assert result.ok and result.trust_source == "dossier", result.problems
    assert result.root_sha256 == hashlib.sha256(app_pki.cert_der("root")).hexdigest()
    # given only our root, the external TSA's timestamp is not trusted
    given = verify_dossier(buf.getvalue(), trust_roots=[app_pki.root_pem])
    assert any("does not chain to the trusted root" in p for p in given.problems), given.problems
    # a swapped TSA root inside the dossier breaks its manifest entry
    forged = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(forged, "w") as zf:
        for info in src.infolist():
            zf.writestr(info.filename, app_pki.root_pem if info.filename == TSA_ROOTS_PEM else src.read(info))
    assert any(p.startswith(TSA_ROOTS_PEM) for p in verify_dossier(forged.getvalue()).problems)


def test_an_external_tsa_needs_its_trust_roots(tmp_path):
    with pytest.raises(SettingsError, match="QIANLI_TSA_TRUST_ROOTS"):
        load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path), "QIANLI_TSA_URL": "https://tsa.example/tsr"})
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path), "QIANLI_TSA_URL": "https://tsa.example/tsr",
                       "QIANLI_TSA_TRUST_ROOTS": str(tmp_path / "missing.pem")})
    (tmp_path / "empty.pem").write_text("not a certificate")
    with pytest.raises(SettingsError, match="no PEM certificate"):
        load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path), "QIANLI_TSA_URL": "https://tsa.example/tsr",
                       "QIANLI_TSA_TRUST_ROOTS": str(tmp_path / "empty.pem")})
