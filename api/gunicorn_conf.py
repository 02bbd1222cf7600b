"""gunicorn settings shared by every deployment: ``gunicorn -c python:api.gunicorn_conf 'api.wsgi:app'``
(``make run``, the README's production command and the tests that start a real gunicorn).

The contract promises the JSON error model for every answer. Requests the application can see get
it from the application: it answers 414 (``uri_too_long``) past ``QIANLI_MAX_URL_BYTES`` and 431
(``request_header_too_large``) past ``QIANLI_MAX_HEADER_BYTES``, limits set below gunicorn's own. What
gunicorn refuses before the application (a request line longer than 8190 bytes, gunicorn's maximum;
a header field longer than ``limit_request_field_size``; more than ``limit_request_fields`` headers;
a malformed request) is answered by gunicorn, whose error page is replaced here by the same JSON
model instead of its HTML page.
"""

from __future__ import annotations

import json

from gunicorn import util

from api.errors import HTTP_CODES

# gunicorn's own parser limits: above the application's (which answers in JSON with its codes), bounded.
limit_request_line = 8190  # gunicorn's maximum (0 would mean unlimited)
limit_request_field_size = 32 * 1024
limit_request_fields = 100


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Replacement for ``gunicorn.util.write_error`` (same signature): the JSON error model."""
    code, message = HTTP_CODES.get(status_int, (f"http_{status_int}", reason))
    body = json.dumps({"code": code, "status": status_int, "message": message,
                       "details": {"reason": str(mesg)[:200]}}, ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


util.write_error = write_json_error
