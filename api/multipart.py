"""Unknown multipart parts are refused, like unknown JSON fields.

Each multipart operation documents its body in the contract with ``additionalProperties: false``;
a part (text field or file) whose name is not a property of that schema answers 422
``validation_failed`` with the part named under ``details.form`` / ``details.files``, before the
view runs. A documented part sent twice is refused the same way (``Sent more than once.``) unless the
schema makes it an array (liveness frames).
The allowed names come from the generated OpenAPI document, so code and contract cannot drift.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from flask import Flask, Request, request
from werkzeug.datastructures import FileStorage

from cases.errors import InvalidInput

__all__ = ["check_multipart_parts", "merged_form_flags", "required_upload"]

_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _multipart_bodies(app: Flask) -> dict[tuple[str, str], dict[str, bool]]:
    """(OpenAPI path, method) -> {part name: may repeat (an array property)} of a closed multipart schema."""
    cached = app.extensions.get("qianli_multipart_parts")
    if cached is None:
        spec = app.extensions["qianli_api"].spec.to_dict()
        cached = {}
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                if not isinstance(op, dict):
                    continue
                content = (op.get("requestBody") or {}).get("content", {})
                if "multipart/form-data" not in content:
                    continue
                schema = _resolve(spec, content["multipart/form-data"].get("schema", {}))
                if schema.get("additionalProperties") is False:
                    cached[(path, method.lower())] = {
                        name: _resolve(spec, prop).get("type") == "array"
                        for name, prop in schema.get("properties", {}).items()}
        app.extensions["qianli_multipart_parts"] = cached
    return cached


def check_multipart_parts(app: Flask, request: Request) -> None:
    if request.mimetype != "multipart/form-data" or request.url_rule is None:
        return
    allowed = _multipart_bodies(app).get((_CONVERTER.sub(r"{\1}", request.url_rule.rule), request.method.lower()))
    if allowed is None:
        return
    errors: dict[str, Any] = {}
    for location, parts in (("form", request.form), ("files", request.files)):
        for name in parts:
            if name not in allowed:
                errors.setdefault(location, {})[name] = ["Unknown field."]
            elif not allowed[name] and len(parts.getlist(name)) > 1:
                errors.setdefault(location, {})[name] = ["Sent more than once."]
    if errors:
        raise InvalidInput("validation_failed", "请求参数无效", details=errors)


def merged_form_flags(schema: ma.Schema, query_flags: dict[str, Any]) -> dict[str, Any]:
    """``query_flags`` (already loaded from the query string) overridden by the same flags sent as
    multipart form fields; a bad form value is 422 ``validation_failed`` naming the field."""
    if not request.form:
        return query_flags
    try:
        loaded = schema.load(request.form.to_dict())
    except ma.ValidationError as exc:
        raise InvalidInput("validation_failed", "请求参数无效", details={"form": exc.messages}) from None
    return {**query_flags, **{k: v for k, v in loaded.items() if k in request.form}}


def required_upload(name: str = "file") -> FileStorage:
    """The multipart file part ``name``, or 422 ``validation_failed`` naming it as missing."""
    upload = request.files.get(name)
    if upload is None:
        raise InvalidInput("validation_failed", "请求参数无效",
                           details={"files": {name: ["Missing data for required field."]}})
    return upload
