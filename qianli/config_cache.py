"""A process-local cache of rarely written configuration that stays exact across processes.

Some rows are read by nearly every request and written a few times a year: a company (its code and
policy), the imported State Council holiday schedules and a company's holiday overrides. Reading
them from the database each time costs a few queries per request (``previewNoticePeriod`` spent two
thirds of its time there). Here each process keeps what it loaded, and one Redis counter per
deployment (:data:`GENERATION_KEY`) says whether it is still current:

- every committed transaction that inserted, changed or deleted a row of a watched table
  (:data:`WATCHED_TABLES`) clears this process's entries and increments the counter (after the
  commit, before the request that wrote answers);
- every transaction reads the counter once (one Redis ``GET``, at its first cached read) and uses an entry only if it was loaded
  under the same counter value, read *before* the rows were loaded; so an entry can never hide a
  write that committed before the read began;
- a session that has written a watched table and not committed yet bypasses the cache (it must see
  its own writes);
- if Redis cannot be reached, reads go to the database and a failed increment is logged; entries
  also expire after :data:`MAX_AGE_S` as a backstop for a counter increment that was lost;
- engines registered without Redis (:func:`bind` not called) do not cache at all.

Rows written without the ORM (raw SQL, ``COPY``, a database restore) are not seen: run
``qianli``'s commands or restart the workers after such a change (or wait :data:`MAX_AGE_S`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, Callable, TypeVar

import redis
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

__all__ = ["GENERATION_KEY", "WATCHED_TABLES", "MAX_AGE_S", "bind", "cached", "clear"]

log = logging.getLogger(__name__)
T = TypeVar("T")

GENERATION_KEY = "qianli:config:generation"
WATCHED_TABLES = frozenset({"companies", "holiday_schedules", "holiday_overrides"})
MAX_AGE_S = 300.0
_WROTE = "qianli_config_written"
_GENERATION = "qianli_config_generation"

_lock = threading.Lock()
# engine -> (Redis getter, {key: (generation, loaded_at, value)})
_registry: weakref.WeakKeyDictionary[Engine, tuple[Callable[[], redis.Redis], dict[Any, tuple[bytes, float, Any]]]] = \
    weakref.WeakKeyDictionary()


def bind(engine: Engine, redis_client: Callable[[], redis.Redis]) -> None:
    """Let sessions on ``engine`` cache watched rows, with the deployment's Redis as the counter."""
    with _lock:
        if engine not in _registry:
            _registry[engine] = (redis_client, {})


def clear() -> None:
    """Forget every entry of this process (each engine's)."""
    with _lock:
        for _getter, entries in _registry.values():
            entries.clear()


def _engine(session: Session) -> Engine | None:
    try:
        bind_ = session.get_bind()
    except Exception:  # noqa: BLE001 - an unbound session simply does not cache
        return None
    return bind_.engine if hasattr(bind_, "engine") else None


def _touches_watched(session: Session) -> bool:
    if session.info.get(_WROTE):
        return True
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table in WATCHED_TABLES:
            return True
    return False


def cached(session: Session, key: Any, load: Callable[[], T]) -> T:
    """``load()``'s value for ``key``, from this process's cache when the deployment has not written a
    watched table since it was loaded. ``load`` must read only watched tables and return a value that
    is never mutated afterwards (it is shared by the threads of the process)."""
    engine = _engine(session)
    registered = _registry.get(engine) if engine is not None else None
    if registered is None or _touches_watched(session):
        return load()
    getter, entries = registered
    generation = session.info.get(_GENERATION)  # read once per transaction
    if generation is None:
        try:
            generation = getter().get(GENERATION_KEY) or b"0"
        except redis.exceptions.RedisError:
            return load()
        session.info[_GENERATION] = generation
    hit = entries.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] == generation and now - hit[1] < MAX_AGE_S:
        return hit[2]
    value = load()
    entries[key] = (generation, now, value)
    return value


@event.listens_for(Session, "after_flush")
def _note_watched_writes(session: Session, _flush_context) -> None:
    # new/dirty/deleted still hold the flushed objects here.
    if not session.info.get(_WROTE) and _touches_watched(session):
        session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _invalidate(session: Session) -> None:
    session.info.pop(_GENERATION, None)
    if not session.info.pop(_WROTE, False):
        return
    clear()
    engine = _engine(session)
    registered = _registry.get(engine) if engine is not None else None
    if registered is None:
        return
    try:
        registered[0]().incr(GENERATION_KEY)
    except redis.exceptions.RedisError as exc:  # other processes catch up within MAX_AGE_S
        log.warning("configuration changed but the cache generation could not be increased: %s", exc)


@event.listens_for(Session, "after_soft_rollback")
def _forget_watched_writes(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_WROTE, None)
        session.info.pop(_GENERATION, None)
