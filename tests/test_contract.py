"""The committed contract is exactly what the app serves."""

import json

from miniprogram_contract import CONTRACT_PATH, render_contract


def test_committed_contract_matches_app(runtime):
    committed = CONTRACT_PATH.read_text()
    assert json.loads(committed) == json.loads(render_contract()), "run `make contract` and commit the result"


def test_every_operation_has_an_operation_id(runtime):
    spec = json.loads(render_contract())
    missing = [f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m, op in ops.items()
               if m in ("get", "post", "put", "patch", "delete") and "operationId" not in op]
    assert missing == []
    ids = [op["operationId"] for ops in spec["paths"].values() for m, op in ops.items() if m in ("get", "post", "put", "patch", "delete")]
    assert len(ids) == len(set(ids))
    assert "previewNoticePeriod" in ids
