"""`q=` search's index condition: the cases where every word appears somewhere in the
id or the search text at all, as each database's search index answers it (migration
0003). `app.service.queries` then checks the exact rule on those cases alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    String,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.visitors import InternalTraversal

from models.cases import Case

# FTS5's trigram tokenizer indexes substrings of 3 characters; a shorter word it cannot
# look up (its MATCH finds nothing), so such a word is left to the exact check.
TRIGRAM = 3

# What PostgreSQL's trigram index (ix_cases_search_trgm) is built on, written as the
# migration writes it: an expression index serves only the same expression. A word
# has no whitespace, so it cannot straddle the space between the two.
SEARCHABLE = func.lower(Case.id, type_=String) + literal_column("' '", String) + Case.search_text

_CASE_ROWID: ColumnClause[int] = literal_column("cases.rowid")
_FTS = table("cases_search")
_FTS_MATCH: ColumnClause[str] = literal_column("cases_search")


def fts_phrase(word: str) -> str:
    """`word` as an FTS5 string: every character literal, `"` doubled."""
    return '"' + word.replace('"', '""') + '"'


class text_search(ColumnElement[bool]):
    """Every word is a substring of the case's id or search text, case folded: true of
    every case `q=` matches (whole or outline), and found from an index."""

    type = Boolean()
    # A condition, not a boolean column: SQLite must not get `... = 1`, which no index serves.
    _is_implicitly_boolean = True
    inherit_cache = True
    # Both renderings are children, so the statement cache keys on them and their
    # bound words are the statement's parameters.
    _traverse_internals = [
        ("by_fts", InternalTraversal.dp_clauseelement),
        ("by_like", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, words: list[str]) -> None:
        # One MATCH for all the words: FTS5 intersects their matches itself.
        indexed = [fts_phrase(w) for w in words if len(w) >= TRIGRAM]
        self.by_fts: ColumnElement[bool] = (
            _CASE_ROWID.in_(
                select(literal_column("rowid"))
                .select_from(_FTS)
                .where(_FTS_MATCH.op("MATCH")(bindparam(None, " AND ".join(indexed))))
            )
            if indexed
            else true()
        )
        self.by_like = and_(true(), *(SEARCHABLE.contains(w, autoescape=True) for w in words))


@compiles(text_search, "sqlite")
def _text_search_sqlite(element: text_search, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.by_fts, **kw)


@compiles(text_search)
def _text_search_postgresql(element: text_search, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.by_like, **kw)
