"""The evidence vocabulary is complete: every kind has a dossier view and a zh-CN label, and the
kinds the services write land in the views the dossier documents."""

from __future__ import annotations

import re

import pytest

from cases.evidence_kinds import EVIDENCE_LABELS, EVIDENCE_VIEW, DossierView, EvidenceKind, evidence_label
from cases.states import STATE_LABELS, CaseAction, CaseState

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("kind", list(EvidenceKind))
def test_every_kind_has_a_view_and_a_chinese_label(kind):
    assert isinstance(EVIDENCE_VIEW.get(kind), DossierView), f"{kind.value}: no dossier view"
    label = EVIDENCE_LABELS.get(kind, "")
    assert CJK.search(label), f"{kind.value}: no zh-CN label"


def test_the_maps_name_only_members_and_labels_are_distinct():
    assert set(EVIDENCE_VIEW) == set(EvidenceKind) == set(EVIDENCE_LABELS)
    assert len(set(EVIDENCE_LABELS.values())) == len(EVIDENCE_LABELS)


@pytest.mark.parametrize("action,view", [
    ("face_consent_withdrawn", DossierView.IDENTITY),  # once filed under approvals ("withdraw")
    ("letter_signed", DossierView.CASE), ("case_opened", DossierView.CASE), ("dossier_exported", DossierView.CASE),
    ("case_withdraw", DossierView.APPROVALS), ("withdrawal_requested", DossierView.APPROVALS),
    ("letter_countersigned", DossierView.APPROVALS), ("reminder_escalated", DossierView.REMINDERS),
    ("chat_evidence_recorded", DossierView.CHAT), ("sms_code_verified", DossierView.IDENTITY),
])
def test_views_of_known_actions(action, view):
    assert EVIDENCE_VIEW[EvidenceKind(action)] is view


def test_every_case_transition_is_a_kind():
    for action in CaseAction:
        assert EvidenceKind(f"case_{action.value}") in EVIDENCE_VIEW


def test_label_of_an_unknown_action_is_the_action_itself():
    assert evidence_label("face_verified") == "人脸核验通过"
    assert evidence_label("retired_action") == "retired_action"


def test_every_state_has_one_chinese_label():
    assert set(STATE_LABELS) == {s.value for s in CaseState}
    assert all(CJK.search(v) for v in STATE_LABELS.values())
    assert STATE_LABELS["submitted"] == "待审核"
