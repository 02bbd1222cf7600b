"""Face test helpers: small fixture photos and synthetic liveness bursts, computed once.

face_recognition is slow on the shared 2-core machine, so photos are downscaled (480 px for
enrolment, 320 px selfie crops for bursts) and every burst is cached for the session.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qianli.cli import demo_frames

FX = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
BURST_SIDE = 320
PHONE = "13900139001"


@lru_cache(maxsize=None)
def photo(name: str, side: int = 480) -> bytes:
    """A fixture photo downscaled to ``side`` (JPEG)."""
    im = Image.open(FX / name).convert("RGB")
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    return buf.getvalue()


@lru_cache(maxsize=None)
def burst(name: str, actions: tuple[str, ...], seed: int = 1) -> tuple[bytes, ...]:
    """neutral, action 1, neutral, action 2, neutral - animated from one fixture photo."""
    return tuple(demo_frames.burst_for_challenge((FX / name).read_bytes(), list(actions), max_side=BURST_SIDE,
                                                 seed=seed))


@lru_cache(maxsize=None)
def still_burst(name: str, n: int = 5) -> tuple[bytes, ...]:
    """A photo held in front of the camera: the same picture n times, with sensor noise only."""
    rgb = demo_frames.selfie_crop((FX / name).read_bytes(), side=BURST_SIDE)
    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        noisy = np.clip(rgb.astype(np.int16) + rng.integers(-2, 3, rgb.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return tuple(out)


@lru_cache(maxsize=None)
def two_faces() -> bytes:
    a = demo_frames.selfie_crop((FX / "obama.jpg").read_bytes(), side=BURST_SIDE)
    b = demo_frames.selfie_crop((FX / "biden.jpg").read_bytes(), side=BURST_SIDE)
    buf = io.BytesIO()
    Image.fromarray(np.concatenate([a, b], axis=1)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def image_bytes(mode: str = "RGB", size=(200, 200), color=(120, 120, 120), fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def faces_env(runtime, db_session, factory):
    """A company, an HR specialist, an employee with an open case; helpers to enrol and verify."""
    from datetime import datetime, timezone

    from qianli.services.cases import open_case

    company = factory.company()
    hr = factory.hr(company, "hr_specialist")
    emp = factory.employee(company, name="奥巴马", openid="openid-obama", phone=PHONE)
    case = open_case(db_session, runtime.settings, employee=emp, source="miniprogram",
                     notice_arrived_at=datetime.now(timezone.utc), actor=f"employee:{emp.id}",
                     reason_category="other", reason_text="", requested_last_day=None,
                     handover_items=[])
    db_session.commit()

    class Env:
        pass

    env = Env()
    env.rt, env.s, env.factory, env.company, env.hr, env.emp, env.case = runtime, db_session, factory, company, hr, emp, case
    env.emp_h, env.hr_h = factory.employee_headers(emp), factory.hr_headers(hr)
    return env
