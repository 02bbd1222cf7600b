"""One full face verification (decode -> detect -> encode -> compare) on one core, for a
12-megapixel (4000x3000) and a 1080p JPEG made by upscaling a fixture photo, plus FAR/FRR on the
fixture photos at the configured threshold. The last line printed is one JSON object.

    .venv/bin/python bench/face.py [--runs N]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from itertools import combinations  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageOps  # noqa: E402

from identity.faces import compare, encode_single_face  # noqa: E402

FX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
MAX_PIXELS, MAX_SIDE, THRESHOLD = 40_000_000, 640, 0.5


def _jpeg(size: tuple[int, int]) -> bytes:
    img = ImageOps.pad(Image.open(FX / "obama.jpg").convert("RGB"), size, Image.Resampling.BICUBIC, color=(128, 128, 128))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    ref = encode_single_face((FX / "obama2.jpg").read_bytes(), max_pixels=MAX_PIXELS, max_side=MAX_SIDE).encoding
    out: dict[str, float] = {}
    for label, size in (("12mp", (4000, 3000)), ("1080p", (1920, 1080))):
        data = _jpeg(size)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            enc = encode_single_face(data, max_pixels=MAX_PIXELS, max_side=MAX_SIDE).encoding
            match, _d = compare(enc, ref, THRESHOLD)
            times.append((time.perf_counter() - t0) * 1000)
            assert match
        out[f"p50_ms_{label}"] = round(statistics.median(times), 1)
        out[f"p95_ms_{label}"] = round(_pct(times, 95), 1)
        print(f"{label} {size}: {args.runs} runs, p50 {out[f'p50_ms_{label}']} ms, p95 {out[f'p95_ms_{label}']} ms")
    names = ["obama", "obama2", "obama3", "biden"]
    enc = {n: encode_single_face((FX / f"{n}.jpg").read_bytes(), max_pixels=MAX_PIXELS, max_side=MAX_SIDE).encoding
           for n in names}
    genuine = impostor = false_accept = false_reject = 0
    for a, b in combinations(names, 2):
        match, d = compare(enc[a], enc[b], THRESHOLD)
        same = (a == "biden") == (b == "biden")
        print(f"{a} / {b}: {'genuine' if same else 'impostor'} distance {d:.4f}")
        if same:
            genuine += 1
            false_reject += not match
        else:
            impostor += 1
            false_accept += match
    out["far"] = false_accept / impostor
    out["frr"] = false_reject / genuine
    print(json.dumps(out))


if __name__ == "__main__":
    main()
