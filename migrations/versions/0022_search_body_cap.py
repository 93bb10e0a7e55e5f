"""A huge issue body no longer fails its sync on PostgreSQL: the search
document reads the first 100,000 characters of the body.

PostgreSQL refuses a tsvector over 1 MB ("string is too long for tsvector");
the document concatenates two vectors of the text, so a GitLab description
near its 1 MB limit with ~22,000 distinct words (a pasted log) made the
insert or update of its item fail. GitHub bodies stop at 65,536 characters,
so they are searched whole; a longer GitLab description is searched in its
first 100,000 characters (SQLite's FTS5 tables, which have no such limit,
keep the whole body: the backends can differ only past that point).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01
"""
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

BODY_CAP = 100_000
PG_PUNCTUATION = r"[!-/:-@\[-`{-~]+"


def _document(body: str) -> str:
    return (
        "CREATE OR REPLACE FUNCTION backlog_search_document(title text, body text, names text) RETURNS tsvector "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
        "SELECT to_tsvector('backlog_simple'::regconfig, d) || to_tsvector('backlog_english'::regconfig, d) "
        f"FROM (SELECT regexp_replace(coalesce(title, '') || ' ' || {body} || ' ' || "
        f"coalesce(names, ''), '{PG_PUNCTUATION}', ' ', 'g') AS d) AS document $$"
    )


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_document(f"left(coalesce(body, ''), {BODY_CAP})"))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_document("coalesce(body, '')"))
