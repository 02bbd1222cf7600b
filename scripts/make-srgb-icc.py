"""Write signing/data/srgb.icc: LittleCMS's built-in sRGB profile with a fixed creation date.

LittleCMS stamps the time of creation into the profile header (bytes 24-35), so a profile built at
run time differs between processes and would make the letter's bytes (and its SHA-256, bound into
the signing intent) depend on which server process rendered it. The letter embeds this shipped file
instead; run this script only to regenerate it (the result is committed).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from PIL import ImageCms

FIXED_DATE = (2026, 1, 1, 0, 0, 0)  # ICC dateTimeNumber: year, month, day, hours, minutes, seconds (big-endian u16)


def build() -> bytes:
    raw = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    raw[24:36] = struct.pack(">6H", *FIXED_DATE)
    raw[84:100] = bytes(16)  # profile ID: "not computed" (allowed by ICC.1)
    return bytes(raw)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "signing" / "data" / "srgb.icc"
    out.write_bytes(build())
    print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)
