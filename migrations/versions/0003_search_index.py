"""`q=` search from an index, and an index on `owner` for "mine" lists.

Search: what a word can match is found without reading every case.

`q=` keeps its meaning (app/service/queries.py: every word a substring of a case's search
text, or of its id for one who sees only the outline); what changes is that the
database is first given the cases where every word appears in the id or the search
text at all, from an index, and checks the exact rule on those alone.

- SQLite: `cases_search`, an FTS5 table with the trigram tokenizer (any substring
  of 3 characters or more, case folded) over `cases.id` and `cases.search_text`,
  external content (it stores no second copy of the text), keyed by the cases'
  rowid and kept in step by triggers, so every writer (records activity, retention,
  a bulk load) keeps it without knowing of it. A later migration that rebuilds
  `cases` in batch mode (a table copy) drops the triggers with the old table and
  must create them again and run `INSERT INTO cases_search(cases_search)
  VALUES ('rebuild')`, which also repairs the index if rowids were ever renumbered.
- PostgreSQL: the trigram index moves from `search_text` to
  `lower(id) || ' ' || search_text`, the expression `models.search.text_search`
  filters on, so one index serves both the whole-case and the outline match.

`owner`: "mine" (`assignee=me`) is `assignee = me OR owner = me`; with an index on
each side of the OR, the database reads the few such cases instead of every open one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in models.search (copied: a migration never changes when the models do).
SQLITE_UPGRADE = (
    "CREATE VIRTUAL TABLE cases_search USING fts5("
    "id, search_text, content='cases', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER cases_search_insert AFTER INSERT ON cases BEGIN"
    " INSERT INTO cases_search(rowid, id, search_text)"
    " VALUES (new.rowid, new.id, new.search_text); END",
    "CREATE TRIGGER cases_search_delete AFTER DELETE ON cases BEGIN"
    " INSERT INTO cases_search(cases_search, rowid, id, search_text)"
    " VALUES ('delete', old.rowid, old.id, old.search_text); END",
    "CREATE TRIGGER cases_search_update AFTER UPDATE OF id, search_text ON cases BEGIN"
    " INSERT INTO cases_search(cases_search, rowid, id, search_text)"
    " VALUES ('delete', old.rowid, old.id, old.search_text);"
    " INSERT INTO cases_search(rowid, id, search_text)"
    " VALUES (new.rowid, new.id, new.search_text); END",
    # The cases already there.
    "INSERT INTO cases_search(cases_search) VALUES ('rebuild')",
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER cases_search_update",
    "DROP TRIGGER cases_search_delete",
    "DROP TRIGGER cases_search_insert",
    "DROP TABLE cases_search",
)
POSTGRESQL_UPGRADE = (
    "DROP INDEX ix_cases_search_text_trgm",
    "CREATE INDEX ix_cases_search_trgm ON cases"
    " USING gin ((lower(id) || ' ' || search_text) gin_trgm_ops)",
)
POSTGRESQL_DOWNGRADE = (
    "DROP INDEX ix_cases_search_trgm",
    "CREATE INDEX ix_cases_search_text_trgm ON cases USING gin (search_text gin_trgm_ops)",
)


def upgrade() -> None:
    op.create_index("ix_cases_owner", "cases", ["owner"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UPGRADE if sqlite else POSTGRESQL_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWNGRADE if sqlite else POSTGRESQL_DOWNGRADE:
        op.execute(statement)
    op.drop_index("ix_cases_owner", table_name="cases")
