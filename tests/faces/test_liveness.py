"""Liveness: the decision on landmark sequences, the local provider on real (animated) photos,
and challenges in a real Redis."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from cases.errors import InvalidInput, ServiceUnavailable
from identity import liveness as lv
from identity.liveness import FrameMetrics, decide

from .conftest import burst, still_burst

N = FrameMetrics(ear=0.26, mar=0.05, yaw=0.02)  # neutral
ACT = {"blink": FrameMetrics(0.12, 0.05, 0.02), "open_mouth": FrameMetrics(0.26, 0.30, 0.02),
       "turn_left": FrameMetrics(0.26, 0.05, 0.13), "turn_right": FrameMetrics(0.26, 0.05, -0.09)}


@pytest.mark.parametrize("a,b", list(itertools.permutations(lv.ACTIONS, 2)))
def test_every_challenge_passes_in_order_and_fails_reversed(a, b):
    ok = decide([a, b], [N, ACT[a], N, ACT[b], N], same_person_threshold=0.5)
    assert ok.passed and ok.action_frames == {a: 1, b: 3}
    rev = decide([a, b], [N, ACT[b], N, ACT[a], N], same_person_threshold=0.5)
    assert not rev.passed and rev.reason == "action_order"


def test_missing_action_and_still_frames():
    res = decide(["blink", "open_mouth"], [N, ACT["blink"], N, N], same_person_threshold=0.5)
    assert (res.passed, res.reason, res.detail["failed_action"]) == (False, "action_not_detected", "open_mouth")
    still = decide(["blink", "turn_left"], [N] * 5, same_person_threshold=0.5)
    assert not still.passed and still.reason == "action_not_detected"


def test_turn_direction_matters_and_thresholds_are_relative_to_the_neutral_frame():
    # the nose moving to the image's right is the subject's left turn
    assert not decide(["turn_left", "blink"], [N, ACT["turn_right"], ACT["blink"]], same_person_threshold=0.5).passed
    # small jitter is not an action
    jitter = [N, FrameMetrics(0.23, 0.08, 0.05), FrameMetrics(0.24, 0.1, -0.02)]
    for pair in itertools.permutations(lv.ACTIONS, 2):
        assert not decide(list(pair), jitter, same_person_threshold=0.5).passed
    # a face with narrow eyes: relative dip still counts
    narrow = FrameMetrics(0.18, 0.05, 0.0)
    assert decide(["blink", "open_mouth"], [narrow, FrameMetrics(0.12, 0.05, 0.0), FrameMetrics(0.18, 0.2, 0.0)],
                  same_person_threshold=0.5).passed


def test_identical_frames_and_different_people():
    res = decide(["blink", "open_mouth"], [N, ACT["blink"], ACT["open_mouth"]], same_person_threshold=0.5,
                 digests=["a", "b", "a"])
    assert res.reason == "frames_identical"
    e = np.zeros(128)
    far = np.full(128, 0.1)  # distance 1.13
    people = [FrameMetrics(N.ear, N.mar, N.yaw, e), FrameMetrics(0.12, 0.05, 0.02, e),
              FrameMetrics(0.26, 0.3, 0.02, far)]
    res = decide(["blink", "open_mouth"], people, same_person_threshold=0.5)
    assert res.reason == "different_people" and res.max_frame_distance == pytest.approx(np.sqrt(128) * 0.1)


@pytest.fixture(scope="module")
def provider():
    return lv.LocalLandmarkLiveness(max_pixels=40_000_000, max_side=640, same_person_threshold=0.5)


@pytest.mark.parametrize("name,actions", [("obama.jpg", ("blink", "turn_right")),
                                          ("obama3.jpg", ("open_mouth", "turn_left")),
                                          ("biden.jpg", ("turn_left", "blink"))])
def test_real_landmarks_pass_the_asked_actions_only(provider, name, actions):
    frames = burst(name, actions)
    res = provider.check(actions, frames)
    assert res.passed, res.as_evidence()
    assert res.action_frames == {actions[0]: 1, actions[1]: 3} and len(res.encodings) == 5
    assert res.max_frame_distance < 0.4
    # the same burst does not answer another challenge (other actions, or the reverse order)
    other = tuple(a for a in lv.ACTIONS if a not in actions)
    assert provider.check(other, frames).reason == "action_not_detected"
    assert provider.check(actions[::-1], frames).reason == "action_order"


def test_photo_of_a_photo_fails(provider):
    frames = still_burst("obama.jpg")
    assert len(set(frames)) == 5  # the noise makes every frame different, yet nothing moves
    for actions in itertools.permutations(lv.ACTIONS, 2):
        res = provider.check(actions, frames)
        assert not res.passed and res.reason == "action_not_detected"
    same = [frames[0]] * 4
    assert provider.check(("blink", "open_mouth"), same).reason == "frames_identical"


def test_frames_of_two_people_fail(provider):
    a = burst("obama.jpg", ("blink", "open_mouth"))
    b = burst("biden.jpg", ("blink", "open_mouth"))
    res = provider.check(("blink", "open_mouth"), [a[0], a[1], a[2], b[3], b[4]])
    assert res.reason == "different_people" and res.max_frame_distance > 0.6


def test_bad_frame_names_the_frame(provider):
    frames = list(burst("obama.jpg", ("blink", "open_mouth")))
    frames[2] = b"not an image"
    with pytest.raises(InvalidInput) as e:
        provider.check(("blink", "open_mouth"), frames)
    assert e.value.code == "image_invalid" and e.value.details["frame"] == 2


def test_certified_provider_is_unavailable_offline():
    s = SimpleNamespace(liveness_provider="tencent_faceid")
    with pytest.raises(ServiceUnavailable) as e:
        lv.liveness_provider_from_settings(s).check(("blink", "turn_left"), [b"x"] * 3)
    assert e.value.code == "liveness_provider_unavailable"


S = SimpleNamespace(liveness_challenge_ttl_s=60)


def test_challenges_are_random_distinct_and_single_use(redis_client):
    seen = Counter()
    for _ in range(300):
        ch = lv.issue_challenge(redis_client, S, employee_id="e1", case_id="c1")
        assert len(ch.actions) == 2 and ch.actions[0] != ch.actions[1] and set(ch.actions) <= set(lv.ACTIONS)
        seen[ch.actions] += 1
    assert len(seen) == 12  # every ordered pair occurs
    ch = lv.issue_challenge(redis_client, S, employee_id="e1", case_id="c1")
    assert 55 <= redis_client.ttl(f"qianli:liveness:{ch.nonce}") <= 60
    got = lv.take_challenge(redis_client, ch.nonce, employee_id="e1")
    assert got.actions == ch.actions and got.case_id == "c1"
    with pytest.raises(InvalidInput) as e:
        lv.take_challenge(redis_client, ch.nonce, employee_id="e1")
    assert e.value.code == "liveness_challenge_invalid"


def test_challenge_of_another_employee_expired_or_unknown(redis_client):
    ch = lv.issue_challenge(redis_client, S, employee_id="e1", case_id="c1")
    with pytest.raises(InvalidInput):
        lv.take_challenge(redis_client, ch.nonce, employee_id="e2")
    ch = lv.issue_challenge(redis_client, S, employee_id="e1", case_id="c1", now=time.time() - 61)
    with pytest.raises(InvalidInput):  # past its recorded expiry, even if Redis still held it
        lv.take_challenge(redis_client, ch.nonce, employee_id="e1")
    ch = lv.issue_challenge(redis_client, S, employee_id="e1", case_id="c1")
    redis_client.pexpire(f"qianli:liveness:{ch.nonce}", 1)
    time.sleep(0.01)
    for nonce in (ch.nonce, "", "x" * 200, "unknown"):
        with pytest.raises(InvalidInput) as e:
            lv.take_challenge(redis_client, nonce, employee_id="e1")
        assert e.value.code == "liveness_challenge_invalid"
