"""HTTP caching for anonymous GETs of the public pages and API (issue 15).

- A **data version** (:class:`~marketplace.httpcache.models.DataVersion`)
  goes up after every commit that wrote a table of public data (every table
  but those in :data:`PRIVATE_TABLES`): ORM flushes and ORM/Core statements
  run through the session are noted, and the counter moves once the commit is
  done (on PostgreSQL on its own short connection, so the bump never holds a
  lock inside the money or sync transaction, and no reader can pair the new
  version with the old data; on SQLite inside the commit).
- A cacheable request (an endpoint in :data:`CACHEABLE`, GET or HEAD, no
  signed-in user, no flashed message, no remember cookie) gets a strong
  ``ETag`` made of the normalised URL, the locale and the version, and
  ``Last-Modified`` from the version's time; ``If-None-Match`` or
  ``If-Modified-Since`` that still match get ``304`` before any view runs.
  Responses are stored in the response cache (Flask-Caching: Redis when
  ``REDIS_URL`` is set, in-process otherwise; ``HTTP_CACHE_TYPE`` overrides)
  under the same key, for ``HTTP_CACHE_SECONDS``, with ``Cache-Control:
  public, max-age=HTTP_CACHE_MAX_AGE`` and ``Vary: Cookie, Accept-Language``.
  A response that sets a cookie or touched the session is never stored. The
  hottest ``HTTP_CACHE_LOCAL_ENTRIES`` (128) pages are also kept in each
  worker's memory in front of Redis.
- Fragments (a page's parts that cost work to make and change only with
  their inputs, e.g. an item's rendered Markdown) are shared by every worker
  through :func:`shared_fragment`: Redis when ``REDIS_URL`` is set and
  ``HTTP_CACHE_FRAGMENTS`` is not turned off, whatever ``HTTP_CACHE_TYPE``
  (the response cache off still renders each page, from its stored parts).
- Every other response (signed-in pages above all) is sent ``Cache-Control:
  private, no-cache`` unless it says otherwise: no shared cache keeps it.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from datetime import datetime
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, request, session
from flask_caching import Cache
from redis.exceptions import RedisError
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from marketplace.extensions import db
from marketplace.httpcache.models import DataVersion
from marketplace.i18n import select_locale
from marketplace.timeutil import utcnow

VERSION_ID = 1
_CHANGED = "backlog_commons_public_data_changed"
# Tables no page shows to the public: writing them never changes a cached page.
PRIVATE_TABLES = frozenset({
    "webhook_delivery", "schedule_run", "http_cache_entry", "sync_run", "audit_event", "oauth_state",
    "data_version", "alembic_version",
    # The forge's living comments and commands (issue 22): no public page shows them.
    "forge_presence", "item_presence", "forge_write", "forge_command",
})
# Endpoints whose anonymous GET is the same for every visitor (given URL and locale).
CACHEABLE = frozenset({
    "backlog.index", "backlog.item", "projects.projects", "projects.project", "projects.sdgs", "projects.sdg",
    "pages.about", "pages.transparency", "pools.index", "pools.show",
    "api.openapi", "api.projects", "api.project", "api.items", "api.item", "api.item_ledger",
    "api.ledger_summary", "api.pools", "api.pool",
})

response_cache = Cache()
fragment_cache = Cache()
log = logging.getLogger(__name__)
_memo: dict[str, tuple[float, int, datetime]] = {}
# The hottest pages also stay in this worker's memory (in front of Redis), at most
# HTTP_CACHE_LOCAL_ENTRIES of them: a hit costs no round trip. Keys hold the data
# version, so an entry is never stale, only unused.
_local: OrderedDict[str, tuple[float, tuple[bytes, str]]] = OrderedDict()


def cache_config(config: dict) -> dict:
    """Flask-Caching settings for the response cache: ``HTTP_CACHE_TYPE``
    when given (e.g. ``NullCache`` to turn it off), else ``RedisCache`` on
    ``REDIS_URL``, else ``SimpleCache`` (in-process, per worker)."""
    kind = config.get("HTTP_CACHE_TYPE") or ("RedisCache" if config.get("REDIS_URL") else "SimpleCache")
    out = {"CACHE_TYPE": kind, "CACHE_DEFAULT_TIMEOUT": config.get("HTTP_CACHE_SECONDS", 60),
           "CACHE_KEY_PREFIX": "bc:page:", "CACHE_THRESHOLD": 2000}
    if kind == "RedisCache":
        out["CACHE_REDIS_URL"] = config["REDIS_URL"]
    return out


def fragment_cache_config(config: dict) -> dict:
    """Flask-Caching settings for the shared fragments (:func:`shared_fragment`):
    ``RedisCache`` on ``REDIS_URL`` unless ``HTTP_CACHE_FRAGMENTS`` is false;
    else ``NullCache`` (each worker then keeps only what its caller keeps in memory)."""
    if not config.get("REDIS_URL") or not config.get("HTTP_CACHE_FRAGMENTS", True):
        return {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True}
    # Short socket timeouts: a Redis that hangs costs a page a second or two; it then renders.
    return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": config["REDIS_URL"],
            "CACHE_KEY_PREFIX": "bc:fragment:", "CACHE_DEFAULT_TIMEOUT": 86_400,
            "CACHE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}


def shared_fragment(key: str, make, timeout: int = 86_400) -> str:
    """The text stored under ``key`` in the fragment store, else ``make()``'s,
    stored for ``timeout`` seconds. ``key`` must name every input of the text
    (ids, times, a digest of the source): an entry is never invalidated, only
    replaced by a new key. Redis being down costs the ``make()``, never the page."""
    try:
        hit = fragment_cache.get(key)
    except RedisError:
        log.warning("fragment store unavailable; making %s", key.split(":", 1)[0])
        return make()
    if hit is not None:
        return hit
    text = make()
    try:
        fragment_cache.set(key, str(text), timeout=timeout)
    except RedisError:
        pass
    return text


def current_version() -> tuple[int, datetime]:
    """``(version, changed_at)`` of the public data. Remembered in this process
    for ``HTTP_CACHE_VERSION_SECONDS`` (default 1 s; 0: read every time), so a
    warm page costs no SQL at all; a change shows at most that much later."""
    ttl = current_app.config.get("HTTP_CACHE_VERSION_SECONDS", 1.0)
    now = time.monotonic()
    remembered = _memo.get("version")
    if ttl and remembered is not None and now - remembered[0] < ttl:
        return remembered[1], remembered[2]
    row = db.session.execute(select(DataVersion.version, DataVersion.changed_at)
                             .where(DataVersion.id == VERSION_ID)).first()
    version, changed_at = (row[0], row[1]) if row else (0, datetime(2026, 1, 1))
    _memo["version"] = (now, version, changed_at)
    return version, changed_at


def _anonymous() -> bool:
    # Reading the session makes Flask add "Vary: Cookie" to the response.
    if "_user_id" in session or "_flashes" in session:
        return False
    return not request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))


def _key(version: int) -> str:
    args = urlencode(sorted(request.args.items(multi=True)))
    return f"{request.method}|{request.host_url}|{request.path}?{args}|{select_locale()}|{version}"


def _headers(response: Response, etag: str, changed_at: datetime) -> None:
    response.set_etag(etag)
    response.last_modified = changed_at.replace(microsecond=0)
    response.headers["Cache-Control"] = f"public, max-age={current_app.config.get('HTTP_CACHE_MAX_AGE', 30)}"
    response.vary.update(("Cookie", "Accept-Language"))


def _serve_cached():
    g.http_cache = None
    if request.method not in ("GET", "HEAD") or request.endpoint not in CACHEABLE or not _anonymous():
        return None
    version, changed_at = current_version()
    key = _key(version)
    etag = hashlib.sha256(key.encode()).hexdigest()[:32]
    g.http_cache = (key, etag, changed_at)
    if etag in request.if_none_match or (
            not request.if_none_match and request.if_modified_since is not None
            and request.if_modified_since.replace(tzinfo=None) >= changed_at.replace(microsecond=0)):
        response = Response(status=304)
        _headers(response, etag, changed_at)
        g.http_cache = None
        return response
    stored = _cache_get(key)
    if stored is None:
        return None
    body, mimetype = stored
    response = Response(body, status=200, mimetype=mimetype)
    _headers(response, etag, changed_at)
    g.http_cache = None  # served: nothing to store
    return response


def _store(response: Response) -> Response:
    state = g.get("http_cache")
    if state is None:
        if request.endpoint != "static" and response.status_code != 304:
            response.headers.setdefault("Cache-Control", "private, no-cache")
        return response
    key, etag, changed_at = state
    # Never shared: an error, a stream, a response that sets a cookie or changed the
    # session, or a page carrying a form's CSRF token (it belongs to one session).
    shareable = (response.status_code == 200 and not response.direct_passthrough
                 and not session.modified and "Set-Cookie" not in response.headers
                 and b'name="csrf_token"' not in response.get_data())
    if not shareable:
        response.headers.setdefault("Cache-Control", "private, no-cache")
        return response
    _headers(response, etag, changed_at)
    _cache_set(key, (response.get_data(), response.mimetype))
    return response


def _local_entries() -> int:
    if current_app.config.get("HTTP_CACHE_TYPE") == "NullCache":
        return 0
    return current_app.config.get("HTTP_CACHE_LOCAL_ENTRIES", 128)


def _cache_get(key: str) -> tuple[bytes, str] | None:
    if _local_entries():
        hit = _local.get(key)
        if hit is not None and hit[0] > time.monotonic():
            _local.move_to_end(key)
            return hit[1]
    stored = response_cache.get(key)
    if stored is not None:
        _local_put(key, stored)
    return stored


def _cache_set(key: str, value: tuple[bytes, str]) -> None:
    response_cache.set(key, value)
    _local_put(key, value)


def _local_put(key: str, value: tuple[bytes, str]) -> None:
    limit = _local_entries()
    if not limit:
        return
    _local[key] = (time.monotonic() + current_app.config.get("HTTP_CACHE_SECONDS", 60), value)
    _local.move_to_end(key)
    while len(_local) > limit:
        _local.popitem(last=False)


def init_http_cache(app: Flask) -> None:
    """Bind the response cache and the request hooks (after the rate limits, which still apply)."""
    response_cache.init_app(app, config=cache_config(app.config))
    fragment_cache.init_app(app, config=fragment_cache_config(app.config))
    app.before_request(_serve_cached)
    app.after_request(_store)


# -- the data version ------------------------------------------------------------------------------


def _note(session_: Session, table_names) -> None:
    if any(name not in PRIVATE_TABLES for name in table_names):
        session_.info[_CHANGED] = True


@event.listens_for(Session, "after_flush")
def _after_flush(session_: Session, flush_context) -> None:
    objects = list(session_.new) + list(session_.dirty) + list(session_.deleted)
    _note(session_, {obj.__table__.name for obj in objects if hasattr(obj, "__table__")})


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        if table is not None:
            _note(state.session, {getattr(table, "name", "")})


def _bump(connection) -> None:
    connection.execute(update(DataVersion).where(DataVersion.id == VERSION_ID)
                       .values(version=DataVersion.version + 1, changed_at=utcnow()))


@event.listens_for(Session, "before_commit")
def _before_commit(session_: Session) -> None:
    if session_.in_nested_transaction() or not session_.info.get(_CHANGED):
        return
    if session_.get_bind().dialect.name == "sqlite":
        # SQLite has one writer: bump inside the commit (a second connection would wait for this one).
        session_.info.pop(_CHANGED, None)
        _bump(session_.connection())


@event.listens_for(Session, "after_commit")
def _after_commit(session_: Session) -> None:
    if session_.in_nested_transaction() or not session_.info.pop(_CHANGED, None):
        return
    with db.engine.begin() as connection:
        _bump(connection)
    _memo.clear()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session_: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session_.info.pop(_CHANGED, None)
