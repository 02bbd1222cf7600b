"""The one CJK font lookup: WenQuanYi Zen Hei (Debian ``fonts-wqy-zenhei``), for every PDF QianLi draws
(the letter, the signature stamps, the dossier report)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["FONT_CANDIDATES", "font_path", "stamp_font_path"]

FONT_CANDIDATES = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc")


def font_path() -> str:
    for p in FONT_CANDIDATES:
        if Path(p).exists():
            return p
    raise FileNotFoundError("WenQuanYi Zen Hei font not found (apt-get install fonts-wqy-zenhei)")


@lru_cache(maxsize=1)
def stamp_font_path(cache_dir: str) -> str:
    """pyHanko's OpenType engine loads single fonts, not collections: extract face 0 once into the cache."""
    out = Path(cache_dir) / "wqy-zenhei-0.ttf"
    if not out.exists():
        from fontTools.ttLib import TTCollection

        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        TTCollection(font_path()).fonts[0].save(str(tmp))
        tmp.replace(out)
    return str(out)
