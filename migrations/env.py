"""Alembic environment for Flask-Migrate.

Objects that exist only in one database dialect and are built by hand in the
migrations (the SQLite FTS5 table and its triggers, the PostgreSQL full-text
index) are excluded from autogenerate comparison by ``include_object``.
"""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

HAND_MADE = ("backlog_item_fts", "ix_backlog_item_search", "search_document")


def include_object(obj, name, type_, reflected, compare_to):
    """Leave dialect-specific full-text objects out of autogenerate."""
    if name and name.startswith(HAND_MADE):
        return False
    return True


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_metadata():
    return current_app.extensions["migrate"].db.metadata


def run_migrations_offline():
    url = get_engine().url.render_as_string(hide_password=False)
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True, include_object=include_object
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("compare_type", True)
    conf_args.setdefault("render_as_batch", False)
    engine = get_engine()
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch mode rebuilds tables (copy, drop, rename). With foreign keys
            # enforced, the drop would delete or block the rows that refer to
            # the table, so they are off while migrating (set on the raw
            # connection: the pragma does nothing inside a transaction).
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            include_object=include_object,
            **{**conf_args, "render_as_batch": connection.dialect.name == "sqlite"},
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
