"""Test support: a drawn signature PNG and signing a case through the real services."""

from __future__ import annotations

import io
import secrets

from identity.intent import issue_signing_intent, record_factor


def signature_png(width: int = 400, height: int = 150, *, blank: bool = False) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    if not blank:
        d = ImageDraw.Draw(img)
        d.line([(10, height - 40), (90, 30), (170, height - 20), (260, 40), (width - 10, 60)], fill=(20, 20, 20, 255),
               width=6)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def grant_intent(rt, employee_id: str, case_id: str, letter_sha256: str) -> str:
    """Both factors passed just now (what verifySmsCode and verifyFace record), then the intent."""
    record_factor(rt.redis, employee_id, case_id, "sms", {"test": True})
    record_factor(rt.redis, employee_id, case_id, "face", {"test": True, "distance": 0.3})
    return issue_signing_intent(rt.redis, rt.settings, employee_id=employee_id, case_id=case_id,
                                letter_sha256=letter_sha256).id


def sign_case(session, rt, case, employee):
    from qianli.services.signing import preview_letter, sign_letter

    _pdf, sha = preview_letter(session, employee_id=employee.id, company_id=employee.company_id, case_id=case.id)
    intent = grant_intent(rt, employee.id, case.id, sha)
    return sign_letter(session, rt, employee_id=employee.id, company_id=employee.company_id, case_id=case.id,
                       intent_id=intent, signature_png=signature_png(), idempotency_key=secrets.token_hex(8),
                       actor=f"employee:{employee.id}")


def sign_addendum(session, rt, case, employee):
    """Accept HR's earlier last day the only way there is: sign the art. 36 addendum (company seal follows)."""
    from qianli.services.agreement import preview_addendum, sign_addendum as _sign

    _pdf, sha = preview_addendum(session, employee_id=employee.id, company_id=employee.company_id, case_id=case.id)
    intent = grant_intent(rt, employee.id, case.id, sha)
    return _sign(session, rt, employee_id=employee.id, company_id=employee.company_id, case_id=case.id,
                 intent_id=intent, signature_png=signature_png(), actor=f"employee:{employee.id}")
