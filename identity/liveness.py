"""Liveness: a challenge-response check that the face in front of the camera is alive.

The server issues a random challenge - two distinct actions out of blink, turn_left,
turn_right, open_mouth, in random order - with a nonce, kept in Redis for a short time and
usable once. The mini-program films a short burst (first frame neutral, then the actions in the
order asked). :class:`LocalLandmarkLiveness` finds one face in every frame, reads 68-point
landmarks and checks, relative to the first frame:

- ``blink``: the eye aspect ratio (EAR) dips to at most ``BLINK_EAR_RATIO`` of the neutral one;
- ``open_mouth``: the mouth aspect ratio (MAR) rises by at least ``MOUTH_MAR_RISE``;
- ``turn_left`` / ``turn_right``: the nose moves off the jaw's centre by at least ``TURN_YAW``
  of the jaw width, towards the image's right for the subject's left (frames are not mirrored);

in that order (the second action in a later frame than the first), that no two frames are
identical, and that every frame shows the same person (face distance to the first frame within
the threshold). Matching against the enrolled template is the caller's job (the encodings are
returned). The thresholds were calibrated on the fixture photos animated by
``qianli.cli.demo_frames`` (see README "Face match").

What it stops: a printed photo, a photo on a screen, a replayed old burst (the nonce is single
use and the order random). What it does not stop: a live deepfake or a virtual camera that
animates a face on demand. A deployment that needs that uses a certified provider behind the
:class:`LivenessProvider` interface (``QIANLI_LIVENESS_PROVIDER``).

No flask here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np

from cases.errors import InvalidInput, PayloadTooLarge, RateLimited, ServiceUnavailable

__all__ = ["ACTIONS", "Challenge", "FrameMetrics", "LivenessResult", "LivenessProvider", "LocalLandmarkLiveness",
           "CertifiedServiceLiveness", "liveness_provider_from_settings", "issue_challenge", "take_challenge",
           "metrics_from_landmarks", "decide", "take_rate_slot", "BLINK_EAR_RATIO", "MOUTH_MAR_RISE", "TURN_YAW", "MIN_FRAMES"]

ACTIONS = ("blink", "turn_left", "turn_right", "open_mouth")
BLINK_EAR_RATIO = 0.75   # blink: EAR <= 0.75 x neutral (fixtures: 0.45-0.70 when closed, >= 0.9 open)
MOUTH_MAR_RISE = 0.12    # open_mouth: MAR >= neutral + 0.12 (fixtures: +0.20..+0.32; neutral jitter < 0.03)
TURN_YAW = 0.06          # turns: |yaw - neutral| >= 0.06 of the jaw width (fixtures: 0.07-0.13; jitter < 0.02)
MIN_FRAMES = 3           # neutral + one frame per action


@dataclass(frozen=True)
class Challenge:
    nonce: str
    actions: tuple[str, ...]
    employee_id: str
    case_id: str
    issued_at: float
    expires_at: float

    @property
    def expires_at_dt(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, timezone.utc)

    def as_evidence(self) -> dict[str, Any]:
        """For the evidence chain: the actions and a digest of the nonce (not the nonce itself)."""
        return {"actions": list(self.actions), "nonce_sha256": hashlib.sha256(self.nonce.encode()).hexdigest(),
                "issued_at": self.issued_at}


@dataclass(frozen=True)
class FrameMetrics:
    ear: float   # mean eye aspect ratio of both eyes
    mar: float   # mouth aspect ratio
    yaw: float   # nose offset from the jaw's centre / jaw width (+: nose to image right)
    encoding: np.ndarray | None = None


@dataclass
class LivenessResult:
    passed: bool
    reason: str | None  # None, or: frames_identical, action_not_detected, action_order, different_people
    frames: int
    action_frames: dict[str, int] = field(default_factory=dict)
    max_frame_distance: float | None = None
    encodings: list[np.ndarray] = field(default_factory=list)
    provider: str = "local_landmarks"
    detail: dict[str, Any] = field(default_factory=dict)

    def as_evidence(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, "frames": self.frames, "provider": self.provider,
                "action_frames": dict(self.action_frames),
                "max_frame_distance": None if self.max_frame_distance is None else round(self.max_frame_distance, 4),
                **self.detail}


class LivenessProvider(Protocol):
    """Checks a burst of frames against a challenge. Raises ``cases.errors`` for bad input
    (not an image, no face...); returns a failed :class:`LivenessResult` for a burst that does not
    show a live person doing the actions. ``encodings`` of a passed result are matched by the caller."""

    name: str

    def check(self, actions: Sequence[str], frames: Sequence[bytes]) -> LivenessResult: ...


# -- the decision (pure, testable with landmark sequences) -------------------------------------
def _dist(a, b) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _ear(eye) -> float:
    return (_dist(eye[1], eye[5]) + _dist(eye[2], eye[4])) / (2.0 * max(_dist(eye[0], eye[3]), 1e-6))


def metrics_from_landmarks(lm: dict[str, list[tuple[int, int]]], encoding: np.ndarray | None = None) -> FrameMetrics:
    """EAR, MAR and yaw from face_recognition's landmark dict (68-point model)."""
    ear = (_ear(lm["left_eye"]) + _ear(lm["right_eye"])) / 2
    top_inner, bottom_inner = lm["top_lip"][7:12], lm["bottom_lip"][7:12]
    width = max(_dist(lm["top_lip"][0], lm["top_lip"][6]), 1e-6)
    gap = float(np.mean([abs(b[1] - t[1]) for t, b in zip(top_inner, reversed(bottom_inner), strict=True)]))
    left, right = lm["chin"][0], lm["chin"][16]
    nose = float(np.mean([p[0] for p in lm["nose_tip"]]))
    yaw = (nose - (left[0] + right[0]) / 2) / max(right[0] - left[0], 1e-6)
    return FrameMetrics(ear=float(ear), mar=gap / width, yaw=float(yaw), encoding=encoding)


def _shows(action: str, m: FrameMetrics, base: FrameMetrics) -> bool:
    if action == "blink":
        return m.ear <= BLINK_EAR_RATIO * base.ear
    if action == "open_mouth":
        return m.mar >= base.mar + MOUTH_MAR_RISE
    if action == "turn_left":
        return m.yaw >= base.yaw + TURN_YAW
    if action == "turn_right":
        return m.yaw <= base.yaw - TURN_YAW
    raise ValueError(f"unknown action {action!r}")


def decide(actions: Sequence[str], metrics: Sequence[FrameMetrics], *, same_person_threshold: float,
           digests: Sequence[str] | None = None, provider: str = "local_landmarks") -> LivenessResult:
    """The liveness decision from per-frame measurements. Frame 0 is the neutral reference."""
    n = len(metrics)
    res = LivenessResult(passed=False, reason=None, frames=n, provider=provider)
    res.detail = {"neutral": {"ear": round(metrics[0].ear, 4), "mar": round(metrics[0].mar, 4),
                              "yaw": round(metrics[0].yaw, 4)}} if n else {}
    if digests is not None and len(set(digests)) != len(digests):
        res.reason = "frames_identical"
        return res
    encs = [m.encoding for m in metrics if m.encoding is not None]
    if encs:
        res.encodings = encs
        res.max_frame_distance = max(float(np.linalg.norm(e - encs[0])) for e in encs)
        if res.max_frame_distance > same_person_threshold:
            res.reason = "different_people"
            return res
    base = metrics[0]
    start = 1
    for action in actions:
        hit = next((i for i in range(start, n) if _shows(action, metrics[i], base)), None)
        if hit is None:
            anywhere = any(_shows(action, metrics[i], base) for i in range(1, n))
            res.reason = "action_order" if anywhere else "action_not_detected"
            res.detail["failed_action"] = action
            return res
        res.action_frames[action] = hit
        start = hit + 1
    res.passed = True
    return res


# -- providers --------------------------------------------------------------------------------
class LocalLandmarkLiveness:
    """The default provider: face_recognition (dlib) landmarks and encodings, on this machine."""

    name = "local_landmarks"

    def __init__(self, *, max_pixels: int, max_side: int, same_person_threshold: float):
        self.max_pixels, self.max_side, self.same_person_threshold = max_pixels, max_side, same_person_threshold

    def analyse_frame(self, data: bytes, index: int) -> FrameMetrics:
        import face_recognition

        from identity.faces import decode_image, detect_faces

        try:
            rgb = decode_image(data, max_pixels=self.max_pixels, max_side=self.max_side)
        except (InvalidInput, PayloadTooLarge) as exc:
            exc.details = {**(exc.details or {}), "frame": index}
            raise
        boxes = detect_faces(rgb)
        if not boxes:
            raise InvalidInput("face_not_found", "照片中未检测到人脸", details={"frame": index, "faces": 0})
        if len(boxes) > 1:
            raise InvalidInput("face_multiple", "照片中有多张人脸，请只拍本人",
                               details={"frame": index, "faces": len(boxes)})
        lm = face_recognition.face_landmarks(rgb, face_locations=boxes)[0]
        enc = face_recognition.face_encodings(rgb, known_face_locations=boxes)[0]
        return metrics_from_landmarks(lm, enc)

    def check(self, actions: Sequence[str], frames: Sequence[bytes]) -> LivenessResult:
        digests = [hashlib.sha256(f).hexdigest() for f in frames]
        if len(set(digests)) != len(digests):  # decided before any expensive work
            return decide(actions, [FrameMetrics(0, 0, 0)] * len(frames), same_person_threshold=0,
                          digests=digests, provider=self.name)
        metrics = [self.analyse_frame(f, i) for i, f in enumerate(frames)]
        return decide(actions, metrics, same_person_threshold=self.same_person_threshold, digests=digests,
                      provider=self.name)


class CertifiedServiceLiveness:
    """A certified external service (WeChat / Tencent Cloud face verification, FaceID).

    Those services run their own capture in the mini-program (``wx.startFacialRecognitionVerify``
    or the FaceID SDK) and return a verification result that the server then confirms with the
    provider's API, with credentials of the deploying company. That needs a contract with the
    provider and network access, neither of which this build has, so this provider answers
    503 ``liveness_provider_unavailable``; it marks the place where the integration goes.
    """

    def __init__(self, name: str):
        self.name = name

    def check(self, actions: Sequence[str], frames: Sequence[bytes]) -> LivenessResult:
        raise ServiceUnavailable("liveness_provider_unavailable",
                                 "人脸核验服务暂不可用，请稍后再试",
                                 details={"provider": self.name})


def liveness_provider_from_settings(settings) -> LivenessProvider:
    if settings.liveness_provider == "local":
        return LocalLandmarkLiveness(max_pixels=settings.liveness_frame_max_pixels, max_side=settings.face_detect_max_side,
                                     same_person_threshold=settings.face_threshold)
    return CertifiedServiceLiveness(settings.liveness_provider)


# -- challenges in Redis ----------------------------------------------------------------------
_RATE_PREFIX = "qianli:face-rate"


def take_rate_slot(redis, kind: str, employee_id: str, *, limit: int, window_s: int = 3600) -> None:
    """Count one ``kind`` event for the employee in a fixed window; over ``limit``: 429
    ``<kind>_rate_limited`` with ``retry_after_s`` (when the window ends)."""
    key = f"{_RATE_PREFIX}:{kind}:{employee_id}"
    pipe = redis.pipeline(transaction=True)
    pipe.set(key, 0, ex=window_s, nx=True)
    pipe.incr(key)
    pipe.ttl(key)
    _created, count, ttl = pipe.execute()
    if count > limit:
        raise RateLimited(f"{kind}_rate_limited", _RATE_MESSAGES.get(kind, "操作过于频繁，请稍后再试"),
                          details={"retry_after_s": max(1, int(ttl)), "limit": limit, "window_s": window_s})


_RATE_MESSAGES = {
    "liveness_challenge": "人脸核验发起过于频繁，请稍后再试",
    "face_verification": "人脸核验提交过于频繁，请稍后再试",
}


def _ckey(nonce: str) -> str:
    return f"qianli:liveness:{nonce}"


def issue_challenge(redis, settings, *, employee_id: str, case_id: str, now: float | None = None,
                    rng: secrets.SystemRandom | None = None) -> Challenge:
    """Two distinct actions in random order, a 256-bit nonce, kept for the challenge TTL."""
    rng = rng or secrets.SystemRandom()
    actions = tuple(rng.sample(ACTIONS, 2))
    t = time.time() if now is None else now
    ttl = max(1, int(settings.liveness_challenge_ttl_s))
    ch = Challenge(nonce=secrets.token_urlsafe(32), actions=actions, employee_id=employee_id, case_id=case_id,
                   issued_at=t, expires_at=t + ttl)
    redis.set(_ckey(ch.nonce), json.dumps({"actions": list(actions), "employee_id": employee_id,
                                           "case_id": case_id, "issued_at": t, "expires_at": t + ttl}), ex=ttl)
    return ch


_TAKE = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1])
return v
"""


def take_challenge(redis, nonce: str, *, employee_id: str, now: float | None = None) -> Challenge:
    """Spend the challenge (atomically, whatever happens next). Unknown, used, expired or another
    employee's nonce: 422 ``liveness_challenge_invalid``."""
    invalid = InvalidInput("liveness_challenge_invalid", "动作挑战已失效或已使用，请重新开始人脸核验")
    if not nonce or len(nonce) > 128:
        raise invalid
    raw = redis.eval(_TAKE, 1, _ckey(nonce))
    if not raw:
        raise invalid
    rec = json.loads(raw)
    t = time.time() if now is None else now
    if rec["employee_id"] != employee_id or t > float(rec["expires_at"]):
        raise invalid
    return Challenge(nonce=nonce, actions=tuple(rec["actions"]), employee_id=rec["employee_id"],
                     case_id=rec["case_id"], issued_at=float(rec["issued_at"]), expires_at=float(rec["expires_at"]))
