"""The demo's synthetic liveness bursts really show the actions to a landmark model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qianli.cli import demo_frames as d

PHOTO = (Path(__file__).parents[1] / "fixtures" / "faces" / "obama.jpg").read_bytes()


def _metrics(jpeg: bytes):
    lm = d.landmarks(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")))
    return (d.eye_aspect_ratio(lm["left_eye"]) + d.eye_aspect_ratio(lm["right_eye"])) / 2, d.mouth_aspect_ratio(lm), d.yaw(lm)


@pytest.fixture(scope="module")
def neutral():
    return _metrics(d.burst_for_challenge(PHOTO, [], seed=1)[0])


@pytest.mark.parametrize("action", d.ACTIONS)
def test_each_action_moves_the_landmarks(action, neutral):
    frames = d.burst_for_challenge(PHOTO, [action], seed=2)
    assert len(frames) == 3 and len(set(frames)) == 3  # neutral, action, neutral; never identical
    ear, mar, yaw = _metrics(frames[1])
    ear0, mar0, yaw0 = neutral
    if action == "blink":
        assert ear < 0.7 * ear0
    elif action == "open_mouth":
        assert mar > mar0 + 0.12
    elif action == "turn_left":
        assert yaw > yaw0 + 0.06
    else:
        assert yaw < yaw0 - 0.06
    back = _metrics(frames[2])
    assert back[0] == pytest.approx(ear0, abs=0.03) and back[2] == pytest.approx(yaw0, abs=0.02)


def test_unknown_action_and_faceless_photo_are_refused():
    with pytest.raises(ValueError):
        d.burst_for_challenge(PHOTO, ["wink"])
    buf = io.BytesIO()
    Image.new("RGB", (400, 400), (200, 180, 160)).save(buf, "JPEG")
    with pytest.raises(ValueError):
        d.burst_for_challenge(buf.getvalue(), ["blink"])
