"""The process-wide wiring: settings, database engine and sessions, Redis, the field cipher.

Built once per process (web worker, rq worker, CLI) from settings; tests build their own.
Nothing here opens a connection until it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from qianli.crypto import FieldCipher, lookup_hash
from qianli.db import make_engine, make_session_factory
from qianli.settings import Settings, get_settings

__all__ = ["Runtime", "get_runtime", "set_runtime"]


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url, sqlite_busy_timeout_s=self.settings.sqlite_busy_timeout_s)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2)

    @cached_property
    def cipher(self) -> FieldCipher:
        return FieldCipher.from_settings(self.settings)

    def lookup(self, kind: str, value: str) -> str:
        return lookup_hash(self.settings.lookup_key_bytes(), kind, value)

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(get_settings())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Tests and the app factory install an explicit runtime."""
    global _runtime
    _runtime = runtime
