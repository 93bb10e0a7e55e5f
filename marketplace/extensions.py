"""Flask extensions, created unbound and initialised in ``create_app``."""
import sqlite3

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

# Constraint names are fixed so that migrations name them the same on
# PostgreSQL and SQLite, and a later migration can drop them by name.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()
login_manager = LoginManager()
# Storage is chosen in create_app: Redis when REDIS_URL is set, else memory.
# Limits: sign-in forms (accounts.views, RATELIMIT_AUTH) and the JSON API per
# client address (api.views, RATELIMIT_API); webhooks are exempt (webhooks.views).
# Past a limit: 429 with Retry-After.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def _configure_sqlite(dbapi_connection, connection_record) -> None:
    """Let SQLAlchemy manage SQLite transactions (so SAVEPOINT works) and enforce
    foreign keys, which SQLite leaves off by default."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _begin_sqlite(conn) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")


event.listen(Engine, "connect", _configure_sqlite)
event.listen(Engine, "begin", _begin_sqlite)
