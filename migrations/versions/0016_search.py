"""Search finds what people type (issue 14): one search document per item,
made of its title, body, project name and slug, and repository owner and
name, tokenised alike on both backends.

Reviewed by hand. The rules (why two configurations, why punctuation is
removed) are explained in ``marketplace.backlog.search``; this migration must
build exactly the document that module queries.

- PostgreSQL: the ``unaccent`` extension; two text-search configurations,
  ``backlog_simple`` (unaccent, then lower-case only) and ``backlog_english``
  (unaccent, then English stems); a ``search_document`` tsvector column on
  ``backlog_item`` kept by a trigger (a generated column cannot read the
  project and repository names), with the GIN index ``ix_backlog_item_search``
  (on ``backlog_indexed_document(search_document)``, an identity priced so
  that the planner uses the index) replacing 0001's expression index. The
  document is stored out of the row (``toast_tuple_target``), so the heap
  that list pages scan stays narrow. Renaming a repository or a project
  refreshes its items' documents.
- SQLite: two FTS5 tables with the same document, ``backlog_item_fts``
  (unicode61, diacritics removed) and ``backlog_item_fts_stem`` (the same
  tokens through the Porter stemmer), kept by triggers. They store their own
  text (not an external-content table): the document is not a column of
  ``backlog_item``.

On SQLite, batch mode rebuilds a table and drops its triggers; a later
migration that rebuilds backlog_item, repository or member_project must run
``SQLITE_TRIGGERS`` of this file again (as 0002 and 0011 did for 0001's).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# ASCII punctuation and symbols become spaces before PostgreSQL's parser sees
# the text, so that `node.js` is the two words `node js` as in SQLite's
# unicode61 tokenizer and in the query parser (not one "host" token).
PG_PUNCTUATION = r"[!-/:-@\[-`{-~]+"
WORD_TYPES = ("asciiword, word, numword, asciihword, hword, numhword, "
              "hword_asciipart, hword_part, hword_numpart")

PG_UP = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION backlog_simple (COPY = simple)",
    f"ALTER TEXT SEARCH CONFIGURATION backlog_simple ALTER MAPPING FOR {WORD_TYPES} WITH unaccent, simple",
    "CREATE TEXT SEARCH CONFIGURATION backlog_english (COPY = english)",
    f"ALTER TEXT SEARCH CONFIGURATION backlog_english ALTER MAPPING FOR {WORD_TYPES} WITH unaccent, english_stem",
    # Immutable: it reads only its arguments and the two configurations.
    "CREATE FUNCTION backlog_search_document(title text, body text, names text) RETURNS tsvector "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    "SELECT to_tsvector('backlog_simple'::regconfig, d) || to_tsvector('backlog_english'::regconfig, d) "
    f"FROM (SELECT regexp_replace(coalesce(title, '') || ' ' || coalesce(body, '') || ' ' || "
    f"coalesce(names, ''), '{PG_PUNCTUATION}', ' ', 'g') AS d) AS document $$",
    "CREATE FUNCTION backlog_item_names(repository_id integer) RETURNS text "
    "LANGUAGE sql STABLE AS $$ "
    "SELECT p.name || ' ' || p.slug || ' ' || r.owner || ' ' || r.name "
    "FROM repository r JOIN member_project p ON p.id = r.project_id WHERE r.id = repository_id $$",
    "ALTER TABLE backlog_item ADD COLUMN search_document tsvector",
    # Kept out of the row: a document (~1.7 kB at 100k generated items; a
    # tsvector barely compresses, so it is stored as is) inline would widen
    # the heap that every list page's count scans by 40% (80 -> 114 MB, the
    # list page 27 -> 36 ms). Only index builds, phrase rechecks and the
    # rows a listing walks read it. The threshold also moves long bodies out.
    "ALTER TABLE backlog_item ALTER COLUMN search_document SET STORAGE EXTERNAL",
    "ALTER TABLE backlog_item SET (toast_tuple_target = 256)",
    "CREATE FUNCTION backlog_item_search_document() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "NEW.search_document := backlog_search_document(NEW.title, NEW.body, "
    "backlog_item_names(NEW.repository_id)); RETURN NEW; END $$",
    "CREATE TRIGGER backlog_item_search_document BEFORE INSERT OR UPDATE OF title, body, repository_id "
    "ON backlog_item FOR EACH ROW EXECUTE FUNCTION backlog_item_search_document()",
    # Renames are rare; each rewrites the documents of the renamed repository's
    # (or project's) items through the trigger above.
    "CREATE FUNCTION repository_search_names() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE backlog_item SET title = title WHERE repository_id = NEW.id; RETURN NULL; END $$",
    "CREATE TRIGGER repository_search_names AFTER UPDATE OF owner, name, project_id ON repository "
    "FOR EACH ROW EXECUTE FUNCTION repository_search_names()",
    "CREATE FUNCTION member_project_search_names() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE backlog_item SET title = title WHERE repository_id IN "
    "(SELECT id FROM repository WHERE project_id = NEW.id); RETURN NULL; END $$",
    "CREATE TRIGGER member_project_search_names AFTER UPDATE OF name, slug ON member_project "
    "FOR EACH ROW EXECUTE FUNCTION member_project_search_names()",
    "UPDATE backlog_item SET search_document = backlog_search_document(title, body, "
    "backlog_item_names(repository_id))",
    # The identity, priced as what it stands for. Matching a stored document
    # row by row means reading (detoasting) ~2 kB per row, which the planner
    # prices like comparing two integers: with a prefix that matches most
    # items it would scan every row's document (measured at 100k items: 0.2
    # to 0.5 s) instead of ANDing this GIN index's bitmap with the listing
    # index's (30 to 80 ms). The index is on this expression, and
    # marketplace.backlog.search queries it, so the planner sees the cost.
    "CREATE FUNCTION backlog_indexed_document(document tsvector) RETURNS tsvector "
    "LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$ BEGIN RETURN document; END $$",
    "DROP INDEX IF EXISTS ix_backlog_item_search",
    "CREATE INDEX ix_backlog_item_search ON backlog_item USING gin (backlog_indexed_document(search_document))",
]

PG_DOWN = [
    "DROP TRIGGER IF EXISTS member_project_search_names ON member_project",
    "DROP FUNCTION IF EXISTS member_project_search_names()",
    "DROP TRIGGER IF EXISTS repository_search_names ON repository",
    "DROP FUNCTION IF EXISTS repository_search_names()",
    "DROP TRIGGER IF EXISTS backlog_item_search_document ON backlog_item",
    "DROP FUNCTION IF EXISTS backlog_item_search_document()",
    "DROP INDEX IF EXISTS ix_backlog_item_search",
    "DROP FUNCTION IF EXISTS backlog_indexed_document(tsvector)",
    "ALTER TABLE backlog_item DROP COLUMN IF EXISTS search_document",
    "ALTER TABLE backlog_item RESET (toast_tuple_target)",
    "DROP FUNCTION IF EXISTS backlog_item_names(integer)",
    "DROP FUNCTION IF EXISTS backlog_search_document(text, text, text)",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS backlog_english",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS backlog_simple",
    "DROP EXTENSION IF EXISTS unaccent",
    # 0001's expression index.
    "CREATE INDEX ix_backlog_item_search ON backlog_item USING gin ("
    "to_tsvector('english', coalesce(backlog_item.title, '') || ' ' || coalesce(backlog_item.body, '')))",
]

SQLITE_DOCUMENT = (
    "{row}.title || ' ' || coalesce({row}.body, '') || ' ' || coalesce(("
    "SELECT p.name || ' ' || p.slug || ' ' || r.owner || ' ' || r.name FROM repository r "
    "JOIN member_project p ON p.id = r.project_id WHERE r.id = {row}.repository_id), '')"
)
SQLITE_FTS_TABLES = ("backlog_item_fts", "backlog_item_fts_stem")


def _sqlite_insert(row: str) -> str:
    document = SQLITE_DOCUMENT.format(row=row)
    return " ".join(f"INSERT INTO {t}(rowid, document) VALUES ({row}.id, {document});" for t in SQLITE_FTS_TABLES)


def _sqlite_delete(row: str) -> str:
    return " ".join(f"DELETE FROM {t} WHERE rowid = {row}.id;" for t in SQLITE_FTS_TABLES)


SQLITE_TRIGGERS = [
    f"CREATE TRIGGER backlog_item_fts_insert AFTER INSERT ON backlog_item BEGIN {_sqlite_insert('new')} END",
    f"CREATE TRIGGER backlog_item_fts_delete AFTER DELETE ON backlog_item BEGIN {_sqlite_delete('old')} END",
    "CREATE TRIGGER backlog_item_fts_update AFTER UPDATE OF title, body, repository_id ON backlog_item BEGIN "
    f"{_sqlite_delete('old')} {_sqlite_insert('new')} END",
    "CREATE TRIGGER repository_fts_names AFTER UPDATE OF owner, name, project_id ON repository BEGIN "
    "UPDATE backlog_item SET title = title WHERE repository_id = new.id; END",
    "CREATE TRIGGER member_project_fts_names AFTER UPDATE OF name, slug ON member_project BEGIN "
    "UPDATE backlog_item SET title = title WHERE repository_id IN "
    "(SELECT id FROM repository WHERE project_id = new.id); END",
]
SQLITE_TRIGGER_NAMES = ("backlog_item_fts_insert", "backlog_item_fts_delete", "backlog_item_fts_update",
                        "repository_fts_names", "member_project_fts_names")

SQLITE_UP = [
    "DROP TABLE IF EXISTS backlog_item_fts",
    "CREATE VIRTUAL TABLE backlog_item_fts USING fts5(document, tokenize='unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE backlog_item_fts_stem USING fts5("
    "document, tokenize='porter unicode61 remove_diacritics 2')",
    *SQLITE_TRIGGERS,
    *(f"INSERT INTO {t}(rowid, document) SELECT i.id, {SQLITE_DOCUMENT.format(row='i')} FROM backlog_item i"
      for t in SQLITE_FTS_TABLES),
]

# 0001's external-content table and triggers.
SQLITE_DOWN = [
    "CREATE VIRTUAL TABLE backlog_item_fts USING fts5("
    "title, body, content='backlog_item', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER backlog_item_fts_insert AFTER INSERT ON backlog_item BEGIN "
    "INSERT INTO backlog_item_fts(rowid, title, body) VALUES (new.id, new.title, coalesce(new.body, '')); END",
    "CREATE TRIGGER backlog_item_fts_delete AFTER DELETE ON backlog_item BEGIN "
    "INSERT INTO backlog_item_fts(backlog_item_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, coalesce(old.body, '')); END",
    "CREATE TRIGGER backlog_item_fts_update AFTER UPDATE OF title, body ON backlog_item BEGIN "
    "INSERT INTO backlog_item_fts(backlog_item_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, coalesce(old.body, '')); "
    "INSERT INTO backlog_item_fts(rowid, title, body) VALUES (new.id, new.title, coalesce(new.body, '')); END",
    "INSERT INTO backlog_item_fts(backlog_item_fts) VALUES ('rebuild')",
]


def _drop_sqlite_search():
    for trigger in SQLITE_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for name in SQLITE_FTS_TABLES:
        op.execute(f"DROP TABLE IF EXISTS {name}")


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for statement in PG_UP:
            op.execute(statement)
    elif dialect == "sqlite":
        _drop_sqlite_search()
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for statement in PG_DOWN:
            op.execute(statement)
    elif dialect == "sqlite":
        _drop_sqlite_search()
        for statement in SQLITE_DOWN:
            op.execute(statement)
