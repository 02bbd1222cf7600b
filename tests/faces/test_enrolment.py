"""Consent, enrolment (encrypted template, no raw photo unless a retention is set), withdrawal."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, text

from cases.errors import Conflict, InvalidInput
from identity.faces import encode_single_face
from qianli.db import utcnow
from qianli.models import BiometricConsent, EvidenceEntry, FaceEnrolment, FaceReferencePhoto
from qianli.services import faces as svc

from .conftest import photo

META = svc.RequestMeta(ip="10.0.0.1", user_agent="pytest", openid="openid-obama")


def _actions(session, case_id):
    return [e.action for e in session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id)
                                              .order_by(EvidenceEntry.seq))]


def test_enrolment_needs_separate_consent(faces_env):
    env = faces_env
    with pytest.raises(Conflict) as e:
        svc.enrol_reference(env.s, env.rt, env.emp, photo("obama.jpg"), actor="hr:x", source="hr_upload")
    assert e.value.code == "face_consent_missing"
    assert env.s.scalar(select(FaceEnrolment)) is None
    with pytest.raises(Conflict) as e:
        svc.give_consent(env.s, company_id=env.company.id, employee_id=env.emp.id, text_version="face-2020-01",
                         meta=META)
    assert e.value.code == "face_consent_text_outdated"
    c = svc.give_consent(env.s, company_id=env.company.id, employee_id=env.emp.id,
                         text_version=svc.CONSENT_TEXT_VERSION, meta=META)
    assert c.method == "employee_app" and len(c.text_sha256) == 64
    # giving it twice keeps one consent
    assert svc.give_consent(env.s, company_id=env.company.id, employee_id=env.emp.id,
                            text_version=svc.CONSENT_TEXT_VERSION, meta=META).id == c.id
    enr = svc.enrol_reference(env.s, env.rt, env.emp, photo("obama.jpg"), actor="hr:x", source="hr_upload")
    assert enr.consent_id == c.id and enr.version == 1 and enr.source == "hr_upload"
    assert _actions(env.s, env.case.id)[-2:] == ["face_consent_given", "face_enrolled"]


def test_template_is_encrypted_at_rest_and_bound_to_the_employee(faces_env):
    env = faces_env
    svc.give_consent(env.s, company_id=env.company.id, employee_id=env.emp.id,
                     text_version=svc.CONSENT_TEXT_VERSION, meta=META)
    enr = svc.enrol_reference(env.s, env.rt, env.emp, photo("obama.jpg"), actor="hr:x")
    env.s.flush()
    row = env.s.execute(text("SELECT * FROM face_enrolments WHERE id = :id"), {"id": enr.id}).mappings().one()
    expected = encode_single_face(photo("obama.jpg"), max_pixels=40_000_000, max_side=640).encoding
    raw = np.asarray(expected, dtype="<f8").tobytes()
    dump = " ".join(str(v) for v in row.values())
    assert row["template_enc"].startswith(f"v1:{row['key_id']}:")
    for needle in (base64.b64encode(raw).decode()[:24], raw[:16].hex(), f"{expected[0]:.6f}"[:8], repr(float(expected[0]))):
        assert needle not in dump
    assert np.allclose(svc.decrypt_template(env.rt, enr), expected)
    # the ciphertext moved to another employee's row does not decrypt
    from qianli.crypto import DecryptionError
    with pytest.raises(DecryptionError):
        env.rt.cipher.decrypt_bytes(row["template_enc"], "face_enrolment.template:someone-else")
    # no raw photo kept by default
    assert env.s.scalar(select(FaceReferencePhoto)) is None


def test_hr_attested_written_consent_is_recorded(faces_env):
    env = faces_env
    enr = svc.enrol_reference(env.s, env.rt, env.emp, photo("obama.jpg"), actor="hr:hr1", source="hr_upload",
                              written_consent_attested=True, consent_reference="纸质同意书 2026-118")
    c = env.s.get(BiometricConsent, enr.consent_id)
    assert (c.method, c.actor, c.reference) == ("hr_attested_written", "hr:hr1", "纸质同意书 2026-118")
    assert svc.active_consent(env.s, env.company.id, env.emp.id).id == c.id


def test_bad_photo_writes_nothing(faces_env):
    env = faces_env
    for data, code in ((b"GIF89a not really", "image_invalid"), (photo("obama.jpg")[:3000], "image_invalid")):
        with pytest.raises(InvalidInput) as e:
            svc.enrol_reference(env.s, env.rt, env.emp, data, actor="hr:x", written_consent_attested=True)
        assert e.value.code == code
    env.s.rollback()
    assert env.s.scalar(select(BiometricConsent)) is None and env.s.scalar(select(FaceEnrolment)) is None


def test_photo_retention_and_purge(faces_env):
    env = faces_env
    env.rt.settings = replace(env.rt.settings, face_photo_retention_s=3600)
    enr = svc.enrol_reference(env.s, env.rt, env.emp, photo("obama.jpg"), actor="hr:x", written_consent_attested=True)
    p = env.s.scalar(select(FaceReferencePhoto).where(FaceReferencePhoto.enrolment_id == enr.id))
    assert p is not None and p.delete_after > utcnow() + timedelta(minutes=59)
    assert photo("obama.jpg")[:64] not in p.photo_enc  # encrypted too
    assert env.rt.cipher.decrypt_bytes(p.photo_enc.decode(), f"face_reference_photo:{p.id}") == photo("obama.jpg")
    assert svc.face_status(env.s, company_id=env.company.id, employee_id=env.emp.id).photo_kept_until is not None
    assert svc.purge_expired_photos(env.s) == 0
    assert svc.purge_expired_photos(env.s, now=utcnow() + timedelta(hours=2)) == 1
    assert env.s.scalar(select(FaceReferencePhoto)) is None


def test_withdrawal_deletes_the_template(faces_env):
    env = faces_env
    svc.give_consent(env.s, company_id=env.company.id, employee_id=env.emp.id,
                     text_version=svc.CONSENT_TEXT_VERSION, meta=META)
    svc.enrol_reference(env.s, env.rt, env.emp, photo("obama.jpg"), actor="hr:x")
    assert svc.withdraw_consent(env.s, company_id=env.company.id, employee_id=env.emp.id, meta=META) is True
    assert env.s.scalar(select(FaceEnrolment)) is None
    assert svc.active_consent(env.s, env.company.id, env.emp.id) is None
    assert _actions(env.s, env.case.id)[-1] == "face_consent_withdrawn"
    with pytest.raises(Conflict):
        svc.withdraw_consent(env.s, company_id=env.company.id, employee_id=env.emp.id, meta=META)


def test_purge_command_deletes_expired_photos(faces_env):
    from click.testing import CliRunner

    from qianli.cli import cli

    env = faces_env
    env.rt.settings = replace(env.rt.settings, face_photo_retention_s=60)
    svc.enrol_reference(env.s, env.rt, env.emp, photo("obama.jpg"), actor="hr:x", written_consent_attested=True)
    env.s.commit()
    result = CliRunner().invoke(cli, ["purge-face-photos"])
    assert result.exit_code == 0 and result.output.strip() == '{"deleted": 0}'
    p = env.s.scalar(select(FaceReferencePhoto))
    p.delete_after = utcnow() - timedelta(seconds=1)
    env.s.commit()
    result = CliRunner().invoke(cli, ["purge-face-photos"])
    assert result.exit_code == 0 and result.output.strip() == '{"deleted": 1}', result.output
    env.s.expire_all()
    assert env.s.scalar(select(FaceReferencePhoto)) is None
