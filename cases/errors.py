"""Domain errors: one small hierarchy that carries data.

Each error has a stable machine ``code`` (snake_case, never renamed once published), a human
``message`` (zh-CN where an employee will read it) and optional ``details``. The HTTP layer maps
the *class* to a status code in one place (``api.errors``); nothing below ``api`` knows HTTP.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DomainError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "InvalidTransition",
    "Forbidden",
    "Unauthorized",
    "RateLimited",
    "Locked",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "ServiceUnavailable",
    "MalformedRequest",
    "UriTooLong",
    "HeaderTooLarge",
]


class DomainError(Exception):
    """Base of every error a user may see; never raised directly."""

    default_code = "error"

    def __init__(self, code: str | None = None, message: str = "", *, details: dict[str, Any] | None = None,
                 errors: dict[str, Any] | None = None):
        self.code = code or self.default_code
        self.message = message or self.code
        self.details = details or {}
        self.errors = errors or {}  # field errors (the error model's ``errors``), e.g. {"facts": {"position": [...]}}
        super().__init__(f"{self.code}: {self.message}")


class InvalidInput(DomainError):
    """The request is well-formed but its values are not acceptable (HTTP 422)."""

    default_code = "invalid_input"


class NotFound(DomainError):
    """The object does not exist *for this caller* (also used for other companies' ids) (404)."""

    default_code = "not_found"


class Conflict(DomainError):
    """The request conflicts with the current state (409)."""

    default_code = "conflict"


class InvalidTransition(Conflict):
    """A case state transition that the state machine forbids (409)."""

    default_code = "case_invalid_transition"


class Forbidden(DomainError):
    """Authenticated, but this role or person may not do this (403)."""

    default_code = "forbidden"


class Unauthorized(DomainError):
    """Missing, expired or invalid credentials (401)."""

    default_code = "unauthorized"


class RateLimited(DomainError):
    """Too many attempts; ``details['retry_after_s']`` says when to try again (429)."""

    default_code = "rate_limited"


class Locked(DomainError):
    """A protective lock is in force, e.g. after repeated failed face checks (423)."""

    default_code = "locked"


class PayloadTooLarge(DomainError):
    """An upload or body over the configured size limit (413)."""

    default_code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """Wrong content type or a file that is not what it claims to be (415)."""

    default_code = "unsupported_media_type"


class ServiceUnavailable(DomainError):
    """An outside service (WeChat, SMS, TSA, database, Redis) is not answering (503)."""

    default_code = "service_unavailable"


class MalformedRequest(DomainError):
    """The request cannot be read at all, e.g. JSON nested deeper than allowed (400)."""

    default_code = "bad_request"


class UriTooLong(DomainError):
    """The request target (path and query string) is longer than allowed (414)."""

    default_code = "uri_too_long"


class HeaderTooLarge(DomainError):
    """A request header field is larger than allowed (431)."""

    default_code = "request_header_too_large"
