import hashlib
import threading
from types import SimpleNamespace

import pytest

from cases.errors import Forbidden
from identity.intent import consume_signing_intent, issue_signing_intent, record_factor

S = SimpleNamespace(signing_intent_window_s=300, signing_intent_ttl_s=600)
H = hashlib.sha256(b"letter").hexdigest()


def test_needs_both_factors(redis_client):
    record_factor(redis_client, "e1", "c1", "sms", {"x": 1})
    with pytest.raises(Forbidden) as e:
        issue_signing_intent(redis_client, S, employee_id="e1", case_id="c1", letter_sha256=H)
    assert e.value.code == "signing_factors_missing" and e.value.details["missing"] == ["face"]


def test_factor_outside_window(redis_client):
    record_factor(redis_client, "e1", "c1", "sms", {}, now=1000.0)
    record_factor(redis_client, "e1", "c1", "face", {}, now=1400.0)
    with pytest.raises(Forbidden):
        issue_signing_intent(redis_client, S, employee_id="e1", case_id="c1", letter_sha256=H, now=1401.0)


def test_issue_consume_once_and_mismatch(redis_client):
    record_factor(redis_client, "e1", "c1", "sms", {"phone": "138****0000"})
    record_factor(redis_client, "e1", "c1", "face", {"distance": 0.3})
    it = issue_signing_intent(redis_client, S, employee_id="e1", case_id="c1", letter_sha256=H)
    for kw in ({"employee_id": "e2", "case_id": "c1", "letter_sha256": H},
               {"employee_id": "e1", "case_id": "c2", "letter_sha256": H},
               {"employee_id": "e1", "case_id": "c1", "letter_sha256": "0" * 64}):
        with pytest.raises(Forbidden) as e:
            consume_signing_intent(redis_client, it.id, **kw)
        assert e.value.code == "signing_intent_mismatch"
    results = []

    def go():
        try:
            results.append(consume_signing_intent(redis_client, it.id, employee_id="e1", case_id="c1", letter_sha256=H))
        except Forbidden as exc:
            results.append(exc.code)

    ts = [threading.Thread(target=go) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    wins = [r for r in results if isinstance(r, dict)]
    assert len(wins) == 1 and results.count("signing_intent_invalid") == 3
    assert wins[0]["factors"]["face"]["evidence"]["distance"] == 0.3
    # factors were spent by the first intent
    with pytest.raises(Forbidden):
        issue_signing_intent(redis_client, S, employee_id="e1", case_id="c1", letter_sha256=H)


def test_unknown_intent(redis_client):
    with pytest.raises(Forbidden) as e:
        consume_signing_intent(redis_client, "nope", employee_id="e1", case_id="c1", letter_sha256=H)
    assert e.value.code == "signing_intent_invalid"
