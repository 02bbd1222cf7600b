"""``qianli pki init|export-root|selftest`` and ``qianli verify FILE.pdf``.

The commands need only the settings (no database), except ``pki init --company CODE``, which looks
the company up to create its seal key. The signing itself is the ``signing`` package's, called the
way the service layer calls it (:func:`sign_as_employee` mirrors ``qianli.services.signing``): a fresh
event certificate, ``sign_b_lta`` with the configured timestamper, the key dropped afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import sys
import time
from datetime import date
from pathlib import Path

import click

from cases.clock import beijing_today

__all__ = ["pki_group", "verify_command", "sample_letter", "sample_signature_png", "sign_as_employee",
           "root_fingerprint", "tsa_description"]

SAMPLE_EMPLOYEE = {"name": "自检员工", "employee_no": "SELFTEST-001", "company": "签离自检有限公司"}


def _settings():
    from qianli.settings import get_settings

    return get_settings()


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


class _OneLineFormatter(logging.Formatter):
    """Library warnings as one line each: a hostile file may make pyHanko log a traceback; we show the message."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.name}: {record.getMessage()}"


@contextlib.contextmanager
def _library_logs_without_tracebacks(*names: str):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    handler.setLevel(logging.WARNING)
    saved = []
    for name in names:
        lg = logging.getLogger(name)
        saved.append((lg, lg.propagate))
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, propagate in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate


_LIBRARIES = ("pyhanko", "pyhanko_certvalidator", "fontTools")


def _load_pki(settings):
    from signing.pki import PkiMissing, load_pki

    try:
        return load_pki(settings)
    except PkiMissing as exc:
        raise click.ClickException(str(exc)) from None


def root_fingerprint(pki) -> str:
    """SHA-256 of the root certificate's DER, lowercase hex (as in dossier manifests)."""
    return hashlib.sha256(pki.cert_der("root")).hexdigest()


def tsa_description(settings) -> str:
    url = (getattr(settings, "tsa_url", "") or "").strip()
    return url or "development TSA (in-process, certificate from the internal CA; not a trusted third party)"


# ---- the sample letter and the employee-style signing ----------------------------------------------

def sample_letter(letter_date: date | None = None):
    """A fixed sample resignation letter (no database): what selftest and the bench sign."""
    from signing.letter import LetterData

    today = letter_date or beijing_today()
    return LetterData(
        case_id="selftest", company_name=SAMPLE_EMPLOYEE["company"], employee_name=SAMPLE_EMPLOYEE["name"],
        employee_no=SAMPLE_EMPLOYEE["employee_no"], department="质量保障部", position="测试工程师",
        reason_category="other", reason_text="这是签离的签名自检样本，不是真实的辞职通知。",
        requested_last_day=date(2026, 10, 31), earliest_lawful_last_day=date(2026, 10, 31),
        notice_arrival_date=date(2026, 10, 1), source="miniprogram", probation=False,
        handover_items=({"item": "自检交接事项", "owner": "签离", "deadline": "2026-10-20"},), letter_date=today)


def sample_signature_png(width: int = 400, height: int = 150) -> bytes:
    """A drawn 'handwritten' stroke on a transparent canvas, like the mini-program's."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    ImageDraw.Draw(img).line([(10, height - 40), (90, 30), (170, height - 20), (260, 40), (width - 10, 60)],
                             fill=(20, 20, 20, 255), width=6)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def sign_as_employee(settings, pki, unsigned: bytes, layout, *, signature_png: bytes, name: str, employee_no: str,
                     company: str, timestamper=None, context=None) -> tuple[bytes, str, str]:
    """The service's signing step (:func:`signing.pades.sign_employee_letter`) on the sample letter.

    Returns (signed PDF, event certificate subject, serial). ``timestamper`` defaults to the configured one.
    """
    from signing.letter import stamp_font_path
    from signing.pades import sign_employee_letter
    from signing.tsa import make_timestamper

    sig = sign_employee_letter(pki, unsigned, layout, signature_png=signature_png, name=name, employee_no=employee_no,
                               company=company,
                               timestamper=timestamper if timestamper is not None else make_timestamper(settings, pki),
                               font_file=stamp_font_path(str(Path(settings.var_dir) / "fonts")), context=context)
    return sig.pdf, sig.subject, sig.serial


# ---- qianli pki ----------------------------------------------------------------------------------

@click.group("pki", help="The internal PKI: root -> issuing CA -> TSA, company seals, event certificates.")
def pki_group() -> None:
    pass


def _seal_status(settings, pki) -> dict:
    """Where company seal keys live; with PKCS#11 make sure the token exists (SoftHSM2: create it)."""
    from signing.seal import ensure_softhsm_token, softhsm_conf

    if settings.seal_backend == "pkcs12":
        return {"backend": "pkcs12", "keys": str(pki.dir / "seals" / "<company id>.p12"),
                "note": "one PKCS#12 file per company, created on its first countersignature (or pki init --company)"}
    info = {"backend": "pkcs11", "module": settings.pkcs11_module, "token_label": settings.pkcs11_token_label}
    if "softhsm" in str(settings.pkcs11_module):
        info["token_created"] = ensure_softhsm_token(settings)
        info["softhsm2_conf"] = str(softhsm_conf(settings))
    else:  # a real HSM: its token is provisioned by its own tools; check that we can log in
        from signing.seal import _p11_session

        with _p11_session(settings):
            info["token_created"] = False
    info["keys"] = "in the token, labels seal-<company id> (generated inside, not extractable)"
    return info


@pki_group.command("init", help="Create the internal CA (root, issuing CA, TSA certificate) if missing; idempotent. "
                                "Prints the root's SHA-256 and where the keys live.")
@click.option("--company", "companies", multiple=True, metavar="CODE",
              help="Also create this company's seal key now (repeatable; needs the database).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def pki_init(companies: tuple[str, ...], as_json: bool) -> None:
    from signing.pki import KeyProtectionRequired, init_pki, root_crl_due, sign_root_crl

    settings = _settings()
    try:
        pki, created = init_pki(settings)
    except KeyProtectionRequired as exc:
        raise click.ClickException(str(exc)) from None
    if root_crl_due(settings):  # missing (a PKI from before pre-signed root CRLs) or past half its validity
        sign_root_crl(settings)
    out = {"created": created, "directory": str(pki.dir.resolve()), "root_subject": pki.root.subject.rfc4514_string(),
           "root_sha256": root_fingerprint(pki), "policy_oid": pki.policy_oid,
           "ca_keys": {n: str((pki.dir / f"{n}.key.pem").resolve()) for n in ("root", "ca", "tsa")},
           "ca_keys_encrypted": bool(settings.pkcs12_passphrase), "tsa": tsa_description(settings),
           "root_crl_next_update": pki.root_crl_next_update().isoformat(), "urls": pki.urls()}
    try:
        out["seal"] = _seal_status(settings, pki)
    except Exception as exc:  # noqa: BLE001 - a missing softhsm2-util or a wrong PIN is a message, not a traceback
        raise click.ClickException(f"seal backend {settings.seal_backend}: {type(exc).__name__}: {exc}") from None
    if companies:
        out["seals"] = _ensure_company_seals(settings, pki, companies)
    if as_json:
        _echo_json(out)
        return
    click.echo(f"PKI {'created' if created else 'already present'}: {out['directory']}")
    click.echo(f"root: {out['root_subject']}")
    click.echo(f"root SHA-256: {out['root_sha256']}")
    click.echo(f"policy OID: {out['policy_oid']}")
    enc = "PKCS#8, encrypted with QIANLI_PKCS12_PASSPHRASE" if out["ca_keys_encrypted"] else "PKCS#8, NOT encrypted"
    click.echo(f"CA keys ({enc}): " + ", ".join(out["ca_keys"].values()))
    seal = out["seal"]
    if seal["backend"] == "pkcs11":
        extra = f", SOFTHSM2_CONF={seal['softhsm2_conf']}" if "softhsm2_conf" in seal else ""
        click.echo(f"seal keys: PKCS#11 token {seal['token_label']!r} ({'created' if seal['token_created'] else 'present'}; "
                   f"module {seal['module']}{extra}); {seal['keys']}")
    else:
        click.echo(f"seal keys: PKCS#12 files {seal['keys']} ({seal['note']})")
    for s in out.get("seals", []):
        click.echo(f"seal of {s['company']}: {'created' if s['created'] else 'present'}, certificate serial {s['serial']}")
    click.echo(f"timestamps: {out['tsa']}")
    click.echo(f"root CRL (pre-signed; renew with 'qianli pki root-crl' before): {out['root_crl_next_update']}")


def _ensure_company_seals(settings, pki, codes) -> list[dict]:
    from sqlalchemy import select

    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.runtime import get_runtime
    from signing.seal import ensure_seal

    done = []
    with session_scope(get_runtime().session_factory) as s:
        for code in codes:
            company = s.scalar(select(Company).where(Company.code == code))
            if company is None:
                raise click.ClickException(f"no company {code!r}")
            info = ensure_seal(settings, pki, company_id=company.id, company_name=company.name, company_code=company.code)
            done.append({"company": code, "company_id": company.id, "backend": info.backend, "created": info.created,
                         "serial": format(info.cert.serial_number, "x")})
    return done


@pki_group.command("root-crl", help="Sign a fresh root CRL with the root key (the app never loads the root key; "
                                    "it serves and embeds this pre-signed CRL). Run it before the printed date, e.g. "
                                    "monthly from cron on the machine that holds root.key.pem.")
@click.option("--days", type=click.IntRange(1, 366), default=None, help="Validity in days (default 90).")
def pki_root_crl(days: int | None) -> None:
    from signing.pki import ROOT_CRL_DAYS, sign_root_crl

    settings = _settings()
    _load_pki(settings)
    try:
        next_update = sign_root_crl(settings, days=days or ROOT_CRL_DAYS)
    except (OSError, ValueError, TypeError) as exc:
        raise click.ClickException(f"cannot sign the root CRL: {type(exc).__name__}: {exc}") from None
    click.echo(f"root CRL signed; next update {next_update.isoformat()}")


@pki_group.command("export-root", help="Write the root certificate (PEM) to PATH ('-': standard output).")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def pki_export_root(path: Path) -> None:
    pki = _load_pki(_settings())
    if str(path) == "-":
        click.echo(pki.root_pem.decode(), nl=False)
        return
    path.write_bytes(pki.root_pem)
    click.echo(f"wrote {path} (root SHA-256 {root_fingerprint(pki)})")


@pki_group.command("selftest", help="Sign a sample letter end to end (event certificate, configured TSA, B-LTA), "
                                    "verify it against our root and leave it at --out. Exit 1 on failure.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
def pki_selftest(out_path: Path) -> None:
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)  # "BDF NOT subset" chatter from the font subsetter
    with _library_logs_without_tracebacks(*_LIBRARIES):
        ok = _selftest(out_path)
    sys.exit(0 if ok else 1)


def _selftest(out_path: Path) -> bool:
    from signing.letter import render_letter
    from signing.pki import SigningContext
    from signing.verify import verify_pdf

    settings = _settings()
    pki = _load_pki(settings)
    summary: dict = {"ok": False, "out": str(out_path), "tsa": tsa_description(settings),
                     "root_sha256": root_fingerprint(pki)}
    t0 = time.perf_counter()
    unsigned, layout = render_letter(sample_letter())
    t1 = time.perf_counter()
    try:
        signed, subject, serial = sign_as_employee(
            settings, pki, unsigned, layout, signature_png=sample_signature_png(), name=SAMPLE_EMPLOYEE["name"],
            employee_no=SAMPLE_EMPLOYEE["employee_no"], company=SAMPLE_EMPLOYEE["company"],
            context=SigningContext("selftest", hashlib.sha256(b"qianli selftest: no signing intent").hexdigest()))
    except Exception as exc:  # noqa: BLE001 - e.g. the TSA is unreachable: say so, exit 1
        summary.update(stage="sign", error=f"{type(exc).__name__}: {exc}"[:500])
        _echo_json(summary)
        return False
    t2 = time.perf_counter()
    out_path.write_bytes(signed)
    report = verify_pdf(signed, trust_roots=[pki.root_pem], tsa_roots=pki.tsa_roots_pem)
    t3 = time.perf_counter()
    sigs = [s for s in report.signatures if s.kind == "signature"]
    sig = sigs[0] if sigs else None
    ok = bool(report.ok and sig and sig.pades_level == "B-LTA" and sig.trusted and sig.intact)
    summary.update(
        ok=ok, sha256=hashlib.sha256(signed).hexdigest(), bytes=len(signed), event_cert_subject=subject,
        event_cert_serial=serial, signer=sig.signer if sig else None, signing_time=sig.signing_time if sig else None,
        pades_level=sig.pades_level if sig else None, ades_indication=sig.ades_indication if sig else None,
        trusted=sig.trusted if sig else False, case_id=sig.case_id if sig else None,
        intent_sha256=sig.intent_sha256 if sig else None,
        document_timestamps=sum(1 for s in report.signatures if s.kind == "document_timestamp"),
        problem=report.problem,
        ms={"render": round((t1 - t0) * 1000), "sign": round((t2 - t1) * 1000), "verify": round((t3 - t2) * 1000)})
    _echo_json(summary)
    return ok


# ---- qianli verify ----------------------------------------------------------------------------

_VERIFY_ERRORS = {"pdf_invalid": "not a PDF, or a damaged one", "pdf_encrypted": "encrypted PDF (needs a password)",
                  "pdf_too_many_revisions": "too many revisions to check"}


@click.command("verify", help="Verify every signature in a PDF offline against our root; prints the JSON report. "
                              "Exit 1 if any signature is not valid, 2 if the file is not a readable PDF.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--root", "root_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Trusted root certificate (PEM or DER); default: this deployment's root.")
@click.option("--tsa-root", "tsa_root_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Root certificate of an external TSA, trusted for timestamps only (repeatable); default without "
                   "--root: this deployment's QIANLI_TSA_TRUST_ROOTS.")
def verify_command(file: Path, root_path: Path | None, tsa_root_paths: tuple[Path, ...]) -> None:
    from cases.errors import DomainError
    from signing.verify import load_anchor, verify_pdf

    def fail(message: str, code: str) -> None:
        click.echo(f"Error: {file}: {message} [{code}]", err=True)
        sys.exit(2)

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read the file ({exc.strerror or type(exc).__name__})", "file_unreadable")
    if root_path is not None:
        try:
            anchor = load_anchor(root_path.read_bytes())
            anchor.sha256  # noqa: B018 - parse it now
        except Exception:  # noqa: BLE001
            fail(f"{root_path} is not a certificate", "root_invalid")
        tsa_roots: list = []
    else:
        pki = _load_pki(_settings())
        anchor, tsa_roots = load_anchor(pki.root_pem), list(pki.tsa_roots_pem)
    for path in tsa_root_paths:
        try:
            tsa_roots.append(load_anchor(path.read_bytes()))
        except Exception:  # noqa: BLE001
            fail(f"{path} is not a certificate", "root_invalid")
    try:
        with _library_logs_without_tracebacks(*_LIBRARIES):
            report = verify_pdf(data, trust_roots=[anchor], tsa_roots=tsa_roots)
    except DomainError as exc:
        fail(f"{_VERIFY_ERRORS.get(exc.code, 'cannot verify')} — {exc.message}", exc.code)
    except Exception as exc:  # noqa: BLE001 - whatever a hostile file triggers: a message, never a traceback
        fail(f"unreadable PDF ({type(exc).__name__})", "pdf_invalid")
    out = {"file": str(file), "sha256": hashlib.sha256(data).hexdigest(), "trust_root_sha256": anchor.sha256.hex(),
           **report.to_dict()}
    _echo_json(out)
    sys.exit(0 if report.ok else 1)
