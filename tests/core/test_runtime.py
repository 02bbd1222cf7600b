"""Runtime is the one composition root: adapters built once from settings, swapped only explicitly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cases.errors import ServiceUnavailable
from identity.sms import DevOutboxSmsGateway
from qianli.runtime import ADAPTERS, Runtime
from qianli.storage import LocalStore


def test_adapters_are_built_once_and_from_settings(settings):
    rt = Runtime(settings)
    assert rt.store is rt.store and isinstance(rt.store, LocalStore)
    assert rt.sms_gateway is rt.sms_gateway and isinstance(rt.sms_gateway, DevOutboxSmsGateway)
    assert rt.sms_codes is rt.sms_codes
    assert rt.wechat is rt.wechat and rt.liveness is rt.liveness
    other = Runtime(settings)
    assert other.store is not rt.store  # per runtime, not per module


def test_override_and_reset(settings):
    rt = Runtime(settings)
    fake = object()
    assert rt.override(sms_gateway=fake) is rt
    assert rt.sms_gateway is fake
    rt.reset()  # forgets what was built, keeps what was installed
    assert rt.sms_gateway is fake
    built = rt.store
    rt.reset("store", "sms_gateway")
    assert rt.store is not built and rt.sms_gateway is not fake
    with pytest.raises(TypeError, match="sms_gatway"):
        rt.override(sms_gatway=fake)
    with pytest.raises(TypeError):
        rt.reset("nope")


def test_changed_settings_reach_rebuilt_adapters(settings, tmp_path):
    rt = Runtime(settings)
    first = rt.store
    rt.settings = replace(settings, var_dir=tmp_path / "elsewhere")
    assert rt.store is first
    rt.reset("store")
    assert rt.store.root == tmp_path / "elsewhere" / "documents"


def test_production_without_pki_is_a_503(settings, tmp_path):
    rt = Runtime(replace(settings, env="production", var_dir=tmp_path / "empty"))
    with pytest.raises(ServiceUnavailable) as e:
        rt.pki  # noqa: B018 - the property raises
    assert e.value.code == "pki_unavailable"


def test_every_adapter_is_a_property():
    assert all(isinstance(getattr(Runtime, name), property) for name in ADAPTERS)
