"""The OpenAPI contract the WeChat mini-program is built against.

``openapi.json`` beside this file is generated from the running app's routes and schemas by
``make contract`` (``qianli openapi miniprogram_contract/openapi.json``); a test fails when the
app and the committed file differ. ``GUIDE.md`` explains auth, errors and dates.

Layer: entrypoints (it renders the ``api`` app); nothing imports it but the CLI's ``openapi`` command.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["CONTRACT_PATH", "render_contract"]

CONTRACT_PATH = Path(__file__).parent / "openapi.json"


def render_contract() -> str:
    """The app's OpenAPI document, deterministic (sorted keys, fixed server URL)."""
    from dataclasses import replace

    from api.app import create_app
    from qianli.runtime import Runtime, get_runtime

    rt = get_runtime()
    # The server URL in the contract is the development one, whatever this machine's setting.
    app = create_app(Runtime(replace(rt.settings, public_base_url="http://127.0.0.1:8000")))
    spec = app.extensions["qianli_api"].spec.to_dict()
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
