"""Chinese full-text search over the alumni profiles, on both databases.

- PostgreSQL: ``alumni.search_text ILIKE '%term%'``, served by the pg_trgm GIN index that the
  migration builds (C.UTF-8 ctype: CJK characters are word characters for pg_trgm). A term
  shorter than 3 characters cannot use trigrams; PostgreSQL then scans, same answer.
- SQLite: an FTS5 table with the trigram tokenizer (``alumni_fts``), kept here on every profile
  write (created on first use: it is not part of the ORM schema). The trigram tokenizer needs a
  term of at least 3 characters; shorter terms (2-character Chinese words such as 销售 or 财务 are
  common) fall back to ``LIKE`` on ``search_text``.

Every whitespace-separated term must match (AND), case-insensitively.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select, text
from sqlalchemy.orm import Session

from qianli.models import Alumnus

__all__ = ["index_alumnus", "unindex_alumnus", "fulltext_condition", "split_terms", "FTS_MIN_CHARS"]

FTS_MIN_CHARS = 3
_FTS_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS alumni_fts USING fts5(alumnus_id UNINDEXED, body, "
            "tokenize='trigram')")


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _fts_exists(session: Session) -> bool:
    return session.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alumni_fts'")).first() \
        is not None


def index_alumnus(session: Session, alumnus: Alumnus) -> None:
    """Keep the SQLite FTS row of ``alumnus`` equal to its ``search_text`` (no-op on PostgreSQL)."""
    if not _sqlite(session):
        return
    session.flush()
    session.execute(text(_FTS_DDL))
    session.execute(text("DELETE FROM alumni_fts WHERE alumnus_id = :id"), {"id": alumnus.id})
    session.execute(text("INSERT INTO alumni_fts (alumnus_id, body) VALUES (:id, :body)"),
                    {"id": alumnus.id, "body": alumnus.search_text or ""})


def unindex_alumnus(session: Session, alumnus_id: str) -> int:
    """Remove the FTS row of a deleted profile; returns rows removed (0 on PostgreSQL)."""
    if not _sqlite(session) or not _fts_exists(session):
        return 0
    res = session.execute(text("DELETE FROM alumni_fts WHERE alumnus_id = :id"), {"id": alumnus_id})
    return int(getattr(res, "rowcount", 0) or 0)


def split_terms(query: str) -> list[str]:
    return [t for t in (query or "").split() if t][:8]


def _like_pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def fulltext_condition(session: Session, query: str) -> ColumnElement[bool] | None:
    """A WHERE condition on :class:`Alumnus` matching every term of ``query`` (None: no query)."""
    terms = split_terms(query)
    if not terms:
        return None
    conds: list[ColumnElement[bool]] = []
    use_fts = _sqlite(session) and _fts_exists(session)
    for i, term in enumerate(terms):
        if use_fts and len(term) >= FTS_MIN_CHARS:
            phrase = '"' + term.replace('"', '""') + '"'
            ids = text(f"SELECT alumnus_id FROM alumni_fts WHERE alumni_fts MATCH :fts{i}").bindparams(**{f"fts{i}": phrase}) \
                .columns(alumnus_id=Alumnus.id.type)
            conds.append(Alumnus.id.in_(select(ids.subquery().c.alumnus_id)))
        else:
            conds.append(Alumnus.search_text.ilike(_like_pattern(term), escape="\\"))
    return and_(*conds) if len(conds) > 1 else conds[0]

