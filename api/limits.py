"""Limits on what a request may look like, checked before anything parses it.

- JSON bodies nested deeper than ``QIANLI_MAX_JSON_DEPTH`` are refused (400 ``json_too_deep``)
  before a recursive parser or walker sees them: 50,000 nested arrays in 100 kB used to raise
  RecursionError (500), even on the unauthenticated ``wechatLogin``.
- A request target longer than ``QIANLI_MAX_URL_BYTES`` gets 414 ``uri_too_long``, a header field
  larger than ``QIANLI_MAX_HEADER_BYTES`` 431 ``request_header_too_large`` (gunicorn's own, higher
  limits answer in the same JSON model: config/gunicorn.conf.py).
"""

from __future__ import annotations

import re

from flask import Request

from cases.errors import HeaderTooLarge, MalformedRequest, UriTooLong

__all__ = ["json_depth_exceeds", "check_request_limits"]

# A JSON string (escapes included) or one bracket. Strings are matched whole so brackets inside them
# do not count; anything else is skipped by finditer.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True if ``raw`` (JSON text, valid or not) nests arrays/objects deeper than ``limit``. Iterative."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for m in _TOKENS.finditer(raw):
        first = m.group()[0]
        if first in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif first != 0x22:  # a closing bracket (strings start with '"')
            depth = max(depth - 1, 0)
    return False


def check_request_limits(request: Request, *, max_url_bytes: int, max_header_bytes: int, max_json_depth: int) -> None:
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    length = len(target) if target else len(request.full_path.encode("utf-8", "surrogateescape"))
    if length > max_url_bytes:
        raise UriTooLong("uri_too_long", "请求地址（含查询参数）过长",
                         details={"length": length, "limit": max_url_bytes})
    for name, value in request.headers.items():
        size = len(name) + len(value) + 2
        if size > max_header_bytes:
            raise HeaderTooLarge("request_header_too_large", "请求头过大",
                                 details={"header": name[:100], "size": size, "limit": max_header_bytes})
    if (request.method in ("POST", "PUT", "PATCH", "DELETE") and request.is_json
            and json_depth_exceeds(request.get_data(cache=True), max_json_depth)):
        raise MalformedRequest("json_too_deep", f"JSON 嵌套层数超过 {max_json_depth} 层",
                               details={"limit": max_json_depth})
