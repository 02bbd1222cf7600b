"""Synthetic liveness bursts for the demo and the tests: a still photo animated by image warps.

The end-to-end demo has no camera, so it animates a fixture photo: it closes the eyes (blink),
opens the mouth, or turns the head (yaw) by geometric warps around the face's own landmarks,
and returns the frames as JPEGs, in the order the challenge asks for. This is also an honest
demonstration of the liveness check's limit: a program that can animate a face (a deepfake,
a virtual camera) is not stopped by a landmark-based challenge-response; a *still* photo is.

Only numpy and Pillow plus face_recognition's landmarks; used by ``qianli demo`` and tests.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["ACTIONS", "selfie_crop", "landmarks", "animate", "burst_for_challenge", "eye_aspect_ratio", "mouth_aspect_ratio", "yaw"]

ACTIONS = ("blink", "turn_left", "turn_right", "open_mouth")


def landmarks(rgb: np.ndarray) -> dict[str, list[tuple[int, int]]]:
    import face_recognition

    found = face_recognition.face_landmarks(rgb)
    if len(found) != 1:
        raise ValueError(f"expected one face, found {len(found)}")
    return found[0]


def _dist(a, b) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def eye_aspect_ratio(eye: Sequence[tuple[int, int]]) -> float:
    return (_dist(eye[1], eye[5]) + _dist(eye[2], eye[4])) / (2.0 * _dist(eye[0], eye[3]))


def mouth_aspect_ratio(lm) -> float:
    top_inner, bottom_inner = lm["top_lip"][7:12], lm["bottom_lip"][7:12]
    width = _dist(lm["top_lip"][0], lm["top_lip"][6])
    gap = np.mean([abs(b[1] - t[1]) for t, b in zip(top_inner, reversed(bottom_inner), strict=True)])
    return float(gap / width)


def yaw(lm) -> float:
    """Nose offset from the jaw's centre, as a fraction of the jaw width (+: nose to image right)."""
    left, right = lm["chin"][0], lm["chin"][16]
    nose = np.mean([p[0] for p in lm["nose_tip"]])
    return float((nose - (left[0] + right[0]) / 2) / (right[0] - left[0]))


def _remap(img: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    yi = np.clip(np.rint(src_y).astype(int), 0, h - 1)
    xi = np.clip(np.rint(src_x).astype(int), 0, w - 1)
    return img[yi, xi]


def _turn(img: np.ndarray, lm, amount: float) -> np.ndarray:
    """Shift the middle of the face sideways while the jaw line stays: the nose moves off-centre."""
    h, w = img.shape[:2]
    x0, x1 = lm["chin"][0][0], lm["chin"][16][0]
    top = min(p[1] for p in lm["left_eyebrow"] + lm["right_eyebrow"])
    bottom = max(p[1] for p in lm["chin"])
    fw = x1 - x0
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    inside_x = (xs > x0) & (xs < x1)
    shift = np.where(inside_x, amount * fw * np.sin(np.pi * (xs - x0) / fw), 0.0)
    pad = 0.25 * (bottom - top)
    vert = np.clip(np.minimum(ys - (top - pad), (bottom + pad) - ys) / pad, 0, 1)
    return _remap(img, ys, xs - shift * vert)


def _close_eye(img: np.ndarray, eye) -> np.ndarray:
    """Lower the upper lid: stretch the lid skin down over the eye to the lower lid (a blink)."""
    h, w = img.shape[:2]
    pts = [(float(x), float(y)) for x, y in eye]
    xl, xr = pts[0][0], pts[3][0]
    upper_x, upper_y = [pts[0][0], pts[1][0], pts[2][0], pts[3][0]], [pts[0][1], pts[1][1], pts[2][1], pts[3][1]]
    lower_x, lower_y = [pts[0][0], pts[5][0], pts[4][0], pts[3][0]], [pts[0][1], pts[5][1], pts[4][1], pts[3][1]]
    eye_w = xr - xl
    margin = 0.25 * eye_w
    out = img.copy()
    for x in range(int(xl - margin), int(xr + margin) + 1):
        if not 0 <= x < w:
            continue
        xc = min(max(x, xl), xr)
        yu, yl = float(np.interp(xc, upper_x, upper_y)), float(np.interp(xc, lower_x, lower_y))
        rel = abs(x - (xl + xr) / 2) / (eye_w / 2 + margin)
        wgt = float(np.clip(1 - rel**4, 0, 1))
        lid = max(yl - yu, 2.0)
        top = yu - 1.5 * lid - 4
        y_new = yu + wgt * (yl + 1 - yu)
        bottom = yl + 2
        for y in range(int(top), int(bottom) + 1):
            if not 0 <= y < h:
                continue
            if y <= y_new:
                src = top + (y - top) * (yu - top) / max(y_new - top, 1e-6)
            else:
                src = yu + (y - y_new) * (bottom - yu) / max(bottom - y_new, 1e-6)
            out[y, x] = img[int(np.clip(round(src), 0, h - 1)), x]
        if wgt > 0.3:
            yy = int(round(y_new))
            if 0 <= yy < h:
                out[yy, x] = (out[yy, x] * 0.45).astype(img.dtype)
    return out


def _open_mouth(img: np.ndarray, lm, amount: float) -> np.ndarray:
    """Move the lower lip and the chin down and show a dark mouth between the lips."""
    h, w = img.shape[:2]
    top_inner, bottom_inner = lm["top_lip"][7:12], lm["bottom_lip"][7:12]
    c = float(np.mean([p[1] for p in top_inner + bottom_inner]))
    left, right = lm["top_lip"][0][0], lm["top_lip"][6][0]
    mx, mw = (left + right) / 2, right - left
    reach = max(p[1] for p in lm["chin"]) + 0.2 * mw - c
    gap_max = amount * mw
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    profile = np.clip(1 - ((xs - mx) / (0.8 * mw)) ** 2, 0, 1)
    g = gap_max * profile
    below = (ys >= c) & (ys <= c + reach)
    # rows [c, c+g] are the opening; [c+g, c+reach] are a squeezed copy of [c, c+reach]
    t = np.where(below, (ys - c - g) / np.maximum(reach - g, 1), 0)
    src_y = np.where(below, c + np.clip(t, 0, 1) * reach, ys)
    out = _remap(img, src_y, xs)
    hole = below & (ys < c + g) & (((xs - mx) / (0.42 * mw)) ** 2 + ((ys - c - g / 2) / np.maximum(g / 2, 1e-6)) ** 2 < 1)
    out[hole] = np.array([40, 12, 14], dtype=out.dtype)
    return out


def animate(rgb: np.ndarray, action: str, lm=None) -> np.ndarray:
    lm = lm or landmarks(rgb)
    if action == "blink":
        return _close_eye(_close_eye(rgb, lm["left_eye"]), lm["right_eye"])
    if action == "open_mouth":
        return _open_mouth(rgb, lm, 0.45)
    if action in ("turn_left", "turn_right"):
        # The subject turning to *their* left moves the nose to the image's right (a selfie
        # camera's preview is mirrored, the uploaded frame is not).
        return _turn(rgb, lm, 0.12 if action == "turn_left" else -0.12)
    raise ValueError(f"unknown action {action!r}")


def selfie_crop(photo: bytes, *, side: int = 640) -> np.ndarray:
    """Crop around the one face so that it fills the frame like a phone selfie (RGB array)."""
    import face_recognition

    im = Image.open(io.BytesIO(photo)).convert("RGB")
    small = im.copy()
    small.thumbnail((800, 800))
    scale = im.width / small.width
    boxes = face_recognition.face_locations(np.asarray(small))
    if len(boxes) != 1:
        raise ValueError(f"expected one face, found {len(boxes)}")
    top, right, bottom, left = (v * scale for v in boxes[0])
    cx, cy, size = (left + right) / 2, (top + bottom) / 2, max(right - left, bottom - top) * 1.9
    box = (int(cx - size / 2), int(cy - size / 2), int(cx + size / 2), int(cy + size / 2))
    return np.asarray(im.crop(box).resize((side, side), Image.Resampling.LANCZOS)).copy()


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def burst_for_challenge(photo: bytes, actions: Sequence[str], *, max_side: int = 640, seed: int | None = None) -> list[bytes]:
    """Frames: neutral, first action, neutral, second action, neutral (JPEG bytes)."""
    rgb = selfie_crop(photo, side=max_side)
    lm = landmarks(rgb)
    frames = [rgb]
    for action in actions:
        frames += [animate(rgb, action, lm), rgb]
    # Sensor noise: a camera never delivers two identical frames.
    rng = np.random.default_rng(seed)
    noisy = [np.clip(f.astype(np.int16) + rng.integers(-2, 3, f.shape), 0, 255).astype(np.uint8) for f in frames]
    return [_jpeg(f) for f in noisy]
